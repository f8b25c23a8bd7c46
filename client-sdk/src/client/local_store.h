// The optional encrypted local store (off by default): one SQLCipher file,
// haven-store.db in the SDK's storage directory, keyed with a raw 32-byte
// key that comes from a survivor passphrase through Argon2id (salt in
// haven-store.salt) or from the integrator (platform keystore).
//
// It holds this client's keys, each conversation's state (its Double Ratchet
// included) and message history. Quick exit zeroes the key and closes the
// database first (crypto-shredding), then WipeStorageDir removes the files.
//
// Thread-safety: none; the client calls it under its state mutex.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "haven/common/secure_memory.h"
#include "haven/sqlcipher/database.h"

namespace haven::client {

struct StoredMessage {
  std::uint64_t message = 0;
  bool outgoing = false;
  WipedBytes text;  // one guarded region per row would make long histories slow
};

class LocalStore {
 public:
  // Argon2id (libsodium's crypto_pwhash, interactive limits) of the
  // passphrase with the directory's salt, created on first use.
  static Result<SecureBuffer> DeriveKey(const std::filesystem::path& dir,
                                        std::string_view passphrase);
  // Opens or creates the store. DataLoss for a wrong key.
  static Result<std::unique_ptr<LocalStore>> Open(const std::filesystem::path& dir,
                                                  SecureBuffer key);
  ~LocalStore();

  Status Put(std::string_view name, ByteView value);
  // nullopt when absent.
  Result<std::optional<SecureBuffer>> Get(std::string_view name);

  Status PutConversation(std::uint64_t local_id, ByteView state);
  Result<std::vector<std::pair<std::uint64_t, SecureBuffer>>> LoadConversations();

  Status AppendMessage(std::uint64_t conversation, std::uint64_t message, bool outgoing,
                       ByteView text);
  Result<std::vector<StoredMessage>> LoadHistory(std::uint64_t conversation);
  Result<std::uint64_t> LastMessageId();

  // Crypto-shredding: zeroes the key and closes the database (SQLCipher
  // zeroes its own copies and page cache as it frees them).
  void Destroy();

 private:
  LocalStore(std::unique_ptr<sqlcipher::Database> db, SecureBuffer key)
      : db_(std::move(db)), key_(std::move(key)) {}
  std::unique_ptr<sqlcipher::Database> db_;
  SecureBuffer key_;
};

}  // namespace haven::client
