// The client's protocol logic as a state machine without I/O: it takes the
// application's commands and the server's frames, and produces frames to
// send and events for the application. Survivor and counsellor roles, the
// end-to-end sessions (X3DH, Double Ratchet), de-duplication, resending
// after a reconnection, and the optional local store all live here; the
// client's I/O thread only feeds it (client.cc).
//
// Thread-safety: none; the client calls it under its state mutex.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "client/local_store.h"
#include "e2e/x3dh.h"
#include "haven/client.h"
#include "haven/noise/primitives.h"
#include "haven/v1/frame.pb.h"

namespace haven::client {

// An event on its way to the application; the text (and a card's fields)
// are zeroed when it is destroyed.
struct PendingEvent {
  PendingEvent() = default;
  PendingEvent(PendingEvent&&) noexcept = default;
  PendingEvent& operator=(PendingEvent&&) noexcept = default;
  ~PendingEvent();

  sdk::EventType type{};
  sdk::ConnectionState connection{};
  sdk::ConversationId conversation = 0;
  sdk::ConversationState state{};
  sdk::MessageId message = 0;
  WipedBytes text;
  sdk::Code error = sdk::Code::kOk;
  std::string error_message;
  std::optional<sdk::ResourceCard> card;
  bool accepted = false;
  sdk::AlertKind alert{};
  bool flagged_high_risk = false;
  bool flagged_minor = false;
  sdk::Role sender{};
};

// Who this client is: the transport key, the end-to-end identity and, for a
// counsellor device, the private halves of its prekeys.
struct DeviceKeys {
  noise::KeyPair transport;
  e2e::IdentityKey identity;
  std::vector<e2e::SignedPrekey> signed_prekeys;  // newest last
  std::map<std::uint32_t, e2e::OneTimePrekey> one_time_prekeys;
  std::uint32_t next_prekey_id = 1;
  bool one_time_prekeys_published = false;

  static DeviceKeys Generate();
  // Transport and identity keys derived from a survivor's resumption secret
  // (docs/protocol.md section 24).
  static Result<DeviceKeys> FromResumptionSecret(ByteView secret);
  SecureBuffer Serialize() const;
  static Result<DeviceKeys> Deserialize(ByteView data);
};

// The resumption secret as a person writes it down: 20 random bytes in
// Crockford base32, eight groups of four ("7K2M-Q0ZD-...").
std::string EncodeResumptionSecret(ByteView secret);
std::optional<SecureBuffer> DecodeResumptionSecret(std::string_view text);
inline constexpr std::size_t kResumptionSecretLen = 20;

// The largest text one message carries (docs/protocol.md 20.4 minus the kind byte).
inline constexpr std::size_t kMaxTextBytes = 16123;

struct EngineOptions {
  sdk::Role role = sdk::Role::kSurvivor;  // kCounsellor and kSupervisor behave alike here
  std::optional<crypto::X25519Public> helpline_public_key;
};

class Engine {
 public:
  // `store` may be null (memory only); it must outlive the engine.
  Engine(EngineOptions options, DeviceKeys keys, LocalStore* store);
  ~Engine();

  // Loads the conversations kept in the store and announces each.
  Status Restore();

  // --- Fed by the I/O thread ---
  void OnConnected();
  void OnDisconnected();
  // Non-OK: the server broke the protocol; close the connection.
  Status OnFrame(const v1::Frame& frame);
  // After each batch of frames: acknowledgements. Once a second while
  // online: retries (prekey bundles, envelopes the server could not store).
  void Flush();
  void Tick();
  // The server replaced this connection with another one of the same identity.
  bool stopped() const { return stopped_; }
  const noise::KeyPair& transport_key() const { return keys_.transport; }

  // --- Commands from the application ---
  sdk::Status Open(const sdk::RoutingHints& hints, std::string_view intake,
                   sdk::ConversationId* out);
  sdk::Status Send(sdk::ConversationId conversation, std::string_view text, sdk::MessageId* out);
  sdk::Status Close(sdk::ConversationId conversation);
  sdk::Status Claim(sdk::ConversationId conversation);
  sdk::Status Redeem(std::string_view code);
  // Counsellor workflow.
  sdk::Status SetPresence(sdk::Presence presence, std::vector<std::string> languages);
  sdk::Status Helpline(sdk::HelplineInfo* out) const;
  std::vector<sdk::Colleague> Colleagues() const { return colleagues_; }
  sdk::Status RefreshColleagues();
  sdk::Status TransferToQueue(sdk::ConversationId conversation, std::string_view language);
  sdk::Status TransferToColleague(sdk::ConversationId conversation, std::string_view colleague_id,
                                  bool warm, std::string_view note);
  sdk::Status AnswerTransfer(sdk::ConversationId conversation, bool accept);
  sdk::Status Block(sdk::ConversationId conversation, unsigned hours, std::string_view reason);
  sdk::Status Flag(sdk::ConversationId conversation, bool high_risk, bool minor);
  sdk::Status CloseWithWrapUp(sdk::ConversationId conversation, const sdk::WrapUp& wrapup);
  sdk::Status SendResourceCard(sdk::ConversationId conversation, std::string_view referral_id,
                               sdk::MessageId* out);
  sdk::Status RefreshLoad();
  sdk::Status Load(sdk::LoadSnapshot* out) const;
  sdk::Status Join(sdk::ConversationId conversation);
  sdk::Status Leave(sdk::ConversationId conversation);
  std::vector<sdk::QueueEntry> Queue() const;
  std::vector<sdk::ConversationInfo> Conversations() const;
  sdk::Status SafetyNumber(sdk::ConversationId conversation, std::string* out) const;
  sdk::Status History(sdk::ConversationId conversation, std::vector<sdk::HistoryEntry>* out);

  std::vector<v1::Frame> TakeOutgoing();
  std::deque<PendingEvent> TakeEvents();

  // Copies of the session keys this engine holds (end-to-end root keys), so
  // that the memory-scan test knows what must be gone after quick exit.
  std::vector<SecureBuffer> SessionKeysForTesting() const;

 private:
  struct Outgoing {
    sdk::MessageId message = 0;  // 0: the session-start hello
    Bytes envelope;              // resent byte for byte (docs/protocol.md 20.3)
    std::uint64_t request_id = 0;  // 0: not in flight
  };
  using MessageKey = std::array<std::uint8_t, 36>;
  // The end-to-end session with one other participant of a conversation.
  // The lower role starts it (survivor < counsellor < supervisor); the
  // other answers the session start (docs/protocol.md 25.8).
  struct PeerSession {
    std::optional<e2e::DoubleRatchet> ratchet;
    std::optional<e2e::IdentityPublic> remote_identity;
    Bytes initial_message;  // responder: what started the session
    bool bundle_in_flight = false;
    std::deque<Outgoing> outbox;
    std::deque<std::pair<sdk::MessageId, WipedBytes>> unsent;  // waiting for the session
    std::deque<std::pair<std::uint64_t, Bytes>> early;  // responder: before the session start
    std::set<Bytes> past_starts;  // responder: replaced sessions' starts, never again
  };
  struct Conversation {
    sdk::ConversationId local = 0;
    std::string server_id;  // 16 bytes once the server confirmed it
    sdk::ConversationState state = sdk::ConversationState::kOpening;
    std::string language;
    unsigned priority = 0;
    Bytes sealed_intake;          // survivor: until the open is confirmed
    bool open_in_flight = false;  // survivor
    bool open_unconfirmed = false;  // sent, connection lost before the answer
    v1::Role me = v1::ROLE_SURVIVOR;  // which participant this device is in it
    // The other participants; a supervisor is present exactly while it is
    // one of them (or this device is the supervisor).
    std::map<v1::Role, PeerSession> peers;
    bool supervisor_present() const {
      return me == v1::ROLE_SUPERVISOR || peers.count(v1::ROLE_SUPERVISOR) > 0;
    }
    std::uint64_t last_seq = 0;
    bool ack_due = false;
    std::set<MessageKey> seen;
    std::uint32_t epoch = 0;      // the server's counsellor_epoch last seen
  };
  enum class RequestKind { kSession, kOpen, kClaim, kSend, kAck, kClose, kBundle, kRedeem,
                           kPublish, kQueue, kHelpline, kPresence, kColleagues, kTransfer,
                           kAnswer, kBlock, kFlag, kLoad, kJoin, kLeave };
  struct PendingRequest {
    RequestKind kind{};
    sdk::ConversationId conversation = 0;
    sdk::MessageId message = 0;
    bool warm = false;  // kTransfer: the conversation stays ours until the answer
    v1::Role peer = v1::ROLE_UNSPECIFIED;  // kSend, kBundle: with which participant
  };

  bool survivor() const { return options_.role == sdk::Role::kSurvivor; }
  Conversation* Find(sdk::ConversationId id);
  const Conversation* Find(sdk::ConversationId id) const;
  Conversation* FindByServerId(const std::string& server_id);
  sdk::ConversationId LocalIdFor(const std::string& server_id);

  // 0 when offline (nothing is sent or kept).
  std::uint64_t Request(v1::Request request, PendingRequest pending);
  // A command that needs the connection: kUnavailable when offline.
  sdk::Status Ask(v1::Request request, PendingRequest pending);
  void HandleResponse(std::uint64_t request_id, const v1::Response& response);
  void HandleEvent(const v1::Event& event);
  void HandleSession(const v1::SessionInfo& info);
  void HandleEnvelope(const v1::EnvelopeDelivery& delivery);
  void HandleQueueChanged(const v1::QueueChanged& change);
  void HandleConversationChanged(const v1::ConversationSummary& summary);
  void HandleTransferOffered(const v1::TransferOffered& offer);
  void HandleAlert(const v1::SupervisorAlert& alert);
  void OnEnrolled();
  // Survivor: the conversation passed to another counsellor; the old
  // session goes, a new one follows.
  void CounsellorChanged(Conversation& c);
  // The participants the server reports (a supervisor joined or left).
  void SupervisorPresence(Conversation& c, bool present);
  // Asks for the keys of each participant this device starts a session with.
  void StartSessions(Conversation& c);
  static v1::Role MainPeer(v1::Role me) {
    return me == v1::ROLE_SURVIVOR ? v1::ROLE_COUNSELLOR : v1::ROLE_SURVIVOR;
  }
  static PeerSession* FindPeer(Conversation& c, v1::Role role);
  // The participants this device has sessions with, by its own place.
  static void EnsurePeers(Conversation& c);
  sdk::Status CheckMine(sdk::ConversationId id, Conversation** out);
  void Failed(sdk::ConversationId conversation, sdk::MessageId message, sdk::Code code,
              std::string message_text);

  void SetState(Conversation& c, sdk::ConversationState state);
  void OpenOnServer(Conversation& c);
  void RequestBundle(Conversation& c, v1::Role of);
  void StartInitiatorSession(Conversation& c, v1::Role with, const v1::PrekeyBundle& bundle);
  // `quiet`: the envelope may be one shown before a restart (its seq is not
  // above the last): a failure to decrypt is then not reported.
  void StartResponderSession(Conversation& c, v1::Role with, const e2e::InitialMessage& initial,
                             ByteView ratchet_message, bool quiet);
  // False if it did not decrypt (a duplicate already shown counts as true).
  bool DecryptAndDeliver(Conversation& c, v1::Role from, ByteView ratchet_message, bool quiet);
  void EncryptUnsent(Conversation& c, PeerSession& p);
  Status EncryptInto(PeerSession& p, std::uint8_t kind, ByteView body, sdk::MessageId id);
  // To every participant with a session (the others keep text for theirs).
  Status EncryptForAll(Conversation& c, std::uint8_t kind, ByteView body, sdk::MessageId id,
                       bool keep_for_later);
  void SendOutbox(Conversation& c);
  void PublishPrekeys(std::size_t new_one_time);
  void Persist(const Conversation& c);
  void PersistDevice();
  Result<Conversation> DecodeConversation(ByteView data);

  EngineOptions options_;
  DeviceKeys keys_;
  LocalStore* store_;
  std::map<sdk::ConversationId, Conversation> conversations_;
  std::map<std::string, sdk::ConversationId> local_ids_;  // server id -> local id
  std::map<std::string, sdk::QueueEntry> queue_;         // counsellor: by server id
  std::map<std::uint64_t, PendingRequest> pending_;
  std::vector<v1::Frame> outgoing_;
  std::deque<PendingEvent> events_;
  std::string redeem_code_;  // counsellor: waiting to be sent
  std::optional<sdk::HelplineInfo> helpline_;
  std::vector<sdk::Colleague> colleagues_;
  std::map<std::string, e2e::IdentityPublic> colleague_keys_;  // by hex id
  sdk::LoadSnapshot load_;
  std::optional<std::pair<sdk::Presence, std::vector<std::string>>> presence_;
  bool online_ = false;
  bool enrolled_ = false;  // counsellor: the server knows this device
  bool stopped_ = false;
  std::uint64_t next_request_id_ = 1;
  sdk::ConversationId next_local_id_ = 1;
  sdk::MessageId next_message_id_ = 1;
};

}  // namespace haven::client
