// havend's SQLCipher database: the schema of design.md section 5 and nothing
// more, its migrations, and the statements the relay needs.
//
// Only these columns exist (a test checks the exact set):
//   deployment(id, created_day, boot_epoch)
//   counsellors(id, device_key, role, identity_key)
//   invitations(code_hash, role, expires_at)
//   conversations(id, state, survivor_key, counsellor_id, language, priority,
//                 queue_position, sealed_intake, closed_day, counsellor_epoch,
//                 sealed_wrapup, supervisor_id)
//   envelopes(conversation_id, seq, recipient, ciphertext, expires_day, sender)
//   prekeys(counsellor_id, kind, key_id, public_key, signature)
//   blocks(survivor_key, expires_at)
//   audit(id, day, sealed)
// Times are day numbers (days since 1970-01-01) except the expiry of an
// invitation or a block, in seconds (a block's rounded up to the hour);
// nothing records when a message was sent.
//
// Thread-safety: a ServerStore belongs to one thread (the storage worker).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "haven/noise/primitives.h"
#include "haven/sqlcipher/database.h"

namespace haven::server {

using ConversationId = std::array<std::uint8_t, 16>;
using CounsellorId = std::array<std::uint8_t, 16>;

// A participant of a conversation: who an envelope is for, and from. The
// values are stored and equal haven.v1.Role's: never renumber.
enum class Side : std::uint8_t { kSurvivor = 1, kCounsellor = 2, kSupervisor = 3 };

inline std::optional<Side> SideFromStored(std::int64_t v) {
  if (v < 1 || v > 3) return std::nullopt;
  return static_cast<Side>(v);
}

struct CounsellorRecord {
  CounsellorId id{};
  noise::PublicKey device_key{};
  int role = 0;  // haven.v1.Role
  Bytes identity_key;  // end-to-end identity, once published (64 bytes)
};

// kind: 1 signed prekey (one per counsellor), 2 one-time prekey.
struct PrekeyRecord {
  CounsellorId counsellor_id{};
  int kind = 0;
  std::uint32_t key_id = 0;
  Bytes public_key;
  Bytes signature;  // signed prekeys only
};

struct ConversationRecord {
  ConversationId id{};
  int state = 0;  // haven.v1.ConversationState
  noise::PublicKey survivor_key{};
  std::optional<CounsellorId> counsellor_id;
  std::string language;
  std::uint32_t priority = 0;
  std::uint64_t queue_position = 0;
  Bytes sealed_intake;
  std::optional<std::int64_t> closed_day;
  std::uint32_t counsellor_epoch = 0;  // transfers so far
  std::optional<CounsellorId> supervisor_id;  // a supervisor who joined
};

// A survivor session blocked by a counsellor until `expires_at` (seconds).
struct BlockRecord {
  noise::PublicKey survivor_key{};
  std::int64_t expires_at = 0;
};

// One audit event, sealed to the helpline's audit key (haven-admin opens it).
struct AuditRow {
  std::int64_t day = 0;
  Bytes sealed;
};

struct EnvelopeRecord {
  ConversationId conversation_id{};
  std::uint64_t seq = 0;
  Side recipient = Side::kCounsellor;
  std::optional<Side> sender;  // unset: the other party (rows from before schema 5)
  Bytes ciphertext;
  std::int64_t expires_day = 0;
};

struct StoredState {
  std::vector<CounsellorRecord> counsellors;
  std::vector<ConversationRecord> conversations;
  std::vector<EnvelopeRecord> envelopes;  // ordered by conversation, then seq
  std::vector<PrekeyRecord> prekeys;      // ordered by counsellor, kind, key id
  std::vector<BlockRecord> blocks;
};

struct RetentionResult {
  std::int64_t conversations_purged = 0;
  std::int64_t envelopes_expired = 0;
  std::int64_t invitations_expired = 0;
  std::int64_t blocks_expired = 0;
  std::int64_t audit_purged = 0;
};

struct RowCounts {
  std::int64_t counsellors = 0;
  std::int64_t invitations = 0;
  std::int64_t conversations_open = 0;
  std::int64_t conversations_closed = 0;
  std::int64_t envelopes = 0;
};

struct RetentionPolicy {
  std::int64_t closed_conversation_days = 30;
  std::int64_t audit_days = 365;
};

inline std::int64_t DayNumber(std::int64_t unix_seconds) { return unix_seconds / 86400; }

class ServerStore {
 public:
  // Opens and migrates. When `start_boot` is set the boot epoch is advanced
  // (havend does this once per start; tools that only read do not).
  static Result<std::unique_ptr<ServerStore>> Open(const std::string& path, ByteView raw_key,
                                                   bool start_boot);

  // Envelope sequence numbers are (boot_epoch << 32) | counter, so a number
  // handed out before a crash is never handed out again after it.
  std::uint32_t boot_epoch() const { return boot_epoch_; }

  Result<StoredState> Load();

  Status InsertConversation(const ConversationRecord& c);
  Status UpdateConversation(const ConversationId& id, int state,
                            const std::optional<CounsellorId>& counsellor,
                            std::optional<std::int64_t> closed_day);
  // State, counsellor, language and counsellor_epoch (a claim or a transfer).
  Status UpdateRouting(const ConversationRecord& c);
  Status SetWrapUp(const ConversationId& id, ByteView sealed_wrapup);
  Status PutBlock(const BlockRecord& b);
  Status AppendAudit(std::int64_t day, ByteView sealed);
  Result<std::vector<AuditRow>> ReadAudit();
  Status InsertEnvelope(const EnvelopeRecord& e);
  Status DeleteEnvelope(const ConversationId& id, std::uint64_t seq);
  // Deletes every envelope queued for the survivor of a conversation.
  Status DeleteEnvelopesFor(const ConversationId& id, Side recipient);
  // Deletes a conversation and its envelopes now (one withdrawn before any
  // counsellor claimed it: nothing of it is needed any more).
  Status DeleteConversation(const ConversationId& id);

  // Sets the identity (if given), replaces the signed prekey (if given) and
  // adds one-time prekeys, in one savepoint of the caller's batch.
  Status PublishPrekeys(const CounsellorId& counsellor, ByteView identity_key,
                        const std::optional<PrekeyRecord>& signed_prekey,
                        const std::vector<PrekeyRecord>& one_time);
  Status DeletePrekey(const CounsellorId& counsellor, int kind, std::uint32_t key_id);

  Status CreateInvitation(ByteView code_hash, int role, std::int64_t expires_at);
  // Consumes a valid invitation and registers `device_key` as a counsellor
  // with a fresh id. nullopt if no unexpired invitation has that hash.
  Result<std::optional<CounsellorRecord>> RedeemInvitation(ByteView code_hash,
                                                           const noise::PublicKey& device_key,
                                                           std::int64_t now_seconds);

  Result<RetentionResult> ApplyRetention(std::int64_t now_seconds, const RetentionPolicy& policy);
  Result<RowCounts> Counts();

  sqlcipher::Database& db() { return *db_; }

 private:
  explicit ServerStore(std::unique_ptr<sqlcipher::Database> db) : db_(std::move(db)) {}

  std::unique_ptr<sqlcipher::Database> db_;
  std::uint32_t boot_epoch_ = 0;
};

}  // namespace haven::server
