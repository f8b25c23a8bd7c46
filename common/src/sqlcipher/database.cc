#include "haven/sqlcipher/database.h"

#include <sqlite3.h>  // SQLCipher's, via pkg-config's -I/usr/include/sqlcipher
#include <sys/stat.h>

#include <string>
#include <utility>

#include "haven/common/secure_memory.h"

namespace haven::sqlcipher {
namespace {

// Builds `PRAGMA <verb> = "x'<hex>'"` in guarded memory.
SecureBuffer KeyPragma(std::string_view verb, ByteView raw_key) {
  static constexpr std::string_view kPrefix = "PRAGMA ";
  static constexpr std::string_view kMiddle = " = \"x'";
  static constexpr std::string_view kSuffix = "'\";";
  const std::size_t len = kPrefix.size() + verb.size() + kMiddle.size() + raw_key.size() * 2 +
                          kSuffix.size() + 1;
  SecureBuffer sql(len);
  char* p = reinterpret_cast<char*>(sql.data());
  auto put = [&p](std::string_view s) { p = std::copy(s.begin(), s.end(), p); };
  put(kPrefix);
  put(verb);
  put(kMiddle);
  EncodeHexInto(raw_key, p);
  p += raw_key.size() * 2;
  put(kSuffix);
  *p = '\0';
  return sql;
}

}  // namespace

Status Database::Error(std::string_view what) const {
  std::string msg(what);
  msg += ": ";
  msg += sqlite3_errmsg(db_);
  return Status::Internal(msg);
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, ByteView raw_key) {
  if (raw_key.size() != kRawKeyLen) {
    return Status::InvalidArgument("the database key must be exactly 32 bytes");
  }
  // Create the file ourselves so it is never world-readable, even briefly.
  const mode_t old_mask = ::umask(077);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  ::umask(old_mask);
  std::unique_ptr<Database> db(new Database(raw, path));
  if (rc != SQLITE_OK) {
    return Status::Unavailable("cannot open database file " + path + ": " +
                               (raw ? sqlite3_errmsg(raw) : "out of memory"));
  }
  {
    SecureBuffer pragma = KeyPragma("key", raw_key);
    const int key_rc =
        sqlite3_exec(raw, reinterpret_cast<const char*>(pragma.data()), nullptr, nullptr, nullptr);
    if (key_rc != SQLITE_OK) return db->Error("keying " + path);
  }
  // SQLCipher 3 defaults, spelled out: they must match on every open.
  HAVEN_RETURN_IF_ERROR(db->Exec("PRAGMA cipher_page_size = 4096; PRAGMA kdf_iter = 64000;"));
  // The key is only checked when a page is read: read one now. A page that
  // does not decrypt is SQLITE_NOTADB; anything else (an I/O error, a file
  // that cannot be locked) is not the key's fault and must not be blamed on it.
  const int read_rc =
      sqlite3_exec(raw, "SELECT count(*) FROM sqlite_master;", nullptr, nullptr, nullptr);
  if (read_rc == SQLITE_NOTADB) {
    return Status::DataLoss("database file " + path +
                            " cannot be decrypted: wrong key, or not a Haven database");
  }
  if (read_rc != SQLITE_OK) {
    return Status::Unavailable("cannot read database file " + path + ": " +
                               sqlite3_errmsg(raw) + " (check the disk and the file)");
  }
  HAVEN_RETURN_IF_ERROR(db->Exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; "
      "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"));
  sqlite3_busy_timeout(raw, 5000);
  return db;
}

Database::~Database() {
  cache_.clear();  // finalise before closing
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Status Database::Exec(std::string_view sql) {
  const std::string text(sql);
  char* err = nullptr;
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::Internal("database: " + msg);
  }
  return Status::Ok();
}

Result<Statement> Database::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return Error("prepare");
  }
  return Statement(this, stmt);
}

Result<Statement*> Database::Cached(std::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it == cache_.end()) {
    HAVEN_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
    it = cache_.emplace(std::string(sql), std::make_unique<Statement>(std::move(stmt))).first;
  }
  HAVEN_RETURN_IF_ERROR(it->second->Reset());
  return it->second.get();
}

Status Database::Run(std::string_view sql) {
  HAVEN_ASSIGN_OR_RETURN(Statement* stmt, Cached(sql));
  int rc;
  while ((rc = sqlite3_step(stmt->stmt_)) == SQLITE_ROW) {
  }
  // The same message as Exec() ("database: ..."), read before the reset.
  Status st = rc == SQLITE_DONE ? Status::Ok() : Error("database");
  (void)stmt->Reset();
  return st;
}

Result<std::int64_t> Database::QueryInt(std::string_view sql) {
  HAVEN_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
  HAVEN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Status::NotFound("query returned no row");
  return stmt.ColumnInt(0);
}

Status Database::Migrate(const std::vector<std::string_view>& migrations) {
  HAVEN_ASSIGN_OR_RETURN(std::int64_t version, SchemaVersion());
  if (version < 0 || static_cast<std::size_t>(version) > migrations.size()) {
    return Status::FailedPrecondition("database " + path_ + " has schema version " +
                                      std::to_string(version) +
                                      ", newer than this build understands; upgrade havend");
  }
  for (auto i = static_cast<std::size_t>(version); i < migrations.size(); ++i) {
    HAVEN_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status st = Exec(migrations[i]);
    if (st.ok()) st = Exec("PRAGMA user_version = " + std::to_string(i + 1));
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st.WithContext("migration " + std::to_string(i + 1));
    }
    HAVEN_RETURN_IF_ERROR(Exec("COMMIT"));
  }
  return Status::Ok();
}

Status Database::Rekey(ByteView new_raw_key) {
  if (new_raw_key.size() != kRawKeyLen) {
    return Status::InvalidArgument("the database key must be exactly 32 bytes");
  }
  SecureBuffer pragma = KeyPragma("rekey", new_raw_key);
  if (sqlite3_exec(db_, reinterpret_cast<const char*>(pragma.data()), nullptr, nullptr, nullptr) !=
      SQLITE_OK) {
    return Error("rekey");
  }
  return Status::Ok();
}

std::int64_t Database::changes() const { return sqlite3_changes(db_); }

Transaction::Transaction(Database& db) : db_(db) {
  status_ = db_.Run("BEGIN IMMEDIATE");
  open_ = status_.ok();
}

Transaction::~Transaction() {
  if (open_) (void)db_.Run("ROLLBACK");
}

Status Transaction::Commit() {
  if (!open_) return status_.ok() ? Status::FailedPrecondition("transaction already ended") : status_;
  Status st = db_.Run("COMMIT");
  if (st.ok()) open_ = false;  // on failure the destructor rolls back
  return st;
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Status Statement::BindInt(int index, std::int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) return db_->Error("bind");
  return Status::Ok();
}

Status Statement::BindBlob(int index, ByteView value) {
  if (sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT) !=
      SQLITE_OK) {
    return db_->Error("bind");
  }
  return Status::Ok();
}

Status Statement::BindText(int index, std::string_view value) {
  if (sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                          SQLITE_UTF8) != SQLITE_OK) {
    return db_->Error("bind");
  }
  return Status::Ok();
}

Result<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error("step");
}

Status Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  return Status::Ok();
}

std::int64_t Statement::ColumnInt(int index) const { return sqlite3_column_int64(stmt_, index); }

Bytes Statement::ColumnBlob(int index) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, index));
  const int n = sqlite3_column_bytes(stmt_, index);
  if (p == nullptr || n <= 0) return {};
  return Bytes(p, p + n);
}

bool Statement::ColumnIsNull(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

std::string Statement::ColumnText(int index) const {
  const auto* p = sqlite3_column_text(stmt_, index);
  const int n = sqlite3_column_bytes(stmt_, index);
  if (p == nullptr || n <= 0) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

}  // namespace haven::sqlcipher
