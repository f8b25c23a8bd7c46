#include "e2e/double_ratchet.h"

#include <sodium.h>

#include <array>
#include <cstring>

namespace haven::e2e {
namespace {

constexpr std::string_view kRootInfo = "haven/1 ratchet root";
constexpr std::string_view kMessageInfo = "haven/1 message";
constexpr std::size_t kKeyLen = 32;

SecureBuffer Copy(const SecureBuffer& b) { return SecureBuffer::CopyOf(b.view()); }

// KDF_RK: (root key, chain key) from the old root key and a DH output.
Status KdfRk(const SecureBuffer& rk, ByteView dh_out, SecureBuffer* new_rk, SecureBuffer* ck) {
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer out,
                         crypto::HkdfSha256(dh_out, rk.view(), AsBytes(kRootInfo), 2 * kKeyLen));
  *new_rk = SecureBuffer::CopyOf(out.view().first(kKeyLen));
  *ck = SecureBuffer::CopyOf(out.view().subspan(kKeyLen));
  return Status::Ok();
}

// KDF_CK in place: the message key into `mk`, and the chain key advanced.
// Per-message keys live on the stack and are zeroed by their owners.
using Key = std::array<std::uint8_t, kKeyLen>;
void KdfCkInPlace(MutableByteView ck, Key* mk) {
  static constexpr std::uint8_t kMessage = 0x01, kChain = 0x02;
  *mk = crypto::HmacSha256(ck, ByteView(&kMessage, 1));
  crypto::Sha256 next = crypto::HmacSha256(ck, ByteView(&kChain, 1));
  std::memcpy(ck.data(), next.data(), kKeyLen);
  sodium_memzero(next.data(), next.size());
}

SecureBuffer KdfCk(SecureBuffer* ck) {
  Key mk{};
  KdfCkInPlace(ck->mutable_view(), &mk);
  SecureBuffer out = SecureBuffer::CopyOf(mk);
  sodium_memzero(mk.data(), mk.size());
  return out;
}

// AEAD key (32) and nonce (24) from a message key: a key is used exactly once.
using Material = std::array<std::uint8_t, crypto::kAeadKeyLen + crypto::kXNonceLen>;
Status MessageKeyMaterial(ByteView mk, Material* out) {
  return crypto::HkdfSha256Into(mk, {}, AsBytes(kMessageInfo), *out);
}

// Wipes stack secrets when leaving a scope, whatever the path.
template <std::size_t N>
struct Wipe {
  std::array<std::uint8_t, N>& a;
  ~Wipe() { sodium_memzero(a.data(), a.size()); }
};

Bytes AeadAd(const Bytes& session_ad, ByteView version_and_header) {
  Bytes ad = session_ad;
  ad.insert(ad.end(), version_and_header.begin(), version_and_header.end());
  return ad;
}

}  // namespace

DhKeyPair DhKeyPair::Generate() {
  (void)EnsureSodium();
  DhKeyPair kp;
  kp.private_key = SecureBuffer::Random(kKeyLen);
  kp.public_key = crypto::X25519Base(kp.private_key.view());
  return kp;
}

DhKeyPair DhKeyPair::FromPrivate(ByteView private_key) {
  DhKeyPair kp;
  kp.private_key = SecureBuffer::CopyOf(private_key);
  kp.public_key = crypto::X25519Base(kp.private_key.view());
  return kp;
}

DhKeyPair DhKeyPair::Clone() const {
  DhKeyPair kp;
  kp.private_key = Copy(private_key);
  kp.public_key = public_key;
  return kp;
}

void RatchetHeader::AppendTo(Bytes* out) const {
  out->insert(out->end(), dh.begin(), dh.end());
  AppendBigEndian32(pn, out);
  AppendBigEndian32(n, out);
}

std::optional<RatchetHeader> RatchetHeader::Parse(ByteView in) {
  if (in.size() < kHeaderLen) return std::nullopt;
  RatchetHeader h;
  std::memcpy(h.dh.data(), in.data(), h.dh.size());
  h.pn = LoadBigEndian32(in.data() + 32);
  h.n = LoadBigEndian32(in.data() + 36);
  return h;
}

Bytes Pad(ByteView plaintext) {
  const std::size_t body = 4 + plaintext.size();
  const std::size_t padded = (body + kPadBucket - 1) / kPadBucket * kPadBucket;
  Bytes out(padded, 0);
  StoreBigEndian32(static_cast<std::uint32_t>(plaintext.size()), out.data());
  if (!plaintext.empty()) std::memcpy(out.data() + 4, plaintext.data(), plaintext.size());
  return out;
}

Result<SecureBuffer> Unpad(ByteView padded) {
  if (padded.size() < 4 || padded.size() % kPadBucket != 0) {
    return Status::DataLoss("padding malformed");
  }
  const std::uint32_t len = LoadBigEndian32(padded.data());
  if (len > padded.size() - 4) return Status::DataLoss("padding malformed");
  return SecureBuffer::CopyOf(padded.subspan(4, len));
}

DoubleRatchet::State DoubleRatchet::State::Clone() const {
  State s;
  s.dhs = dhs.Clone();
  s.dhr = dhr;
  s.rk = Copy(rk);
  s.cks = Copy(cks);
  s.ckr = Copy(ckr);
  s.ns = ns;
  s.nr = nr;
  s.pn = pn;
  s.steps = steps;
  s.ad = ad;
  return s;
}

Result<DoubleRatchet> DoubleRatchet::InitInitiator(ByteView shared_secret,
                                                   const crypto::X25519Public& remote_ratchet,
                                                   Bytes associated_data, RatchetLimits limits,
                                                   KeyGenerator generate) {
  if (shared_secret.size() != kKeyLen) return Status::InvalidArgument("shared secret is 32 bytes");
  State s;
  s.dhs = generate();
  s.dhr = remote_ratchet;
  s.ad = std::move(associated_data);
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh, crypto::X25519(s.dhs.private_key.view(), remote_ratchet));
  HAVEN_RETURN_IF_ERROR(KdfRk(SecureBuffer::CopyOf(shared_secret), dh.view(), &s.rk, &s.cks));
  return DoubleRatchet(std::move(s), limits, std::move(generate));
}

Result<DoubleRatchet> DoubleRatchet::InitResponder(ByteView shared_secret, DhKeyPair own_ratchet,
                                                   Bytes associated_data, RatchetLimits limits,
                                                   KeyGenerator generate) {
  if (shared_secret.size() != kKeyLen) return Status::InvalidArgument("shared secret is 32 bytes");
  State s;
  s.dhs = std::move(own_ratchet);
  s.rk = SecureBuffer::CopyOf(shared_secret);
  s.ad = std::move(associated_data);
  return DoubleRatchet(std::move(s), limits, std::move(generate));
}

Result<Bytes> DoubleRatchet::Encrypt(ByteView plaintext) {
  if (plaintext.size() > limits_.max_plaintext) {
    return Status::InvalidArgument("plaintext above the configured limit");
  }
  if (state_.cks.empty()) {
    return Status::FailedPrecondition("no sending chain yet: the responder speaks after hearing");
  }
  Key mk{};
  Wipe<kKeyLen> wipe_mk{mk};
  KdfCkInPlace(state_.cks.mutable_view(), &mk);
  RatchetHeader header{state_.dhs.public_key, state_.pn, state_.ns};
  ++state_.ns;
  Bytes out;
  out.push_back(kMessageVersion);
  header.AppendTo(&out);
  const Bytes ad = AeadAd(state_.ad, ByteView(out));
  Material material{};
  Wipe<material.size()> wipe_material{material};
  HAVEN_RETURN_IF_ERROR(MessageKeyMaterial(mk, &material));
  Bytes padded = Pad(plaintext);
  const Status st = crypto::AeadSeal(ByteView(material).first(crypto::kAeadKeyLen),
                                     ByteView(material).subspan(crypto::kAeadKeyLen), ad, padded,
                                     &out);
  SecureZero(padded);  // plaintext is zeroed before release
  if (!st.ok()) return st;
  return out;
}

Status DoubleRatchet::SkipMessageKeys(State& s, std::uint32_t until, FreshKeys* fresh) const {
  if (s.ckr.empty()) return Status::Ok();
  if (until > s.nr && until - s.nr > limits_.max_skip) {
    return Status::ResourceExhausted("too many skipped messages in one chain");
  }
  while (s.nr < until) {
    fresh->emplace_back(SkippedKey{*s.dhr, s.nr}, Skipped{KdfCk(&s.ckr), s.steps});
    ++s.nr;
  }
  return Status::Ok();
}

void DoubleRatchet::Remember(FreshKeys fresh) {
  for (auto& [id, sk] : fresh) {
    if (skipped_.keys.emplace(id, std::move(sk)).second) skipped_.order.push_back(id);
  }
  while (skipped_.keys.size() > limits_.max_stored) {  // the oldest goes first
    skipped_.keys.erase(skipped_.order.front());
    skipped_.order.pop_front();
  }
  while (!skipped_.order.empty()) {
    auto it = skipped_.keys.find(skipped_.order.front());
    if (it != skipped_.keys.end() && state_.steps - it->second.step <= limits_.max_age_steps) break;
    if (it != skipped_.keys.end()) skipped_.keys.erase(it);
    skipped_.order.pop_front();
  }
}

Status DoubleRatchet::DhRatchet(State& s, const RatchetHeader& header) const {
  s.pn = s.ns;
  s.ns = 0;
  s.nr = 0;
  s.dhr = header.dh;
  ++s.steps;
  {
    HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh, crypto::X25519(s.dhs.private_key.view(), header.dh));
    SecureBuffer rk;
    HAVEN_RETURN_IF_ERROR(KdfRk(s.rk, dh.view(), &rk, &s.ckr));
    s.rk = std::move(rk);
  }
  s.dhs = generate_();
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer dh, crypto::X25519(s.dhs.private_key.view(), header.dh));
  SecureBuffer rk;
  HAVEN_RETURN_IF_ERROR(KdfRk(s.rk, dh.view(), &rk, &s.cks));
  s.rk = std::move(rk);
  return Status::Ok();
}

Result<SecureBuffer> DoubleRatchet::Decrypt(ByteView message) {
  if (message.size() < kMessageOverhead || message[0] != kMessageVersion) {
    return Status::DataLoss("not a haven/1 ratchet message");
  }
  const auto header = RatchetHeader::Parse(message.subspan(1));
  const ByteView prefix = message.first(1 + kHeaderLen);
  const ByteView body = message.subspan(1 + kHeaderLen);
  const Bytes ad = AeadAd(state_.ad, prefix);

  auto open = [&](ByteView mk) -> Result<SecureBuffer> {
    Material material{};
    Wipe<material.size()> wipe_material{material};
    HAVEN_RETURN_IF_ERROR(MessageKeyMaterial(mk, &material));
    Bytes padded;
    padded.reserve(body.size());
    Status st = crypto::AeadOpen(ByteView(material).first(crypto::kAeadKeyLen),
                                 ByteView(material).subspan(crypto::kAeadKeyLen), ad, body, &padded);
    if (!st.ok()) return st;
    auto plain = Unpad(padded);
    SecureZero(padded);
    return plain;
  };

  // A key skipped earlier: used once, then gone (so a replay fails).
  if (auto it = skipped_.keys.find({header->dh, header->n}); it != skipped_.keys.end()) {
    HAVEN_ASSIGN_OR_RETURN(SecureBuffer plain, open(it->second.key.view()));
    skipped_.keys.erase(it);  // its entry in `order` is skipped over later
    return plain;
  }

  const bool same_chain = state_.dhr && header->dh == *state_.dhr && !state_.ckr.empty();
  if (same_chain) {
    // The common case: no DH step. Work on a stack copy of the chain key and
    // commit it only if the message authenticates.
    if (header->n < state_.nr) return Status::DataLoss("message replayed or its key expired");
    if (header->n - state_.nr > limits_.max_skip) {
      return Status::ResourceExhausted("too many skipped messages in one chain");
    }
    Key ck{}, mk{};
    Wipe<kKeyLen> wipe_ck{ck}, wipe_mk{mk};
    std::memcpy(ck.data(), state_.ckr.data(), kKeyLen);
    FreshKeys fresh;
    for (std::uint32_t n = state_.nr; n < header->n; ++n) {
      KdfCkInPlace(ck, &mk);
      fresh.emplace_back(SkippedKey{header->dh, n}, Skipped{SecureBuffer::CopyOf(mk), state_.steps});
    }
    KdfCkInPlace(ck, &mk);
    HAVEN_ASSIGN_OR_RETURN(SecureBuffer plain, open(mk));
    std::memcpy(state_.ckr.data(), ck.data(), kKeyLen);
    state_.nr = header->n + 1;
    Remember(std::move(fresh));
    return plain;
  }

  // A new ratchet key from the peer: the DH step runs on a copy, committed
  // only if the message authenticates.
  State trial = state_.Clone();
  FreshKeys fresh;
  HAVEN_RETURN_IF_ERROR(SkipMessageKeys(trial, header->pn, &fresh));
  HAVEN_RETURN_IF_ERROR(DhRatchet(trial, *header));
  HAVEN_RETURN_IF_ERROR(SkipMessageKeys(trial, header->n, &fresh));
  SecureBuffer mk = KdfCk(&trial.ckr);
  ++trial.nr;
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer plain, open(mk.view()));
  state_ = std::move(trial);
  Remember(std::move(fresh));
  return plain;
}

SecureBuffer DoubleRatchet::Serialize() const {
  // version 1 | dhs priv | dhr flag | dhr | rk | cks flag | cks | ckr flag | ckr |
  // ns | nr | pn | steps(8) | ad len | ad | count | (dh, n, step(8), key)*
  Bytes out;
  // Reserved up front: a reallocation would leave copies of the keys in
  // freed memory. The bound covers every field below.
  out.reserve(256 + state_.ad.size() + skipped_.order.size() * (kKeyLen + 4 + 8 + kKeyLen));
  auto put_key = [&out](const SecureBuffer& k) {
    out.push_back(k.empty() ? 0 : 1);
    if (!k.empty()) out.insert(out.end(), k.data(), k.data() + k.size());
  };
  auto put_u64 = [&out](std::uint64_t v) {
    AppendBigEndian32(static_cast<std::uint32_t>(v >> 32), &out);
    AppendBigEndian32(static_cast<std::uint32_t>(v), &out);
  };
  out.push_back(1);
  out.insert(out.end(), state_.dhs.private_key.data(), state_.dhs.private_key.data() + kKeyLen);
  out.push_back(state_.dhr ? 1 : 0);
  if (state_.dhr) out.insert(out.end(), state_.dhr->begin(), state_.dhr->end());
  put_key(state_.rk);
  put_key(state_.cks);
  put_key(state_.ckr);
  AppendBigEndian32(state_.ns, &out);
  AppendBigEndian32(state_.nr, &out);
  AppendBigEndian32(state_.pn, &out);
  put_u64(state_.steps);
  AppendBigEndian32(static_cast<std::uint32_t>(state_.ad.size()), &out);
  out.insert(out.end(), state_.ad.begin(), state_.ad.end());
  std::vector<const std::pair<const SkippedKey, Skipped>*> live;
  for (const SkippedKey& id : skipped_.order) {
    auto it = skipped_.keys.find(id);
    if (it != skipped_.keys.end()) live.push_back(&*it);
  }
  AppendBigEndian32(static_cast<std::uint32_t>(live.size()), &out);
  for (const auto* entry : live) {
    const SkippedKey& id = entry->first;
    const Skipped& sk = entry->second;
    out.insert(out.end(), id.first.begin(), id.first.end());
    AppendBigEndian32(id.second, &out);
    put_u64(sk.step);
    out.insert(out.end(), sk.key.data(), sk.key.data() + kKeyLen);
  }
  SecureBuffer result = SecureBuffer::CopyOf(out);
  SecureZero(out);
  return result;
}

Result<DoubleRatchet> DoubleRatchet::Deserialize(ByteView in, RatchetLimits limits,
                                                 KeyGenerator generate) {
  const Status bad = Status::DataLoss("ratchet state malformed");
  std::size_t pos = 0;
  auto take = [&](std::size_t n) -> std::optional<ByteView> {
    if (in.size() - pos < n) return std::nullopt;
    ByteView v = in.subspan(pos, n);
    pos += n;
    return v;
  };
  auto u32 = [&]() -> std::optional<std::uint32_t> {
    auto v = take(4);
    return v ? std::optional<std::uint32_t>(LoadBigEndian32(v->data())) : std::nullopt;
  };
  auto u64 = [&]() -> std::optional<std::uint64_t> {
    auto hi = u32(), lo = u32();
    if (!hi || !lo) return std::nullopt;
    return (static_cast<std::uint64_t>(*hi) << 32) | *lo;
  };
  auto key = [&](SecureBuffer* out) -> bool {
    auto flag = take(1);
    if (!flag || (*flag)[0] > 1) return false;
    if ((*flag)[0] == 0) return true;
    auto k = take(kKeyLen);
    if (!k) return false;
    *out = SecureBuffer::CopyOf(*k);
    return true;
  };
  State s;
  auto version = take(1);
  auto dhs = take(kKeyLen);
  auto has_dhr = take(1);
  if (!version || (*version)[0] != 1 || !dhs || !has_dhr || (*has_dhr)[0] > 1) return bad;
  s.dhs = DhKeyPair::FromPrivate(*dhs);
  if ((*has_dhr)[0] == 1) {
    auto dhr = take(kKeyLen);
    if (!dhr) return bad;
    crypto::X25519Public pub{};
    std::memcpy(pub.data(), dhr->data(), pub.size());
    s.dhr = pub;
  }
  if (!key(&s.rk) || !key(&s.cks) || !key(&s.ckr) || s.rk.empty()) return bad;
  auto ns = u32(), nr = u32(), pn = u32();
  auto steps = u64();
  auto ad_len = u32();
  if (!ns || !nr || !pn || !steps || !ad_len) return bad;
  s.ns = *ns;
  s.nr = *nr;
  s.pn = *pn;
  s.steps = *steps;
  auto ad = take(*ad_len);
  auto count = u32();
  if (!ad || !count || *count > limits.max_stored) return bad;
  s.ad.assign(ad->begin(), ad->end());
  SkippedStore store;
  for (std::uint32_t i = 0; i < *count; ++i) {
    auto dh = take(kKeyLen);
    auto n = u32();
    auto step = u64();
    auto k = take(kKeyLen);
    if (!dh || !n || !step || !k) return bad;
    SkippedKey id{};
    std::memcpy(id.first.data(), dh->data(), kKeyLen);
    id.second = *n;
    if (!store.keys.emplace(id, Skipped{SecureBuffer::CopyOf(*k), *step}).second) return bad;
    store.order.push_back(id);
  }
  if (pos != in.size()) return bad;
  DoubleRatchet r(std::move(s), limits, std::move(generate));
  r.skipped_ = std::move(store);
  return r;
}

}  // namespace haven::e2e
