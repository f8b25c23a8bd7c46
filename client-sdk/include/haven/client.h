// Haven client SDK: the C++ API integrators embed (the C ABI is haven.h).
//
// A haven::sdk::Client is one person's connection to a helpline: a survivor
// (anonymous; opens conversations) or a counsellor (an enrolled device; sees
// the queue and claims conversations). It owns two threads:
//   - the I/O thread: connects to havend over haven/1 (Noise_XK, the server
//     key pinned), reconnects with backoff when the connection drops, runs the
//     end-to-end layer (X3DH, Double Ratchet) and never calls the application;
//   - the event thread: calls the application's EventCallback, one event at a
//     time, in order. Events are never delivered concurrently, never on the
//     caller's thread, and never twice (a message redelivered by the server
//     after a reconnection is recognised and dropped).
//
// Every method is thread-safe, never blocks on the network and may be called
// from inside the callback (except the destructor). Operations that need the
// server return at once; their outcome arrives as an event. OpenConversation,
// Send and RedeemInvitation are kept while the client is offline and carried
// out when it is back online; Claim and CloseConversation need the
// connection and return kUnavailable while offline.
//
// QuickExit() is the survivor's escape: see its comment and docs/sdk.md.
//
// No Asio, protobuf or libsodium type appears in this header.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "haven/version.h"
#include "haven/workflow.h"

namespace haven::sdk {

// Stable: the same values as haven_status in haven.h.
enum class Code : int {
  kOk = 0,
  kInvalidArgument = 1,   // a parameter is malformed (the message says which)
  kExited = 2,            // QuickExit() ran: the client is inert
  kWrongRole = 3,         // e.g. Claim() on a survivor client
  kNotFound = 4,          // no such conversation on this client
  kWrongState = 5,        // e.g. Send() on a closed conversation
  kStorage = 6,           // the local store or storage directory failed
  kWrongPassphrase = 7,   // the local store did not open with this key
  kRefused = 8,           // the server refused (the message says why)
  kUnavailable = 9,       // offline: Claim / CloseConversation need the connection
  kInternal = 10,
};

// A code and an English message for developers. Messages never contain
// keys, identifiers, addresses or message content.
class Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// kSupervisor is a counsellor client whose device was enrolled with a
// supervisor invitation: it can do what a counsellor does, and more.
enum class Role : int { kSurvivor = 1, kCounsellor = 2, kSupervisor = 3 };

// Local handles, assigned by this client, never 0, never reused by it.
using ConversationId = std::uint64_t;
using MessageId = std::uint64_t;

enum class ConnectionState : int {
  kConnecting = 1,  // first attempt, or retrying after a failure
  kOnline = 2,      // handshake done; operations flow
  kOffline = 3,     // the connection dropped; retrying with backoff
  kStopped = 4,     // replaced by another device with the same identity, or exited
};

enum class ConversationState : int {
  kOpening = 1,              // survivor: asked for, not yet confirmed by the server
  kWaiting = 2,              // in the queue: no counsellor yet
  kActive = 3,               // claimed; the survivor is connected
  kConnectionLost = 4,       // claimed; the survivor's connection dropped (may come back)
  kClosedBySurvivor = 5,     // a goodbye
  kClosedByCounsellor = 6,
  kSurvivorLeftQuickly = 7,  // quick exit: they may not be safe; do not re-contact
  kTransferred = 8,          // counsellor: handed to a colleague or back to the queue
  kLeft = 9,                 // supervisor: left (LeaveConversation, or the conversation was transferred)
};

enum class EventType : int {
  kConnectionChanged = 1,    // `connection`
  kConversationChanged = 2,  // `conversation`, `state` (also the first time it is seen)
  kMessageReceived = 3,      // `conversation`, `message`, `text`
  kMessageSent = 4,          // `conversation`, `message`: the server holds it
  kQueueChanged = 5,         // counsellor: call Queue() for the new snapshot
  kRequestFailed = 6,        // `conversation` (0 if none), `message` (0 if none), `error`
  kEnrolled = 7,             // counsellor: RedeemInvitation succeeded
  kSecureSessionReady = 8,   // `conversation`: end-to-end keys set up; SafetyNumber() works
  kQuickExitCompleted = 9,   // the last event this client ever delivers
  // --- counsellor workflow ---
  kHelplineConfigReceived = 10,  // Helpline() has the helpline's configuration
  kColleaguesChanged = 11,       // Colleagues() has a new list
  kTransferOffered = 12,   // `conversation` (not yours yet), `text`: the handoff note; AnswerTransfer()
  kTransferAnswered = 13,  // `conversation`, `accepted`: your warm transfer's answer
  kSupervisorAlert = 14,   // supervisor: `conversation`, `alert`, `flagged_*`
  kLoadChanged = 15,       // supervisor: LoadSnapshot() has new figures
  // --- survivor ---
  kCounsellorChanging = 16,  // `conversation`: "another counsellor is joining" (a new secure session follows)
  kResourceCardReceived = 17,  // `conversation`, `message`, `card`
  // --- survivor and counsellor: a supervisor joins as a visible participant ---
  kSupervisorJoined = 18,  // `conversation`: from now on messages also go to the supervisor
  kSupervisorLeft = 19,    // `conversation`
};

enum class AlertKind : int { kFlagged = 1, kFlaggedQuickExit = 2 };

// Passed by reference to the callback. `text` and `error_message` are
// borrowed: valid only until the callback returns; the SDK zeroes message
// text afterwards. Copy what must outlive the callback (and remember that a
// copy is outside quick exit's reach).
struct Event {
  EventType type{};
  ConnectionState connection{};
  ConversationId conversation = 0;
  ConversationState state{};
  MessageId message = 0;
  std::string_view text;
  Code error = Code::kOk;
  std::string_view error_message;
  const ResourceCard* card = nullptr;  // kResourceCardReceived; borrowed like `text`
  bool accepted = false;               // kTransferAnswered
  AlertKind alert{};                   // kSupervisorAlert
  bool flagged_high_risk = false;      // kSupervisorAlert
  bool flagged_minor = false;
  // kMessageReceived, kResourceCardReceived: who wrote it (the survivor, the
  // counsellor, or a supervisor who joined); kSecureSessionReady: with whom.
  Role sender{};
};

using EventCallback = std::function<void(const Event&)>;

struct RoutingHints {
  std::string language;   // a BCP 47 tag such as "en" or "pt-BR"; may be empty
  unsigned priority = 0;  // 0 (normal) .. 9 (most urgent)
};

struct QueueEntry {
  ConversationId conversation = 0;
  std::string language;
  unsigned priority = 0;
  bool survivor_online = false;
  std::uint64_t position = 0;  // order of arrival (lower waited longer); not a time
};

enum class Presence : int { kAvailable = 1, kBusy = 2, kAway = 3 };

// A counsellor or supervisor online now. `id` is 32 hex characters.
struct Colleague {
  std::string id;
  Role role = Role::kCounsellor;
  Presence presence = Presence::kAvailable;
  std::vector<std::string> languages;
  unsigned active_conversations = 0;
  bool is_self = false;  // this device (ListCounsellors includes it)
};

// The helpline's configuration (config/helpline.toml), for counsellors.
struct HelplineInfo {
  std::string name;
  std::vector<std::string> languages;
  unsigned max_active_per_counsellor = 0;
  unsigned max_block_hours = 0;
  struct Entry {
    std::string id;
    std::string text;  // a category's label, a canned response's text
  };
  std::vector<Entry> categories;
  std::vector<Entry> canned_responses;
  struct Referral {
    std::string id;
    ResourceCard card;
    std::vector<std::string> languages;
  };
  std::vector<Referral> referrals;
};

// Supervisor: counts and waiting times, no content.
struct LoadSnapshot {
  unsigned queued = 0, active = 0, connection_lost = 0, longest_wait_seconds = 0;
  std::vector<std::pair<std::string, unsigned>> queued_by_language;
  std::vector<Colleague> counsellors;
};

struct ConversationInfo {
  ConversationId conversation = 0;
  ConversationState state{};
  bool secure = false;  // end-to-end session set up
  std::string language;
  unsigned priority = 0;
  bool supervisor_present = false;  // a supervisor joined: it reads what is written now
};

// A message kept in the local store (only with ClientOptions::local_store).
struct HistoryEntry {
  MessageId message = 0;
  bool outgoing = false;
  std::string text;  // a copy the application owns: outside quick exit's reach
};

using Key32 = std::array<std::uint8_t, 32>;

struct ClientOptions {
  Role role = Role::kSurvivor;
  std::string host = "127.0.0.1";  // a numeric address: the SDK does no DNS lookup
  std::uint16_t port = 7420;
  Key32 server_public_key{};                // pinned; from the helpline's configuration
  std::optional<Key32> helpline_public_key;  // survivor: seals intake answers to it

  // A directory only this SDK writes to. Even a memory-only client uses it
  // for quick exit's crash-safety marker (and finishes an interrupted wipe
  // found there before doing anything else). Empty: no directory at all.
  std::string storage_dir;

  // The optional encrypted local store (off by default: memory only). It
  // holds identity keys, end-to-end session state and message history so
  // that a conversation survives an app restart, and quick exit destroys it.
  // Key it from a passphrase (Argon2id) or from 32 bytes the integrator gets
  // from the platform keystore. Both are borrowed during Create() only.
  bool local_store = false;
  std::string_view store_passphrase;
  std::optional<Key32> store_key;

  // Survivor: resume the conversations of an earlier session with the secret
  // it produced (borrowed during Create() only)...
  std::string_view resumption_secret;
  // ...or make this session resumable: ResumptionSecret() then returns a
  // secret to show the person, which the SDK never stores.
  bool resumable = false;

  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds reconnect_min{200};
  std::chrono::milliseconds reconnect_max{30000};
  // Quick exit's best-effort notice to the server; never longer.
  std::chrono::milliseconds quick_exit_notice_timeout{300};
};

class Client {
 public:
  // Starts the client and its threads and begins connecting. Before anything
  // else it completes a quick-exit wipe that a crash interrupted.
  // kInvalidArgument for bad options; kStorage / kWrongPassphrase for the
  // local store.
  static Status Create(const ClientOptions& options, EventCallback on_event,
                       std::unique_ptr<Client>* out);

  // Stops both threads; no callback runs once it returns. This is not a
  // quick exit: the local store, if enabled, is kept. After QuickExit() it
  // first lets the final kQuickExitCompleted reach the callback. Must not be
  // called from inside the callback.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // --- Survivor ---
  // Queues a conversation request; `intake` (may be empty) is sealed to the
  // helpline key, which must then be configured. Events: kConversationChanged
  // (kOpening, kWaiting, kActive...), kSecureSessionReady.
  Status OpenConversation(const RoutingHints& hints, std::string_view intake,
                          ConversationId* out);
  // The resumption secret (see ClientOptions::resumable). kWrongState if this
  // session is not resumable.
  Status ResumptionSecret(std::string* out) const;

  // --- Counsellor ---
  // Enrols this device with a one-time invitation code. Event: kEnrolled or
  // kRequestFailed.
  Status RedeemInvitation(std::string_view code);
  // The latest queue snapshot (kQueueChanged says when it changed).
  Status Queue(std::vector<QueueEntry>* out) const;
  // Claims a queued conversation. Event: kConversationChanged (kActive or
  // kConnectionLost) or kRequestFailed (someone else was faster, or you are
  // at the helpline's limit of active conversations).
  Status Claim(ConversationId conversation);

  // --- Counsellor workflow (docs/sdk.md, "Counsellor workflow") ---
  // Presence is ephemeral (this connection); `languages` filters the queue
  // you see (empty: every language). Kept across reconnections.
  Status SetPresence(Presence presence, std::vector<std::string> languages);
  Status Helpline(HelplineInfo* out) const;
  Status Colleagues(std::vector<Colleague>* out) const;
  Status RefreshColleagues();
  // Cold transfer back to the queue (`language` empty: keep it). You lose
  // access at once: the conversation becomes kTransferred.
  Status TransferToQueue(ConversationId conversation, std::string_view language);
  // To a colleague (Colleague::id). Warm: they must accept first, and the
  // handoff note (may be empty) is sealed to their device only; the answer
  // comes as kTransferAnswered. Cold: at once, without a note.
  Status TransferToColleague(ConversationId conversation, std::string_view colleague_id, bool warm,
                             std::string_view handoff_note);
  Status AnswerTransfer(ConversationId conversation, bool accept);
  // Blocks this contact (its session, and resumptions of it) for `hours`,
  // up to the helpline's max_block_hours, and closes the conversation. The
  // reason is sealed to the helpline key.
  Status Block(ConversationId conversation, unsigned hours, std::string_view reason);
  // Supervisors are alerted at once when a flag is raised, and again if a
  // flagged survivor uses quick exit. Flags never reach the survivor.
  Status Flag(ConversationId conversation, bool high_risk, bool minor);
  // Closes with a wrap-up sealed to the helpline key (ClientOptions::
  // helpline_public_key): the server stores only the sealed blob. Also
  // records one after the survivor ended the conversation (a goodbye or a
  // quick exit); one wrap-up per conversation.
  Status CloseWithWrapUp(ConversationId conversation, const WrapUp& wrapup);
  // Sends a referral from the helpline's directory as a resource card.
  Status SendResourceCard(ConversationId conversation, std::string_view referral_id,
                          MessageId* out);
  // --- Supervisor ---
  Status RefreshLoad();
  Status Load(LoadSnapshot* out) const;
  // Joins a conversation a counsellor holds (one named by a kSupervisorAlert)
  // as a visible participant: the survivor and the counsellor are told
  // (kSupervisorJoined) and each sets up an end-to-end session with this
  // device. Send() then goes to both; messages arrive with `sender`. It
  // becomes one of Conversations() once the server agrees.
  Status JoinConversation(ConversationId conversation);
  // Leaves it (state kLeft); what was still waiting for this device is deleted.
  Status LeaveConversation(ConversationId conversation);

  // --- Both ---
  // Encrypts end to end and sends (after the secure session is set up;
  // earlier messages wait for it). Event: kMessageSent once the server holds it.
  Status Send(ConversationId conversation, std::string_view text, MessageId* out);
  Status CloseConversation(ConversationId conversation);
  Status Conversations(std::vector<ConversationInfo>* out) const;
  // 60 digits in 12 groups of 5, to compare by voice. kWrongState before
  // kSecureSessionReady.
  Status SafetyNumber(ConversationId conversation, std::string* out) const;
  // The stored messages of a conversation, oldest first (empty without the
  // local store).
  Status History(ConversationId conversation, std::vector<HistoryEntry>* out) const;
  ConnectionState connection_state() const;

  // Quick exit (docs/sdk.md): from any thread, at any time, any number of
  // times; never waits on the network. When it returns, all key material
  // and message text the SDK held is zeroed, the local store is destroyed,
  // no event other than one final kQuickExitCompleted will be delivered, and
  // every later call returns kExited. A survivor's server is told on a
  // best-effort background path (the conversation ends as "left quickly").
  void QuickExit() noexcept;
  bool exited() const noexcept;

  struct Impl;

 private:
  friend struct ClientInternals;  // SDK-internal tests (src/client/testing.h)
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Plain-language names for logs and UIs.
const char* ToString(Code code);
const char* ToString(ConversationState state);

}  // namespace haven::sdk
