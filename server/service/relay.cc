#include "service/relay.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <deque>
#include <set>
#include <vector>

#include "log.h"
#include "service/invitation.h"

namespace haven::server {
namespace {

using v1::ConversationState;
using v1::ErrorCode;

constexpr std::size_t kMaxLanguageTag = 35;
constexpr std::uint32_t kMaxPriority = 9;
constexpr std::size_t kMaxInvitationCode = 64;
constexpr std::size_t kMaxEphemeralBytes = 1024;
constexpr int kMaxQueueListing = 500;
constexpr int kSignedPrekey = 1;
constexpr int kOneTimePrekey = 2;
constexpr int kMaxOneTimePerPublish = 100;
constexpr std::size_t kMaxOneTimePool = 500;
constexpr std::size_t kPrekeysLowAt = 10;
constexpr std::string_view kSignedPrekeyLabel = "haven/1 signed prekey";

// Checks the signed prekey's Ed25519 signature with libsodium directly: the
// server may verify, but links nothing that could decrypt.
bool SignedPrekeyVerifies(const std::string& identity_key, const v1::SignedPrekey& spk) {
  if (identity_key.size() != 64 || spk.public_key().size() != 32 ||
      spk.signature().size() != crypto_sign_BYTES) {
    return false;
  }
  std::string message(kSignedPrekeyLabel);
  message += spk.public_key();
  return crypto_sign_verify_detached(
             reinterpret_cast<const unsigned char*>(spk.signature().data()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(),
             reinterpret_cast<const unsigned char*>(identity_key.data()) + 32) == 0;
}

bool IsClosed(int state) {
  return state == v1::CONVERSATION_STATE_CLOSED_BY_SURVIVOR ||
         state == v1::CONVERSATION_STATE_CLOSED_BY_COUNSELLOR ||
         state == v1::CONVERSATION_STATE_SURVIVOR_LEFT_QUICKLY;
}

bool IsClaimed(int state) {
  return state == v1::CONVERSATION_STATE_ACTIVE ||
         state == v1::CONVERSATION_STATE_CONNECTION_LOST;
}

bool ValidLanguageTag(const std::string& tag) {
  if (tag.size() > kMaxLanguageTag) return false;
  return std::all_of(tag.begin(), tag.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// Conversation and counsellor ids are both 16 random bytes (one type).
static_assert(std::is_same_v<ConversationId, CounsellorId>);

std::optional<ConversationId> ParseId(const std::string& bytes) {
  ConversationId id{};
  if (bytes.size() != id.size()) return std::nullopt;
  std::memcpy(id.data(), bytes.data(), id.size());
  return id;
}

std::string IdBytes(const ConversationId& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), id.size());
}

v1::Frame ErrorFrame(std::uint64_t request_id, ErrorCode code, std::string_view message) {
  v1::Frame f;
  f.set_request_id(request_id);
  f.mutable_response()->mutable_error()->set_code(code);
  f.mutable_response()->mutable_error()->set_message(std::string(message));
  return f;
}

}  // namespace

struct Relay::Impl : std::enable_shared_from_this<Relay::Impl> {
  struct Envelope {
    std::uint64_t seq = 0;
    Side from = Side::kSurvivor;  // which participant sent it
    Bytes ciphertext;
    std::int64_t expires_day = 0;
    std::weak_ptr<Peer> sender;
    std::uint64_t sender_request_id = 0;
    bool accepted_sent = false;  // the sender has its EnvelopeAccepted
    bool durable = false;        // committed to the database
    bool delivered = false;      // pushed on the recipient's current connection
    StorageWorker::Ticket ticket;
  };

  // A warm transfer waiting for the colleague's answer.
  struct Offer {
    CounsellorId from{};
    CounsellorId to{};
  };

  struct Conversation {
    ConversationRecord rec;
    bool persisted = false;  // the row is committed
    // Counsellor workflow, in memory only: flags a counsellor set (never
    // shown to the survivor), a pending warm transfer, and since when it
    // has been waiting in the queue (for supervisors' waiting times).
    bool flagged_high_risk = false;
    bool flagged_minor = false;
    std::optional<Offer> offer;
    std::int64_t queued_since = 0;
    // Between a claim and its commit the counsellor does not know the
    // conversation yet: nothing is delivered to it, and the survivor gets
    // no prekey bundle (it retries), until ConversationClaimed has gone out.
    bool claim_pending = false;
    // A transfer is being written: it is carried out (and anyone told) only
    // once committed, and no other move of the conversation starts meanwhile.
    bool move_pending = false;
    bool has_wrapup = false;  // one wrap-up per conversation
    std::uint32_t next_counter = 1;
    std::deque<Envelope> to_survivor;
    std::deque<Envelope> to_counsellor;
    std::deque<Envelope> to_supervisor;
    std::deque<Envelope>& outbox(Side side) {
      switch (side) {
        case Side::kSurvivor: return to_survivor;
        case Side::kCounsellor: return to_counsellor;
        case Side::kSupervisor: break;
      }
      return to_supervisor;
    }
  };

  // A counsellor's published X3DH keys (public only), as in the database.
  struct Prekeys {
    Bytes identity_key;
    std::optional<PrekeyRecord> signed_prekey;
    std::deque<PrekeyRecord> one_time;  // handed out oldest first
  };

  struct PeerState {
    std::shared_ptr<Peer> peer;
    noise::PublicKey key{};
    v1::Role role = v1::ROLE_SURVIVOR;
    std::optional<CounsellorId> counsellor_id;
    TokenBucket requests;
    std::size_t in_flight = 0;  // envelopes pushed to it and not yet acknowledged
    // Counsellors: ephemeral presence, and the languages whose queue entries
    // they see (empty: all).
    v1::Presence presence = v1::PRESENCE_AVAILABLE;
    std::vector<std::string> languages;
  };

  Impl(Post p, StorageWorker& s, const Config& config, std::uint32_t epoch, NowSeconds n,
       RelayOptions o)
      : options(std::move(o)),
        post(std::move(p)),
        storage(s),
        limits(config.relay),
        retention(config.retention),
        boot_epoch(epoch),
        now(std::move(n)),
        opens(config.relay.conversations_opened_per_minute / 60.0,
              std::max(1.0, config.relay.conversations_opened_per_minute / 6.0)),
        invitations(config.relay.invitation_attempts_per_minute / 60.0,
                    std::max(1.0, config.relay.invitation_attempts_per_minute / 2.0)) {}

  // Runs `fn` on the relay's executor if the relay still exists then.
  template <typename Fn>
  void Later(Fn fn) {
    post([weak = weak_from_this(), fn = std::move(fn)]() mutable {
      if (auto self = weak.lock()) fn(*self);
    });
  }

  void Load(StoredState state) {
    for (const CounsellorRecord& c : state.counsellors) {
      counsellors_by_key[c.device_key] = c;
      if (!c.identity_key.empty()) prekeys[c.id].identity_key = c.identity_key;
    }
    for (PrekeyRecord& p : state.prekeys) {
      Prekeys& mine = prekeys[p.counsellor_id];
      if (p.kind == kSignedPrekey) {
        mine.signed_prekey = std::move(p);
      } else {
        mine.one_time.push_back(std::move(p));
      }
    }
    for (ConversationRecord& rec : state.conversations) {
      next_queue_position = std::max(next_queue_position, rec.queue_position + 1);
      Conversation conv;
      // Nobody is connected yet: a claimed conversation waits for its survivor.
      if (rec.state == v1::CONVERSATION_STATE_ACTIVE) {
        rec.state = v1::CONVERSATION_STATE_CONNECTION_LOST;
      }
      conv.rec = std::move(rec);
      conv.persisted = true;
      conv.queued_since = now();
      conversations.emplace(conv.rec.id, std::move(conv));
    }
    for (const BlockRecord& b : state.blocks) blocks[b.survivor_key] = b.expires_at;
    for (EnvelopeRecord& e : state.envelopes) {
      auto it = conversations.find(e.conversation_id);
      if (it == conversations.end()) continue;
      Envelope env;
      env.seq = e.seq;
      env.from = e.sender.value_or(e.recipient == Side::kSurvivor ? Side::kCounsellor
                                                                   : Side::kSurvivor);
      env.ciphertext = std::move(e.ciphertext);
      env.expires_day = e.expires_day;
      env.durable = true;
      env.accepted_sent = true;  // acknowledged to its sender before the restart, or never will be
      it->second.outbox(e.recipient).push_back(std::move(env));
    }
  }

  // --- Sending to peers -------------------------------------------------

  static void Reply(PeerState& ps, std::uint64_t request_id, v1::Response response) {
    v1::Frame f;
    f.set_request_id(request_id);
    *f.mutable_response() = std::move(response);
    ps.peer->Send(std::move(f));
  }

  static void Fail(PeerState& ps, std::uint64_t request_id, ErrorCode code, std::string_view msg) {
    ps.peer->Send(ErrorFrame(request_id, code, msg));
  }

  static void Done(PeerState& ps, std::uint64_t request_id) {
    v1::Response r;
    r.mutable_done();
    Reply(ps, request_id, std::move(r));
  }

  static void SendEvent(const std::shared_ptr<Peer>& peer, v1::Event event) {
    if (!peer) return;
    v1::Frame f;
    *f.mutable_event() = std::move(event);
    peer->Send(std::move(f));
  }

  std::shared_ptr<Peer> SurvivorPeer(const Conversation& c) const {
    auto it = survivors_online.find(c.rec.survivor_key);
    return it == survivors_online.end() ? nullptr : it->second;
  }

  std::shared_ptr<Peer> CounsellorPeer(const Conversation& c) const {
    if (!c.rec.counsellor_id) return nullptr;
    auto it = counsellors_online.find(*c.rec.counsellor_id);
    return it == counsellors_online.end() ? nullptr : it->second;
  }

  std::shared_ptr<Peer> SupervisorPeer(const Conversation& c) const {
    if (!c.rec.supervisor_id) return nullptr;
    auto it = counsellors_online.find(*c.rec.supervisor_id);
    return it == counsellors_online.end() ? nullptr : it->second;
  }

  std::shared_ptr<Peer> RecipientPeer(const Conversation& c, Side side) const {
    switch (side) {
      case Side::kSurvivor: return SurvivorPeer(c);
      case Side::kCounsellor: return CounsellorPeer(c);
      case Side::kSupervisor: break;
    }
    return SupervisorPeer(c);
  }

  // `with_intake`: listings leave the sealed intake out to stay small.
  // `staff`: flags are for counsellors and supervisors, never the survivor.
  v1::ConversationSummary Summary(const Conversation& c, bool with_intake = true,
                                  bool staff = true) const {
    v1::ConversationSummary s;
    s.set_counsellor_epoch(c.rec.counsellor_epoch);
    if (staff) {
      s.set_flagged_high_risk(c.flagged_high_risk);
      s.set_flagged_minor(c.flagged_minor);
    }
    s.set_conversation_id(IdBytes(c.rec.id));
    s.set_state(static_cast<ConversationState>(c.rec.state));
    s.set_language(c.rec.language);
    s.set_priority(c.rec.priority);
    if (with_intake) {
      s.set_sealed_intake(std::string(c.rec.sealed_intake.begin(), c.rec.sealed_intake.end()));
    }
    s.set_queue_position(c.rec.queue_position);
    s.set_survivor_online(SurvivorPeer(c) != nullptr);
    s.set_supervisor_present(c.rec.supervisor_id.has_value());
    return s;
  }

  void BroadcastQueue(v1::QueueChanged::Kind kind, const Conversation& c) {
    const bool filtered = kind == v1::QueueChanged::KIND_NEW || kind == v1::QueueChanged::KIND_UPDATED;
    for (auto& [id, peer] : counsellors_online) {
      const PeerState* ps = Live(peer);
      if (filtered && ps && !SeesLanguage(*ps, c.rec.language)) continue;
      v1::Event e;
      e.mutable_queue_changed()->set_kind(kind);
      *e.mutable_queue_changed()->mutable_entry() = Summary(c);
      SendEvent(peer, std::move(e));
    }
  }

  void NotifyChanged(const std::shared_ptr<Peer>& peer, const Conversation& c) {
    const PeerState* ps = Live(peer);
    if (!ps) return;
    v1::Event e;
    *e.mutable_conversation_changed()->mutable_conversation() =
        Summary(c, /*with_intake=*/true, /*staff=*/IsCounsellor(*ps));
    SendEvent(peer, std::move(e));
  }

  // The helpline's side of a change: the counsellor, and a supervisor who joined.
  void NotifyStaff(const Conversation& c) {
    NotifyChanged(CounsellorPeer(c), c);
    NotifyChanged(SupervisorPeer(c), c);
  }

  // A counsellor's queue shows the languages it chose (empty: all); a tag
  // matches on its primary subtag, case-insensitively ("pt" sees "pt-BR").
  static std::string PrimarySubtag(const std::string& tag) {
    std::string out = tag.substr(0, tag.find('-'));
    for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
  }
  static bool SeesLanguage(const PeerState& ps, const std::string& language) {
    if (ps.languages.empty() || language.empty()) return true;
    const std::string want = PrimarySubtag(language);
    return std::any_of(ps.languages.begin(), ps.languages.end(),
                       [&](const std::string& l) { return PrimarySubtag(l) == want; });
  }

  // The state of a connected peer; null once it has gone.
  PeerState* Live(const std::shared_ptr<Peer>& peer) {
    if (!peer) return nullptr;
    auto it = peers.find(peer.get());
    return it == peers.end() ? nullptr : &it->second;
  }

  // Pushes undelivered envelopes to the recipient, within its window. The
  // window is per connection, across all its conversations (counted on its
  // PeerState), so a counsellor with many conversations cannot overflow its
  // send queue when it reconnects.
  void Pump(Conversation& c, Side side) {
    if (side == Side::kCounsellor && c.claim_pending) return;
    auto peer = RecipientPeer(c, side);
    PeerState* ps = Live(peer);
    if (!ps) return;
    for (Envelope& e : c.outbox(side)) {
      if (e.delivered) continue;
      if (ps->in_flight >= limits.delivery_window) break;
      v1::Event ev;
      v1::EnvelopeDelivery* d = ev.mutable_envelope();
      d->set_conversation_id(IdBytes(c.rec.id));
      d->set_seq(e.seq);
      d->set_ciphertext(std::string(e.ciphertext.begin(), e.ciphertext.end()));
      d->set_sender(static_cast<v1::Role>(e.from));
      SendEvent(peer, std::move(ev));
      e.delivered = true;
      ++ps->in_flight;
    }
  }

  // A delivered envelope leaving its outbox without an acknowledgement
  // (expiry, a failed write, quick exit) gives its window slot back.
  void Forget(const Conversation& c, Side side, const Envelope& e) {
    if (!e.delivered) return;
    if (PeerState* ps = Live(RecipientPeer(c, side)); ps && ps->in_flight > 0) --ps->in_flight;
  }

  // Pumps every conversation in which `ps` is the recipient.
  void PumpAll(PeerState& ps) {
    for (auto& [id, c] : conversations) {
      if (auto side = SideOf(ps, c)) Pump(c, *side);
    }
  }

  static void ResetDelivery(std::deque<Envelope>& box) {
    for (Envelope& e : box) e.delivered = false;
  }

  void SendAccepted(Envelope& e, const ConversationId& id) {
    if (e.accepted_sent) return;
    e.accepted_sent = true;
    auto sender = e.sender.lock();
    if (!sender) return;  // it resends after reconnecting; the recipient de-duplicates
    v1::Frame f;
    f.set_request_id(e.sender_request_id);
    v1::EnvelopeAccepted* a = f.mutable_response()->mutable_envelope_accepted();
    a->set_conversation_id(IdBytes(id));
    a->set_seq(e.seq);
    sender->Send(std::move(f));
  }

  // --- Connection lifecycle ---------------------------------------------

  void OnConnected(std::shared_ptr<Peer> peer, const noise::PublicKey& key) {
    PeerState ps{peer, key, v1::ROLE_SURVIVOR, std::nullopt,
                 TokenBucket(limits.survivor_requests_per_second, limits.survivor_request_burst),
                 0, v1::PRESENCE_AVAILABLE, {}};
    if (auto it = counsellors_by_key.find(key); it != counsellors_by_key.end()) {
      ps.role = static_cast<v1::Role>(it->second.role);
      ps.counsellor_id = it->second.id;
    }
    auto [it, inserted] = peers.insert_or_assign(peer.get(), std::move(ps));
    AttachIdentity(it->second);
  }

  // Makes `ps` the live connection for its identity and catches it up.
  void AttachIdentity(PeerState& ps) {
    if (ps.counsellor_id) {
      auto& slot = counsellors_online[*ps.counsellor_id];
      if (slot && slot != ps.peer) slot->Disconnect(v1::ERROR_CODE_SESSION_REPLACED);
      slot = ps.peer;
      for (auto& [id, c] : conversations) {
        auto side = SideOf(ps, c);
        if (!side) continue;
        ResetDelivery(c.outbox(*side));
        Pump(c, *side);
      }
      return;
    }
    auto& slot = survivors_online[ps.key];
    if (slot && slot != ps.peer) slot->Disconnect(v1::ERROR_CODE_SESSION_REPLACED);
    slot = ps.peer;
    for (auto& [id, c] : conversations) {
      if (c.rec.survivor_key != ps.key) continue;
      if (c.rec.state == v1::CONVERSATION_STATE_CONNECTION_LOST) {
        c.rec.state = v1::CONVERSATION_STATE_ACTIVE;
        NotifyStaff(c);
      } else if (c.rec.state == v1::CONVERSATION_STATE_QUEUED && c.persisted) {
        BroadcastQueue(v1::QueueChanged::KIND_UPDATED, c);
      }
      ResetDelivery(c.to_survivor);
      Pump(c, Side::kSurvivor);
    }
  }

  void OnDisconnected(const std::shared_ptr<Peer>& peer) {
    auto it = peers.find(peer.get());
    if (it == peers.end()) return;
    PeerState ps = std::move(it->second);
    peers.erase(it);
    if (ps.counsellor_id) {
      auto slot = counsellors_online.find(*ps.counsellor_id);
      if (slot != counsellors_online.end() && slot->second == peer) counsellors_online.erase(slot);
      return;
    }
    auto slot = survivors_online.find(ps.key);
    if (slot == survivors_online.end() || slot->second != peer) return;  // replaced already
    survivors_online.erase(slot);
    for (auto& [id, c] : conversations) {
      if (c.rec.survivor_key != ps.key) continue;
      if (c.rec.state == v1::CONVERSATION_STATE_ACTIVE) {
        // Distinct from a close: the counsellor's UI says so.
        c.rec.state = v1::CONVERSATION_STATE_CONNECTION_LOST;
        NotifyStaff(c);
      } else if (c.rec.state == v1::CONVERSATION_STATE_QUEUED && c.persisted) {
        BroadcastQueue(v1::QueueChanged::KIND_UPDATED, c);
      }
    }
  }

  // --- Requests ---------------------------------------------------------

  void OnRequest(const std::shared_ptr<Peer>& peer, const v1::Frame& frame) {
    PeerState* live = Live(peer);
    if (!live) return;  // already disconnected
    PeerState& ps = *live;
    const std::uint64_t rid = frame.request_id();
    // Quick exit is never refused, however fast the client has been.
    if (ps.role == v1::ROLE_SURVIVOR && !frame.request().has_quick_exit() && !ps.requests.Take()) {
      return Fail(ps, rid, v1::ERROR_CODE_RATE_LIMITED, "too many requests; slow down");
    }
    const v1::Request& r = frame.request();
    switch (r.kind_case()) {
      case v1::Request::kGetSession: return GetSession(ps, rid);
      case v1::Request::kRedeemInvitation: return Redeem(ps, rid, r.redeem_invitation());
      case v1::Request::kOpenConversation: return Open(ps, rid, r.open_conversation());
      case v1::Request::kListQueue: return ListQueue(ps, rid);
      case v1::Request::kClaimConversation: return Claim(ps, rid, r.claim_conversation());
      case v1::Request::kSendEnvelope: return SendEnvelope(ps, rid, r.send_envelope());
      case v1::Request::kAckEnvelopes: return Ack(ps, rid, r.ack_envelopes());
      case v1::Request::kCloseConversation: return Close(ps, rid, r.close_conversation());
      case v1::Request::kSendEphemeral: return SendEphemeral(ps, rid, r.send_ephemeral());
      case v1::Request::kQuickExit: return QuickExit(ps, rid);
      case v1::Request::kPublishPrekeys: return PublishPrekeys(ps, rid, r.publish_prekeys());
      case v1::Request::kGetPrekeyBundle: return GetPrekeyBundle(ps, rid, r.get_prekey_bundle());
      case v1::Request::kGetHelplineConfig: return GetHelplineConfig(ps, rid);
      case v1::Request::kSetPresence: return SetPresence(ps, rid, r.set_presence());
      case v1::Request::kListCounsellors: return ListCounsellors(ps, rid);
      case v1::Request::kTransferConversation:
        return Transfer(ps, rid, r.transfer_conversation());
      case v1::Request::kAnswerTransfer: return AnswerTransfer(ps, rid, r.answer_transfer());
      case v1::Request::kBlockContact: return Block(ps, rid, r.block_contact());
      case v1::Request::kFlagConversation: return Flag(ps, rid, r.flag_conversation());
      case v1::Request::kGetLoad: return GetLoad(ps, rid);
      case v1::Request::kJoinConversation: return Join(ps, rid, r.join_conversation());
      case v1::Request::kLeaveConversation: return Leave(ps, rid, r.leave_conversation());
      default:
        return Fail(ps, rid, v1::ERROR_CODE_UNKNOWN_REQUEST, "unknown request kind");
    }
  }

  bool IsCounsellor(const PeerState& ps) const { return ps.counsellor_id.has_value(); }

  // The conversation if `ps` is party to it; otherwise replies NOT_FOUND
  // (the same answer whether it does not exist or is someone else's).
  Conversation* Find(PeerState& ps, std::uint64_t rid, const std::string& raw_id) {
    auto id = ParseId(raw_id);
    if (id) {
      auto it = conversations.find(*id);
      if (it != conversations.end() && it->second.persisted) {
        Conversation& c = it->second;
        if (IsParty(ps, c)) return &c;
      }
    }
    Fail(ps, rid, v1::ERROR_CODE_NOT_FOUND, "no such conversation for this session");
    return nullptr;
  }

  // As Find, also for a supervisor who joined: for what every participant
  // does (envelopes, acknowledgements, prekey bundles, leaving).
  Conversation* FindAsParticipant(PeerState& ps, std::uint64_t rid, const std::string& raw_id) {
    auto id = ParseId(raw_id);
    if (id) {
      auto it = conversations.find(*id);
      if (it != conversations.end() && it->second.persisted && SideOf(ps, it->second)) {
        return &it->second;
      }
    }
    Fail(ps, rid, v1::ERROR_CODE_NOT_FOUND, "no such conversation for this session");
    return nullptr;
  }

  // Which participant `ps` is in `c`, if any.
  std::optional<Side> SideOf(const PeerState& ps, const Conversation& c) const {
    if (!IsCounsellor(ps)) {
      return c.rec.survivor_key == ps.key ? std::optional(Side::kSurvivor) : std::nullopt;
    }
    if (c.rec.counsellor_id == ps.counsellor_id) return Side::kCounsellor;
    if (c.rec.supervisor_id == ps.counsellor_id) return Side::kSupervisor;
    return std::nullopt;
  }

  void GetSession(PeerState& ps, std::uint64_t rid) {
    v1::Response r;
    v1::SessionInfo* info = r.mutable_session();
    info->set_role(ps.role);
    for (auto& [id, c] : conversations) {
      const auto mine = SideOf(ps, c);
      if (!c.persisted || !mine) continue;
      // Closed ones only while something still waits for this client (a
      // survivor after quick exit has nothing waiting: it was deleted).
      if (IsClosed(c.rec.state) && c.outbox(*mine).empty()) continue;
      v1::ConversationSummary* summary = info->add_conversations();
      *summary = Summary(c, /*with_intake=*/false, IsCounsellor(ps));
      summary->set_you(static_cast<v1::Role>(*mine));
    }
    Reply(ps, rid, std::move(r));
  }

  bool IsParty(const PeerState& ps, const Conversation& c) const {
    return IsCounsellor(ps) ? c.rec.counsellor_id == ps.counsellor_id
                            : c.rec.survivor_key == ps.key;
  }

  std::size_t OpenConversationsOf(const noise::PublicKey& key) const {
    std::size_t n = 0;
    for (auto& [id, c] : conversations) {
      if (c.rec.survivor_key == key && !IsClosed(c.rec.state)) ++n;
    }
    return n;
  }

  void Redeem(PeerState& ps, std::uint64_t rid, const v1::RedeemInvitation& req) {
    if (IsCounsellor(ps) || OpenConversationsOf(ps.key) > 0) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED,
                  "this device is already enrolled or in a conversation");
    }
    if (!invitations.Take()) {
      return Fail(ps, rid, v1::ERROR_CODE_RATE_LIMITED, "too many invitation attempts; wait");
    }
    auto hash = req.code().size() <= kMaxInvitationCode ? HashInvitationCode(req.code())
                                                        : std::nullopt;
    if (!hash) {
      return Fail(ps, rid, v1::ERROR_CODE_INVITATION_INVALID,
                  "invitation unknown, already used or expired");
    }
    auto result = std::make_shared<std::optional<CounsellorRecord>>();
    Store(
        [result, h = *hash, key = ps.key, t = now()](ServerStore& store) -> Status {
          HAVEN_ASSIGN_OR_RETURN(*result, store.RedeemInvitation(h, key, t));
          return Status::Ok();
        },
        [peer = ps.peer, rid, result](Impl& self, const Status& st) {
          self.OnRedeemed(peer, rid, st, *result);
        });
  }

  void OnRedeemed(const std::shared_ptr<Peer>& peer, std::uint64_t rid, const Status& st,
                  const std::optional<CounsellorRecord>& record) {
    PeerState* live = Live(peer);
    if (!st.ok()) {
      if (live) Fail(*live, rid, v1::ERROR_CODE_STORAGE_UNAVAILABLE, "could not store; retry");
      return;
    }
    if (!record) {
      if (live) {
        Fail(*live, rid, v1::ERROR_CODE_INVITATION_INVALID,
             "invitation unknown, already used or expired");
      }
      return;
    }
    counsellors_by_key[record->device_key] = *record;
    LogInfo("a counsellor device was enrolled");
    if (!live) return;  // it gets its role on the next connection
    PeerState& ps = *live;
    auto slot = survivors_online.find(ps.key);
    if (slot != survivors_online.end() && slot->second == peer) survivors_online.erase(slot);
    ps.role = static_cast<v1::Role>(record->role);
    ps.counsellor_id = record->id;
    AttachIdentity(ps);
    v1::Response r;
    r.mutable_invitation_redeemed()->set_role(ps.role);
    Reply(ps, rid, std::move(r));
  }

  void Open(PeerState& ps, std::uint64_t rid, const v1::OpenConversation& req) {
    if (IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "only survivors open conversations");
    }
    if (!ValidLanguageTag(req.language()) || req.priority() > kMaxPriority ||
        req.sealed_intake().size() > limits.max_envelope_bytes) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT,
                  "language must be a tag like en or pt-BR, priority 0..9, intake within "
                  "relay.max_envelope_bytes");
    }
    if (auto b = blocks.find(ps.key); b != blocks.end() && b->second > now()) {
      return Fail(ps, rid, v1::ERROR_CODE_BLOCKED,
                  "this session cannot open conversations for a while");
    }
    if (OpenConversationsOf(ps.key) >= limits.max_open_conversations_per_survivor) {
      return Fail(ps, rid, v1::ERROR_CODE_LIMIT_REACHED,
                  "this session has as many open conversations as allowed");
    }
    if (!opens.Take()) {
      return Fail(ps, rid, v1::ERROR_CODE_RATE_LIMITED, "the helpline is very busy; retry soon");
    }
    Conversation c;
    randombytes_buf(c.rec.id.data(), c.rec.id.size());
    c.rec.state = v1::CONVERSATION_STATE_QUEUED;
    c.rec.survivor_key = ps.key;
    c.rec.language = req.language();
    c.rec.priority = req.priority();
    c.rec.queue_position = next_queue_position++;
    c.rec.sealed_intake.assign(req.sealed_intake().begin(), req.sealed_intake().end());
    c.queued_since = now();
    const ConversationRecord rec = c.rec;
    conversations.emplace(rec.id, std::move(c));
    Store([rec](ServerStore& s) { return s.InsertConversation(rec); },
          [peer = ps.peer, rid, id = rec.id](Impl& self, const Status& st) {
            self.OnOpened(peer, rid, id, st);
          });
  }

  void OnOpened(const std::shared_ptr<Peer>& peer, std::uint64_t rid, const ConversationId& id,
                const Status& st) {
    auto cit = conversations.find(id);
    if (cit == conversations.end()) return;
    Conversation& c = cit->second;
    PeerState* ps = Live(peer);
    if (!st.ok()) {
      conversations.erase(cit);
      if (ps) Fail(*ps, rid, v1::ERROR_CODE_STORAGE_UNAVAILABLE, "could not store; retry");
      return;
    }
    c.persisted = true;
    if (ps) {
      v1::Response r;
      *r.mutable_conversation_opened()->mutable_conversation() =
          Summary(c, /*with_intake=*/true, /*staff=*/false);
      Reply(*ps, rid, std::move(r));
    }
    if (c.rec.state == v1::CONVERSATION_STATE_QUEUED) {
      BroadcastQueue(v1::QueueChanged::KIND_NEW, c);
    }
  }

  void ListQueue(PeerState& ps, std::uint64_t rid) {
    if (!IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "only counsellors see the queue");
    }
    std::vector<const Conversation*> queued;
    for (auto& [id, c] : conversations) {
      if (c.persisted && c.rec.state == v1::CONVERSATION_STATE_QUEUED &&
          SeesLanguage(ps, c.rec.language)) {
        queued.push_back(&c);
      }
    }
    std::sort(queued.begin(), queued.end(), [](const Conversation* a, const Conversation* b) {
      if (a->rec.priority != b->rec.priority) return a->rec.priority > b->rec.priority;
      return a->rec.queue_position < b->rec.queue_position;
    });
    v1::Response r;
    v1::QueueSnapshot* snapshot = r.mutable_queue();  // set even when empty
    for (const Conversation* c : queued) {
      if (snapshot->entries_size() == kMaxQueueListing) {
        snapshot->set_truncated(true);
        break;
      }
      *snapshot->add_entries() = Summary(*c, /*with_intake=*/false);
    }
    Reply(ps, rid, std::move(r));
  }

  void Claim(PeerState& ps, std::uint64_t rid, const v1::ClaimConversation& req) {
    if (!IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "only counsellors claim");
    }
    auto id = ParseId(req.conversation_id());
    auto it = id ? conversations.find(*id) : conversations.end();
    if (it == conversations.end() || !it->second.persisted) {
      return Fail(ps, rid, v1::ERROR_CODE_NOT_FOUND, "no such conversation in the queue");
    }
    Conversation& c = it->second;
    if (c.rec.state != v1::CONVERSATION_STATE_QUEUED) {
      // Exactly one claim wins: the relay runs one request at a time.
      return IsClaimed(c.rec.state)
                 ? Fail(ps, rid, v1::ERROR_CODE_ALREADY_CLAIMED, "another counsellor claimed it")
                 : Fail(ps, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE, "it was withdrawn");
    }
    if (ActiveCount(*ps.counsellor_id) >= options.max_active_per_counsellor) {
      return Fail(ps, rid, v1::ERROR_CODE_LIMIT_REACHED,
                  "you have as many active conversations as the helpline allows; close or "
                  "transfer one first");
    }
    c.rec.state = SurvivorPeer(c) ? v1::CONVERSATION_STATE_ACTIVE
                                  : v1::CONVERSATION_STATE_CONNECTION_LOST;
    c.rec.counsellor_id = ps.counsellor_id;
    c.claim_pending = true;
    const ConversationRecord rec = c.rec;
    Store([rec](ServerStore& s) {
            return s.UpdateConversation(rec.id, rec.state, rec.counsellor_id, std::nullopt);
          },
          [peer = ps.peer, rid, id = rec.id](Impl& self, const Status& st) {
            self.OnClaimed(peer, rid, id, st);
          });
  }

  void OnClaimed(const std::shared_ptr<Peer>& peer, std::uint64_t rid, const ConversationId& id,
                 const Status& st) {
    auto cit = conversations.find(id);
    if (cit == conversations.end()) return;
    Conversation& c = cit->second;
    PeerState* ps = Live(peer);
    c.claim_pending = false;
    if (!st.ok()) {
      c.rec.state = v1::CONVERSATION_STATE_QUEUED;
      c.rec.counsellor_id.reset();
      if (ps) Fail(*ps, rid, v1::ERROR_CODE_STORAGE_UNAVAILABLE, "could not store; retry");
      return;
    }
    if (ps) {
      v1::Response r;
      *r.mutable_conversation_claimed()->mutable_conversation() = Summary(c);
      Reply(*ps, rid, std::move(r));
    }
    NotifyChanged(SurvivorPeer(c), c);
    BroadcastQueue(v1::QueueChanged::KIND_CLAIMED, c);
    Pump(c, Side::kCounsellor);
    AuditEvent(v1::AuditRecord::KIND_CLAIMED, c, c.rec.counsellor_id);
  }

  void SendEnvelope(PeerState& ps, std::uint64_t rid, const v1::SendEnvelope& req) {
    Conversation* c = FindAsParticipant(ps, rid, req.conversation_id());
    if (!c) return;
    const Side from = *SideOf(ps, *c);
    const auto to = RecipientOf(*c, from, req.recipient());
    if (!to) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT,
                  "recipient must be another participant of the conversation (a supervisor "
                  "names one)");
    }
    if (!IsClaimed(c->rec.state)) {
      return Fail(ps, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE,
                  "envelopes flow once a counsellor has claimed and until it is closed");
    }
    if (req.ciphertext().empty()) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT, "empty envelope");
    }
    if (req.ciphertext().size() > limits.max_envelope_bytes) {
      return Fail(ps, rid, v1::ERROR_CODE_ENVELOPE_TOO_LARGE,
                  "envelope larger than relay.max_envelope_bytes");
    }
    std::deque<Envelope>& box = c->outbox(*to);
    if (box.size() >= limits.max_queued_envelopes) {
      return Fail(ps, rid, v1::ERROR_CODE_LIMIT_REACHED,
                  "the recipient has too many envelopes waiting; retry later");
    }
    if (c->next_counter == 0) {  // wrapped: 2^32 envelopes in one boot
      return Fail(ps, rid, v1::ERROR_CODE_LIMIT_REACHED, "sequence space exhausted until restart");
    }
    Envelope e;
    e.seq = (static_cast<std::uint64_t>(boot_epoch) << 32) | c->next_counter++;
    e.ciphertext.assign(req.ciphertext().begin(), req.ciphertext().end());
    e.expires_day = DayNumber(now()) + retention.envelope_ttl_days;
    e.from = from;
    e.sender = ps.peer;
    e.sender_request_id = rid;
    EnvelopeRecord rec{c->rec.id, e.seq, *to, from, e.ciphertext, e.expires_day};
    const std::uint64_t seq = e.seq;
    e.ticket = Store([rec = std::move(rec)](ServerStore& s) { return s.InsertEnvelope(rec); },
                     [id = c->rec.id, to = *to, seq](Impl& self, const Status& st) {
                       self.OnEnvelopeStored(id, to, seq, st);
                     });
    box.push_back(std::move(e));
    Pump(*c, *to);
  }

  // Who an envelope from `from` is for: the one named, or by default the
  // other party of survivor and counsellor. Never the sender itself, and the
  // supervisor only while one is present.
  static std::optional<Side> RecipientOf(const Conversation& c, Side from, v1::Role named) {
    if (named == v1::ROLE_UNSPECIFIED) {
      if (from == Side::kSupervisor) return std::nullopt;
      return from == Side::kSurvivor ? Side::kCounsellor : Side::kSurvivor;
    }
    auto to = SideFromStored(static_cast<std::int64_t>(named));
    if (!to || *to == from || (*to == Side::kSupervisor && !c.rec.supervisor_id)) return std::nullopt;
    return to;
  }

  static std::deque<Envelope>::iterator FindEnvelope(std::deque<Envelope>& box,
                                                     std::uint64_t seq) {
    auto it = std::lower_bound(box.begin(), box.end(), seq,
                               [](const Envelope& e, std::uint64_t s) { return e.seq < s; });
    return it != box.end() && it->seq == seq ? it : box.end();
  }

  void OnEnvelopeStored(const ConversationId& id, Side to, std::uint64_t seq, const Status& st) {
    if (st.code() == Status::Code::kCancelled) return;  // acknowledged before it was written
    auto cit = conversations.find(id);
    if (cit == conversations.end()) return;
    std::deque<Envelope>& box = cit->second.outbox(to);
    auto e = FindEnvelope(box, seq);
    if (e == box.end()) return;  // acknowledged meanwhile; its delete follows the insert
    if (st.ok()) {
      e->durable = true;
      SendAccepted(*e, id);
      return;
    }
    LogWarning("an envelope could not be stored: " + std::string(CodeName(st.code())));
    if (!e->accepted_sent) {
      e->accepted_sent = true;
      if (auto sender = e->sender.lock()) {
        sender->Send(ErrorFrame(e->sender_request_id, v1::ERROR_CODE_STORAGE_UNAVAILABLE,
                                "could not store the envelope; resend it"));
      }
    }
    Forget(cit->second, to, *e);
    box.erase(e);
  }

  void Ack(PeerState& ps, std::uint64_t rid, const v1::AckEnvelopes& req) {
    Conversation* c = FindAsParticipant(ps, rid, req.conversation_id());
    if (!c) return;
    const Side mine = *SideOf(ps, *c);
    std::deque<Envelope>& box = c->outbox(mine);
    // Only what was delivered on this connection can be acknowledged: a
    // connection since replaced by a newer one acknowledges nothing.
    const bool current = RecipientPeer(*c, mine) == ps.peer;
    while (current && !box.empty() && box.front().seq <= req.up_to_seq() &&
           box.front().delivered) {
      Envelope e = std::move(box.front());
      box.pop_front();
      --ps.in_flight;
      Acknowledged(*c, e);
    }
    Done(ps, rid);
    PumpAll(ps);  // the window freed up for all of this client's conversations
  }

  void Acknowledged(Conversation& c, Envelope& e) {
    if (e.durable || !e.ticket.TryCancel()) {
      // Written (or being written): delete it after the insert.
      Store([id = c.rec.id, seq = e.seq](ServerStore& s) { return s.DeleteEnvelope(id, seq); },
            nullptr);
    }
    SendAccepted(e, c.rec.id);
  }

  void Close(PeerState& ps, std::uint64_t rid, const v1::CloseConversation& req) {
    Conversation* c = Find(ps, rid, req.conversation_id());
    if (!c) return;
    if (IsClosed(c->rec.state)) {
      // The counsellor's wrap-up after the survivor ended it (a goodbye, a
      // quick exit): those are the contacts that most need a case record.
      if (IsCounsellor(ps) && !req.sealed_wrapup().empty() && !c->has_wrapup &&
          req.sealed_wrapup().size() <= limits.max_envelope_bytes) {
        c->has_wrapup = true;
        Bytes wrapup(req.sealed_wrapup().begin(), req.sealed_wrapup().end());
        Store([id = c->rec.id, wrapup = std::move(wrapup)](ServerStore& st) {
                return st.SetWrapUp(id, wrapup);
              },
              [peer = ps.peer, rid, id = c->rec.id](Impl& self, const Status& st) {
                PeerState* live = self.Live(peer);
                if (!st.ok()) {
                  if (auto it = self.conversations.find(id); it != self.conversations.end()) {
                    it->second.has_wrapup = false;
                  }
                  if (live) Fail(*live, rid, v1::ERROR_CODE_STORAGE_UNAVAILABLE, "could not store; retry");
                  return;
                }
                if (live) Done(*live, rid);
              });
        return;
      }
      return Fail(ps, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE, "already closed");
    }
    if (!req.sealed_wrapup().empty() &&
        (!IsCounsellor(ps) || req.sealed_wrapup().size() > limits.max_envelope_bytes)) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT,
                  "a wrap-up comes from the counsellor, within relay.max_envelope_bytes");
    }
    const int before = c->rec.state;
    c->rec.state = IsCounsellor(ps) ? v1::CONVERSATION_STATE_CLOSED_BY_COUNSELLOR
                                    : v1::CONVERSATION_STATE_CLOSED_BY_SURVIVOR;
    c->rec.closed_day = DayNumber(now());
    c->offer.reset();
    const ConversationRecord rec = c->rec;
    Bytes wrapup(req.sealed_wrapup().begin(), req.sealed_wrapup().end());
    if (!wrapup.empty()) c->has_wrapup = true;
    if (IsCounsellor(ps)) AuditEvent(v1::AuditRecord::KIND_CLOSED, *c, ps.counsellor_id);
    Store([rec, wrapup = std::move(wrapup)](ServerStore& s) -> Status {
            HAVEN_RETURN_IF_ERROR(
                s.UpdateConversation(rec.id, rec.state, rec.counsellor_id, rec.closed_day));
            if (!wrapup.empty()) HAVEN_RETURN_IF_ERROR(s.SetWrapUp(rec.id, wrapup));
            return Status::Ok();
          },
          [peer = ps.peer, rid, id = rec.id, before](Impl& self, const Status& st) {
            self.OnClosed(peer, rid, id, before, st);
          });
  }

  void OnClosed(const std::shared_ptr<Peer>& peer, std::uint64_t rid, const ConversationId& id,
                int before, const Status& st) {
    auto cit = conversations.find(id);
    if (cit == conversations.end()) return;
    Conversation& c = cit->second;
    PeerState* ps = Live(peer);
    if (!st.ok()) {
      c.rec.state = before;
      c.rec.closed_day.reset();
      if (ps) Fail(*ps, rid, v1::ERROR_CODE_STORAGE_UNAVAILABLE, "could not store; retry");
      return;
    }
    if (ps) Done(*ps, rid);
    if (before == v1::CONVERSATION_STATE_QUEUED) {
      BroadcastQueue(v1::QueueChanged::KIND_WITHDRAWN, c);
      if (NeverClaimed(c)) return PurgeWithdrawn(cit);
    }
    const bool by_counsellor = c.rec.state == v1::CONVERSATION_STATE_CLOSED_BY_COUNSELLOR;
    NotifyChanged(by_counsellor ? SurvivorPeer(c) : CounsellorPeer(c), c);
    NotifyChanged(SupervisorPeer(c), c);
  }

  void SendEphemeral(PeerState& ps, std::uint64_t rid, const v1::SendEphemeral& req) {
    Conversation* c = Find(ps, rid, req.conversation_id());
    if (!c) return;
    if (!IsClaimed(c->rec.state)) {
      return Fail(ps, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE, "conversation not active");
    }
    // Bounded by the envelope limit too, which always fits a frame.
    const std::size_t max = std::min<std::size_t>(kMaxEphemeralBytes, limits.max_envelope_bytes);
    if (req.ciphertext().empty() || req.ciphertext().size() > max) {
      return Fail(ps, rid, v1::ERROR_CODE_ENVELOPE_TOO_LARGE,
                  "an ephemeral ciphertext is 1 to 1024 bytes (and within relay.max_envelope_bytes)");
    }
    v1::Event e;
    e.mutable_ephemeral()->set_conversation_id(IdBytes(c->rec.id));
    e.mutable_ephemeral()->set_ciphertext(req.ciphertext());
    SendEvent(IsCounsellor(ps) ? SurvivorPeer(*c) : CounsellorPeer(*c), std::move(e));
    Done(ps, rid);
  }

  // Quick exit (docs/quick-exit.md items 8-11): every open conversation of
  // this survivor ends as SURVIVOR_LEFT_QUICKLY, what waits for the survivor
  // is deleted, the counsellor hears at once, and nothing at all (not even
  // an answer) goes back toward the survivor.
  void QuickExit(PeerState& ps, std::uint64_t rid) {
    if (IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "quick exit is for survivors");
    }
    const std::int64_t today = DayNumber(now());
    std::vector<ConversationId> withdrawn;
    for (auto& [id, c] : conversations) {
      if (c.rec.survivor_key != ps.key) continue;
      if (IsClosed(c.rec.state)) {
        // Already over, but what still waits for the survivor goes too.
        if (c.to_survivor.empty()) continue;
        DropOutbox(c, Side::kSurvivor);
        Store([id = c.rec.id](ServerStore& s) { return s.DeleteEnvelopesFor(id, Side::kSurvivor); },
              nullptr);
        continue;
      }
      const int before = c.rec.state;
      c.rec.state = v1::CONVERSATION_STATE_SURVIVOR_LEFT_QUICKLY;
      c.rec.closed_day = today;
      c.offer.reset();
      DropOutbox(c, Side::kSurvivor);
      PersistQuickExit(c.rec, 0);
      AuditEvent(v1::AuditRecord::KIND_SURVIVOR_LEFT_QUICKLY, c, std::nullopt);
      if (c.flagged_high_risk || c.flagged_minor) {
        AlertSupervisors(v1::SupervisorAlert::KIND_FLAGGED_QUICK_EXIT, c);
      }
      if (before == v1::CONVERSATION_STATE_QUEUED) {
        BroadcastQueue(v1::QueueChanged::KIND_WITHDRAWN, c);
        if (NeverClaimed(c) && c.persisted) withdrawn.push_back(id);
      } else {
        NotifyStaff(c);
      }
    }
    for (const ConversationId& id : withdrawn) PurgeWithdrawn(conversations.find(id));
    // Revoke: this connection goes now, with whatever was queued toward it.
    auto slot = survivors_online.find(ps.key);
    if (slot != survivors_online.end() && slot->second == ps.peer) survivors_online.erase(slot);
    ps.peer->Drop();
  }

  void PublishPrekeys(PeerState& ps, std::uint64_t rid, const v1::PublishPrekeys& req) {
    if (!IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "only counsellors publish prekeys");
    }
    Prekeys& mine = prekeys[*ps.counsellor_id];
    const std::string& identity = req.identity_key();
    if (identity.size() != 64) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT, "identity_key is 64 bytes");
    }
    if (!mine.identity_key.empty() &&
        !ConstantTimeEquals(mine.identity_key, AsBytes(identity))) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED,
                  "this device's identity key is already fixed; enrol a new device to change it");
    }
    if (!req.has_signed_prekey() && !mine.signed_prekey) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT, "the first publication needs a signed prekey");
    }
    if (req.has_signed_prekey() && !SignedPrekeyVerifies(identity, req.signed_prekey())) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT,
                  "signed_prekey does not verify under identity_key");
    }
    if (req.one_time_prekeys_size() > kMaxOneTimePerPublish ||
        mine.one_time.size() + static_cast<std::size_t>(req.one_time_prekeys_size()) > kMaxOneTimePool) {
      return Fail(ps, rid, v1::ERROR_CODE_LIMIT_REACHED,
                  "at most 100 one-time prekeys at once and 500 in the pool");
    }
    std::vector<PrekeyRecord> one_time;
    std::set<std::uint32_t> ids;
    for (const PrekeyRecord& p : mine.one_time) ids.insert(p.key_id);
    for (const v1::OneTimePrekey& k : req.one_time_prekeys()) {
      if (k.public_key().size() != 32) {
        return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT, "a prekey public key is 32 bytes");
      }
      if (!ids.insert(k.id()).second) {
        return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT,
                    "one-time prekey ids must be new (this id is in the pool or repeated)");
      }
      one_time.push_back({*ps.counsellor_id, kOneTimePrekey, k.id(),
                          Bytes(k.public_key().begin(), k.public_key().end()), {}});
    }
    std::optional<PrekeyRecord> spk;
    if (req.has_signed_prekey()) {
      const v1::SignedPrekey& k = req.signed_prekey();
      spk = PrekeyRecord{*ps.counsellor_id, kSignedPrekey, k.id(),
                         Bytes(k.public_key().begin(), k.public_key().end()),
                         Bytes(k.signature().begin(), k.signature().end())};
    }
    // In memory at once (so bundles can use them); undone if the write fails.
    const bool had_identity = !mine.identity_key.empty();
    const std::optional<PrekeyRecord> previous_spk = mine.signed_prekey;
    mine.identity_key.assign(identity.begin(), identity.end());
    if (spk) mine.signed_prekey = spk;
    for (const PrekeyRecord& p : one_time) mine.one_time.push_back(p);
    const auto available = static_cast<std::uint32_t>(mine.one_time.size());
    std::set<std::uint32_t> fresh_ids;
    for (const PrekeyRecord& p : one_time) fresh_ids.insert(p.key_id);
    Store([id = *ps.counsellor_id, identity_key = mine.identity_key, spk, one_time](ServerStore& s) {
            return s.PublishPrekeys(id, identity_key, spk, one_time);
          },
          [peer = ps.peer, rid, available, counsellor = *ps.counsellor_id, had_identity,
           previous_spk, fresh_ids](Impl& self, const Status& st) {
            if (!st.ok()) {
              Prekeys& keys = self.prekeys[counsellor];
              if (!had_identity) keys.identity_key.clear();
              keys.signed_prekey = previous_spk;
              std::erase_if(keys.one_time,
                            [&](const PrekeyRecord& p) { return fresh_ids.count(p.key_id) > 0; });
            }
            PeerState* live = self.Live(peer);
            if (!live) return;
            if (!st.ok()) {
              return Fail(*live, rid, v1::ERROR_CODE_STORAGE_UNAVAILABLE,
                          "could not store; nothing was published; retry");
            }
            v1::Response r;
            r.mutable_prekeys_published()->set_one_time_prekeys_available(available);
            Reply(*live, rid, std::move(r));
          });
  }

  void GetPrekeyBundle(PeerState& ps, std::uint64_t rid, const v1::GetPrekeyBundle& req) {
    Conversation* c = FindAsParticipant(ps, rid, req.conversation_id());
    if (!c) return;
    // The lower role starts each session: the survivor with the counsellor
    // and the supervisor, the counsellor with the supervisor.
    const Side mine = *SideOf(ps, *c);
    const bool of_supervisor = req.of() == v1::ROLE_SUPERVISOR;
    const bool allowed = of_supervisor ? mine != Side::kSupervisor && c->rec.supervisor_id
                                       : mine == Side::kSurvivor &&
                                             (req.of() == v1::ROLE_UNSPECIFIED ||
                                              req.of() == v1::ROLE_COUNSELLOR);
    if (!allowed || !IsClaimed(c->rec.state)) {
      return Fail(ps, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE,
                  "a participant fetches the keys of a participant after it: the survivor the "
                  "counsellor's and the supervisor's, the counsellor the supervisor's");
    }
    const CounsellorId owner = of_supervisor ? *c->rec.supervisor_id : *c->rec.counsellor_id;
    auto it = prekeys.find(owner);
    if (c->claim_pending || it == prekeys.end() || it->second.identity_key.empty() ||
        !it->second.signed_prekey) {
      return Fail(ps, rid, v1::ERROR_CODE_PREKEYS_UNAVAILABLE,
                  "they have not published prekeys yet; retry shortly");
    }
    Prekeys& theirs = it->second;
    v1::Response r;
    v1::PrekeyBundle* b = r.mutable_prekey_bundle();
    b->set_identity_key(std::string(theirs.identity_key.begin(), theirs.identity_key.end()));
    b->mutable_signed_prekey()->set_id(theirs.signed_prekey->key_id);
    b->mutable_signed_prekey()->set_public_key(
        std::string(theirs.signed_prekey->public_key.begin(), theirs.signed_prekey->public_key.end()));
    b->mutable_signed_prekey()->set_signature(
        std::string(theirs.signed_prekey->signature.begin(), theirs.signed_prekey->signature.end()));
    if (!theirs.one_time.empty()) {
      // Handed out once: gone from memory now, from the database next commit.
      PrekeyRecord opk = std::move(theirs.one_time.front());
      theirs.one_time.pop_front();
      b->mutable_one_time_prekey()->set_id(opk.key_id);
      b->mutable_one_time_prekey()->set_public_key(
          std::string(opk.public_key.begin(), opk.public_key.end()));
      ForgetPrekey(opk, 0);
      if (theirs.one_time.size() < kPrekeysLowAt) {
        v1::Event e;
        e.mutable_prekeys_low()->set_one_time_prekeys_available(
            static_cast<std::uint32_t>(theirs.one_time.size()));
        SendEvent(of_supervisor ? SupervisorPeer(*c) : CounsellorPeer(*c), std::move(e));
      }
    }
    Reply(ps, rid, std::move(r));
  }

  // Queued and never claimed (no transfer ever brought it back to the queue):
  // no counsellor saw more than the queue entry, no envelope or wrap-up exists.
  static bool NeverClaimed(const Conversation& c) {
    return c.rec.counsellor_epoch == 0 && !c.rec.counsellor_id;
  }

  // A conversation withdrawn before any claim is deleted at once, intake and
  // all, instead of being kept for the retention period: nothing of it is
  // needed, and an anonymous client opening and withdrawing in a loop must
  // not grow havend's memory and database (docs/hostile-clients.md).
  void PurgeWithdrawn(std::map<ConversationId, Conversation>::iterator it) {
    if (it == conversations.end()) return;
    Store([id = it->first](ServerStore& st) { return st.DeleteConversation(id); }, nullptr);
    conversations.erase(it);
  }

  // Empties an outbox: unwritten envelopes never will be, delivered ones
  // give their window slot back. (The database side is the caller's.)
  void DropOutbox(Conversation& c, Side side) {
    for (Envelope& e : c.outbox(side)) {
      e.ticket.TryCancel();
      Forget(c, side, e);
    }
    c.outbox(side).clear();
  }

  // Deletes a handed-out one-time prekey, retrying: after a restart it must
  // not be handed out again.
  void ForgetPrekey(const PrekeyRecord& opk, int attempt) {
    Store([opk](ServerStore& s) { return s.DeletePrekey(opk.counsellor_id, opk.kind, opk.key_id); },
          [opk, attempt](Impl& self, const Status& st) {
            if (!st.ok() && attempt < 5) self.ForgetPrekey(opk, attempt + 1);
          });
  }

  // Writes a quick exit, retrying a failed write: a restart must never bring
  // the conversation or its envelopes back.
  void PersistQuickExit(const ConversationRecord& rec, int attempt) {
    Store([rec](ServerStore& s) -> Status {
            HAVEN_RETURN_IF_ERROR(
                s.UpdateConversation(rec.id, rec.state, rec.counsellor_id, rec.closed_day));
            return s.DeleteEnvelopesFor(rec.id, Side::kSurvivor);
          },
          [rec, attempt](Impl& self, const Status& st) {
            if (st.ok()) return;
            LogError("a quick exit could not be stored (attempt " + std::to_string(attempt + 1) +
                     "): " + std::string(CodeName(st.code())));
            if (attempt < 5) self.PersistQuickExit(rec, attempt + 1);
          });
  }

  // --- Counsellor workflow (docs/protocol.md 25) -------------------------

  std::size_t ActiveCount(const CounsellorId& counsellor) const {
    std::size_t n = 0;
    for (const auto& [id, c] : conversations) {
      n += (c.rec.counsellor_id == counsellor && IsClaimed(c.rec.state)) ? 1u : 0u;
    }
    return n;
  }

  const CounsellorRecord* CounsellorById(const CounsellorId& id) const {
    for (const auto& [key, rec] : counsellors_by_key) {
      if (rec.id == id) return &rec;
    }
    return nullptr;
  }

  // Seals one audit event to the helpline's audit key and appends it. The
  // server can write the log but never read it back.
  void AuditEvent(v1::AuditRecord::Kind kind, const Conversation& c,
                  const std::optional<CounsellorId>& actor,
                  const std::function<void(v1::AuditRecord&)>& more = {}) {
    if (!options.audit_public_key) return;
    v1::AuditRecord r;
    r.set_kind(kind);
    r.set_hour(now() / 3600);
    r.set_conversation_id(IdBytes(c.rec.id));
    if (actor) r.set_counsellor_id(IdBytes(*actor));
    if (more) more(r);
    const std::string plain = r.SerializeAsString();
    Bytes sealed(plain.size() + crypto_box_SEALBYTES);
    if (crypto_box_seal(sealed.data(), reinterpret_cast<const unsigned char*>(plain.data()),
                        plain.size(), options.audit_public_key->data()) != 0) {
      LogError("an audit event could not be sealed");
      return;
    }
    Store([day = DayNumber(now()), sealed = std::move(sealed)](ServerStore& st) {
            return st.AppendAudit(day, sealed);
          },
          nullptr);
  }

  void AlertSupervisors(v1::SupervisorAlert::Kind kind, const Conversation& c) {
    for (auto& [raw, peer_state] : peers) {
      if (peer_state.role != v1::ROLE_SUPERVISOR) continue;
      v1::Event e;
      e.mutable_supervisor_alert()->set_kind(kind);
      *e.mutable_supervisor_alert()->mutable_conversation() = Summary(c, /*with_intake=*/false);
      if (c.rec.counsellor_id) {
        e.mutable_supervisor_alert()->set_counsellor_id(IdBytes(*c.rec.counsellor_id));
      }
      SendEvent(peer_state.peer, std::move(e));
    }
  }

  void GetHelplineConfig(PeerState& ps, std::uint64_t rid) {
    if (!IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "for counsellors and supervisors");
    }
    v1::Response r;
    *r.mutable_helpline_config() = options.helpline;
    r.mutable_helpline_config()->set_max_active_per_counsellor(options.max_active_per_counsellor);
    r.mutable_helpline_config()->set_max_block_hours(options.max_block_hours);
    Reply(ps, rid, std::move(r));
  }

  void SetPresence(PeerState& ps, std::uint64_t rid, const v1::SetPresence& req) {
    if (!IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "for counsellors and supervisors");
    }
    constexpr int kMaxLanguages = 20;
    if (req.languages_size() > kMaxLanguages ||
        !std::all_of(req.languages().begin(), req.languages().end(),
                     [](const std::string& l) { return !l.empty() && ValidLanguageTag(l); }) ||
        req.presence() < v1::PRESENCE_AVAILABLE || req.presence() > v1::PRESENCE_AWAY) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT,
                  "presence must be available, busy or away, with at most 20 language tags");
    }
    ps.presence = req.presence();
    ps.languages.assign(req.languages().begin(), req.languages().end());
    Done(ps, rid);
  }

  v1::CounsellorList::Entry Describe(const PeerState& p, const PeerState* asking = nullptr) const {
    v1::CounsellorList::Entry e;
    if (asking) e.set_is_you(asking->counsellor_id == p.counsellor_id);
    e.set_counsellor_id(IdBytes(*p.counsellor_id));
    e.set_role(p.role);
    e.set_presence(p.presence);
    for (const auto& l : p.languages) e.add_languages(l);
    e.set_active_conversations(static_cast<std::uint32_t>(ActiveCount(*p.counsellor_id)));
    auto pk = prekeys.find(*p.counsellor_id);
    if (pk != prekeys.end()) {
      e.set_identity_key(std::string(pk->second.identity_key.begin(), pk->second.identity_key.end()));
    }
    return e;
  }

  void ListCounsellors(PeerState& ps, std::uint64_t rid) {
    if (!IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "for counsellors and supervisors");
    }
    v1::Response r;
    v1::CounsellorList* list = r.mutable_counsellors();
    for (auto& [id, peer] : counsellors_online) {
      if (const PeerState* p = Live(peer)) *list->add_counsellors() = Describe(*p, &ps);
    }
    Reply(ps, rid, std::move(r));
  }

  // The conversation leaves its counsellor: what waited for them was sealed
  // for their session and goes; the survivor's app sees a new epoch and sets
  // up a new session with whoever comes next.
  void LeaveCounsellor(Conversation& c) {
    // A supervisor's sessions were with the old counsellor too: it leaves,
    // and may join again with whoever comes next.
    if (c.rec.supervisor_id) {
      AuditEvent(v1::AuditRecord::KIND_SUPERVISOR_LEFT, c, c.rec.supervisor_id);
      RemoveSupervisor(c);
    }
    DropOutbox(c, Side::kCounsellor);
    Store([id = c.rec.id](ServerStore& st) { return st.DeleteEnvelopesFor(id, Side::kCounsellor); },
          nullptr);
    c.offer.reset();
    ++c.rec.counsellor_epoch;
  }

  void PersistRouting(const Conversation& c) {
    Store([rec = c.rec](ServerStore& st) { return st.UpdateRouting(rec); }, nullptr);
  }

  void Reassign(Conversation& c, const CounsellorId& to) {
    LeaveCounsellor(c);
    c.rec.counsellor_id = to;
    PersistRouting(c);
    NotifyChanged(SurvivorPeer(c), c);
    auto it = counsellors_online.find(to);
    if (it != counsellors_online.end()) NotifyChanged(it->second, c);
  }

  void Requeue(Conversation& c, const std::string& language) {
    LeaveCounsellor(c);
    c.rec.counsellor_id.reset();
    c.rec.state = v1::CONVERSATION_STATE_QUEUED;
    if (!language.empty()) c.rec.language = language;
    c.queued_since = now();
    PersistRouting(c);
    NotifyChanged(SurvivorPeer(c), c);
    BroadcastQueue(v1::QueueChanged::KIND_NEW, c);
  }

  // The supervisor stops being a participant: what waited for it goes, it
  // is told (supervisor_present false), and the others are told by the
  // caller's next announcement. The caller persists the routing.
  void RemoveSupervisor(Conversation& c) {
    const auto peer = SupervisorPeer(c);
    DropOutbox(c, Side::kSupervisor);
    Store([id = c.rec.id](ServerStore& st) { return st.DeleteEnvelopesFor(id, Side::kSupervisor); },
          nullptr);
    c.rec.supervisor_id.reset();
    NotifyChanged(peer, c);
  }

  void Join(PeerState& ps, std::uint64_t rid, const v1::JoinConversation& req) {
    if (ps.role != v1::ROLE_SUPERVISOR) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "only supervisors join conversations");
    }
    auto id = ParseId(req.conversation_id());
    auto it = id ? conversations.find(*id) : conversations.end();
    if (it == conversations.end() || !it->second.persisted) {
      return Fail(ps, rid, v1::ERROR_CODE_NOT_FOUND, "no such conversation");
    }
    Conversation& c = it->second;
    if (!IsClaimed(c.rec.state) || c.claim_pending || c.move_pending) {
      return Fail(ps, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE,
                  "a supervisor joins a conversation a counsellor holds");
    }
    if (c.rec.counsellor_id == ps.counsellor_id) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT, "you are its counsellor already");
    }
    if (c.rec.supervisor_id && c.rec.supervisor_id != ps.counsellor_id) {
      return Fail(ps, rid, v1::ERROR_CODE_LIMIT_REACHED, "another supervisor has joined it");
    }
    if (c.rec.supervisor_id) {  // joined already: the same answer again
      v1::Response r;
      *r.mutable_conversation_joined()->mutable_conversation() = Summary(c, /*with_intake=*/false);
      return Reply(ps, rid, std::move(r));
    }
    // Nobody is told before the commit, so nothing is sent toward the
    // supervisor that a failed write would strand.
    c.rec.supervisor_id = ps.counsellor_id;
    Store([rec = c.rec](ServerStore& st) { return st.UpdateRouting(rec); },
          [peer = ps.peer, rid, id = c.rec.id, who = *ps.counsellor_id](Impl& self, const Status& st) {
            auto cit = self.conversations.find(id);
            if (cit == self.conversations.end()) return;
            Conversation& conv = cit->second;
            PeerState* live = self.Live(peer);
            if (!st.ok()) {
              if (conv.rec.supervisor_id == who) conv.rec.supervisor_id.reset();
              if (live) Fail(*live, rid, v1::ERROR_CODE_STORAGE_UNAVAILABLE, "could not store; retry");
              return;
            }
            if (conv.rec.supervisor_id != who) {  // it moved on meanwhile (a transfer, a close)
              if (live) {
                Fail(*live, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE, "the conversation moved on");
              }
              return;
            }
            if (live) {
              v1::Response r;
              *r.mutable_conversation_joined()->mutable_conversation() =
                  self.Summary(conv, /*with_intake=*/false);
              Reply(*live, rid, std::move(r));
            }
            self.AuditEvent(v1::AuditRecord::KIND_SUPERVISOR_JOINED, conv, who);
            self.NotifyChanged(self.SurvivorPeer(conv), conv);
            self.NotifyChanged(self.CounsellorPeer(conv), conv);
          });
  }

  void Leave(PeerState& ps, std::uint64_t rid, const v1::LeaveConversation& req) {
    Conversation* c = FindAsParticipant(ps, rid, req.conversation_id());
    if (!c) return;
    if (SideOf(ps, *c) != Side::kSupervisor) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "only the supervisor who joined leaves");
    }
    AuditEvent(v1::AuditRecord::KIND_SUPERVISOR_LEFT, *c, ps.counsellor_id);
    RemoveSupervisor(*c);
    PersistRouting(*c);
    NotifyChanged(SurvivorPeer(*c), *c);
    NotifyChanged(CounsellorPeer(*c), *c);
    Done(ps, rid);
  }

  void Transfer(PeerState& ps, std::uint64_t rid, const v1::TransferConversation& req) {
    if (!IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "only the counsellor transfers");
    }
    Conversation* c = Find(ps, rid, req.conversation_id());
    if (!c) return;
    if (!IsClaimed(c->rec.state)) {
      return Fail(ps, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE, "conversation not active");
    }
    if (c->move_pending) {
      return Fail(ps, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE,
                  "a transfer of this conversation is being stored; retry");
    }
    if (req.sealed_handoff().size() > limits.max_envelope_bytes) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT,
                  "the handoff note is larger than relay.max_envelope_bytes");
    }
    const CounsellorId from = *ps.counsellor_id;
    if (!req.warm() && !req.sealed_handoff().empty()) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT,
                  "a handoff note travels only with a warm transfer");
    }
    if (req.target_case() != v1::TransferConversation::kCounsellorId) {
      if (req.warm() || !ValidLanguageTag(req.language())) {
        return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT,
                    "to the queue: a language tag (or none); warm transfers name a colleague");
      }
      ConversationRecord next = c->rec;
      next.counsellor_id.reset();
      next.supervisor_id.reset();
      next.state = v1::CONVERSATION_STATE_QUEUED;
      if (!req.language().empty()) next.language = req.language();
      ++next.counsellor_epoch;
      return CommitMove(*c, ps.peer, rid, from, next,
                        [from, language = req.language()](Impl& self, Conversation& conv) {
                          self.AuditEvent(v1::AuditRecord::KIND_TRANSFERRED, conv, from,
                                          [&](v1::AuditRecord& a) { a.set_target_language(language); });
                          self.Requeue(conv, language);
                          return true;
                        });
    }
    auto to = ParseId(req.counsellor_id());
    const CounsellorRecord* target = to ? CounsellorById(*to) : nullptr;
    if (!target || *to == from) {
      return Fail(ps, rid, v1::ERROR_CODE_NOT_FOUND, "no such colleague");
    }
    if (ActiveCount(*to) >= options.max_active_per_counsellor) {
      return Fail(ps, rid, v1::ERROR_CODE_LIMIT_REACHED, "that colleague is at the helpline's limit");
    }
    if (req.warm()) {
      auto peer = counsellors_online.find(*to);
      if (peer == counsellors_online.end()) {
        return Fail(ps, rid, v1::ERROR_CODE_NOT_FOUND, "that colleague is not online");
      }
      c->offer = Offer{from, *to};
      v1::Event e;
      *e.mutable_transfer_offered()->mutable_conversation() = Summary(*c);
      e.mutable_transfer_offered()->set_from_counsellor_id(IdBytes(from));
      e.mutable_transfer_offered()->set_sealed_handoff(req.sealed_handoff());
      SendEvent(peer->second, std::move(e));
      AuditEvent(v1::AuditRecord::KIND_TRANSFER_OFFERED, *c, from,
                 [&](v1::AuditRecord& a) { a.set_target_counsellor_id(IdBytes(*to)); });
      return Done(ps, rid);
    }
    CommitMove(*c, ps.peer, rid, from, Reassigned(c->rec, *to),
               [from, to = *to](Impl& self, Conversation& conv) {
                 if (self.ActiveCount(to) >= self.options.max_active_per_counsellor) return false;
                 self.AuditEvent(v1::AuditRecord::KIND_TRANSFERRED, conv, from,
                                 [&](v1::AuditRecord& a) { a.set_target_counsellor_id(IdBytes(to)); });
                 self.Reassign(conv, to);
                 return true;
               });
  }

  static ConversationRecord Reassigned(ConversationRecord rec, const CounsellorId& to) {
    rec.counsellor_id = to;
    rec.supervisor_id.reset();
    ++rec.counsellor_epoch;
    return rec;
  }

  // Writes a move of `c` away from `holder` (as `next`), then, once it is
  // committed and if `c` is still held by `holder`, carries it out with
  // `apply` and answers Done: nobody hears of a move that a restart would
  // undo. If `apply` returns false, or the conversation ended or moved
  // meanwhile (a close, a block or a quick exit: its own later write stands),
  // the caller is refused and the record is written back as it is now.
  template <typename Apply>
  void CommitMove(Conversation& c, const std::shared_ptr<Peer>& peer, std::uint64_t rid,
                  const CounsellorId& holder, ConversationRecord next, Apply apply,
                  std::function<void(Impl&, Conversation*)> refused = {}) {
    if (c.move_pending) {
      if (refused) refused(*this, &c);
      if (PeerState* live = Live(peer)) {
        Fail(*live, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE,
             "a transfer of this conversation is being stored; retry");
      }
      return;
    }
    c.move_pending = true;
    Store([next](ServerStore& st) { return st.UpdateRouting(next); },
          [peer, rid, id = c.rec.id, holder, apply, refused](Impl& self, const Status& st) {
            auto it = self.conversations.find(id);
            Conversation* conv = it == self.conversations.end() ? nullptr : &it->second;
            if (conv) conv->move_pending = false;
            PeerState* live = self.Live(peer);
            if (!st.ok()) {
              if (refused) refused(self, conv);
              if (live) {
                Fail(*live, rid, v1::ERROR_CODE_STORAGE_UNAVAILABLE,
                     "could not store the transfer; nothing changed; retry");
              }
              return;
            }
            if (conv && IsClaimed(conv->rec.state) && conv->rec.counsellor_id == holder &&
                apply(self, *conv)) {
              if (live) Done(*live, rid);
              return;
            }
            if (conv) self.PersistRouting(*conv);  // what memory says, over `next`
            if (refused) refused(self, conv);
            if (live) {
              Fail(*live, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE,
                   "the conversation ended or moved on meanwhile");
            }
          });
  }

  void AnswerTransfer(PeerState& ps, std::uint64_t rid, const v1::AnswerTransfer& req) {
    auto id = ParseId(req.conversation_id());
    auto it = id ? conversations.find(*id) : conversations.end();
    if (!IsCounsellor(ps) || it == conversations.end() || !it->second.offer ||
        it->second.offer->to != *ps.counsellor_id) {
      return Fail(ps, rid, v1::ERROR_CODE_NOT_FOUND, "no transfer offered to you for this");
    }
    Conversation& c = it->second;
    const Offer offer = *c.offer;
    if (req.accept() && ActiveCount(offer.to) >= options.max_active_per_counsellor) {
      // The offer stands: close or transfer one of yours, then accept.
      return Fail(ps, rid, v1::ERROR_CODE_LIMIT_REACHED,
                  "you have as many active conversations as the helpline allows");
    }
    c.offer.reset();
    if (!req.accept() || !IsClaimed(c.rec.state) || c.rec.counsellor_id != offer.from) {
      Answered(c, offer, false);
      if (req.accept()) {
        return Fail(ps, rid, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE, "the conversation has moved on");
      }
      return Done(ps, rid);
    }
    CommitMove(
        c, ps.peer, rid, offer.from, Reassigned(c.rec, offer.to),
        [offer](Impl& self, Conversation& conv) {
          self.Reassign(conv, offer.to);
          self.Answered(conv, offer, true);
          return true;
        },
        [offer](Impl& self, Conversation* conv) {
          // Not carried out: the offer stands if the conversation still does.
          if (conv && !conv->offer && IsClaimed(conv->rec.state) &&
              conv->rec.counsellor_id == offer.from) {
            conv->offer = offer;
          } else if (conv) {
            self.Answered(*conv, offer, false);
          }
        });
  }

  // Records a warm offer's answer and tells the offering counsellor.
  void Answered(const Conversation& c, const Offer& offer, bool accepted) {
    AuditEvent(accepted ? v1::AuditRecord::KIND_TRANSFER_ACCEPTED
                        : v1::AuditRecord::KIND_TRANSFER_DECLINED,
               c, offer.to, [&](v1::AuditRecord& a) { a.set_target_counsellor_id(IdBytes(offer.to)); });
    auto origin = counsellors_online.find(offer.from);
    if (origin != counsellors_online.end()) {
      v1::Event e;
      e.mutable_transfer_answered()->set_conversation_id(IdBytes(c.rec.id));
      e.mutable_transfer_answered()->set_accepted(accepted);
      SendEvent(origin->second, std::move(e));
    }
  }

  void Block(PeerState& ps, std::uint64_t rid, const v1::BlockContact& req) {
    if (!IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "only the counsellor blocks");
    }
    Conversation* c = Find(ps, rid, req.conversation_id());
    if (!c) return;
    if (req.hours() < 1 || req.hours() > options.max_block_hours ||
        req.sealed_reason().size() > limits.max_envelope_bytes) {
      return Fail(ps, rid, v1::ERROR_CODE_INVALID_ARGUMENT,
                  "a block lasts 1 hour to the helpline's maximum (max_block_hours), with a "
                  "sealed reason");
    }
    // Rounded up to the hour: nothing finer is kept.
    const std::int64_t until = ((now() + std::int64_t{req.hours()} * 3600 + 3599) / 3600) * 3600;
    const bool was_open = !IsClosed(c->rec.state);
    const int before = c->rec.state;
    const std::optional<std::int64_t> before_closed = c->rec.closed_day;
    const std::optional<std::int64_t> before_block =
        blocks.count(c->rec.survivor_key) ? std::optional(blocks[c->rec.survivor_key]) : std::nullopt;
    // In memory at once (no new conversation may slip in meanwhile), answered
    // and announced once committed, undone if the write fails.
    blocks[c->rec.survivor_key] = until;
    if (was_open) {
      c->rec.state = v1::CONVERSATION_STATE_CLOSED_BY_COUNSELLOR;
      c->rec.closed_day = DayNumber(now());
      c->offer.reset();
    }
    const ConversationRecord rec = c->rec;
    Store([rec, block = BlockRecord{rec.survivor_key, until}](ServerStore& st) -> Status {
            HAVEN_RETURN_IF_ERROR(st.PutBlock(block));
            return st.UpdateConversation(rec.id, rec.state, rec.counsellor_id, rec.closed_day);
          },
          [peer = ps.peer, rid, rec, before, before_closed, before_block, was_open, hours = req.hours(),
           reason = req.sealed_reason()](Impl& self, const Status& st) {
            PeerState* live = self.Live(peer);
            auto it = self.conversations.find(rec.id);
            if (!st.ok()) {
              if (before_block) {
                self.blocks[rec.survivor_key] = *before_block;
              } else {
                self.blocks.erase(rec.survivor_key);
              }
              if (was_open && it != self.conversations.end()) {
                it->second.rec.state = before;
                it->second.rec.closed_day = before_closed;
              }
              if (live) Fail(*live, rid, v1::ERROR_CODE_STORAGE_UNAVAILABLE, "could not store; retry");
              return;
            }
            if (live) Done(*live, rid);
            if (it == self.conversations.end()) return;
            self.AuditEvent(v1::AuditRecord::KIND_BLOCKED, it->second, rec.counsellor_id,
                            [&](v1::AuditRecord& a) {
                              a.set_block_hours(hours);
                              a.set_sealed_reason(reason);
                            });
            if (was_open) {
              if (before == v1::CONVERSATION_STATE_QUEUED) {
                self.BroadcastQueue(v1::QueueChanged::KIND_WITHDRAWN, it->second);
              }
              self.NotifyChanged(self.SurvivorPeer(it->second), it->second);
              self.NotifyChanged(self.SupervisorPeer(it->second), it->second);
            }
          });
  }

  void Flag(PeerState& ps, std::uint64_t rid, const v1::FlagConversation& req) {
    if (!IsCounsellor(ps)) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "only the counsellor flags");
    }
    Conversation* c = Find(ps, rid, req.conversation_id());
    if (!c) return;
    const bool raised = (req.high_risk() && !c->flagged_high_risk) || (req.minor() && !c->flagged_minor);
    c->flagged_high_risk = req.high_risk();
    c->flagged_minor = req.minor();
    AuditEvent(v1::AuditRecord::KIND_FLAGGED, *c, ps.counsellor_id, [&](v1::AuditRecord& a) {
      a.set_high_risk(req.high_risk());
      a.set_minor(req.minor());
    });
    Done(ps, rid);
    if (raised) AlertSupervisors(v1::SupervisorAlert::KIND_FLAGGED, *c);
  }

  void GetLoad(PeerState& ps, std::uint64_t rid) {
    if (ps.role != v1::ROLE_SUPERVISOR) {
      return Fail(ps, rid, v1::ERROR_CODE_PERMISSION_DENIED, "for supervisors");
    }
    v1::Response r;
    v1::Load* load = r.mutable_load();
    std::map<std::string, std::uint32_t> by_language;
    const std::int64_t t = now();
    std::int64_t longest = 0;
    for (const auto& [id, c] : conversations) {
      if (!c.persisted) continue;
      switch (c.rec.state) {
        case v1::CONVERSATION_STATE_QUEUED:
          load->set_queued(load->queued() + 1);
          ++by_language[c.rec.language];
          longest = std::max(longest, t - c.queued_since);
          break;
        case v1::CONVERSATION_STATE_ACTIVE: load->set_active(load->active() + 1); break;
        case v1::CONVERSATION_STATE_CONNECTION_LOST:
          load->set_connection_lost(load->connection_lost() + 1);
          break;
        default: break;
      }
    }
    load->set_longest_wait_seconds(static_cast<std::uint32_t>(std::max<std::int64_t>(0, longest)));
    for (const auto& [language, n] : by_language) {
      auto* q = load->add_by_language();
      q->set_language(language);
      q->set_queued(n);
    }
    for (auto& [id, peer] : counsellors_online) {
      if (const PeerState* p = Live(peer)) *load->add_counsellors() = Describe(*p);
    }
    Reply(ps, rid, std::move(r));
  }

  // --- Retention ----------------------------------------------------------

  void OnSweep() {
    const std::int64_t t = now();
    const std::int64_t today = DayNumber(t);
    for (auto it = conversations.begin(); it != conversations.end();) {
      Conversation& c = it->second;
      const bool purge = c.rec.closed_day &&
                         *c.rec.closed_day <= today - retention.closed_conversation_days;
      for (Side side : {Side::kSurvivor, Side::kCounsellor, Side::kSupervisor}) {
        std::erase_if(c.outbox(side), [&](const Envelope& e) {
          if (!purge && e.expires_day >= today) return false;
          Forget(c, side, e);
          return true;
        });
      }
      it = purge ? conversations.erase(it) : std::next(it);
    }
    std::erase_if(blocks, [t](const auto& b) { return b.second <= t; });
    RetentionPolicy policy{static_cast<std::int64_t>(retention.closed_conversation_days)};
    Store([t, policy](ServerStore& s) -> Status {
            HAVEN_ASSIGN_OR_RETURN(RetentionResult r, s.ApplyRetention(t, policy));
            if (r.conversations_purged + r.envelopes_expired + r.invitations_expired > 0) {
              LogInfo("retention: purged " + std::to_string(r.conversations_purged) +
                      " conversations, " + std::to_string(r.envelopes_expired) +
                      " expired envelopes, " + std::to_string(r.invitations_expired) +
                      " expired invitations");
            }
            return Status::Ok();
          },
          nullptr);
  }

  // Submits a write; `then` runs on the relay's executor with the result.
  template <typename Then>
  StorageWorker::Ticket Store(StorageWorker::Work work, Then then) {
    if constexpr (std::is_same_v<Then, std::nullptr_t>) {
      return storage.Submit(std::move(work), [](const Status& st) {
        if (!st.ok() && st.code() != Status::Code::kCancelled) {
          LogWarning("storage operation failed: " + std::string(CodeName(st.code())));
        }
      });
    } else {
      return storage.Submit(std::move(work),
                            [weak = weak_from_this(), post = post, then](const Status& st) {
                              post([weak, then, st]() {
                                if (auto self = weak.lock()) then(*self, st);
                              });
                            });
    }
  }

  RelayOptions options;
  Post post;
  StorageWorker& storage;
  RelayLimits limits;
  RetentionSettings retention;
  std::uint32_t boot_epoch;
  NowSeconds now;
  TokenBucket opens;
  TokenBucket invitations;
  std::uint64_t next_queue_position = 1;
  std::map<ConversationId, Conversation> conversations;
  std::map<Peer*, PeerState> peers;
  std::map<noise::PublicKey, std::shared_ptr<Peer>> survivors_online;
  std::map<CounsellorId, std::shared_ptr<Peer>> counsellors_online;
  std::map<noise::PublicKey, CounsellorRecord> counsellors_by_key;
  std::map<CounsellorId, Prekeys> prekeys;
  std::map<noise::PublicKey, std::int64_t> blocks;  // survivor key -> until (seconds)
};

Relay::Relay(Post post, StorageWorker& storage, const Config& config, StoredState state,
             std::uint32_t boot_epoch, NowSeconds now_seconds, RelayOptions options)
    : impl_(std::make_shared<Impl>(std::move(post), storage, config, boot_epoch,
                                   std::move(now_seconds), std::move(options))) {
  impl_->Load(std::move(state));
}

Relay::~Relay() = default;

void Relay::Connected(std::shared_ptr<Peer> peer, const noise::PublicKey& static_key) {
  impl_->Later([peer = std::move(peer), static_key](Impl& self) mutable {
    self.OnConnected(std::move(peer), static_key);
  });
}

void Relay::Request(std::shared_ptr<Peer> peer, v1::Frame frame) {
  impl_->Later([peer = std::move(peer), frame = std::move(frame)](Impl& self) {
    self.OnRequest(peer, frame);
  });
}

void Relay::Disconnected(std::shared_ptr<Peer> peer) {
  impl_->Later([peer = std::move(peer)](Impl& self) { self.OnDisconnected(peer); });
}

void Relay::Sweep() {
  impl_->Later([](Impl& self) { self.OnSweep(); });
}

}  // namespace haven::server
