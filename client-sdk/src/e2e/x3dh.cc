#include "e2e/x3dh.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace haven::e2e {
namespace {

constexpr std::string_view kSignedPrekeyLabel = "haven/1 signed prekey";
constexpr std::string_view kX3dhInfo = "haven/1 X3DH";
constexpr std::string_view kAdLabel = "haven/1";
constexpr int kFingerprintIterations = 5200;

Bytes SignedPrekeyMessage(const crypto::X25519Public& key) {
  Bytes m(kSignedPrekeyLabel.begin(), kSignedPrekeyLabel.end());
  m.insert(m.end(), key.begin(), key.end());
  return m;
}

Result<SecureBuffer> DeriveSk(std::initializer_list<const SecureBuffer*> dhs) {
  Bytes ikm;
  ikm.reserve(32 + 32 * dhs.size());  // no reallocation: no stray copies of DH outputs
  ikm.assign(32, 0xff);
  for (const SecureBuffer* dh : dhs) ikm.insert(ikm.end(), dh->data(), dh->data() + dh->size());
  auto sk = crypto::HkdfSha256(ikm, {}, AsBytes(kX3dhInfo), 32);
  SecureZero(ikm);
  return sk;
}

Bytes AssociatedData(const IdentityPublic& initiator, const IdentityPublic& responder) {
  Bytes ad(kAdLabel.begin(), kAdLabel.end());
  const Bytes a = initiator.Encode(), b = responder.Encode();
  ad.insert(ad.end(), a.begin(), a.end());
  ad.insert(ad.end(), b.begin(), b.end());
  return ad;
}

// 30 digits for one identity: iterated SHA-512, six 5-byte chunks, each
// reduced to 5 digits.
std::string Fingerprint(const IdentityPublic& id) {
  Bytes input = {0x00, 0x01};
  const Bytes enc = id.Encode();
  input.insert(input.end(), enc.begin(), enc.end());
  std::array<std::uint8_t, crypto_hash_sha512_BYTES> h{};
  crypto_hash_sha512(h.data(), input.data(), input.size());
  for (int i = 1; i < kFingerprintIterations; ++i) {
    crypto_hash_sha512_state st;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, h.data(), h.size());
    crypto_hash_sha512_update(&st, enc.data(), enc.size());
    crypto_hash_sha512_final(&st, h.data());
  }
  std::string digits;
  for (int chunk = 0; chunk < 6; ++chunk) {
    std::uint64_t v = 0;
    for (int b = 0; b < 5; ++b) v = (v << 8) | h[static_cast<std::size_t>(chunk * 5 + b)];
    char buf[6];
    std::snprintf(buf, sizeof buf, "%05u", static_cast<unsigned>(v % 100000));
    digits += buf;
  }
  return digits;
}

}  // namespace

Bytes IdentityPublic::Encode() const {
  Bytes out(dh.begin(), dh.end());
  out.insert(out.end(), signing.begin(), signing.end());
  return out;
}

std::optional<IdentityPublic> IdentityPublic::Decode(ByteView in) {
  if (in.size() != 64) return std::nullopt;
  IdentityPublic id;
  std::memcpy(id.dh.data(), in.data(), 32);
  std::memcpy(id.signing.data(), in.data() + 32, 32);
  return id;
}

IdentityKey IdentityKey::Generate() {
  return {DhKeyPair::Generate(), crypto::SigningKeyPair::Generate()};
}

SignedPrekey SignedPrekey::Make(const IdentityKey& identity, std::uint32_t id) {
  SignedPrekey spk;
  spk.id = id;
  spk.key = DhKeyPair::Generate();
  spk.signature = crypto::Sign(identity.signing, SignedPrekeyMessage(spk.key.public_key));
  return spk;
}

Bytes InitialMessage::Encode() const {
  Bytes out = initiator.Encode();
  out.insert(out.end(), ephemeral.begin(), ephemeral.end());
  AppendBigEndian32(signed_prekey_id, &out);
  out.push_back(one_time_prekey_id ? 1 : 0);
  if (one_time_prekey_id) AppendBigEndian32(*one_time_prekey_id, &out);
  return out;
}

std::optional<InitialMessage> InitialMessage::Decode(ByteView in) {
  if (in.size() != 101 && in.size() != 105) return std::nullopt;
  InitialMessage m;
  auto id = IdentityPublic::Decode(in.first(64));
  if (!id) return std::nullopt;
  m.initiator = *id;
  std::memcpy(m.ephemeral.data(), in.data() + 64, 32);
  m.signed_prekey_id = LoadBigEndian32(in.data() + 96);
  const std::uint8_t flag = in[100];
  if (flag > 1 || (flag == 1) != (in.size() == 105)) return std::nullopt;
  if (flag == 1) m.one_time_prekey_id = LoadBigEndian32(in.data() + 101);
  return m;
}

Result<Initiated> InitiateX3dh(const IdentityKey& self, const PrekeyBundle& bundle,
                               DoubleRatchet::KeyGenerator generate) {
  if (!crypto::Verify(bundle.identity.signing, SignedPrekeyMessage(bundle.signed_prekey),
                      bundle.signature)) {
    return Status::DataLoss("the counsellor's signed prekey does not verify: refusing the session");
  }
  const DhKeyPair ek = generate();
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh1, crypto::X25519(self.dh.private_key.view(), bundle.signed_prekey));
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh2, crypto::X25519(ek.private_key.view(), bundle.identity.dh));
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh3, crypto::X25519(ek.private_key.view(), bundle.signed_prekey));
  Initiated out;
  if (bundle.one_time_prekey) {
    HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh4,
                           crypto::X25519(ek.private_key.view(), bundle.one_time_prekey->second));
    HAVEN_ASSIGN_OR_RETURN(out.secrets.shared_secret, DeriveSk({&dh1, &dh2, &dh3, &dh4}));
    out.message.one_time_prekey_id = bundle.one_time_prekey->first;
  } else {
    HAVEN_ASSIGN_OR_RETURN(out.secrets.shared_secret, DeriveSk({&dh1, &dh2, &dh3}));
  }
  out.secrets.associated_data = AssociatedData(self.public_key(), bundle.identity);
  out.message.initiator = self.public_key();
  out.message.ephemeral = ek.public_key;
  out.message.signed_prekey_id = bundle.signed_prekey_id;
  return out;
}

Result<SessionSecrets> RespondX3dh(const IdentityKey& self, const SignedPrekey& signed_prekey,
                                   const OneTimePrekey* one_time, const InitialMessage& message) {
  if (message.signed_prekey_id != signed_prekey.id) {
    return Status::FailedPrecondition("initial message names another signed prekey");
  }
  if (message.one_time_prekey_id.has_value() !=
      (one_time != nullptr && one_time->id == message.one_time_prekey_id.value_or(~0u))) {
    return Status::FailedPrecondition("initial message names a one-time prekey not supplied");
  }
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh1,
                         crypto::X25519(signed_prekey.key.private_key.view(), message.initiator.dh));
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh2, crypto::X25519(self.dh.private_key.view(), message.ephemeral));
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh3,
                         crypto::X25519(signed_prekey.key.private_key.view(), message.ephemeral));
  SessionSecrets out;
  if (message.one_time_prekey_id) {
    HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh4,
                           crypto::X25519(one_time->key.private_key.view(), message.ephemeral));
    HAVEN_ASSIGN_OR_RETURN(out.shared_secret, DeriveSk({&dh1, &dh2, &dh3, &dh4}));
  } else {
    HAVEN_ASSIGN_OR_RETURN(out.shared_secret, DeriveSk({&dh1, &dh2, &dh3}));
  }
  out.associated_data = AssociatedData(message.initiator, self.public_key());
  return out;
}

std::string SafetyNumber(const IdentityPublic& a, const IdentityPublic& b) {
  std::string fa = Fingerprint(a), fb = Fingerprint(b);
  if (fb < fa) std::swap(fa, fb);
  const std::string digits = fa + fb;
  std::string out;
  for (std::size_t i = 0; i < digits.size(); i += 5) {
    if (i > 0) out += ' ';
    out += digits.substr(i, 5);
  }
  return out;
}

}  // namespace haven::e2e
