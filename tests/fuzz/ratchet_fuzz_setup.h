// The fixed Double Ratchet session of double_ratchet_fuzz.cc and its seeds
// (gen_corpus.cc): a constant shared secret, associated data and responder
// ratchet key, and a deterministic key generator, so that a message recorded
// once by the seed generator decrypts again in the fuzz target. These keys
// are test constants and protect nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include "e2e/double_ratchet.h"
#include "e2e/x3dh.h"
#include "fuzz_check.h"

namespace haven::fuzz {

// Generous bounds: an input cannot reach them (the target runs at most
// kMaxRatchetSteps operations), so every refusal it sees is for a reason.
inline constexpr std::size_t kMaxRatchetSteps = 1500;
inline e2e::RatchetLimits RatchetFuzzLimits() {
  e2e::RatchetLimits limits;
  limits.max_skip = 4000;
  limits.max_stored = 4000;
  limits.max_age_steps = 100000;
  return limits;
}

inline Bytes PatternBytes(std::size_t n, std::uint8_t start, std::uint8_t step) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(start + step * i);
  return b;
}

// Each side's own deterministic stream of ratchet keys.
inline e2e::DoubleRatchet::KeyGenerator CountingKeys(std::uint8_t side) {
  auto counter = std::make_shared<std::uint32_t>(0);
  return [counter, side] {
    const std::uint32_t n = (*counter)++;
    Bytes key = PatternBytes(32, static_cast<std::uint8_t>(side * 64 + n), 3);
    key[0] = static_cast<std::uint8_t>(n);
    key[1] = static_cast<std::uint8_t>(n >> 8);
    return e2e::DhKeyPair::FromPrivate(key);
  };
}

struct RatchetPair {
  e2e::DoubleRatchet alice;  // the initiator (survivor)
  e2e::DoubleRatchet bob;    // the responder (counsellor)
};

inline RatchetPair MakeRatchetPair() {
  const Bytes secret = PatternBytes(32, 0x21, 5);
  const Bytes ad = PatternBytes(64, 0x90, 1);
  e2e::DhKeyPair bob_ratchet = e2e::DhKeyPair::FromPrivate(PatternBytes(32, 0x47, 9));
  const crypto::X25519Public bob_public = bob_ratchet.public_key;
  auto alice = e2e::DoubleRatchet::InitInitiator(secret, bob_public, ad, RatchetFuzzLimits(),
                                                 CountingKeys(1));
  auto bob = e2e::DoubleRatchet::InitResponder(secret, std::move(bob_ratchet), ad,
                                               RatchetFuzzLimits(), CountingKeys(2));
  HAVEN_FUZZ_CHECK(alice.ok() && bob.ok());
  return RatchetPair{std::move(alice).value(), std::move(bob).value()};
}

// Operations of double_ratchet_fuzz.cc (low three bits of the op byte).
enum RatchetOp : std::uint8_t {
  kAliceEncrypt = 0,   // record: plaintext
  kBobEncrypt = 1,     // record: plaintext
  kDeliverToBob = 2,   // bytes: which pending message, tamper position/mask
  kDeliverToAlice = 3,
  kRawToBob = 4,       // record: a wire message
  kRawToAlice = 5,
  kPersistBob = 6,     // Serialize and Deserialize Bob
  kRawState = 7,       // record: a serialized state to Deserialize
};

}  // namespace haven::fuzz

namespace haven::fuzz {

// The helpline's intake key pair and a counsellor device's identity, fixed,
// for sealed_blob_fuzz.cc and its seeds.
inline e2e::DhKeyPair SealFuzzHelplineKey() {
  return e2e::DhKeyPair::FromPrivate(PatternBytes(32, 0x33, 7));
}

inline e2e::IdentityKey SealFuzzDeviceKey() {
  e2e::IdentityKey device = e2e::IdentityKey::Generate();  // signing half unused here
  device.dh = e2e::DhKeyPair::FromPrivate(PatternBytes(32, 0x71, 11));
  return device;
}

}  // namespace haven::fuzz
