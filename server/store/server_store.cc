#include "server_store.h"

#include <sodium.h>

#include <cstring>
#include <string_view>
#include <vector>

namespace haven::server {
namespace {

// Schema history. Never edit an entry that has shipped; append a new one.
const std::vector<std::string_view>& Migrations() {
  static const std::vector<std::string_view> migrations = {
      // 1: deployment facts. Time is kept to the day: nothing finer is needed.
      "CREATE TABLE deployment ("
      "  id INTEGER PRIMARY KEY CHECK (id = 1),"
      "  created_day INTEGER NOT NULL"
      ");"
      "INSERT INTO deployment (id, created_day) VALUES (1, CAST(strftime('%s','now') AS INTEGER) / 86400);",
      // 2: what routing needs (design.md section 5), nothing else.
      "ALTER TABLE deployment ADD COLUMN boot_epoch INTEGER NOT NULL DEFAULT 0;"
      "CREATE TABLE counsellors ("
      "  id BLOB PRIMARY KEY,"
      "  device_key BLOB NOT NULL UNIQUE,"
      "  role INTEGER NOT NULL"
      ");"
      "CREATE TABLE invitations ("
      "  code_hash BLOB PRIMARY KEY,"
      "  role INTEGER NOT NULL,"
      "  expires_at INTEGER NOT NULL"
      ");"
      "CREATE TABLE conversations ("
      "  id BLOB PRIMARY KEY,"
      "  state INTEGER NOT NULL,"
      "  survivor_key BLOB NOT NULL,"
      "  counsellor_id BLOB,"
      "  language TEXT NOT NULL,"
      "  priority INTEGER NOT NULL,"
      "  queue_position INTEGER NOT NULL,"
      "  sealed_intake BLOB,"
      "  closed_day INTEGER"
      ");"
      "CREATE TABLE envelopes ("
      "  conversation_id BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
      "  seq INTEGER NOT NULL,"
      "  recipient INTEGER NOT NULL,"
      "  ciphertext BLOB NOT NULL,"
      "  expires_day INTEGER NOT NULL,"
      "  PRIMARY KEY (conversation_id, seq)"
      ") WITHOUT ROWID;",
      // 3: X3DH prekeys: public keys only.
      "ALTER TABLE counsellors ADD COLUMN identity_key BLOB;"
      "CREATE TABLE prekeys ("
      "  counsellor_id BLOB NOT NULL REFERENCES counsellors(id) ON DELETE CASCADE,"
      "  kind INTEGER NOT NULL,"
      "  key_id INTEGER NOT NULL,"
      "  public_key BLOB NOT NULL,"
      "  signature BLOB,"
      "  PRIMARY KEY (counsellor_id, kind, key_id)"
      ") WITHOUT ROWID;",
      // 4: the counsellor workflow. A transfer moves a conversation to
      // another counsellor (counsellor_epoch counts the moves); the wrap-up
      // is sealed to the helpline key; a block keys on the survivor's
      // session key until it expires (to the hour); audit events are sealed
      // to the helpline's audit key and kept to the day.
      "ALTER TABLE conversations ADD COLUMN counsellor_epoch INTEGER NOT NULL DEFAULT 0;"
      "ALTER TABLE conversations ADD COLUMN sealed_wrapup BLOB;"
      "CREATE TABLE blocks ("
      "  survivor_key BLOB PRIMARY KEY,"
      "  expires_at INTEGER NOT NULL"
      ") WITHOUT ROWID;"
      "CREATE TABLE audit ("
      "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
      "  day INTEGER NOT NULL,"
      "  sealed BLOB NOT NULL"
      ");",
      // 5: a supervisor who joined a conversation as a visible participant
      // (docs/protocol.md 25.8): who it is, for routing envelopes to it, and
      // which participant sent each envelope (the recipient needs it to pick
      // the end-to-end session; 0 on rows from before: the other party).
      "ALTER TABLE conversations ADD COLUMN supervisor_id BLOB;"
      "ALTER TABLE envelopes ADD COLUMN sender INTEGER NOT NULL DEFAULT 0;",
  };
  return migrations;
}

template <std::size_t N>
bool CopyBlob(const Bytes& blob, std::array<std::uint8_t, N>* out) {
  if (blob.size() != N) return false;
  std::memcpy(out->data(), blob.data(), N);
  return true;
}

}  // namespace

Result<std::unique_ptr<ServerStore>> ServerStore::Open(const std::string& path, ByteView raw_key,
                                                       bool start_boot) {
  HAVEN_ASSIGN_OR_RETURN(std::unique_ptr<sqlcipher::Database> db,
                         sqlcipher::Database::Open(path, raw_key));
  HAVEN_RETURN_IF_ERROR(db->Migrate(Migrations()));
  std::unique_ptr<ServerStore> store(new ServerStore(std::move(db)));
  if (start_boot) {
    HAVEN_RETURN_IF_ERROR(
        store->db_->Exec("UPDATE deployment SET boot_epoch = boot_epoch + 1 WHERE id = 1"));
  }
  HAVEN_ASSIGN_OR_RETURN(std::int64_t epoch,
                         store->db_->QueryInt("SELECT boot_epoch FROM deployment WHERE id = 1"));
  if (epoch < 0 || epoch > 0x7fffffff) return Status::DataLoss("boot epoch out of range");
  store->boot_epoch_ = static_cast<std::uint32_t>(epoch);
  return store;
}

Result<StoredState> ServerStore::Load() {
  StoredState out;
  {
    HAVEN_ASSIGN_OR_RETURN(auto stmt,
                           db_->Prepare("SELECT id, device_key, role, identity_key FROM counsellors"));
    while (true) {
      HAVEN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      CounsellorRecord c;
      if (!CopyBlob(stmt.ColumnBlob(0), &c.id) || !CopyBlob(stmt.ColumnBlob(1), &c.device_key)) {
        return Status::DataLoss("malformed counsellor row");
      }
      c.role = static_cast<int>(stmt.ColumnInt(2));
      c.identity_key = stmt.ColumnBlob(3);
      out.counsellors.push_back(c);
    }
  }
  {
    HAVEN_ASSIGN_OR_RETURN(
        auto stmt, db_->Prepare("SELECT id, state, survivor_key, counsellor_id, language, priority, "
                                "queue_position, sealed_intake, closed_day, counsellor_epoch, "
                                "supervisor_id FROM conversations ORDER BY queue_position"));
    while (true) {
      HAVEN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      ConversationRecord c;
      if (!CopyBlob(stmt.ColumnBlob(0), &c.id) || !CopyBlob(stmt.ColumnBlob(2), &c.survivor_key)) {
        return Status::DataLoss("malformed conversation row");
      }
      c.state = static_cast<int>(stmt.ColumnInt(1));
      const Bytes counsellor = stmt.ColumnBlob(3);
      if (!counsellor.empty()) {
        CounsellorId id{};
        if (!CopyBlob(counsellor, &id)) return Status::DataLoss("malformed conversation row");
        c.counsellor_id = id;
      }
      c.language = stmt.ColumnText(4);
      c.priority = static_cast<std::uint32_t>(stmt.ColumnInt(5));
      c.queue_position = static_cast<std::uint64_t>(stmt.ColumnInt(6));
      c.sealed_intake = stmt.ColumnBlob(7);
      if (!stmt.ColumnIsNull(8)) c.closed_day = stmt.ColumnInt(8);
      c.counsellor_epoch = static_cast<std::uint32_t>(stmt.ColumnInt(9));
      const Bytes supervisor = stmt.ColumnBlob(10);
      if (!supervisor.empty()) {
        CounsellorId id{};
        if (!CopyBlob(supervisor, &id)) return Status::DataLoss("malformed conversation row");
        c.supervisor_id = id;
      }
      out.conversations.push_back(std::move(c));
    }
  }
  {
    HAVEN_ASSIGN_OR_RETURN(
        auto stmt, db_->Prepare("SELECT conversation_id, seq, recipient, ciphertext, expires_day, "
                                "sender FROM envelopes ORDER BY conversation_id, seq"));
    while (true) {
      HAVEN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      EnvelopeRecord e;
      if (!CopyBlob(stmt.ColumnBlob(0), &e.conversation_id)) {
        return Status::DataLoss("malformed envelope row");
      }
      e.seq = static_cast<std::uint64_t>(stmt.ColumnInt(1));
      auto recipient = SideFromStored(stmt.ColumnInt(2));
      if (!recipient) return Status::DataLoss("malformed envelope row");
      e.recipient = *recipient;
      e.ciphertext = stmt.ColumnBlob(3);
      e.expires_day = stmt.ColumnInt(4);
      e.sender = SideFromStored(stmt.ColumnInt(5));
      out.envelopes.push_back(std::move(e));
    }
  }
  {
    HAVEN_ASSIGN_OR_RETURN(
        auto stmt, db_->Prepare("SELECT counsellor_id, kind, key_id, public_key, signature FROM "
                                "prekeys ORDER BY counsellor_id, kind, key_id"));
    while (true) {
      HAVEN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      PrekeyRecord p;
      if (!CopyBlob(stmt.ColumnBlob(0), &p.counsellor_id)) return Status::DataLoss("malformed prekey row");
      p.kind = static_cast<int>(stmt.ColumnInt(1));
      p.key_id = static_cast<std::uint32_t>(stmt.ColumnInt(2));
      p.public_key = stmt.ColumnBlob(3);
      p.signature = stmt.ColumnBlob(4);
      out.prekeys.push_back(std::move(p));
    }
  }
  {
    HAVEN_ASSIGN_OR_RETURN(auto stmt, db_->Prepare("SELECT survivor_key, expires_at FROM blocks"));
    while (true) {
      HAVEN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      BlockRecord b;
      if (!CopyBlob(stmt.ColumnBlob(0), &b.survivor_key)) return Status::DataLoss("malformed block row");
      b.expires_at = stmt.ColumnInt(1);
      out.blocks.push_back(b);
    }
  }
  return out;
}

Status ServerStore::UpdateRouting(const ConversationRecord& c) {
  HAVEN_ASSIGN_OR_RETURN(sqlcipher::Statement* stmt,
                         db_->Cached("UPDATE conversations SET state = ?, counsellor_id = ?, "
                                     "language = ?, counsellor_epoch = ?, supervisor_id = ? "
                                     "WHERE id = ?"));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(1, c.state));
  // Unbound parameters are NULL (bindings are cleared after each use).
  if (c.counsellor_id) HAVEN_RETURN_IF_ERROR(stmt->BindBlob(2, *c.counsellor_id));
  HAVEN_RETURN_IF_ERROR(stmt->BindText(3, c.language));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(4, c.counsellor_epoch));
  if (c.supervisor_id) HAVEN_RETURN_IF_ERROR(stmt->BindBlob(5, *c.supervisor_id));
  HAVEN_RETURN_IF_ERROR(stmt->BindBlob(6, c.id));
  return stmt->Step().status();
}

Status ServerStore::SetWrapUp(const ConversationId& id, ByteView sealed_wrapup) {
  HAVEN_ASSIGN_OR_RETURN(auto stmt,
                         db_->Prepare("UPDATE conversations SET sealed_wrapup = ? WHERE id = ?"));
  HAVEN_RETURN_IF_ERROR(stmt.BindBlob(1, sealed_wrapup));
  HAVEN_RETURN_IF_ERROR(stmt.BindBlob(2, id));
  return stmt.Step().status();
}

Status ServerStore::PutBlock(const BlockRecord& b) {
  HAVEN_ASSIGN_OR_RETURN(
      auto stmt, db_->Prepare("INSERT OR REPLACE INTO blocks (survivor_key, expires_at) VALUES (?, ?)"));
  HAVEN_RETURN_IF_ERROR(stmt.BindBlob(1, b.survivor_key));
  HAVEN_RETURN_IF_ERROR(stmt.BindInt(2, b.expires_at));
  return stmt.Step().status();
}

Status ServerStore::AppendAudit(std::int64_t day, ByteView sealed) {
  HAVEN_ASSIGN_OR_RETURN(sqlcipher::Statement* stmt,
                         db_->Cached("INSERT INTO audit (day, sealed) VALUES (?, ?)"));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(1, day));
  HAVEN_RETURN_IF_ERROR(stmt->BindBlob(2, sealed));
  return stmt->Step().status();
}

Result<std::vector<AuditRow>> ServerStore::ReadAudit() {
  HAVEN_ASSIGN_OR_RETURN(auto stmt, db_->Prepare("SELECT day, sealed FROM audit ORDER BY id"));
  std::vector<AuditRow> out;
  while (true) {
    HAVEN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back({stmt.ColumnInt(0), stmt.ColumnBlob(1)});
  }
  return out;
}

Status ServerStore::PublishPrekeys(const CounsellorId& counsellor, ByteView identity_key,
                                   const std::optional<PrekeyRecord>& signed_prekey,
                                   const std::vector<PrekeyRecord>& one_time) {
  if (!identity_key.empty()) {
    HAVEN_ASSIGN_OR_RETURN(auto stmt,
                           db_->Prepare("UPDATE counsellors SET identity_key = ? WHERE id = ?"));
    HAVEN_RETURN_IF_ERROR(stmt.BindBlob(1, identity_key));
    HAVEN_RETURN_IF_ERROR(stmt.BindBlob(2, counsellor));
    HAVEN_RETURN_IF_ERROR(stmt.Step().status());
  }
  auto insert = [&](const PrekeyRecord& p) -> Status {
    HAVEN_ASSIGN_OR_RETURN(auto stmt,
                           db_->Prepare("INSERT OR REPLACE INTO prekeys (counsellor_id, kind, "
                                        "key_id, public_key, signature) VALUES (?, ?, ?, ?, ?)"));
    HAVEN_RETURN_IF_ERROR(stmt.BindBlob(1, counsellor));
    HAVEN_RETURN_IF_ERROR(stmt.BindInt(2, p.kind));
    HAVEN_RETURN_IF_ERROR(stmt.BindInt(3, p.key_id));
    HAVEN_RETURN_IF_ERROR(stmt.BindBlob(4, p.public_key));
    if (!p.signature.empty()) HAVEN_RETURN_IF_ERROR(stmt.BindBlob(5, p.signature));
    return stmt.Step().status();
  };
  if (signed_prekey) {
    HAVEN_ASSIGN_OR_RETURN(auto stmt,
                           db_->Prepare("DELETE FROM prekeys WHERE counsellor_id = ? AND kind = 1"));
    HAVEN_RETURN_IF_ERROR(stmt.BindBlob(1, counsellor));
    HAVEN_RETURN_IF_ERROR(stmt.Step().status());
    HAVEN_RETURN_IF_ERROR(insert(*signed_prekey));
  }
  for (const PrekeyRecord& p : one_time) HAVEN_RETURN_IF_ERROR(insert(p));
  return Status::Ok();
}

Status ServerStore::DeletePrekey(const CounsellorId& counsellor, int kind, std::uint32_t key_id) {
  HAVEN_ASSIGN_OR_RETURN(
      sqlcipher::Statement* stmt,
      db_->Cached("DELETE FROM prekeys WHERE counsellor_id = ? AND kind = ? AND key_id = ?"));
  HAVEN_RETURN_IF_ERROR(stmt->BindBlob(1, counsellor));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(2, kind));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(3, key_id));
  return stmt->Step().status();
}

Status ServerStore::InsertConversation(const ConversationRecord& c) {
  HAVEN_ASSIGN_OR_RETURN(
      sqlcipher::Statement* stmt,
      db_->Cached("INSERT INTO conversations (id, state, survivor_key, counsellor_id, "
                  "language, priority, queue_position, sealed_intake, closed_day) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  HAVEN_RETURN_IF_ERROR(stmt->BindBlob(1, c.id));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(2, c.state));
  HAVEN_RETURN_IF_ERROR(stmt->BindBlob(3, c.survivor_key));
  if (c.counsellor_id) HAVEN_RETURN_IF_ERROR(stmt->BindBlob(4, *c.counsellor_id));
  HAVEN_RETURN_IF_ERROR(stmt->BindText(5, c.language));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(6, c.priority));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(7, static_cast<std::int64_t>(c.queue_position)));
  if (!c.sealed_intake.empty()) HAVEN_RETURN_IF_ERROR(stmt->BindBlob(8, c.sealed_intake));
  if (c.closed_day) HAVEN_RETURN_IF_ERROR(stmt->BindInt(9, *c.closed_day));
  return stmt->Step().status();
}

Status ServerStore::UpdateConversation(const ConversationId& id, int state,
                                       const std::optional<CounsellorId>& counsellor,
                                       std::optional<std::int64_t> closed_day) {
  HAVEN_ASSIGN_OR_RETURN(sqlcipher::Statement* stmt,
                         db_->Cached("UPDATE conversations SET state = ?, counsellor_id = ?, "
                                      "closed_day = ? WHERE id = ?"));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(1, state));
  if (counsellor) HAVEN_RETURN_IF_ERROR(stmt->BindBlob(2, *counsellor));
  if (closed_day) HAVEN_RETURN_IF_ERROR(stmt->BindInt(3, *closed_day));
  HAVEN_RETURN_IF_ERROR(stmt->BindBlob(4, id));
  return stmt->Step().status();
}

Status ServerStore::InsertEnvelope(const EnvelopeRecord& e) {
  HAVEN_ASSIGN_OR_RETURN(sqlcipher::Statement* stmt,
                         db_->Cached("INSERT INTO envelopes (conversation_id, seq, recipient, "
                                      "ciphertext, expires_day, sender) VALUES (?, ?, ?, ?, ?, ?)"));
  HAVEN_RETURN_IF_ERROR(stmt->BindBlob(1, e.conversation_id));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(2, static_cast<std::int64_t>(e.seq)));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(3, static_cast<int>(e.recipient)));
  HAVEN_RETURN_IF_ERROR(stmt->BindBlob(4, e.ciphertext));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(5, e.expires_day));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(6, e.sender ? static_cast<int>(*e.sender) : 0));
  return stmt->Step().status();
}

Status ServerStore::DeleteEnvelope(const ConversationId& id, std::uint64_t seq) {
  HAVEN_ASSIGN_OR_RETURN(sqlcipher::Statement* stmt,
                         db_->Cached("DELETE FROM envelopes WHERE conversation_id = ? AND seq = ?"));
  HAVEN_RETURN_IF_ERROR(stmt->BindBlob(1, id));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(2, static_cast<std::int64_t>(seq)));
  return stmt->Step().status();
}

Status ServerStore::DeleteEnvelopesFor(const ConversationId& id, Side recipient) {
  HAVEN_ASSIGN_OR_RETURN(
      sqlcipher::Statement* stmt,
      db_->Cached("DELETE FROM envelopes WHERE conversation_id = ? AND recipient = ?"));
  HAVEN_RETURN_IF_ERROR(stmt->BindBlob(1, id));
  HAVEN_RETURN_IF_ERROR(stmt->BindInt(2, static_cast<int>(recipient)));
  return stmt->Step().status();
}

Status ServerStore::DeleteConversation(const ConversationId& id) {
  HAVEN_RETURN_IF_ERROR(DeleteEnvelopesFor(id, Side::kSurvivor));
  HAVEN_RETURN_IF_ERROR(DeleteEnvelopesFor(id, Side::kCounsellor));
  HAVEN_RETURN_IF_ERROR(DeleteEnvelopesFor(id, Side::kSupervisor));
  HAVEN_ASSIGN_OR_RETURN(auto stmt, db_->Prepare("DELETE FROM conversations WHERE id = ?"));
  HAVEN_RETURN_IF_ERROR(stmt.BindBlob(1, id));
  return stmt.Step().status();
}

Status ServerStore::CreateInvitation(ByteView code_hash, int role, std::int64_t expires_at) {
  HAVEN_ASSIGN_OR_RETURN(
      auto stmt, db_->Prepare("INSERT INTO invitations (code_hash, role, expires_at) VALUES (?, ?, ?)"));
  HAVEN_RETURN_IF_ERROR(stmt.BindBlob(1, code_hash));
  HAVEN_RETURN_IF_ERROR(stmt.BindInt(2, role));
  HAVEN_RETURN_IF_ERROR(stmt.BindInt(3, expires_at));
  return stmt.Step().status();
}

Result<std::optional<CounsellorRecord>> ServerStore::RedeemInvitation(
    ByteView code_hash, const noise::PublicKey& device_key, std::int64_t now_seconds) {
  int role = 0;
  {
    HAVEN_ASSIGN_OR_RETURN(
        auto stmt, db_->Prepare("SELECT role FROM invitations WHERE code_hash = ? AND expires_at > ?"));
    HAVEN_RETURN_IF_ERROR(stmt.BindBlob(1, code_hash));
    HAVEN_RETURN_IF_ERROR(stmt.BindInt(2, now_seconds));
    HAVEN_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<CounsellorRecord>();
    role = static_cast<int>(stmt.ColumnInt(0));
  }
  {
    HAVEN_ASSIGN_OR_RETURN(auto stmt, db_->Prepare("DELETE FROM invitations WHERE code_hash = ?"));
    HAVEN_RETURN_IF_ERROR(stmt.BindBlob(1, code_hash));
    HAVEN_RETURN_IF_ERROR(stmt.Step().status());
  }
  CounsellorRecord c;
  randombytes_buf(c.id.data(), c.id.size());
  c.device_key = device_key;
  c.role = role;
  HAVEN_ASSIGN_OR_RETURN(
      auto stmt, db_->Prepare("INSERT INTO counsellors (id, device_key, role) VALUES (?, ?, ?)"));
  HAVEN_RETURN_IF_ERROR(stmt.BindBlob(1, c.id));
  HAVEN_RETURN_IF_ERROR(stmt.BindBlob(2, c.device_key));
  HAVEN_RETURN_IF_ERROR(stmt.BindInt(3, c.role));
  HAVEN_RETURN_IF_ERROR(stmt.Step().status());
  return std::optional<CounsellorRecord>(c);
}

Result<RetentionResult> ServerStore::ApplyRetention(std::int64_t now_seconds,
                                                    const RetentionPolicy& policy) {
  const std::int64_t today = DayNumber(now_seconds);
  RetentionResult r;
  // Cached: the sweep runs every minute for the life of havend.
  auto run = [this](std::string_view sql, std::int64_t arg) -> Result<std::int64_t> {
    HAVEN_ASSIGN_OR_RETURN(auto* stmt, db_->Cached(sql));
    HAVEN_RETURN_IF_ERROR(stmt->BindInt(1, arg));
    HAVEN_RETURN_IF_ERROR(stmt->Step().status());
    return db_->changes();
  };
  HAVEN_ASSIGN_OR_RETURN(r.envelopes_expired,
                         run("DELETE FROM envelopes WHERE expires_day < ?", today));
  HAVEN_ASSIGN_OR_RETURN(
      r.conversations_purged,
      run("DELETE FROM conversations WHERE closed_day IS NOT NULL AND closed_day <= ?",
          today - policy.closed_conversation_days));
  HAVEN_ASSIGN_OR_RETURN(r.invitations_expired,
                         run("DELETE FROM invitations WHERE expires_at <= ?", now_seconds));
  HAVEN_ASSIGN_OR_RETURN(r.blocks_expired, run("DELETE FROM blocks WHERE expires_at <= ?", now_seconds));
  HAVEN_ASSIGN_OR_RETURN(r.audit_purged, run("DELETE FROM audit WHERE day <= ?",
                                             today - policy.audit_days));
  return r;
}

Result<RowCounts> ServerStore::Counts() {
  RowCounts c;
  HAVEN_ASSIGN_OR_RETURN(c.counsellors, db_->QueryInt("SELECT count(*) FROM counsellors"));
  HAVEN_ASSIGN_OR_RETURN(c.invitations, db_->QueryInt("SELECT count(*) FROM invitations"));
  HAVEN_ASSIGN_OR_RETURN(
      c.conversations_open,
      db_->QueryInt("SELECT count(*) FROM conversations WHERE closed_day IS NULL"));
  HAVEN_ASSIGN_OR_RETURN(
      c.conversations_closed,
      db_->QueryInt("SELECT count(*) FROM conversations WHERE closed_day IS NOT NULL"));
  HAVEN_ASSIGN_OR_RETURN(c.envelopes, db_->QueryInt("SELECT count(*) FROM envelopes"));
  return c;
}

}  // namespace haven::server
