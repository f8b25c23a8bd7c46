// A SQLCipher (3.4.x) connection: keyed with a raw 256-bit key, the key
// verified by a read, WAL journal, secure_delete on, and migrations by
// PRAGMA user_version.
//
// <sqlite3.h> stays out of this header so that nobody can include the plain
// SQLite header by accident next to it.
// Thread-safety: a Database and its Statements belong to one thread (the
// server's storage strand); open one Database per thread otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "haven/common/bytes.h"
#include "haven/common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace haven::sqlcipher {

inline constexpr std::size_t kRawKeyLen = 32;

class Statement;

class Database {
 public:
  // Opens or creates `path` (mode 0600) and keys it. A wrong key, or a file
  // that is not a SQLCipher database, is reported here as DataLoss with a
  // message that names the file, not at the first query.
  static Result<std::unique_ptr<Database>> Open(const std::string& path, ByteView raw_key);

  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status Exec(std::string_view sql);
  Result<Statement> Prepare(std::string_view sql);
  // A statement prepared once per connection and reused: reset, bindings
  // cleared, valid for the life of the Database. For statements run over
  // and over (the group-commit write path); step it to completion.
  Result<Statement*> Cached(std::string_view sql);
  // Runs a statement without parameters or rows (BEGIN, COMMIT, SAVEPOINT,
  // ...) through Cached(): what Exec() does, without parsing the SQL again
  // on every transaction. Leaves the statement reset.
  Status Run(std::string_view sql);
  Result<std::int64_t> QueryInt(std::string_view sql);

  // Applies migrations[user_version ...] each in its own transaction and
  // bumps user_version after each. Fails if the file is newer than the code.
  Status Migrate(const std::vector<std::string_view>& migrations);
  Result<std::int64_t> SchemaVersion() { return QueryInt("PRAGMA user_version"); }

  // Re-encrypts the database under `new_raw_key` (PRAGMA rekey).
  Status Rekey(ByteView new_raw_key);

  const std::string& path() const { return path_; }
  // Rows changed by the last INSERT, UPDATE or DELETE.
  std::int64_t changes() const;

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Error(std::string_view what) const;

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> cache_;
  friend class Statement;
};

// RAII transaction: BEGIN IMMEDIATE on construction (check status()),
// ROLLBACK on destruction unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  const Status& status() const { return status_; }
  Status Commit();

 private:
  Database& db_;
  Status status_;
  bool open_ = false;
};

// A prepared statement; parameters are 1-based as in SQLite.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  Status BindInt(int index, std::int64_t value);
  Status BindBlob(int index, ByteView value);
  Status BindText(int index, std::string_view value);
  // True while a row is available; false when done.
  Result<bool> Step();
  Status Reset();

  std::int64_t ColumnInt(int index) const;
  Bytes ColumnBlob(int index) const;
  std::string ColumnText(int index) const;
  bool ColumnIsNull(int index) const;

 private:
  friend class Database;
  Statement(Database* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  Database* db_;
  sqlite3_stmt* stmt_;
};

}  // namespace haven::sqlcipher
