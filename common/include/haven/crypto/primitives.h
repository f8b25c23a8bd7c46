// The primitives of Haven's end-to-end layer, on libsodium 1.0.18:
// HMAC-SHA256 and HKDF-SHA256 (RFC 5869; libsodium 1.0.18 has no HKDF),
// XChaCha20-Poly1305, X25519, Ed25519 and sealed boxes. Each is proven on the
// Wycheproof vectors (tests/unit/crypto_vectors_test.cc).
//
// Secrets go in and out as SecureBuffer; public values as Bytes/arrays.
// Thread-safety: all functions are thread-safe (no shared state).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "haven/common/bytes.h"
#include "haven/common/secure_memory.h"
#include "haven/common/status.h"

namespace haven::crypto {

inline constexpr std::size_t kSha256Len = 32;
inline constexpr std::size_t kAeadKeyLen = 32;
inline constexpr std::size_t kXNonceLen = 24;
inline constexpr std::size_t kAeadTagLen = 16;
inline constexpr std::size_t kX25519Len = 32;
inline constexpr std::size_t kEd25519PublicLen = 32;
inline constexpr std::size_t kEd25519SecretLen = 64;
inline constexpr std::size_t kEd25519SignatureLen = 64;
inline constexpr std::size_t kSealOverhead = 48;  // ephemeral key + tag
inline constexpr std::size_t kHkdfMaxOutput = 255 * kSha256Len;

using Sha256 = std::array<std::uint8_t, kSha256Len>;
using X25519Public = std::array<std::uint8_t, kX25519Len>;
using Ed25519Public = std::array<std::uint8_t, kEd25519PublicLen>;
using Ed25519Signature = std::array<std::uint8_t, kEd25519SignatureLen>;

// HMAC-SHA256 with a key of any length.
Sha256 HmacSha256(ByteView key, ByteView message);

// HKDF-SHA256 (RFC 5869): extract with `salt` (empty = 32 zero bytes), then
// expand to `length` bytes with `info`. InvalidArgument if length is 0 or
// above 8160 (255 blocks).
Result<SecureBuffer> HkdfSha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length);
// The same into caller memory (out.size() bytes), for hot paths that keep
// short-lived keys on the stack and zero them themselves.
Status HkdfSha256Into(ByteView ikm, ByteView salt, ByteView info, MutableByteView out);

// XChaCha20-Poly1305 (IETF). Appends ciphertext||tag to `out`.
Status AeadSeal(ByteView key, ByteView nonce, ByteView ad, ByteView plaintext, Bytes* out);
// Appends the plaintext to `out` (unchanged on failure). DataLoss when the
// tag does not verify; InvalidArgument for a wrong key or nonce size.
Status AeadOpen(ByteView key, ByteView nonce, ByteView ad, ByteView ciphertext, Bytes* out);

// X25519: DataLoss for a low-order public key (all-zero shared secret).
Result<SecureBuffer> X25519(ByteView private_key, ByteView public_key);
X25519Public X25519Base(ByteView private_key);

struct SigningKeyPair {
  SecureBuffer secret;  // 64 bytes: seed || public key (libsodium layout)
  Ed25519Public public_key{};
  static SigningKeyPair Generate();
};
Ed25519Signature Sign(const SigningKeyPair& key, ByteView message);
// True only for a valid signature by `public_key` (strict libsodium checks:
// canonical encodings, no small-order keys).
bool Verify(ByteView public_key, ByteView message, ByteView signature);

// Anonymous sealed box to an X25519 public key (crypto_box_seal): only the
// holder of the private key can open it. Overhead kSealOverhead bytes.
Result<Bytes> Seal(const X25519Public& recipient, ByteView plaintext);
Result<SecureBuffer> OpenSealed(const X25519Public& recipient_public, ByteView recipient_private,
                                ByteView sealed);

}  // namespace haven::crypto
