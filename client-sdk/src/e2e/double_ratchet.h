// The Double Ratchet (Signal's specification, revision 1) for Haven's
// end-to-end layer, as a state machine with no I/O. docs/protocol.md, part 3,
// fixes the byte layouts and labels:
//   KDF_RK(rk, dh)  = HKDF-SHA256(ikm = dh, salt = rk, info = "haven/1 ratchet root", 64)
//                     -> new root key (32) || chain key (32)
//   KDF_CK(ck)      = HMAC-SHA256(ck, 0x01) -> message key; HMAC-SHA256(ck, 0x02) -> next ck
//   message key     -> HKDF-SHA256(mk, salt = 32 zeros, info = "haven/1 message", 56)
//                     = XChaCha20-Poly1305 key (32) || nonce (24)
//   header          = ratchet public key (32) || previous chain length (u32 BE) || n (u32 BE)
//   wire message    = version 0x01 || header (40) || ciphertext || tag (16)
//   AEAD AD         = session associated data (both identity keys) || version || header
// Plaintext is padded to a multiple of 256 bytes (a u32 BE length first), so
// that sizes tell the server little.
//
// A failed Decrypt leaves the state exactly as it was. Skipped message keys
// are bounded per chain (max_skip), in total (max_stored) and by age (they
// expire after max_age_steps DH ratchet steps).
// Thread-safety: none; one object per conversation.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "haven/crypto/primitives.h"

namespace haven::e2e {

inline constexpr std::uint8_t kMessageVersion = 0x01;
inline constexpr std::size_t kHeaderLen = 40;
inline constexpr std::size_t kPadBucket = 256;
inline constexpr std::size_t kMessageOverhead = 1 + kHeaderLen + crypto::kAeadTagLen;

struct DhKeyPair {
  SecureBuffer private_key;  // 32 bytes
  crypto::X25519Public public_key{};
  static DhKeyPair Generate();
  static DhKeyPair FromPrivate(ByteView private_key);
  DhKeyPair Clone() const;
};

struct RatchetHeader {
  crypto::X25519Public dh{};
  std::uint32_t pn = 0;
  std::uint32_t n = 0;
  void AppendTo(Bytes* out) const;
  static std::optional<RatchetHeader> Parse(ByteView in);
};

struct RatchetLimits {
  std::uint32_t max_skip = 1000;      // per chain, in one step
  std::size_t max_stored = 2000;      // skipped keys kept in total
  std::uint32_t max_age_steps = 16;   // DH ratchet steps a skipped key survives
  std::size_t max_plaintext = 65536;  // before padding
};

class DoubleRatchet {
 public:
  using KeyGenerator = std::function<DhKeyPair()>;

  // The initiator (the survivor, after X3DH): knows the shared secret and the
  // responder's ratchet public key (its signed prekey).
  static Result<DoubleRatchet> InitInitiator(ByteView shared_secret,
                                             const crypto::X25519Public& remote_ratchet,
                                             Bytes associated_data, RatchetLimits limits = {},
                                             KeyGenerator generate = DhKeyPair::Generate);
  // The responder: the shared secret and its own ratchet key pair (the
  // signed prekey pair).
  static Result<DoubleRatchet> InitResponder(ByteView shared_secret, DhKeyPair own_ratchet,
                                             Bytes associated_data, RatchetLimits limits = {},
                                             KeyGenerator generate = DhKeyPair::Generate);

  DoubleRatchet(DoubleRatchet&&) noexcept = default;
  DoubleRatchet& operator=(DoubleRatchet&&) noexcept = default;

  Result<Bytes> Encrypt(ByteView plaintext);
  // DataLoss for anything not authentic (tampered, replayed, wrong session);
  // ResourceExhausted past the skip bounds. Either way the state is unchanged.
  Result<SecureBuffer> Decrypt(ByteView message);

  // The whole state, secrets included: store it only encrypted.
  SecureBuffer Serialize() const;
  static Result<DoubleRatchet> Deserialize(ByteView data, RatchetLimits limits = {},
                                           KeyGenerator generate = DhKeyPair::Generate);

  std::size_t skipped_keys() const { return skipped_.keys.size(); }
  // The current root key, for the test that scans memory after quick exit.
  ByteView root_key_for_testing() const { return state_.rk.view(); }

 private:
  using SkippedKey = std::pair<crypto::X25519Public, std::uint32_t>;
  struct Skipped {
    SecureBuffer key;
    std::uint64_t step = 0;  // DH ratchet step at which it was stored
  };
  using FreshKeys = std::vector<std::pair<SkippedKey, Skipped>>;
  // Everything but the skipped keys: small, so Decrypt works on a copy.
  struct State {
    DhKeyPair dhs;
    std::optional<crypto::X25519Public> dhr;
    SecureBuffer rk;
    SecureBuffer cks;  // empty until we have a sending chain
    SecureBuffer ckr;  // empty until we have a receiving chain
    std::uint32_t ns = 0, nr = 0, pn = 0;
    std::uint64_t steps = 0;
    Bytes ad;
    State Clone() const;
  };
  struct SkippedStore {
    std::map<SkippedKey, Skipped> keys;
    std::deque<SkippedKey> order;  // oldest first
  };

  DoubleRatchet(State state, RatchetLimits limits, KeyGenerator generate)
      : state_(std::move(state)), limits_(limits), generate_(std::move(generate)) {}

  Status SkipMessageKeys(State& s, std::uint32_t until, FreshKeys* fresh) const;
  Status DhRatchet(State& s, const RatchetHeader& header) const;
  // Adds keys skipped by a message that authenticated, then applies the
  // total bound and the age limit.
  void Remember(FreshKeys fresh);

  State state_;
  SkippedStore skipped_;
  RatchetLimits limits_;
  KeyGenerator generate_;
};

// Padding of plaintext to the 256-byte buckets (exposed for tests). The
// caller zeroes the padded copy after use.
Bytes Pad(ByteView plaintext);
Result<SecureBuffer> Unpad(ByteView padded);

}  // namespace haven::e2e
