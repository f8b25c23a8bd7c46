#include "haven/crypto/primitives.h"

#include <sodium.h>

#include <cstring>

namespace haven::crypto {

Sha256 HmacSha256(ByteView key, ByteView message) {
  (void)EnsureSodium();
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, key.data(), key.size());
  crypto_auth_hmacsha256_update(&state, message.data(), message.size());
  Sha256 out{};
  crypto_auth_hmacsha256_final(&state, out.data());
  sodium_memzero(&state, sizeof state);
  return out;
}

Status HkdfSha256Into(ByteView ikm, ByteView salt, ByteView info, MutableByteView out) {
  const std::size_t length = out.size();
  if (length == 0 || length > kHkdfMaxOutput) {
    return Status::InvalidArgument("HKDF-SHA256 output must be 1..8160 bytes");
  }
  static constexpr std::array<std::uint8_t, kSha256Len> kZeroSalt{};
  Sha256 prk = HmacSha256(salt.empty() ? ByteView(kZeroSalt) : salt, ikm);
  Sha256 block{};
  std::size_t done = 0;
  for (std::uint8_t counter = 1; done < length; ++counter) {
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, prk.data(), prk.size());
    if (counter > 1) crypto_auth_hmacsha256_update(&state, block.data(), block.size());
    crypto_auth_hmacsha256_update(&state, info.data(), info.size());
    crypto_auth_hmacsha256_update(&state, &counter, 1);
    crypto_auth_hmacsha256_final(&state, block.data());
    sodium_memzero(&state, sizeof state);
    const std::size_t take = std::min(kSha256Len, length - done);
    std::memcpy(out.data() + done, block.data(), take);
    done += take;
  }
  sodium_memzero(prk.data(), prk.size());
  sodium_memzero(block.data(), block.size());
  return Status::Ok();
}

Result<SecureBuffer> HkdfSha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
  if (length == 0 || length > kHkdfMaxOutput) {
    return Status::InvalidArgument("HKDF-SHA256 output must be 1..8160 bytes");
  }
  SecureBuffer okm(length);
  HAVEN_RETURN_IF_ERROR(HkdfSha256Into(ikm, salt, info, okm.mutable_view()));
  return okm;
}

Status AeadSeal(ByteView key, ByteView nonce, ByteView ad, ByteView plaintext, Bytes* out) {
  if (key.size() != kAeadKeyLen || nonce.size() != kXNonceLen) {
    return Status::InvalidArgument("XChaCha20-Poly1305 takes a 32-byte key and 24-byte nonce");
  }
  const std::size_t offset = out->size();
  out->resize(offset + plaintext.size() + kAeadTagLen);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out->data() + offset, &written, plaintext.data(),
                                             plaintext.size(), ad.data(), ad.size(), nullptr,
                                             nonce.data(), key.data());
  return Status::Ok();
}

Status AeadOpen(ByteView key, ByteView nonce, ByteView ad, ByteView ciphertext, Bytes* out) {
  if (key.size() != kAeadKeyLen || nonce.size() != kXNonceLen) {
    return Status::InvalidArgument("XChaCha20-Poly1305 takes a 32-byte key and 24-byte nonce");
  }
  if (ciphertext.size() < kAeadTagLen) return Status::DataLoss("ciphertext shorter than its tag");
  const std::size_t offset = out->size();
  out->resize(offset + ciphertext.size() - kAeadTagLen);
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out->data() + offset, &written, nullptr,
                                                 ciphertext.data(), ciphertext.size(), ad.data(),
                                                 ad.size(), nonce.data(), key.data()) != 0) {
    sodium_memzero(out->data() + offset, out->size() - offset);
    out->resize(offset);
    return Status::DataLoss("message failed authentication");
  }
  return Status::Ok();
}

Result<SecureBuffer> X25519(ByteView private_key, ByteView public_key) {
  if (private_key.size() != kX25519Len || public_key.size() != kX25519Len) {
    return Status::InvalidArgument("X25519 keys are 32 bytes");
  }
  HAVEN_RETURN_IF_ERROR(EnsureSodium());
  SecureBuffer shared(kX25519Len);
  if (crypto_scalarmult(shared.data(), private_key.data(), public_key.data()) != 0) {
    return Status::DataLoss("low-order X25519 public key");
  }
  return shared;
}

X25519Public X25519Base(ByteView private_key) {
  X25519Public out{};
  crypto_scalarmult_base(out.data(), private_key.data());
  return out;
}

SigningKeyPair SigningKeyPair::Generate() {
  (void)EnsureSodium();
  SigningKeyPair kp;
  kp.secret = SecureBuffer(kEd25519SecretLen);
  crypto_sign_keypair(kp.public_key.data(), kp.secret.data());
  return kp;
}

Ed25519Signature Sign(const SigningKeyPair& key, ByteView message) {
  Ed25519Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), key.secret.data());
  return sig;
}

bool Verify(ByteView public_key, ByteView message, ByteView signature) {
  if (public_key.size() != kEd25519PublicLen || signature.size() != kEd25519SignatureLen) {
    return false;
  }
  (void)EnsureSodium();
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     public_key.data()) == 0;
}

Result<Bytes> Seal(const X25519Public& recipient, ByteView plaintext) {
  HAVEN_RETURN_IF_ERROR(EnsureSodium());
  Bytes out(plaintext.size() + crypto_box_SEALBYTES);
  if (crypto_box_seal(out.data(), plaintext.data(), plaintext.size(), recipient.data()) != 0) {
    return Status::InvalidArgument("cannot seal to this public key");
  }
  return out;
}

Result<SecureBuffer> OpenSealed(const X25519Public& recipient_public, ByteView recipient_private,
                                ByteView sealed) {
  if (recipient_private.size() != kX25519Len) {
    return Status::InvalidArgument("X25519 private keys are 32 bytes");
  }
  if (sealed.size() < crypto_box_SEALBYTES) return Status::DataLoss("sealed box too short");
  SecureBuffer plain(sealed.size() - crypto_box_SEALBYTES);
  if (crypto_box_seal_open(plain.data(), sealed.data(), sealed.size(), recipient_public.data(),
                           recipient_private.data()) != 0) {
    return Status::DataLoss("sealed box failed authentication");
  }
  return plain;
}

}  // namespace haven::crypto
