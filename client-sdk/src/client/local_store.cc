#include "client/local_store.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include "client/wipe.h"

namespace haven::client {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE kv (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE conversations (local_id INTEGER PRIMARY KEY, state BLOB NOT NULL);
CREATE TABLE history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation INTEGER NOT NULL,
  message INTEGER NOT NULL,
  outgoing INTEGER NOT NULL,
  text BLOB NOT NULL);
CREATE INDEX history_by_conversation ON history (conversation, id);
)sql";

// Reads the salt, or creates it (0600) if there is none yet.
Result<std::array<std::uint8_t, crypto_pwhash_SALTBYTES>> LoadOrCreateSalt(const fs::path& dir) {
  std::array<std::uint8_t, crypto_pwhash_SALTBYTES> salt{};
  const fs::path path = dir / kSaltFileName;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    const ssize_t n = ::read(fd, salt.data(), salt.size());
    ::close(fd);
    if (n != static_cast<ssize_t>(salt.size())) {
      return Status::DataLoss("the local store's salt file is damaged");
    }
    return salt;
  }
  randombytes_buf(salt.data(), salt.size());
  fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Unavailable("the storage directory is not writable");
  const ssize_t n = ::write(fd, salt.data(), salt.size());
  (void)::fsync(fd);
  ::close(fd);
  if (n != static_cast<ssize_t>(salt.size())) {
    return Status::Unavailable("the local store's salt could not be written");
  }
  return salt;
}

}  // namespace

Result<SecureBuffer> LocalStore::DeriveKey(const fs::path& dir, std::string_view passphrase) {
  HAVEN_RETURN_IF_ERROR(EnsureSodium());
  HAVEN_ASSIGN_OR_RETURN(auto salt, LoadOrCreateSalt(dir));
  SecureBuffer key(sqlcipher::kRawKeyLen);
  if (crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(), salt.data(),
                    crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::ResourceExhausted("not enough memory to derive the local store key");
  }
  return key;
}

Result<std::unique_ptr<LocalStore>> LocalStore::Open(const fs::path& dir, SecureBuffer key) {
  HAVEN_ASSIGN_OR_RETURN(auto db, sqlcipher::Database::Open((dir / kStoreFileName).string(), key.view()));
  HAVEN_RETURN_IF_ERROR(db->Exec("PRAGMA journal_mode = WAL"));
  HAVEN_RETURN_IF_ERROR(db->Exec("PRAGMA synchronous = NORMAL"));
  HAVEN_RETURN_IF_ERROR(db->Exec("PRAGMA secure_delete = ON"));
  // Closing a WAL database checkpoints what the WAL holds, and quick exit
  // closes it: a small WAL keeps that bounded (SQLite 3.15 has no
  // SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE).
  HAVEN_RETURN_IF_ERROR(db->Exec("PRAGMA wal_autocheckpoint = 32"));
  HAVEN_RETURN_IF_ERROR(db->Migrate({kSchemaV1}));
  return std::unique_ptr<LocalStore>(new LocalStore(std::move(db), std::move(key)));
}

LocalStore::~LocalStore() { Destroy(); }

void LocalStore::Destroy() {
  key_.Reset();
  db_.reset();
}

Status LocalStore::Put(std::string_view name, ByteView value) {
  HAVEN_ASSIGN_OR_RETURN(sqlcipher::Statement * st,
                         db_->Cached("INSERT OR REPLACE INTO kv (name, value) VALUES (?, ?)"));
  HAVEN_RETURN_IF_ERROR(st->BindText(1, name));
  HAVEN_RETURN_IF_ERROR(st->BindBlob(2, value));
  return st->Step().status();
}

Result<std::optional<SecureBuffer>> LocalStore::Get(std::string_view name) {
  HAVEN_ASSIGN_OR_RETURN(sqlcipher::Statement * st, db_->Cached("SELECT value FROM kv WHERE name = ?"));
  HAVEN_RETURN_IF_ERROR(st->BindText(1, name));
  HAVEN_ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) return std::optional<SecureBuffer>();
  Bytes value = st->ColumnBlob(0);
  SecureBuffer out = SecureBuffer::CopyOf(value);
  SecureZero(value);
  (void)st->Reset();
  return std::optional<SecureBuffer>(std::move(out));
}

Status LocalStore::PutConversation(std::uint64_t local_id, ByteView state) {
  HAVEN_ASSIGN_OR_RETURN(
      sqlcipher::Statement * st,
      db_->Cached("INSERT OR REPLACE INTO conversations (local_id, state) VALUES (?, ?)"));
  HAVEN_RETURN_IF_ERROR(st->BindInt(1, static_cast<std::int64_t>(local_id)));
  HAVEN_RETURN_IF_ERROR(st->BindBlob(2, state));
  return st->Step().status();
}

Result<std::vector<std::pair<std::uint64_t, SecureBuffer>>> LocalStore::LoadConversations() {
  HAVEN_ASSIGN_OR_RETURN(sqlcipher::Statement st,
                         db_->Prepare("SELECT local_id, state FROM conversations ORDER BY local_id"));
  std::vector<std::pair<std::uint64_t, SecureBuffer>> out;
  while (true) {
    HAVEN_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    Bytes state = st.ColumnBlob(1);
    out.emplace_back(static_cast<std::uint64_t>(st.ColumnInt(0)), SecureBuffer::CopyOf(state));
    SecureZero(state);
  }
  return out;
}

Status LocalStore::AppendMessage(std::uint64_t conversation, std::uint64_t message, bool outgoing,
                                 ByteView text) {
  HAVEN_ASSIGN_OR_RETURN(
      sqlcipher::Statement * st,
      db_->Cached("INSERT INTO history (conversation, message, outgoing, text) VALUES (?, ?, ?, ?)"));
  HAVEN_RETURN_IF_ERROR(st->BindInt(1, static_cast<std::int64_t>(conversation)));
  HAVEN_RETURN_IF_ERROR(st->BindInt(2, static_cast<std::int64_t>(message)));
  HAVEN_RETURN_IF_ERROR(st->BindInt(3, outgoing ? 1 : 0));
  HAVEN_RETURN_IF_ERROR(st->BindBlob(4, text));
  return st->Step().status();
}

Result<std::vector<StoredMessage>> LocalStore::LoadHistory(std::uint64_t conversation) {
  HAVEN_ASSIGN_OR_RETURN(
      sqlcipher::Statement st, db_->Prepare("SELECT message, outgoing, text FROM history "
                                 "WHERE conversation = ? ORDER BY id"));
  HAVEN_RETURN_IF_ERROR(st.BindInt(1, static_cast<std::int64_t>(conversation)));
  std::vector<StoredMessage> out;
  while (true) {
    HAVEN_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    Bytes text = st.ColumnBlob(2);
    out.push_back({static_cast<std::uint64_t>(st.ColumnInt(0)), st.ColumnInt(1) != 0,
                   WipedBytes::CopyOf(text)});
    SecureZero(text);
  }
  return out;
}

Result<std::uint64_t> LocalStore::LastMessageId() {
  HAVEN_ASSIGN_OR_RETURN(std::int64_t last, db_->QueryInt("SELECT IFNULL(MAX(message), 0) FROM history"));
  return static_cast<std::uint64_t>(last);
}

}  // namespace haven::client
