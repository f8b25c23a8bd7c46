#include "haven/noise/primitives.h"

#include <sodium.h>

#include <cstring>

namespace haven::noise {
namespace {

static_assert(sizeof(crypto_hash_sha512_state) <= 512);
static_assert(sizeof(crypto_generichash_blake2b_state) <= 512);

void MakeNonce(std::uint64_t n, std::uint8_t out[crypto_aead_chacha20poly1305_ietf_NPUBBYTES]) {
  std::memset(out, 0, crypto_aead_chacha20poly1305_ietf_NPUBBYTES);
  for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
}

}  // namespace

KeyPair KeyPair::Generate() {
  KeyPair kp;
  kp.private_key = SecureBuffer::Random(kDhLen);
  crypto_scalarmult_base(kp.public_key.data(), kp.private_key.data());
  return kp;
}

Result<KeyPair> KeyPair::FromPrivateKey(ByteView private_key) {
  if (private_key.size() != kDhLen) {
    return Status::InvalidArgument("an X25519 private key is exactly 32 bytes");
  }
  HAVEN_RETURN_IF_ERROR(EnsureSodium());
  KeyPair kp;
  kp.private_key = SecureBuffer::CopyOf(private_key);
  crypto_scalarmult_base(kp.public_key.data(), kp.private_key.data());
  return kp;
}

KeyPair KeyPair::Clone() const {
  KeyPair kp;
  kp.private_key = SecureBuffer::CopyOf(private_key.view());
  kp.public_key = public_key;
  return kp;
}

Status Dh(const KeyPair& local, const PublicKey& remote, MutableByteView out) {
  if (local.private_key.size() != kDhLen || out.size() != kDhLen) {
    return Status::FailedPrecondition("DH needs a 32-byte private key");
  }
  if (crypto_scalarmult(out.data(), local.private_key.data(), remote.data()) != 0) {
    SecureZero(out);
    return Status::DataLoss("peer sent a low-order X25519 public key");
  }
  return Status::Ok();
}

std::string_view HashName(HashAlgorithm alg) {
  switch (alg) {
    case HashAlgorithm::kSha256: return "SHA256";
    case HashAlgorithm::kSha512: return "SHA512";
    case HashAlgorithm::kBlake2b: return "BLAKE2b";
  }
  return "?";
}

std::size_t HashLen(HashAlgorithm alg) { return alg == HashAlgorithm::kSha256 ? 32 : 64; }
std::size_t BlockLen(HashAlgorithm alg) { return alg == HashAlgorithm::kSha256 ? 64 : 128; }

Hasher::Hasher(HashAlgorithm alg) : alg_(alg) {
  switch (alg_) {
    case HashAlgorithm::kSha256:
      crypto_hash_sha256_init(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()));
      break;
    case HashAlgorithm::kSha512:
      crypto_hash_sha512_init(reinterpret_cast<crypto_hash_sha512_state*>(state_.data()));
      break;
    case HashAlgorithm::kBlake2b:
      crypto_generichash_blake2b_init(
          reinterpret_cast<crypto_generichash_blake2b_state*>(state_.data()), nullptr, 0, 64);
      break;
  }
}

Hasher::~Hasher() { sodium_memzero(state_.data(), state_.size()); }

void Hasher::Update(ByteView data) {
  switch (alg_) {
    case HashAlgorithm::kSha256:
      crypto_hash_sha256_update(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()),
                                data.data(), data.size());
      break;
    case HashAlgorithm::kSha512:
      crypto_hash_sha512_update(reinterpret_cast<crypto_hash_sha512_state*>(state_.data()),
                                data.data(), data.size());
      break;
    case HashAlgorithm::kBlake2b:
      crypto_generichash_blake2b_update(
          reinterpret_cast<crypto_generichash_blake2b_state*>(state_.data()), data.data(),
          data.size());
      break;
  }
}

void Hasher::Final(MutableByteView out) {
  switch (alg_) {
    case HashAlgorithm::kSha256:
      crypto_hash_sha256_final(reinterpret_cast<crypto_hash_sha256_state*>(state_.data()),
                               out.data());
      break;
    case HashAlgorithm::kSha512:
      crypto_hash_sha512_final(reinterpret_cast<crypto_hash_sha512_state*>(state_.data()),
                               out.data());
      break;
    case HashAlgorithm::kBlake2b:
      crypto_generichash_blake2b_final(
          reinterpret_cast<crypto_generichash_blake2b_state*>(state_.data()), out.data(), 64);
      break;
  }
}

void Hmac(HashAlgorithm alg, ByteView key, ByteView data, MutableByteView out) {
  const std::size_t block_len = BlockLen(alg);
  const std::size_t hash_len = HashLen(alg);
  std::array<std::uint8_t, 128> block{};  // key, zero-padded to the block length
  if (key.size() > block_len) {
    Hasher h(alg);
    h.Update(key);
    h.Final({block.data(), hash_len});
  } else if (!key.empty()) {
    std::memcpy(block.data(), key.data(), key.size());
  }

  std::array<std::uint8_t, 128> pad{};
  for (std::size_t i = 0; i < block_len; ++i) pad[i] = block[i] ^ 0x36;
  std::array<std::uint8_t, kMaxHashLen> inner{};
  {
    Hasher h(alg);
    h.Update({pad.data(), block_len});
    h.Update(data);
    h.Final({inner.data(), hash_len});
  }
  for (std::size_t i = 0; i < block_len; ++i) pad[i] = block[i] ^ 0x5c;
  {
    Hasher h(alg);
    h.Update({pad.data(), block_len});
    h.Update({inner.data(), hash_len});
    h.Final(out.first(hash_len));
  }
  sodium_memzero(block.data(), block.size());
  sodium_memzero(pad.data(), pad.size());
  sodium_memzero(inner.data(), inner.size());
}

void Hkdf(HashAlgorithm alg, ByteView chaining_key, ByteView ikm, MutableByteView out1,
          MutableByteView out2, MutableByteView out3) {
  const std::size_t hash_len = HashLen(alg);
  std::array<std::uint8_t, kMaxHashLen> temp_key{};
  std::array<std::uint8_t, kMaxHashLen + 1> input{};
  Hmac(alg, chaining_key, ikm, {temp_key.data(), hash_len});
  const ByteView tk{temp_key.data(), hash_len};

  input[0] = 0x01;
  Hmac(alg, tk, {input.data(), 1}, out1);
  std::memcpy(input.data(), out1.data(), hash_len);
  input[hash_len] = 0x02;
  Hmac(alg, tk, {input.data(), hash_len + 1}, out2);
  if (!out3.empty()) {
    std::memcpy(input.data(), out2.data(), hash_len);
    input[hash_len] = 0x03;
    Hmac(alg, tk, {input.data(), hash_len + 1}, out3);
  }
  sodium_memzero(temp_key.data(), temp_key.size());
  sodium_memzero(input.data(), input.size());
}

void ChaChaPolyEncrypt(ByteView key, std::uint64_t nonce, ByteView ad, ByteView plaintext,
                       Bytes* out) {
  std::uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
  MakeNonce(nonce, npub);
  const std::size_t offset = out->size();
  out->resize(offset + plaintext.size() + kTagLen);
  unsigned long long written = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out->data() + offset, &written, plaintext.data(),
                                            plaintext.size(), ad.data(), ad.size(), nullptr,
                                            npub, key.data());
}

Status ChaChaPolyDecrypt(ByteView key, std::uint64_t nonce, ByteView ad, ByteView ciphertext,
                         Bytes* out) {
  if (ciphertext.size() < kTagLen) return Status::DataLoss("ciphertext shorter than its tag");
  std::uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
  MakeNonce(nonce, npub);
  const std::size_t offset = out->size();
  out->resize(offset + ciphertext.size() - kTagLen);
  unsigned long long written = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out->data() + offset, &written, nullptr,
                                                ciphertext.data(), ciphertext.size(), ad.data(),
                                                ad.size(), npub, key.data()) != 0) {
    out->resize(offset);
    return Status::DataLoss("message failed authentication");
  }
  return Status::Ok();
}

}  // namespace haven::noise
