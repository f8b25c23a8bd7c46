// The Noise "crypto functions" (Noise specification revision 34, section 4):
// DH 25519, cipher ChaChaPoly, hashes SHA256 / SHA512 / BLAKE2b with the HMAC
// and HKDF that section 4.3 defines on top of them. All on libsodium.
//
// Thread-safety: the free functions are thread-safe; Hasher instances are not.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "haven/common/bytes.h"
#include "haven/common/secure_memory.h"
#include "haven/common/status.h"

namespace haven::noise {

inline constexpr std::size_t kDhLen = 32;
inline constexpr std::size_t kKeyLen = 32;
inline constexpr std::size_t kTagLen = 16;
inline constexpr std::size_t kMaxHashLen = 64;
// Largest Noise message, handshake or transport (specification section 3).
inline constexpr std::size_t kMaxMessageLen = 65535;

using PublicKey = std::array<std::uint8_t, kDhLen>;

// An X25519 key pair; the private half lives in guarded memory.
struct KeyPair {
  SecureBuffer private_key;  // kDhLen bytes
  PublicKey public_key{};

  static KeyPair Generate();
  // Derives the public key. InvalidArgument unless exactly kDhLen bytes.
  static Result<KeyPair> FromPrivateKey(ByteView private_key);
  KeyPair Clone() const;
};

// X25519(private, public) into `out` (kDhLen bytes). Fails on a low-order
// public key (all-zero shared secret) rather than mixing in zeros.
Status Dh(const KeyPair& local, const PublicKey& remote, MutableByteView out);

enum class HashAlgorithm { kSha256, kSha512, kBlake2b };

std::string_view HashName(HashAlgorithm alg);
std::size_t HashLen(HashAlgorithm alg);
std::size_t BlockLen(HashAlgorithm alg);

// Incremental HASH(); the internal state is zeroed on destruction because
// inside HMAC it is derived from a key.
class Hasher {
 public:
  explicit Hasher(HashAlgorithm alg);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void Update(ByteView data);
  // Writes HashLen(alg) bytes to `out`. The Hasher must not be used afterwards.
  void Final(MutableByteView out);

 private:
  HashAlgorithm alg_;
  alignas(64) std::array<std::uint8_t, 512> state_{};
};

// HMAC-HASH(key, data) per RFC 2104, as Noise section 4.3 requires.
// `out` receives HashLen(alg) bytes.
void Hmac(HashAlgorithm alg, ByteView key, ByteView data, MutableByteView out);

// HKDF(chaining_key, input_key_material, num_outputs) of Noise section 4.3.
// Writes HashLen(alg) bytes to each of out1, out2 and (when non-empty) out3.
void Hkdf(HashAlgorithm alg, ByteView chaining_key, ByteView ikm, MutableByteView out1,
          MutableByteView out2, MutableByteView out3);

// AEAD_CHACHA20_POLY1305 (RFC 8439) with Noise's nonce encoding: 32 zero bits
// then the 64-bit counter little-endian. Appends ciphertext||tag to `out`.
void ChaChaPolyEncrypt(ByteView key, std::uint64_t nonce, ByteView ad, ByteView plaintext,
                       Bytes* out);
// Appends the plaintext to `out`; DataLoss if authentication fails (and `out`
// is left as it was).
Status ChaChaPolyDecrypt(ByteView key, std::uint64_t nonce, ByteView ad, ByteView ciphertext,
                         Bytes* out);

}  // namespace haven::noise
