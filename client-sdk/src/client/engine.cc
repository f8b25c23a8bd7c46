#include "client/engine.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "e2e/envelope.h"
#include "e2e/sealing.h"
#include "workflow/records.h"

namespace haven::client {
namespace {

using sdk::Code;
using sdk::ConversationState;
using sdk::EventType;

// Inside the ratchet: one kind byte, then the body (docs/protocol.md 20.6).
constexpr std::uint8_t kPlainText = 0x01;
constexpr std::uint8_t kPlainHello = 0x02;
constexpr std::uint8_t kPlainResourceCard = 0x03;

constexpr std::size_t kInitialOneTimePrekeys = 20;
constexpr std::size_t kMoreOneTimePrekeys = 20;
constexpr std::size_t kMaxEarlyEnvelopes = 256;
constexpr std::size_t kMaxLanguage = 35;
constexpr std::size_t kSendWindow = 32;


ConversationState FromWire(v1::ConversationState s) {
  switch (s) {
    case v1::CONVERSATION_STATE_QUEUED: return ConversationState::kWaiting;
    case v1::CONVERSATION_STATE_ACTIVE: return ConversationState::kActive;
    case v1::CONVERSATION_STATE_CONNECTION_LOST: return ConversationState::kConnectionLost;
    case v1::CONVERSATION_STATE_CLOSED_BY_SURVIVOR: return ConversationState::kClosedBySurvivor;
    case v1::CONVERSATION_STATE_CLOSED_BY_COUNSELLOR:
      return ConversationState::kClosedByCounsellor;
    case v1::CONVERSATION_STATE_SURVIVOR_LEFT_QUICKLY:
      return ConversationState::kSurvivorLeftQuickly;
    default: return ConversationState::kWaiting;
  }
}

bool Ended(ConversationState s) {
  return s == ConversationState::kClosedBySurvivor || s == ConversationState::kClosedByCounsellor ||
         s == ConversationState::kSurvivorLeftQuickly || s == ConversationState::kTransferred ||
         s == ConversationState::kLeft;
}

// Claimed by a counsellor and not over: the end-to-end sessions can be set up.
bool Claimed(ConversationState s) {
  return s == ConversationState::kActive || s == ConversationState::kConnectionLost;
}

sdk::Role ToSdk(v1::Role r) { return static_cast<sdk::Role>(r); }  // the same numbers
static_assert(static_cast<int>(sdk::Role::kSupervisor) == v1::ROLE_SUPERVISOR);

// The stored form of a conversation (Persist); an unknown one is refused.
constexpr std::uint8_t kConversationFormat = 2;

sdk::Colleague FromWire(const v1::CounsellorList::Entry& e) {
  sdk::Colleague c;
  c.id = ToHex(AsBytes(e.counsellor_id()));
  c.role = e.role() == v1::ROLE_SUPERVISOR ? sdk::Role::kSupervisor : sdk::Role::kCounsellor;
  c.presence = e.presence() == v1::PRESENCE_BUSY   ? sdk::Presence::kBusy
               : e.presence() == v1::PRESENCE_AWAY ? sdk::Presence::kAway
                                                   : sdk::Presence::kAvailable;
  c.languages.assign(e.languages().begin(), e.languages().end());
  c.active_conversations = e.active_conversations();
  c.is_self = e.is_you();
  return c;
}

std::string RefusedMessage(const v1::Error& e) {
  return "the server refused: " + std::string(v1::ErrorCode_Name(e.code()));
}

// --- a small length-prefixed reader and writer for what the store keeps ---
struct Reader {
  ByteView in;
  bool ok = true;
  ByteView Take(std::size_t n) {
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    ByteView r = in.first(n);
    in = in.subspan(n);
    return r;
  }
  std::uint32_t U32() {
    ByteView b = Take(4);
    return ok ? LoadBigEndian32(b.data()) : 0;
  }
  std::uint64_t U64() {
    const std::uint64_t hi = U32();
    return (hi << 32) | U32();
  }
  ByteView Bytes_() { return Take(U32()); }
  std::uint8_t U8() {
    ByteView b = Take(1);
    return ok ? b[0] : 0;
  }
};

// Writes into a buffer sized beforehand (guarded memory: no reallocation
// may leave a copy of a key behind).
struct Writer {
  std::uint8_t* p;
  void Put(ByteView b) {
    if (!b.empty()) std::memcpy(p, b.data(), b.size());
    p += b.size();
  }
  void U8(std::uint8_t v) { *p++ = v; }
  void U32(std::size_t v) {
    StoreBigEndian32(static_cast<std::uint32_t>(v), p);
    p += 4;
  }
  void U64(std::uint64_t v) {
    U32(static_cast<std::size_t>(v >> 32));
    U32(static_cast<std::size_t>(v & 0xFFFFFFFFu));
  }
  void Bytes_(ByteView b) {
    U32(b.size());
    Put(b);
  }
};

e2e::IdentityKey IdentityFromSeeds(ByteView dh_private, ByteView signing_seed) {
  e2e::IdentityKey id;
  id.dh = e2e::DhKeyPair::FromPrivate(dh_private);
  id.signing.secret = SecureBuffer(crypto_sign_SECRETKEYBYTES);
  crypto_sign_seed_keypair(id.signing.public_key.data(), id.signing.secret.data(),
                           signing_seed.data());
  return id;
}

}  // namespace

PendingEvent::~PendingEvent() {
  if (!card) return;
  for (std::string* f : {&card->service, &card->name, &card->offers, &card->contact, &card->region}) {
    f->resize(f->capacity());  // the whole buffer, short-string storage included
    SecureZero({reinterpret_cast<std::uint8_t*>(f->data()), f->size()});
  }
}

// ---------------------------------------------------------------- DeviceKeys

DeviceKeys DeviceKeys::Generate() {
  DeviceKeys k;
  k.transport = noise::KeyPair::Generate();
  k.identity = e2e::IdentityKey::Generate();
  return k;
}

Result<DeviceKeys> DeviceKeys::FromResumptionSecret(ByteView secret) {
  if (secret.size() != kResumptionSecretLen) {
    return Status::InvalidArgument("a resumption secret is 20 bytes");
  }
  DeviceKeys k;
  SecureBuffer transport(32), dh(32), seed(32);
  const Bytes no_salt;
  HAVEN_RETURN_IF_ERROR(crypto::HkdfSha256Into(secret, no_salt,
                                               AsBytes("haven/1 resume transport"),
                                               transport.mutable_view()));
  HAVEN_RETURN_IF_ERROR(crypto::HkdfSha256Into(secret, no_salt,
                                               AsBytes("haven/1 resume identity dh"),
                                               dh.mutable_view()));
  HAVEN_RETURN_IF_ERROR(crypto::HkdfSha256Into(secret, no_salt,
                                               AsBytes("haven/1 resume identity signing"),
                                               seed.mutable_view()));
  HAVEN_ASSIGN_OR_RETURN(k.transport, noise::KeyPair::FromPrivateKey(transport.view()));
  k.identity = IdentityFromSeeds(dh.view(), seed.view());
  return k;
}

SecureBuffer DeviceKeys::Serialize() const {
  // transport(32) dh(32) signing seed(32) next_id(4) published(1)
  // nspk(4) { id(4) private(32) signature(64) }* nopk(4) { id(4) private(32) }*
  const std::size_t size = 32 * 3 + 4 + 1 + 4 + signed_prekeys.size() * 100 + 4 +
                           one_time_prekeys.size() * 36;
  SecureBuffer out(size);
  std::uint8_t* p = out.data();
  auto put = [&p](ByteView b) {
    std::memcpy(p, b.data(), b.size());
    p += b.size();
  };
  auto put32 = [&p](std::uint32_t v) {
    StoreBigEndian32(v, p);
    p += 4;
  };
  put(transport.private_key.view());
  put(identity.dh.private_key.view());
  put(identity.signing.secret.view().first(32));  // the seed
  put32(next_prekey_id);
  *p++ = one_time_prekeys_published ? 1 : 0;
  put32(static_cast<std::uint32_t>(signed_prekeys.size()));
  for (const auto& spk : signed_prekeys) {
    put32(spk.id);
    put(spk.key.private_key.view());
    put(spk.signature);
  }
  put32(static_cast<std::uint32_t>(one_time_prekeys.size()));
  for (const auto& [id, opk] : one_time_prekeys) {
    put32(id);
    put(opk.key.private_key.view());
  }
  return out;
}

Result<DeviceKeys> DeviceKeys::Deserialize(ByteView data) {
  Reader r{data};
  DeviceKeys k;
  ByteView transport = r.Take(32), dh = r.Take(32), seed = r.Take(32);
  k.next_prekey_id = r.U32();
  ByteView flag = r.Take(1);
  if (!r.ok) return Status::DataLoss("stored device keys are damaged");
  HAVEN_ASSIGN_OR_RETURN(k.transport, noise::KeyPair::FromPrivateKey(transport));
  k.identity = IdentityFromSeeds(dh, seed);
  k.one_time_prekeys_published = flag[0] != 0;
  const std::uint32_t nspk = r.U32();
  for (std::uint32_t i = 0; r.ok && i < nspk; ++i) {
    e2e::SignedPrekey spk;
    spk.id = r.U32();
    ByteView priv = r.Take(32), sig = r.Take(64);
    if (!r.ok) break;
    spk.key = e2e::DhKeyPair::FromPrivate(priv);
    std::copy(sig.begin(), sig.end(), spk.signature.begin());
    k.signed_prekeys.push_back(std::move(spk));
  }
  const std::uint32_t nopk = r.U32();
  for (std::uint32_t i = 0; r.ok && i < nopk; ++i) {
    e2e::OneTimePrekey opk;
    opk.id = r.U32();
    ByteView priv = r.Take(32);
    if (!r.ok) break;
    opk.key = e2e::DhKeyPair::FromPrivate(priv);
    const std::uint32_t id = opk.id;
    k.one_time_prekeys.emplace(id, std::move(opk));
  }
  if (!r.ok) return Status::DataLoss("stored device keys are damaged");
  return k;
}

std::string EncodeResumptionSecret(ByteView secret) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  std::size_t symbols = 0;
  for (std::uint8_t byte : secret) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      if (symbols > 0 && symbols % 4 == 0) out.push_back('-');
      out.push_back(kCrockfordAlphabet[(buffer >> (bits - 5)) & 31u]);
      bits -= 5;
      ++symbols;
    }
  }
  return out;
}

std::optional<SecureBuffer> DecodeResumptionSecret(std::string_view text) {
  SecureBuffer out(kResumptionSecretLen);
  std::uint32_t buffer = 0;
  int bits = 0;
  std::size_t n = 0;
  std::size_t symbols = 0;
  for (char ch : text) {
    const int v = CrockfordValue(ch);
    if (v == kCrockfordSeparator) continue;
    if (v == kCrockfordInvalid || ++symbols > 32) return std::nullopt;
    buffer = (buffer << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      if (n == out.size()) return std::nullopt;
      out.data()[n++] = static_cast<std::uint8_t>(buffer >> (bits - 8));
      bits -= 8;
    }
  }
  if (n != out.size() || symbols != 32) return std::nullopt;
  return out;
}

// ---------------------------------------------------------------- Engine

Engine::Engine(EngineOptions options, DeviceKeys keys, LocalStore* store)
    : options_(std::move(options)), keys_(std::move(keys)), store_(store) {}

Engine::~Engine() = default;

Engine::Conversation* Engine::Find(sdk::ConversationId id) {
  auto it = conversations_.find(id);
  return it == conversations_.end() ? nullptr : &it->second;
}
const Engine::Conversation* Engine::Find(sdk::ConversationId id) const {
  auto it = conversations_.find(id);
  return it == conversations_.end() ? nullptr : &it->second;
}
Engine::Conversation* Engine::FindByServerId(const std::string& server_id) {
  auto it = local_ids_.find(server_id);
  return it == local_ids_.end() ? nullptr : Find(it->second);
}
Engine::PeerSession* Engine::FindPeer(Conversation& c, v1::Role role) {
  auto it = c.peers.find(role);
  return it == c.peers.end() ? nullptr : &it->second;
}

void Engine::EnsurePeers(Conversation& c) {
  if (c.me == v1::ROLE_SUPERVISOR) {
    c.peers[v1::ROLE_SURVIVOR];
    c.peers[v1::ROLE_COUNSELLOR];
  } else {
    c.peers[MainPeer(c.me)];
  }
}

sdk::ConversationId Engine::LocalIdFor(const std::string& server_id) {
  auto [it, inserted] = local_ids_.emplace(server_id, 0);
  if (inserted) it->second = next_local_id_++;
  return it->second;
}

std::uint64_t Engine::Request(v1::Request request, PendingRequest pending) {
  if (!online_) return 0;
  const std::uint64_t id = next_request_id_++;
  v1::Frame f;
  f.set_request_id(id);
  *f.mutable_request() = std::move(request);
  outgoing_.push_back(std::move(f));
  pending_[id] = pending;
  return id;
}

sdk::Status Engine::Ask(v1::Request request, PendingRequest pending) {
  if (Request(std::move(request), pending) == 0) {
    return {Code::kUnavailable, "offline: try again once connected"};
  }
  return {};
}

void Engine::Failed(sdk::ConversationId conversation, sdk::MessageId message, Code code,
                    std::string text) {
  PendingEvent e;
  e.type = EventType::kRequestFailed;
  e.conversation = conversation;
  e.message = message;
  e.error = code;
  e.error_message = std::move(text);
  events_.push_back(std::move(e));
}

void Engine::SetState(Conversation& c, ConversationState state) {
  if (c.state == state) return;
  c.state = state;
  PendingEvent e;
  e.type = EventType::kConversationChanged;
  e.conversation = c.local;
  e.state = state;
  events_.push_back(std::move(e));
  if (Ended(state)) {
    for (auto& [role, p] : c.peers) {
      p.unsent.clear();
      p.outbox.clear();
    }
  }
  Persist(c);
}

std::vector<v1::Frame> Engine::TakeOutgoing() { return std::exchange(outgoing_, {}); }
std::deque<PendingEvent> Engine::TakeEvents() { return std::exchange(events_, {}); }

// --- connection lifecycle ---

void Engine::OnConnected() {
  online_ = true;
  v1::Request r;
  r.mutable_get_session();
  Request(std::move(r), {RequestKind::kSession});
}

void Engine::OnDisconnected() {
  online_ = false;
  // Answers to these will never come; what matters is redone on reconnect.
  for (auto& [id, c] : conversations_) {
    for (auto& [role, p] : c.peers) {
      for (auto& o : p.outbox) o.request_id = 0;
      p.bundle_in_flight = false;
    }
    if (c.open_in_flight) c.open_unconfirmed = true;
    c.open_in_flight = false;
    c.ack_due = false;
  }
  pending_.clear();
  outgoing_.clear();
}

void Engine::Tick() {
  if (!online_) return;
  for (auto& [id, c] : conversations_) {
    StartSessions(c);
    SendOutbox(c);
  }
}

void Engine::Flush() {
  for (auto& [id, c] : conversations_) {
    if (!c.ack_due || c.server_id.empty()) continue;
    c.ack_due = false;
    v1::Request r;
    r.mutable_ack_envelopes()->set_conversation_id(c.server_id);
    r.mutable_ack_envelopes()->set_up_to_seq(c.last_seq);
    Request(std::move(r), {RequestKind::kAck, c.local});
  }
}

Status Engine::OnFrame(const v1::Frame& frame) {
  if (frame.has_request()) {
    if (frame.request().has_ping()) {
      v1::Frame pong;
      pong.set_request_id(frame.request_id());
      pong.mutable_response()->mutable_pong()->set_opaque(frame.request().ping().opaque());
      outgoing_.push_back(std::move(pong));
      return Status::Ok();
    }
    return Status::InvalidArgument("the server sent a request a client does not serve");
  }
  if (frame.has_response()) {
    HandleResponse(frame.request_id(), frame.response());
    return Status::Ok();
  }
  if (frame.has_event()) HandleEvent(frame.event());
  return Status::Ok();
}

void Engine::HandleResponse(std::uint64_t request_id, const v1::Response& response) {
  auto it = pending_.find(request_id);
  if (it == pending_.end()) return;  // an answer we no longer wait for
  const PendingRequest p = it->second;
  pending_.erase(it);
  Conversation* c = p.conversation ? Find(p.conversation) : nullptr;
  const bool error = response.has_error();
  const std::string why = error ? RefusedMessage(response.error()) : std::string();

  switch (p.kind) {
    case RequestKind::kSession:
      if (response.has_session()) HandleSession(response.session());
      return;
    case RequestKind::kOpen:
      if (c == nullptr) return;
      c->open_in_flight = false;
      if (response.has_conversation_opened()) {
        c->server_id = response.conversation_opened().conversation().conversation_id();
        local_ids_[c->server_id] = c->local;
        c->sealed_intake.clear();
        SetState(*c, FromWire(response.conversation_opened().conversation().state()));
        Persist(*c);
      } else {
        Failed(c->local, 0, Code::kRefused, why);
        conversations_.erase(c->local);
      }
      return;
    case RequestKind::kClaim:
      if (response.has_conversation_claimed()) {
        const auto& s = response.conversation_claimed().conversation();
        const sdk::ConversationId local = LocalIdFor(s.conversation_id());
        Conversation& conv = conversations_[local];
        conv.local = local;
        conv.server_id = s.conversation_id();
        conv.language = s.language();
        conv.priority = s.priority();
        conv.me = v1::ROLE_COUNSELLOR;
        EnsurePeers(conv);
        queue_.erase(s.conversation_id());
        conv.state = ConversationState::kOpening;  // so that SetState announces it
        SetState(conv, FromWire(s.state()));
      } else {
        Failed(p.conversation, 0, Code::kRefused, why);
      }
      return;
    case RequestKind::kSend: {
      PeerSession* peer = c ? FindPeer(*c, p.peer) : nullptr;
      if (peer == nullptr) return;
      auto& outbox = peer->outbox;
      auto o = std::find_if(outbox.begin(), outbox.end(),
                            [&](const Outgoing& x) { return x.request_id == request_id; });
      if (o == outbox.end()) return;
      if (response.has_envelope_accepted()) {
        const sdk::MessageId m = o->message;
        outbox.erase(o);
        SendOutbox(*c);
        Persist(*c);
        // Once per message: when the copy for the main participant is held.
        if (m != 0 && p.peer == MainPeer(c->me)) {
          PendingEvent e;
          e.type = EventType::kMessageSent;
          e.conversation = c->local;
          e.message = m;
          events_.push_back(std::move(e));
        }
      } else if (error && response.error().code() == v1::ERROR_CODE_STORAGE_UNAVAILABLE) {
        o->request_id = 0;  // Tick() sends it again
      } else {
        const sdk::MessageId m = o->message;
        outbox.erase(o);
        Failed(c->local, m, Code::kRefused, why);
      }
      return;
    }
    case RequestKind::kClose:
      if (c == nullptr) return;
      if (error) {
        Failed(c->local, 0, Code::kRefused, why);
      } else if (!Ended(c->state)) {  // a wrap-up after the end keeps how it ended
        SetState(*c, survivor() ? ConversationState::kClosedBySurvivor
                                : ConversationState::kClosedByCounsellor);
      }
      return;
    case RequestKind::kBundle: {
      PeerSession* peer = c ? FindPeer(*c, p.peer) : nullptr;
      if (peer == nullptr) return;
      peer->bundle_in_flight = false;
      if (response.has_prekey_bundle() && !peer->ratchet) {
        StartInitiatorSession(*c, p.peer, response.prekey_bundle());
      }
      // PREKEYS_UNAVAILABLE and the like: Tick() asks again.
      return;
    }
    case RequestKind::kJoin:
      if (response.has_conversation_joined()) {
        const auto& s = response.conversation_joined().conversation();
        const sdk::ConversationId local = LocalIdFor(s.conversation_id());
        Conversation& conv = conversations_[local];
        conv = Conversation{};  // a joined conversation starts afresh, even a re-join
        conv.local = local;
        conv.server_id = s.conversation_id();
        conv.language = s.language();
        conv.priority = s.priority();
        conv.epoch = s.counsellor_epoch();
        conv.me = v1::ROLE_SUPERVISOR;
        EnsurePeers(conv);
        SetState(conv, FromWire(s.state()));
      } else {
        Failed(p.conversation, 0, Code::kRefused, why);
      }
      return;
    case RequestKind::kLeave:
      if (c == nullptr) return;
      if (error) {
        Failed(c->local, 0, Code::kRefused, why);
      } else {
        SetState(*c, ConversationState::kLeft);
      }
      return;
    case RequestKind::kRedeem:
      if (response.has_invitation_redeemed() &&
          response.invitation_redeemed().role() != v1::ROLE_SURVIVOR) {
        enrolled_ = true;
        PendingEvent e;
        e.type = EventType::kEnrolled;
        events_.push_back(std::move(e));
        PublishPrekeys(kInitialOneTimePrekeys);
        OnEnrolled();
      } else {
        Failed(0, 0, Code::kRefused, error ? why : "the invitation did not enrol this device");
      }
      return;
    case RequestKind::kPublish:
      if (error) Failed(0, 0, Code::kRefused, why);
      return;
    case RequestKind::kQueue:
      if (response.has_queue()) {
        queue_.clear();
        for (const auto& s : response.queue().entries()) {
          sdk::QueueEntry q;
          q.conversation = LocalIdFor(s.conversation_id());
          q.language = s.language();
          q.priority = s.priority();
          q.survivor_online = s.survivor_online();
          q.position = s.queue_position();
          queue_[s.conversation_id()] = q;
        }
        PendingEvent e;
        e.type = EventType::kQueueChanged;
        events_.push_back(std::move(e));
      }
      return;
    case RequestKind::kHelpline:
      if (response.has_helpline_config()) {
        const auto& h = response.helpline_config();
        sdk::HelplineInfo info;
        info.name = h.name();
        info.languages.assign(h.languages().begin(), h.languages().end());
        info.max_active_per_counsellor = h.max_active_per_counsellor();
        info.max_block_hours = h.max_block_hours();
        for (const auto& cat : h.categories()) info.categories.push_back({cat.id(), cat.label()});
        for (const auto& cr : h.canned_responses()) info.canned_responses.push_back({cr.id(), cr.text()});
        for (const auto& r : h.referrals()) {
          sdk::HelplineInfo::Referral ref;
          ref.id = r.id();
          ref.card = {r.service(), r.name(), r.offers(), r.contact(), r.region()};
          ref.languages.assign(r.languages().begin(), r.languages().end());
          info.referrals.push_back(std::move(ref));
        }
        helpline_ = std::move(info);
        PendingEvent e;
        e.type = EventType::kHelplineConfigReceived;
        events_.push_back(std::move(e));
      }
      return;
    case RequestKind::kColleagues:
      if (response.has_counsellors()) {
        colleagues_.clear();
        colleague_keys_.clear();
        for (const auto& entry : response.counsellors().counsellors()) {
          sdk::Colleague col = FromWire(entry);
          if (auto id = e2e::IdentityPublic::Decode(AsBytes(entry.identity_key()))) {
            colleague_keys_.emplace(col.id, *id);
          }
          colleagues_.push_back(std::move(col));
        }
        PendingEvent e;
        e.type = EventType::kColleaguesChanged;
        events_.push_back(std::move(e));
      }
      return;
    case RequestKind::kLoad:
      if (response.has_load()) {
        const auto& l = response.load();
        load_ = sdk::LoadSnapshot{};
        load_.queued = l.queued();
        load_.active = l.active();
        load_.connection_lost = l.connection_lost();
        load_.longest_wait_seconds = l.longest_wait_seconds();
        for (const auto& q : l.by_language()) load_.queued_by_language.emplace_back(q.language(), q.queued());
        for (const auto& entry : l.counsellors()) load_.counsellors.push_back(FromWire(entry));
        PendingEvent e;
        e.type = EventType::kLoadChanged;
        events_.push_back(std::move(e));
      } else if (error) {
        Failed(0, 0, Code::kRefused, why);
      }
      return;
    case RequestKind::kTransfer:
      if (c == nullptr) return;
      if (error) {
        Failed(c->local, 0, Code::kRefused, why);
      } else if (!p.warm) {  // cold: gone from us at once (warm waits for the answer)
        SetState(*c, ConversationState::kTransferred);
      }
      return;
    case RequestKind::kBlock:
      if (c == nullptr) return;
      if (error) {
        Failed(c->local, 0, Code::kRefused, why);
      } else {
        SetState(*c, ConversationState::kClosedByCounsellor);
      }
      return;
    case RequestKind::kAnswer:
    case RequestKind::kFlag:
    case RequestKind::kPresence:
      if (error) Failed(p.conversation, 0, Code::kRefused, why);
      return;
    case RequestKind::kAck:
      return;
  }
}

void Engine::OnEnrolled() {
  v1::Request q;
  q.mutable_list_queue();
  if (presence_) {
    // The queue filter first, so that the listing below is already filtered.
    v1::Request r;
    r.mutable_set_presence()->set_presence(static_cast<v1::Presence>(presence_->first));
    for (const auto& l : presence_->second) r.mutable_set_presence()->add_languages(l);
    Request(std::move(r), {RequestKind::kPresence});
  }
  Request(std::move(q), {RequestKind::kQueue});
  v1::Request h;
  h.mutable_get_helpline_config();
  Request(std::move(h), {RequestKind::kHelpline});
  v1::Request l;
  l.mutable_list_counsellors();
  Request(std::move(l), {RequestKind::kColleagues});
}

void Engine::HandleTransferOffered(const v1::TransferOffered& offer) {
  const auto& s = offer.conversation();
  const sdk::ConversationId local = LocalIdFor(s.conversation_id());
  PendingEvent e;
  e.type = EventType::kTransferOffered;
  e.conversation = local;
  if (!offer.sealed_handoff().empty()) {
    auto note = e2e::OpenHelplineBlob(keys_.identity.dh, AsBytes(offer.sealed_handoff()));
    if (note.ok()) e.text = WipedBytes::CopyOf(note->view());
  }
  events_.push_back(std::move(e));
}

void Engine::HandleAlert(const v1::SupervisorAlert& alert) {
  const auto& s = alert.conversation();
  PendingEvent e;
  e.type = EventType::kSupervisorAlert;
  e.conversation = LocalIdFor(s.conversation_id());
  e.alert = alert.kind() == v1::SupervisorAlert::KIND_FLAGGED_QUICK_EXIT
                ? sdk::AlertKind::kFlaggedQuickExit
                : sdk::AlertKind::kFlagged;
  e.flagged_high_risk = s.flagged_high_risk();
  e.flagged_minor = s.flagged_minor();
  e.state = FromWire(s.state());
  events_.push_back(std::move(e));
}

void Engine::CounsellorChanged(Conversation& c) {
  // The old session was with the old counsellor: what is still encrypted for
  // it goes; messages not yet encrypted wait for the new session.
  PeerSession& old = c.peers[v1::ROLE_COUNSELLOR];
  old.ratchet.reset();
  old.remote_identity.reset();
  old.bundle_in_flight = false;
  old.outbox.clear();
  c.seen.clear();
  PendingEvent e;
  e.type = EventType::kCounsellorChanging;
  e.conversation = c.local;
  events_.push_back(std::move(e));
  // The new bundle is asked for once the conversation's new state is known
  // (the caller's SetState): asking on the old state could race a claim.
  Persist(c);
}

void Engine::SupervisorPresence(Conversation& c, bool present) {
  if (c.me == v1::ROLE_SUPERVISOR) {
    // Told it is no longer there: left, or the conversation was transferred.
    if (!present && !Ended(c.state)) SetState(c, ConversationState::kLeft);
    return;
  }
  if (present == c.supervisor_present()) return;
  if (present) {
    c.peers[v1::ROLE_SUPERVISOR] = PeerSession{};  // a new session with each join
  } else {
    c.peers.erase(v1::ROLE_SUPERVISOR);
  }
  PendingEvent e;
  e.type = present ? EventType::kSupervisorJoined : EventType::kSupervisorLeft;
  e.conversation = c.local;
  events_.push_back(std::move(e));
  Persist(c);
}

void Engine::StartSessions(Conversation& c) {
  if (!online_ || !Claimed(c.state)) return;
  for (auto& [role, p] : c.peers) {
    if (c.me < role && !p.ratchet) RequestBundle(c, role);
  }
}

void Engine::HandleSession(const v1::SessionInfo& info) {
  if (!survivor()) {
    enrolled_ = info.role() == v1::ROLE_COUNSELLOR || info.role() == v1::ROLE_SUPERVISOR;
    if (enrolled_) {
      PublishPrekeys(keys_.one_time_prekeys_published ? 0 : kInitialOneTimePrekeys);
      OnEnrolled();
    } else if (!redeem_code_.empty()) {
      v1::Request r;
      r.mutable_redeem_invitation()->set_code(std::exchange(redeem_code_, {}));
      Request(std::move(r), {RequestKind::kRedeem});
    }
  }

  std::set<std::string> listed;
  for (const auto& s : info.conversations()) {
    listed.insert(s.conversation_id());
    Conversation* c = FindByServerId(s.conversation_id());
    if (c == nullptr && survivor()) {
      // An open whose answer was lost with the connection, or a conversation
      // of the session this client resumed.
      auto unconfirmed = std::find_if(conversations_.begin(), conversations_.end(),
                                      [](const auto& kv) { return kv.second.open_unconfirmed; });
      if (unconfirmed != conversations_.end()) {
        c = &unconfirmed->second;
        c->open_unconfirmed = false;
        c->sealed_intake.clear();
      } else {
        const sdk::ConversationId local = next_local_id_++;
        c = &conversations_[local];
        c->local = local;
      }
      c->server_id = s.conversation_id();
      local_ids_[c->server_id] = c->local;
      c->language = s.language();
      c->priority = s.priority();
    } else if (c == nullptr) {
      const sdk::ConversationId local = LocalIdFor(s.conversation_id());
      c = &conversations_[local];
      c->local = local;
      c->server_id = s.conversation_id();
      c->language = s.language();
      c->priority = s.priority();
      c->me = s.you() == v1::ROLE_SUPERVISOR ? v1::ROLE_SUPERVISOR : v1::ROLE_COUNSELLOR;
    }
    EnsurePeers(*c);
    if (survivor() && s.counsellor_epoch() != c->epoch) {
      c->epoch = s.counsellor_epoch();
      if (c->peers[v1::ROLE_COUNSELLOR].ratchet) CounsellorChanged(*c);
    }
    c->epoch = s.counsellor_epoch();
    SupervisorPresence(*c, s.supervisor_present());
    if (c->me != v1::ROLE_SUPERVISOR || !Ended(c->state)) SetState(*c, FromWire(s.state()));
  }
  for (auto& [id, c] : conversations_) {
    if (!c.server_id.empty() && !listed.count(c.server_id) && !Ended(c.state)) {
      // Closed while this client was away (docs/protocol.md 14.6), or, for
      // a supervisor, no longer joined.
      SetState(c, survivor()                        ? ConversationState::kClosedByCounsellor
                  : c.me == v1::ROLE_SUPERVISOR ? ConversationState::kLeft
                                                : ConversationState::kClosedBySurvivor);
    }
  }
  for (auto& [id, c] : conversations_) {
    if (c.server_id.empty() && !c.open_in_flight) {
      c.open_unconfirmed = false;
      OpenOnServer(c);
    }
    StartSessions(c);
    SendOutbox(c);
  }
}

void Engine::HandleEvent(const v1::Event& event) {
  if (event.has_closing()) {
    if (event.closing().reason() == v1::ERROR_CODE_SESSION_REPLACED) stopped_ = true;
  } else if (event.has_envelope()) {
    HandleEnvelope(event.envelope());
  } else if (event.has_queue_changed()) {
    HandleQueueChanged(event.queue_changed());
  } else if (event.has_conversation_changed()) {
    HandleConversationChanged(event.conversation_changed().conversation());
  } else if (event.has_prekeys_low()) {
    if (!survivor()) PublishPrekeys(kMoreOneTimePrekeys);
  } else if (event.has_transfer_offered()) {
    if (!survivor()) HandleTransferOffered(event.transfer_offered());
  } else if (event.has_transfer_answered()) {
    Conversation* c = FindByServerId(event.transfer_answered().conversation_id());
    if (c == nullptr) return;
    const bool accepted = event.transfer_answered().accepted();
    PendingEvent e;
    e.type = EventType::kTransferAnswered;
    e.conversation = c->local;
    e.accepted = accepted;
    events_.push_back(std::move(e));
    if (accepted) SetState(*c, ConversationState::kTransferred);
  } else if (event.has_supervisor_alert()) {
    if (!survivor()) HandleAlert(event.supervisor_alert());
  }
  // Ephemeral deliveries: this SDK sends none yet, and ignores them.
}

void Engine::HandleQueueChanged(const v1::QueueChanged& change) {
  if (survivor()) return;
  const auto& s = change.entry();
  if (change.kind() == v1::QueueChanged::KIND_NEW || change.kind() == v1::QueueChanged::KIND_UPDATED) {
    if (s.state() != v1::CONVERSATION_STATE_QUEUED) return;
    sdk::QueueEntry q;
    q.conversation = LocalIdFor(s.conversation_id());
    q.language = s.language();
    q.priority = s.priority();
    q.survivor_online = s.survivor_online();
    q.position = s.queue_position();
    queue_[s.conversation_id()] = q;
  } else {
    queue_.erase(s.conversation_id());
  }
  PendingEvent e;
  e.type = EventType::kQueueChanged;
  events_.push_back(std::move(e));
}

void Engine::HandleConversationChanged(const v1::ConversationSummary& s) {
  Conversation* c = FindByServerId(s.conversation_id());
  if (c != nullptr && c->me == v1::ROLE_SUPERVISOR) {
    if (Ended(c->state)) return;
    SupervisorPresence(*c, s.supervisor_present());
    if (!Ended(c->state)) SetState(*c, FromWire(s.state()));
    return;
  }
  if (c == nullptr || (!survivor() && Ended(c->state) && !Ended(FromWire(s.state())))) {
    if (survivor()) return;
    // A conversation handed to this counsellor (a transfer): it becomes ours.
    const sdk::ConversationId local = LocalIdFor(s.conversation_id());
    Conversation& adopted = conversations_[local];
    adopted = Conversation{};
    adopted.local = local;
    adopted.server_id = s.conversation_id();
    adopted.language = s.language();
    adopted.priority = s.priority();
    adopted.epoch = s.counsellor_epoch();
    adopted.me = v1::ROLE_COUNSELLOR;
    EnsurePeers(adopted);
    queue_.erase(s.conversation_id());
    c = &adopted;
  }
  if (survivor() && s.counsellor_epoch() != c->epoch) {
    c->epoch = s.counsellor_epoch();
    CounsellorChanged(*c);
  }
  SupervisorPresence(*c, s.supervisor_present());
  SetState(*c, FromWire(s.state()));
  StartSessions(*c);
}

void Engine::HandleEnvelope(const v1::EnvelopeDelivery& d) {
  Conversation* c = FindByServerId(d.conversation_id());
  if (c == nullptr) return;
  c->ack_due = true;
  // De-duplication is by end-to-end message id (docs/protocol.md 14.7,
  // 20.3), never by seq. A seq not above the last one only says that a
  // message that no longer decrypts is most likely one already shown before
  // a restart (whose ids this client no longer has): it is dropped quietly.
  const bool quiet = d.seq() <= c->last_seq;  // maybe redelivered
  c->last_seq = std::max(c->last_seq, d.seq());
  // Which session opens it: the sender's (an older server names none: the
  // other party).
  v1::Role from = d.sender();
  if (from == v1::ROLE_UNSPECIFIED && c->me != v1::ROLE_SUPERVISOR) from = MainPeer(c->me);
  PeerSession* p = from == c->me ? nullptr : FindPeer(*c, from);
  if (p == nullptr) {  // from a participant no longer there (a supervisor who left)
    Persist(*c);
    return;
  }
  const ByteView bytes = AsBytes(d.ciphertext());
  auto decoded = e2e::DecodeEnvelope(bytes);
  if (!decoded) {
    Failed(c->local, 0, Code::kInternal, "a message could not be read (malformed)");
    Persist(*c);
    return;
  }
  const bool responder = from < c->me;  // the lower role starts each session
  if (decoded->session_start) {
    if (!responder) return;
    const Bytes initial = decoded->session_start->Encode();
    if (!p->ratchet) {
      StartResponderSession(*c, from, *decoded->session_start, decoded->ratchet_message, quiet);
    } else if (initial == p->initial_message) {
      DecryptAndDeliver(*c, from, decoded->ratchet_message, quiet);  // a copy: a duplicate
    } else if (p->remote_identity && decoded->session_start->initiator == *p->remote_identity &&
               !p->past_starts.count(initial)) {
      // The same identity started again (a survivor resumed without its
      // stored session): the new session replaces the old one, but only once
      // it has proved itself by decrypting; a replayed older start is ignored.
      auto old_ratchet = std::move(p->ratchet);
      auto old_seen = std::move(c->seen);
      auto old_initial = p->initial_message;
      p->ratchet.reset();
      c->seen.clear();
      StartResponderSession(*c, from, *decoded->session_start, decoded->ratchet_message, quiet);
      if (!p->ratchet) {
        p->ratchet = std::move(old_ratchet);
        c->seen = std::move(old_seen);
      } else {
        p->past_starts.insert(std::move(old_initial));
      }
    }
    Persist(*c);
    return;
  }
  if (!p->ratchet) {
    if (responder && p->early.size() < kMaxEarlyEnvelopes) {
      p->early.emplace_back(d.seq(), Bytes(bytes.begin(), bytes.end()));
    }
    return;
  }
  DecryptAndDeliver(*c, from, decoded->ratchet_message, quiet);
  Persist(*c);
}

bool Engine::DecryptAndDeliver(Conversation& c, v1::Role from, ByteView message, bool quiet) {
  PeerSession* peer = FindPeer(c, from);
  if (peer == nullptr || !peer->ratchet || message.size() < 1 + e2e::kHeaderLen) return false;
  MessageKey key{};
  std::copy_n(message.begin() + 1, 32, key.begin());
  std::copy_n(message.begin() + 1 + 36, 4, key.begin() + 32);
  if (c.seen.count(key)) return true;  // a duplicate: already shown once
  auto plain = peer->ratchet->Decrypt(message);
  if (!plain.ok()) {
    if (!quiet) Failed(c.local, 0, Code::kInternal, "a message could not be decrypted");
    return false;
  }
  c.seen.insert(key);
  const ByteView p = plain->view();
  if (!p.empty() && p[0] == kPlainResourceCard) {
    auto card = DecodeResourceCard(p.subspan(1));
    if (!card) {
      Failed(c.local, 0, Code::kInternal, "a resource card could not be read");
      return true;
    }
    PendingEvent e;
    e.type = EventType::kResourceCardReceived;
    e.conversation = c.local;
    e.message = next_message_id_++;
    e.card = std::move(card);
    e.sender = ToSdk(from);
    events_.push_back(std::move(e));
    return true;
  }
  if (p.empty() || p[0] != kPlainText) return true;  // hello, or a kind from a newer SDK
  const sdk::MessageId id = next_message_id_++;
  if (store_ != nullptr) (void)store_->AppendMessage(c.local, id, false, p.subspan(1));
  PendingEvent e;
  e.type = EventType::kMessageReceived;
  e.conversation = c.local;
  e.message = id;
  e.text = WipedBytes::CopyOf(p.subspan(1));
  e.sender = ToSdk(from);
  events_.push_back(std::move(e));
  return true;
}

// --- sessions ---

void Engine::RequestBundle(Conversation& c, v1::Role of) {
  PeerSession* p = FindPeer(c, of);
  if (p == nullptr || p->bundle_in_flight || p->ratchet || c.server_id.empty()) return;
  v1::Request r;
  r.mutable_get_prekey_bundle()->set_conversation_id(c.server_id);
  r.mutable_get_prekey_bundle()->set_of(of);
  if (Request(std::move(r), {RequestKind::kBundle, c.local, 0, false, of}) != 0) {
    p->bundle_in_flight = true;
  }
}

void Engine::StartInitiatorSession(Conversation& c, v1::Role with, const v1::PrekeyBundle& wire) {
  PeerSession* p = FindPeer(c, with);
  if (p == nullptr) return;
  e2e::PrekeyBundle bundle;
  auto identity = e2e::IdentityPublic::Decode(AsBytes(wire.identity_key()));
  const auto& spk = wire.signed_prekey();
  if (!identity || spk.public_key().size() != 32 || spk.signature().size() != 64) {
    Failed(c.local, 0, Code::kInternal, "the other participant's keys were malformed");
    return;
  }
  bundle.identity = *identity;
  bundle.signed_prekey_id = spk.id();
  std::copy_n(spk.public_key().begin(), 32, bundle.signed_prekey.begin());
  std::copy_n(spk.signature().begin(), 64, bundle.signature.begin());
  if (wire.has_one_time_prekey() && wire.one_time_prekey().public_key().size() == 32) {
    crypto::X25519Public opk{};
    std::copy_n(wire.one_time_prekey().public_key().begin(), 32, opk.begin());
    bundle.one_time_prekey.emplace(wire.one_time_prekey().id(), opk);
  }
  auto initiated = e2e::InitiateX3dh(keys_.identity, bundle);
  if (!initiated.ok()) {
    Failed(c.local, 0, Code::kInternal, "the other participant's keys did not verify");
    return;
  }
  auto ratchet = e2e::DoubleRatchet::InitInitiator(initiated->secrets.shared_secret.view(),
                                                   bundle.signed_prekey,
                                                   initiated->secrets.associated_data);
  if (!ratchet.ok()) return;
  const std::uint8_t hello[] = {kPlainHello};
  auto first = ratchet->Encrypt(hello);
  if (!first.ok()) return;
  p->ratchet.emplace(std::move(ratchet).value());
  p->remote_identity = bundle.identity;
  Outgoing start;
  start.envelope = e2e::EncodeSessionStart(initiated->message, *first);
  p->outbox.push_back(std::move(start));
  PendingEvent e;
  e.type = EventType::kSecureSessionReady;
  e.conversation = c.local;
  e.sender = ToSdk(with);
  events_.push_back(std::move(e));
  EncryptUnsent(c, *p);
  SendOutbox(c);
  Persist(c);
}

void Engine::StartResponderSession(Conversation& c, v1::Role with,
                                   const e2e::InitialMessage& initial, ByteView ratchet_message,
                                   bool quiet) {
  PeerSession* p = FindPeer(c, with);
  if (p == nullptr) return;
  const e2e::SignedPrekey* spk = nullptr;
  for (const auto& k : keys_.signed_prekeys) {
    if (k.id == initial.signed_prekey_id) spk = &k;
  }
  const e2e::OneTimePrekey* opk = nullptr;
  if (initial.one_time_prekey_id) {
    auto it = keys_.one_time_prekeys.find(*initial.one_time_prekey_id);
    if (it != keys_.one_time_prekeys.end()) opk = &it->second;
  }
  if (spk == nullptr || (initial.one_time_prekey_id && opk == nullptr)) {
    Failed(c.local, 0, Code::kInternal, "a session start named keys this device does not have");
    return;
  }
  auto secrets = e2e::RespondX3dh(keys_.identity, *spk, opk, initial);
  if (!secrets.ok()) return;
  auto ratchet = e2e::DoubleRatchet::InitResponder(secrets->shared_secret.view(), spk->key.Clone(),
                                                   secrets->associated_data);
  if (!ratchet.ok()) return;
  p->ratchet.emplace(std::move(ratchet).value());
  if (!DecryptAndDeliver(c, with, ratchet_message, quiet)) {
    p->ratchet.reset();
    return;
  }
  if (initial.one_time_prekey_id) keys_.one_time_prekeys.erase(*initial.one_time_prekey_id);
  p->initial_message = initial.Encode();
  p->remote_identity = initial.initiator;
  PersistDevice();
  PendingEvent e;
  e.type = EventType::kSecureSessionReady;
  e.conversation = c.local;
  e.sender = ToSdk(with);
  events_.push_back(std::move(e));
  auto early = std::exchange(p->early, {});
  for (auto& [seq, bytes] : early) {
    if (auto d = e2e::DecodeEnvelope(bytes)) DecryptAndDeliver(c, with, d->ratchet_message, false);
  }
  EncryptUnsent(c, *p);
  SendOutbox(c);
}

Status Engine::EncryptInto(PeerSession& p, std::uint8_t kind, ByteView body, sdk::MessageId id) {
  Bytes plain;
  plain.reserve(1 + body.size());  // one allocation: no stale copy left behind
  plain.push_back(kind);
  plain.insert(plain.end(), body.begin(), body.end());
  auto message = p.ratchet->Encrypt(plain);
  SecureZero(plain);
  HAVEN_RETURN_IF_ERROR(message.status());
  Outgoing o;
  o.message = id;
  o.envelope = e2e::EncodeMessage(*message);
  p.outbox.push_back(std::move(o));
  return Status::Ok();
}

Status Engine::EncryptForAll(Conversation& c, std::uint8_t kind, ByteView body, sdk::MessageId id,
                             bool keep_for_later) {
  for (auto& [role, p] : c.peers) {
    if (p.ratchet) {
      HAVEN_RETURN_IF_ERROR(EncryptInto(p, kind, body, id));
    } else if (keep_for_later) {
      p.unsent.emplace_back(id, WipedBytes::CopyOf(body));
    }
  }
  SendOutbox(c);
  Persist(c);
  return Status::Ok();
}

void Engine::EncryptUnsent(Conversation& c, PeerSession& p) {
  while (!p.unsent.empty()) {
    auto& [id, text] = p.unsent.front();
    if (!EncryptInto(p, kPlainText, text.view(), id).ok()) {
      Failed(c.local, id, Code::kInternal, "a message could not be encrypted");
    }
    p.unsent.pop_front();
  }
}

void Engine::SendOutbox(Conversation& c) {
  if (!online_ || c.server_id.empty()) return;
  // A window of unanswered sends: the server cuts a client whose requests
  // outrun the answers it reads (OVERLOADED), and a burst must not do that.
  std::size_t in_flight = 0;
  for (const auto& [role, p] : c.peers) {
    for (const auto& o : p.outbox) in_flight += o.request_id != 0 ? 1u : 0u;
  }
  for (auto& [role, p] : c.peers) {
    for (auto& o : p.outbox) {
      if (in_flight >= kSendWindow) return;
      if (o.request_id != 0) continue;
      ++in_flight;
      v1::Request r;
      r.mutable_send_envelope()->set_conversation_id(c.server_id);
      r.mutable_send_envelope()->set_ciphertext(o.envelope.data(), o.envelope.size());
      r.mutable_send_envelope()->set_recipient(role);
      o.request_id = Request(std::move(r), {RequestKind::kSend, c.local, o.message, false, role});
    }
  }
}

void Engine::PublishPrekeys(std::size_t new_one_time) {
  if (keys_.signed_prekeys.empty()) {
    keys_.signed_prekeys.push_back(e2e::SignedPrekey::Make(keys_.identity, keys_.next_prekey_id++));
  }
  const auto& spk = keys_.signed_prekeys.back();
  v1::Request r;
  auto* p = r.mutable_publish_prekeys();
  const Bytes identity = keys_.identity.public_key().Encode();
  p->set_identity_key(identity.data(), identity.size());
  p->mutable_signed_prekey()->set_id(spk.id);
  p->mutable_signed_prekey()->set_public_key(spk.key.public_key.data(), spk.key.public_key.size());
  p->mutable_signed_prekey()->set_signature(spk.signature.data(), spk.signature.size());
  for (std::size_t i = 0; i < new_one_time; ++i) {
    e2e::OneTimePrekey opk;
    opk.id = keys_.next_prekey_id++;
    opk.key = e2e::DhKeyPair::Generate();
    auto* w = p->add_one_time_prekeys();
    w->set_id(opk.id);
    w->set_public_key(opk.key.public_key.data(), opk.key.public_key.size());
    const std::uint32_t id = opk.id;
    keys_.one_time_prekeys.emplace(id, std::move(opk));
  }
  if (new_one_time > 0) keys_.one_time_prekeys_published = true;
  PersistDevice();
  Request(std::move(r), {RequestKind::kPublish});
}

void Engine::OpenOnServer(Conversation& c) {
  v1::Request r;
  auto* o = r.mutable_open_conversation();
  o->set_language(c.language);
  o->set_priority(c.priority);
  o->set_sealed_intake(c.sealed_intake.data(), c.sealed_intake.size());
  if (Request(std::move(r), {RequestKind::kOpen, c.local}) != 0) c.open_in_flight = true;
}

// --- commands ---

sdk::Status Engine::Open(const sdk::RoutingHints& hints, std::string_view intake,
                         sdk::ConversationId* out) {
  if (!survivor()) return {Code::kWrongRole, "only a survivor opens conversations"};
  if (hints.language.size() > kMaxLanguage ||
      !std::all_of(hints.language.begin(), hints.language.end(), [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '-';
      })) {
    return {Code::kInvalidArgument,
            "language must be a BCP 47 tag: at most 35 letters, digits and '-'"};
  }
  if (hints.priority > 9) return {Code::kInvalidArgument, "priority must be 0..9"};
  Bytes sealed;
  if (!intake.empty()) {
    if (!options_.helpline_public_key) {
      return {Code::kInvalidArgument,
              "intake answers need the helpline public key in ClientOptions"};
    }
    auto s = e2e::SealToHelpline(*options_.helpline_public_key, AsBytes(intake));
    if (!s.ok()) return {Code::kInternal, "the intake answers could not be sealed"};
    sealed = std::move(s).value();
  }
  const sdk::ConversationId local = next_local_id_++;
  Conversation& c = conversations_[local];
  c.local = local;
  c.language = hints.language;
  c.priority = hints.priority;
  c.sealed_intake = std::move(sealed);
  EnsurePeers(c);
  PendingEvent e;
  e.type = EventType::kConversationChanged;
  e.conversation = local;
  e.state = ConversationState::kOpening;
  events_.push_back(std::move(e));
  OpenOnServer(c);
  *out = local;
  return {};
}

sdk::Status Engine::Send(sdk::ConversationId id, std::string_view text, sdk::MessageId* out) {
  Conversation* c = Find(id);
  if (c == nullptr) return {Code::kNotFound, "no such conversation"};
  if (Ended(c->state)) return {Code::kWrongState, "the conversation has ended"};
  if (text.empty()) return {Code::kInvalidArgument, "the message is empty"};
  if (text.size() > kMaxTextBytes) {
    return {Code::kInvalidArgument, "the message is longer than 16123 bytes"};
  }
  const sdk::MessageId m = next_message_id_++;
  if (store_ != nullptr) (void)store_->AppendMessage(id, m, true, AsBytes(text));
  // Participants without a session yet get it once theirs is set up.
  if (!EncryptForAll(*c, kPlainText, AsBytes(text), m, /*keep_for_later=*/true).ok()) {
    return {Code::kInternal, "the message could not be encrypted"};
  }
  *out = m;
  return {};
}

sdk::Status Engine::Close(sdk::ConversationId id) {
  Conversation* c = Find(id);
  if (c == nullptr) return {Code::kNotFound, "no such conversation"};
  if (Ended(c->state)) return {};
  if (c->me == v1::ROLE_SUPERVISOR) {
    return {Code::kWrongRole, "a supervisor leaves a conversation (LeaveConversation)"};
  }
  if (c->server_id.empty()) {  // never reached the server (and will not)
    c->open_unconfirmed = false;
    SetState(*c, ConversationState::kClosedBySurvivor);
    return {};
  }
  v1::Request r;
  r.mutable_close_conversation()->set_conversation_id(c->server_id);
  return Ask(std::move(r), {RequestKind::kClose, id});
}

sdk::Status Engine::Claim(sdk::ConversationId id) {
  if (survivor()) return {Code::kWrongRole, "only a counsellor claims conversations"};
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [id](const auto& kv) { return kv.second.conversation == id; });
  if (it == queue_.end()) return {Code::kNotFound, "no such conversation in the queue"};
  v1::Request r;
  r.mutable_claim_conversation()->set_conversation_id(it->first);
  return Ask(std::move(r), {RequestKind::kClaim, id});
}

sdk::Status Engine::Redeem(std::string_view code) {
  if (survivor()) return {Code::kWrongRole, "only a counsellor client enrols"};
  if (code.empty() || code.size() > 64) {
    return {Code::kInvalidArgument, "an invitation code is 32 symbols (39 with dashes)"};
  }
  if (!online_) {
    redeem_code_ = std::string(code);
    return {};
  }
  v1::Request r;
  r.mutable_redeem_invitation()->set_code(std::string(code));
  Request(std::move(r), {RequestKind::kRedeem});
  return {};
}

// --- counsellor workflow commands ---

sdk::Status Engine::CheckMine(sdk::ConversationId id, Conversation** out) {
  if (survivor()) return {Code::kWrongRole, "for counsellors"};
  Conversation* c = Find(id);
  if (c == nullptr || c->server_id.empty()) return {Code::kNotFound, "no such conversation"};
  if (c->me != v1::ROLE_COUNSELLOR) return {Code::kWrongRole, "for the conversation's counsellor"};
  if (Ended(c->state)) return {Code::kWrongState, "the conversation has ended"};
  *out = c;
  return {};
}

sdk::Status Engine::SetPresence(sdk::Presence presence, std::vector<std::string> languages) {
  if (survivor()) return {Code::kWrongRole, "for counsellors"};
  if (presence < sdk::Presence::kAvailable || presence > sdk::Presence::kAway || languages.size() > 20) {
    return {Code::kInvalidArgument, "presence must be available, busy or away; at most 20 languages"};
  }
  for (const auto& l : languages) {
    if (l.empty() || l.size() > kMaxLanguage ||
        !std::all_of(l.begin(), l.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '-';
        })) {
      return {Code::kInvalidArgument, "each language must be a BCP 47 tag such as en or pt-BR"};
    }
  }
  presence_.emplace(presence, std::move(languages));
  if (online_ && enrolled_) {
    v1::Request r;
    r.mutable_set_presence()->set_presence(static_cast<v1::Presence>(presence_->first));
    for (const auto& l : presence_->second) r.mutable_set_presence()->add_languages(l);
    Request(std::move(r), {RequestKind::kPresence});
    v1::Request q;  // the filter changed: a fresh listing
    q.mutable_list_queue();
    Request(std::move(q), {RequestKind::kQueue});
  }
  return {};
}

sdk::Status Engine::Helpline(sdk::HelplineInfo* out) const {
  if (survivor()) return {Code::kWrongRole, "for counsellors"};
  if (!helpline_) return {Code::kWrongState, "not received yet (wait for kHelplineConfigReceived)"};
  *out = *helpline_;
  return {};
}

sdk::Status Engine::RefreshColleagues() {
  if (survivor()) return {Code::kWrongRole, "for counsellors"};
  v1::Request r;
  r.mutable_list_counsellors();
  return Ask(std::move(r), {RequestKind::kColleagues});
}

sdk::Status Engine::TransferToQueue(sdk::ConversationId id, std::string_view language) {
  Conversation* c = nullptr;
  if (auto st = CheckMine(id, &c); !st.ok()) return st;
  if (language.size() > kMaxLanguage) return {Code::kInvalidArgument, "language must be a BCP 47 tag"};
  v1::Request r;
  r.mutable_transfer_conversation()->set_conversation_id(c->server_id);
  r.mutable_transfer_conversation()->set_language(std::string(language));
  return Ask(std::move(r), {RequestKind::kTransfer, id});
}

sdk::Status Engine::TransferToColleague(sdk::ConversationId id, std::string_view colleague_id,
                                        bool warm, std::string_view note) {
  Conversation* c = nullptr;
  if (auto st = CheckMine(id, &c); !st.ok()) return st;
  auto raw = FromHex(colleague_id);
  if (!raw || raw->size() != 16) return {Code::kInvalidArgument, "a colleague id is 32 hex characters"};
  Bytes sealed;
  if (!note.empty()) {
    if (!warm) return {Code::kInvalidArgument, "a handoff note travels with a warm transfer"};
    auto key = colleague_keys_.find(std::string(colleague_id));
    if (key == colleague_keys_.end()) {
      return {Code::kNotFound, "that colleague's keys are not known yet (RefreshColleagues)"};
    }
    auto s = e2e::SealToHelpline(key->second.dh, AsBytes(note));
    if (!s.ok()) return {Code::kInternal, "the handoff note could not be sealed"};
    sealed = std::move(s).value();
  }
  v1::Request r;
  auto* t = r.mutable_transfer_conversation();
  t->set_conversation_id(c->server_id);
  t->set_counsellor_id(raw->data(), raw->size());
  t->set_warm(warm);
  t->set_sealed_handoff(sealed.data(), sealed.size());
  return Ask(std::move(r), {RequestKind::kTransfer, id, 0, warm});
}

sdk::Status Engine::AnswerTransfer(sdk::ConversationId id, bool accept) {
  if (survivor()) return {Code::kWrongRole, "for counsellors"};
  auto it = std::find_if(local_ids_.begin(), local_ids_.end(),
                         [id](const auto& kv) { return kv.second == id; });
  if (it == local_ids_.end()) return {Code::kNotFound, "no such transfer offer"};
  v1::Request r;
  r.mutable_answer_transfer()->set_conversation_id(it->first);
  r.mutable_answer_transfer()->set_accept(accept);
  return Ask(std::move(r), {RequestKind::kAnswer, id});
}

sdk::Status Engine::Block(sdk::ConversationId id, unsigned hours, std::string_view reason) {
  Conversation* c = nullptr;
  if (auto st = CheckMine(id, &c); !st.ok()) return st;
  if (hours == 0) return {Code::kInvalidArgument, "a block lasts at least one hour"};
  if (!options_.helpline_public_key) {
    return {Code::kInvalidArgument, "the reason is sealed to the helpline key: set helpline_public_key"};
  }
  auto sealed = e2e::SealToHelpline(*options_.helpline_public_key, AsBytes(reason));
  if (!sealed.ok()) return {Code::kInternal, "the reason could not be sealed"};
  v1::Request r;
  r.mutable_block_contact()->set_conversation_id(c->server_id);
  r.mutable_block_contact()->set_hours(hours);
  r.mutable_block_contact()->set_sealed_reason(sealed->data(), sealed->size());
  return Ask(std::move(r), {RequestKind::kBlock, id});
}

sdk::Status Engine::Flag(sdk::ConversationId id, bool high_risk, bool minor) {
  Conversation* c = nullptr;
  if (auto st = CheckMine(id, &c); !st.ok()) return st;
  v1::Request r;
  r.mutable_flag_conversation()->set_conversation_id(c->server_id);
  r.mutable_flag_conversation()->set_high_risk(high_risk);
  r.mutable_flag_conversation()->set_minor(minor);
  return Ask(std::move(r), {RequestKind::kFlag, id});
}

sdk::Status Engine::CloseWithWrapUp(sdk::ConversationId id, const sdk::WrapUp& wrapup) {
  if (survivor()) return {Code::kWrongRole, "for counsellors"};
  Conversation* c = Find(id);
  // Also after the survivor ended it (goodbye, quick exit, connection gone
  // for good): the wrap-up is recorded then too. Not once it was transferred.
  if (c == nullptr || c->server_id.empty() || c->state == ConversationState::kTransferred) {
    return {Code::kNotFound, "no such conversation"};
  }
  if (c->me != v1::ROLE_COUNSELLOR) return {Code::kWrongRole, "for the conversation's counsellor"};
  if (!options_.helpline_public_key) {
    return {Code::kInvalidArgument, "the wrap-up is sealed to the helpline key: set helpline_public_key"};
  }
  if (!WithinBounds(wrapup)) {
    return {Code::kInvalidArgument, "a wrap-up field is too long (2000 bytes each, 32 referrals)"};
  }
  Bytes record = EncodeWrapUp(wrapup);
  auto sealed = e2e::SealToHelpline(*options_.helpline_public_key, record);
  SecureZero(record);
  if (!sealed.ok()) return {Code::kInternal, "the wrap-up could not be sealed"};
  v1::Request r;
  r.mutable_close_conversation()->set_conversation_id(c->server_id);
  r.mutable_close_conversation()->set_sealed_wrapup(sealed->data(), sealed->size());
  return Ask(std::move(r), {RequestKind::kClose, id});
}

sdk::Status Engine::SendResourceCard(sdk::ConversationId id, std::string_view referral_id,
                                     sdk::MessageId* out) {
  Conversation* c = nullptr;
  if (auto st = CheckMine(id, &c); !st.ok()) return st;
  if (!helpline_) return {Code::kWrongState, "the helpline's directory has not arrived yet"};
  auto ref = std::find_if(helpline_->referrals.begin(), helpline_->referrals.end(),
                          [&](const auto& r) { return r.id == referral_id; });
  if (ref == helpline_->referrals.end()) return {Code::kNotFound, "no such referral in the directory"};
  if (!c->peers[v1::ROLE_SURVIVOR].ratchet) {
    return {Code::kWrongState, "the secure session is not set up yet"};
  }
  const Bytes body = EncodeResourceCard(ref->card);
  if (body.empty()) return {Code::kInvalidArgument, "the referral is too long for a card"};
  const sdk::MessageId m = next_message_id_++;
  if (!EncryptForAll(*c, kPlainResourceCard, body, m, /*keep_for_later=*/false).ok()) {
    return {Code::kInternal, "the card could not be encrypted"};
  }
  *out = m;
  return {};
}

sdk::Status Engine::RefreshLoad() {
  if (survivor()) return {Code::kWrongRole, "for supervisors"};
  v1::Request r;
  r.mutable_get_load();
  return Ask(std::move(r), {RequestKind::kLoad});
}

sdk::Status Engine::Load(sdk::LoadSnapshot* out) const {
  if (survivor()) return {Code::kWrongRole, "for supervisors"};
  *out = load_;
  return {};
}

sdk::Status Engine::Join(sdk::ConversationId id) {
  if (options_.role != sdk::Role::kSupervisor) return {Code::kWrongRole, "for supervisors"};
  if (const Conversation* c = Find(id); c != nullptr && !Ended(c->state)) {
    return c->me == v1::ROLE_SUPERVISOR ? sdk::Status{}
                                        : sdk::Status{Code::kWrongState, "you are its counsellor"};
  }
  auto it = std::find_if(local_ids_.begin(), local_ids_.end(),
                         [id](const auto& kv) { return kv.second == id; });
  if (it == local_ids_.end()) return {Code::kNotFound, "no such conversation (one from an alert)"};
  v1::Request r;
  r.mutable_join_conversation()->set_conversation_id(it->first);
  return Ask(std::move(r), {RequestKind::kJoin, id});
}

sdk::Status Engine::Leave(sdk::ConversationId id) {
  Conversation* c = Find(id);
  if (c == nullptr || c->me != v1::ROLE_SUPERVISOR) {
    return {Code::kNotFound, "no conversation this device joined as a supervisor"};
  }
  if (c->state == ConversationState::kLeft) return {};
  v1::Request r;
  r.mutable_leave_conversation()->set_conversation_id(c->server_id);
  return Ask(std::move(r), {RequestKind::kLeave, id});
}

std::vector<sdk::QueueEntry> Engine::Queue() const {
  std::vector<sdk::QueueEntry> out;
  for (const auto& [sid, q] : queue_) out.push_back(q);
  std::sort(out.begin(), out.end(), [](const sdk::QueueEntry& a, const sdk::QueueEntry& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.position < b.position;
  });
  return out;
}

std::vector<sdk::ConversationInfo> Engine::Conversations() const {
  std::vector<sdk::ConversationInfo> out;
  for (const auto& [id, c] : conversations_) {
    auto main = c.peers.find(MainPeer(c.me));
    const bool secure = main != c.peers.end() && main->second.ratchet.has_value();
    out.push_back({id, c.state, secure, c.language, c.priority, c.supervisor_present()});
  }
  return out;
}

sdk::Status Engine::SafetyNumber(sdk::ConversationId id, std::string* out) const {
  const Conversation* c = Find(id);
  if (c == nullptr) return {Code::kNotFound, "no such conversation"};
  auto main = c->peers.find(MainPeer(c->me));
  if (main == c->peers.end() || !main->second.remote_identity) {
    return {Code::kWrongState, "the secure session is not set up yet"};
  }
  *out = e2e::SafetyNumber(keys_.identity.public_key(), *main->second.remote_identity);
  return {};
}

sdk::Status Engine::History(sdk::ConversationId id, std::vector<sdk::HistoryEntry>* out) {
  out->clear();
  if (Find(id) == nullptr) return {Code::kNotFound, "no such conversation"};
  if (store_ == nullptr) return {};
  auto rows = store_->LoadHistory(id);
  if (!rows.ok()) return {Code::kStorage, "the local store could not be read"};
  for (auto& r : *rows) {
    out->push_back({r.message, r.outgoing,
                    std::string(reinterpret_cast<const char*>(r.text.data()), r.text.size())});
  }
  return {};
}

std::vector<SecureBuffer> Engine::SessionKeysForTesting() const {
  std::vector<SecureBuffer> out;
  for (const auto& [id, c] : conversations_) {
    for (const auto& [role, p] : c.peers) {
      if (p.ratchet) out.push_back(SecureBuffer::CopyOf(p.ratchet->root_key_for_testing()));
    }
  }
  out.push_back(SecureBuffer::CopyOf(keys_.transport.private_key.view()));
  out.push_back(SecureBuffer::CopyOf(keys_.identity.dh.private_key.view()));
  return out;
}

// --- the local store ---

void Engine::PersistDevice() {
  if (store_ == nullptr) return;
  (void)store_->Put("device", keys_.Serialize().view());
}

void Engine::Persist(const Conversation& c) {
  if (store_ == nullptr || c.server_id.empty()) return;
  // format(1) server_id state(1) language priority(1) epoch(8) last_seq(8)
  // me(1) npeers(4), then per participant: role(1)
  // remote initial ratchet, outbox { id(8) envelope }*, unsent { id(8) text }*.
  // What waits to be sent goes with the ratchet that made it: a session
  // start the server has not accepted yet must survive a restart.
  struct Part {
    v1::Role role;
    const PeerSession* peer;
    SecureBuffer ratchet;
    Bytes remote;
  };
  std::vector<Part> parts;
  std::size_t size = 1 + 4 + c.server_id.size() + 1 + 4 + c.language.size() + 1 + 8 + 8 + 1 + 4;
  for (const auto& [role, p] : c.peers) {
    Part part{role, &p, p.ratchet ? p.ratchet->Serialize() : SecureBuffer(),
              p.remote_identity ? p.remote_identity->Encode() : Bytes()};
    size += 1 + 4 + part.remote.size() + 4 + p.initial_message.size() + 4 + part.ratchet.size() + 8;
    for (const auto& o : p.outbox) size += 12 + o.envelope.size();
    for (const auto& [id, text] : p.unsent) size += 12 + text.size();
    parts.push_back(std::move(part));
  }
  SecureBuffer blob(size);
  Writer w{blob.data()};
  w.U8(kConversationFormat);
  w.Bytes_(AsBytes(c.server_id));
  w.U8(static_cast<std::uint8_t>(c.state));
  w.Bytes_(AsBytes(c.language));
  w.U8(static_cast<std::uint8_t>(c.priority));
  w.U64(c.epoch);
  w.U64(c.last_seq);
  w.U8(static_cast<std::uint8_t>(c.me));
  w.U32(parts.size());
  for (const Part& part : parts) {
    w.U8(static_cast<std::uint8_t>(part.role));
    w.Bytes_(part.remote);
    w.Bytes_(part.peer->initial_message);
    w.Bytes_(part.ratchet.view());
    w.U32(part.peer->outbox.size());
    for (const auto& o : part.peer->outbox) {
      w.U64(o.message);
      w.Bytes_(o.envelope);
    }
    w.U32(part.peer->unsent.size());
    for (const auto& [id, text] : part.peer->unsent) {
      w.U64(id);
      w.Bytes_(text.view());
    }
  }
  (void)store_->PutConversation(c.local, blob.view());
}

Result<Engine::Conversation> Engine::DecodeConversation(ByteView data) {
  const Status damaged = Status::DataLoss("a stored conversation is damaged");
  Reader r{data};
  if (r.U8() != kConversationFormat) return damaged;
  Conversation c;
  ByteView sid = r.Bytes_();
  const std::uint8_t state = r.U8();
  ByteView language = r.Bytes_();
  c.priority = r.U8();
  c.epoch = static_cast<std::uint32_t>(r.U64());
  c.last_seq = r.U64();
  const std::uint8_t me = r.U8();
  const std::uint32_t npeers = r.U32();
  if (!r.ok || state < 1 || state > static_cast<int>(ConversationState::kLeft) || me < 1 || me > 3 ||
      npeers > 2) {
    return damaged;
  }
  c.server_id.assign(sid.begin(), sid.end());
  c.state = static_cast<ConversationState>(state);
  c.language.assign(language.begin(), language.end());
  c.me = static_cast<v1::Role>(me);
  for (std::uint32_t i = 0; r.ok && i < npeers; ++i) {
    const std::uint8_t role = r.U8();
    ByteView remote = r.Bytes_();
    ByteView initial = r.Bytes_();
    ByteView ratchet = r.Bytes_();
    if (!r.ok || role < 1 || role > 3 || role == me) return damaged;
    PeerSession& p = c.peers[static_cast<v1::Role>(role)];
    if (!remote.empty()) p.remote_identity = e2e::IdentityPublic::Decode(remote);
    p.initial_message.assign(initial.begin(), initial.end());
    if (!ratchet.empty()) {
      HAVEN_ASSIGN_OR_RETURN(auto dr, e2e::DoubleRatchet::Deserialize(ratchet));
      p.ratchet.emplace(std::move(dr));
    }
    const std::uint32_t outgoing = r.U32();
    for (std::uint32_t j = 0; r.ok && j < outgoing; ++j) {
      Outgoing o;
      o.message = r.U64();
      ByteView env = r.Bytes_();
      o.envelope.assign(env.begin(), env.end());
      if (r.ok) p.outbox.push_back(std::move(o));
    }
    const std::uint32_t unsent = r.U32();
    for (std::uint32_t j = 0; r.ok && j < unsent; ++j) {
      const sdk::MessageId id = r.U64();
      ByteView text = r.Bytes_();
      if (r.ok) p.unsent.emplace_back(id, WipedBytes::CopyOf(text));
    }
  }
  if (!r.ok) return damaged;
  EnsurePeers(c);
  return c;
}

Status Engine::Restore() {
  if (store_ == nullptr) return Status::Ok();
  HAVEN_ASSIGN_OR_RETURN(auto rows, store_->LoadConversations());
  for (auto& [local, blob] : rows) {
    HAVEN_ASSIGN_OR_RETURN(Conversation c, DecodeConversation(blob.view()));
    c.local = local;
    next_local_id_ = std::max(next_local_id_, local + 1);
    local_ids_[c.server_id] = local;
    PendingEvent e;
    e.type = EventType::kConversationChanged;
    e.conversation = local;
    e.state = c.state;
    events_.push_back(std::move(e));
    conversations_.emplace(local, std::move(c));
  }
  // Message ids continue after the stored ones.
  HAVEN_ASSIGN_OR_RETURN(std::uint64_t last, store_->LastMessageId());
  next_message_id_ = std::max(next_message_id_, last + 1);
  return Status::Ok();
}

}  // namespace haven::client
