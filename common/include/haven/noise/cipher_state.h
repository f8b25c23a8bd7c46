// CipherState and SymmetricState of the Noise specification (revision 34,
// sections 5.1 and 5.2). Pure computation, no I/O.
// Thread-safety: none; each object belongs to one connection.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>

#include "haven/noise/primitives.h"

namespace haven::noise {

class CipherState {
 public:
  CipherState() = default;
  CipherState(CipherState&&) noexcept = default;
  CipherState& operator=(CipherState&&) noexcept = default;

  // An empty `key` means "no key": Encrypt/Decrypt then pass data through.
  // Otherwise the first 32 bytes are the key; fewer aborts (a caller bug).
  void InitializeKey(ByteView key);
  bool HasKey() const { return !k_.empty(); }
  // The key itself, for the test that scans memory after a wipe.
  ByteView key_for_testing() const { return k_.view(); }
  void SetNonce(std::uint64_t n) { n_ = n; }
  std::uint64_t nonce() const { return n_; }

  // Appends the result to `out`. ResourceExhausted once the nonce reaches
  // 2^64-1 (reserved by the specification); the caller must then close.
  Status EncryptWithAd(ByteView ad, ByteView plaintext, Bytes* out);
  // On an authentication failure the nonce is not advanced.
  Status DecryptWithAd(ByteView ad, ByteView ciphertext, Bytes* out);
  // k = ENCRYPT(k, 2^64-1, zerolen, zeros)[0:32] (specification 4.2).
  void Rekey();

 private:
  SecureBuffer k_;
  std::uint64_t n_ = 0;
};

class SymmetricState {
 public:
  explicit SymmetricState(HashAlgorithm alg);

  void InitializeSymmetric(std::string_view protocol_name);
  void MixKey(ByteView input_key_material);
  void MixHash(ByteView data);
  void MixKeyAndHash(ByteView input_key_material);
  ByteView handshake_hash() const { return {h_.data(), hash_len_}; }
  Status EncryptAndHash(ByteView plaintext, Bytes* out);
  Status DecryptAndHash(ByteView ciphertext, Bytes* out);
  bool HasKey() const { return cipher_.HasKey(); }
  // Returns (initiator-to-responder, responder-to-initiator).
  std::pair<CipherState, CipherState> Split();

 private:
  HashAlgorithm alg_;
  std::size_t hash_len_;
  SecureBuffer ck_;
  std::array<std::uint8_t, kMaxHashLen> h_{};
  CipherState cipher_;
};

}  // namespace haven::noise
