#include "haven/noise/cipher_state.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <limits>

namespace haven::noise {
namespace {
constexpr std::uint64_t kReservedNonce = std::numeric_limits<std::uint64_t>::max();
}  // namespace

void CipherState::InitializeKey(ByteView key) {
  // A short key is a programming error; carrying on would mean encrypting
  // with a key nobody chose (or, with no key, not encrypting at all).
  if (!key.empty() && key.size() < kKeyLen) std::abort();
  k_ = key.empty() ? SecureBuffer() : SecureBuffer::CopyOf(key.first(kKeyLen));
  n_ = 0;
}

Status CipherState::EncryptWithAd(ByteView ad, ByteView plaintext, Bytes* out) {
  if (!HasKey()) {
    out->insert(out->end(), plaintext.begin(), plaintext.end());
    return Status::Ok();
  }
  if (n_ == kReservedNonce) return Status::ResourceExhausted("Noise nonce space exhausted");
  ChaChaPolyEncrypt(k_.view(), n_, ad, plaintext, out);
  ++n_;
  return Status::Ok();
}

Status CipherState::DecryptWithAd(ByteView ad, ByteView ciphertext, Bytes* out) {
  if (!HasKey()) {
    out->insert(out->end(), ciphertext.begin(), ciphertext.end());
    return Status::Ok();
  }
  if (n_ == kReservedNonce) return Status::ResourceExhausted("Noise nonce space exhausted");
  HAVEN_RETURN_IF_ERROR(ChaChaPolyDecrypt(k_.view(), n_, ad, ciphertext, out));
  ++n_;
  return Status::Ok();
}

void CipherState::Rekey() {
  if (!HasKey()) return;
  static constexpr std::array<std::uint8_t, kKeyLen> kZeros{};
  Bytes block;
  ChaChaPolyEncrypt(k_.view(), kReservedNonce, {}, kZeros, &block);
  std::memcpy(k_.data(), block.data(), kKeyLen);
  SecureZero(block);
}

SymmetricState::SymmetricState(HashAlgorithm alg)
    : alg_(alg), hash_len_(HashLen(alg)), ck_(HashLen(alg)) {}

void SymmetricState::InitializeSymmetric(std::string_view protocol_name) {
  h_.fill(0);
  if (protocol_name.size() <= hash_len_) {
    std::memcpy(h_.data(), protocol_name.data(), protocol_name.size());
  } else {
    Hasher hasher(alg_);
    hasher.Update(AsBytes(protocol_name));
    hasher.Final({h_.data(), hash_len_});
  }
  std::memcpy(ck_.data(), h_.data(), hash_len_);
  cipher_.InitializeKey({});
}

void SymmetricState::MixKey(ByteView input_key_material) {
  SecureBuffer temp_k(hash_len_);
  SecureBuffer new_ck(hash_len_);
  Hkdf(alg_, ck_.view(), input_key_material, new_ck.mutable_view(), temp_k.mutable_view(), {});
  ck_ = std::move(new_ck);
  cipher_.InitializeKey(temp_k.view().first(kKeyLen));  // truncated when HASHLEN is 64
}

void SymmetricState::MixHash(ByteView data) {
  Hasher hasher(alg_);
  hasher.Update(handshake_hash());
  hasher.Update(data);
  hasher.Final({h_.data(), hash_len_});
}

void SymmetricState::MixKeyAndHash(ByteView input_key_material) {
  SecureBuffer new_ck(hash_len_);
  SecureBuffer temp_h(hash_len_);
  SecureBuffer temp_k(hash_len_);
  Hkdf(alg_, ck_.view(), input_key_material, new_ck.mutable_view(), temp_h.mutable_view(),
       temp_k.mutable_view());
  ck_ = std::move(new_ck);
  MixHash(temp_h.view());
  cipher_.InitializeKey(temp_k.view().first(kKeyLen));
}

Status SymmetricState::EncryptAndHash(ByteView plaintext, Bytes* out) {
  const std::size_t offset = out->size();
  HAVEN_RETURN_IF_ERROR(cipher_.EncryptWithAd(handshake_hash(), plaintext, out));
  MixHash(ByteView(*out).subspan(offset));
  return Status::Ok();
}

Status SymmetricState::DecryptAndHash(ByteView ciphertext, Bytes* out) {
  HAVEN_RETURN_IF_ERROR(cipher_.DecryptWithAd(handshake_hash(), ciphertext, out));
  MixHash(ciphertext);
  return Status::Ok();
}

std::pair<CipherState, CipherState> SymmetricState::Split() {
  SecureBuffer k1(hash_len_);
  SecureBuffer k2(hash_len_);
  Hkdf(alg_, ck_.view(), {}, k1.mutable_view(), k2.mutable_view(), {});
  std::pair<CipherState, CipherState> out;
  out.first.InitializeKey(k1.view().first(kKeyLen));
  out.second.InitializeKey(k2.view().first(kKeyLen));
  return out;
}

}  // namespace haven::noise
