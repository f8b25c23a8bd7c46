// The secrets of a deployment, read from (or, on --init, created in) the data
// directory: the server's X25519 key pair and the SQLCipher database key.
//
// Key files hold exactly 32 raw bytes and must not be accessible to group or
// others; the data directory must be 0700. Every failure names the file and
// says what to do. Secrets are read straight into guarded memory.
#pragma once

#include <string>

#include "config.h"
#include "haven/common/secure_memory.h"
#include "haven/noise/primitives.h"

namespace haven::server {

struct Deployment {
  std::string data_dir;
  std::string database_path;
  noise::KeyPair server_key;
  SecureBuffer database_key;  // 32 bytes
};

struct DeploymentOptions {
  // Create the directory and any missing key (never overwriting one). A
  // missing database key is only generated when no database exists yet.
  bool create_if_missing = false;
  // When non-null and non-empty: 64 hex characters of database key (the
  // HAVEN_DB_KEY environment variable), used instead of the key file.
  const char* database_key_hex = nullptr;
};

Result<Deployment> LoadDeployment(const Config& config, const std::string& data_dir,
                                  const DeploymentOptions& options);

// An exclusive advisory lock on <data_dir>/havend.lock, held for the life of
// the object: one havend per data directory, and haven-admin commands that
// rewrite the database refuse to run beside it. `holder` (may be empty)
// begins the refusal's message, e.g. "purge: <dir> is in use by ...".
class DataDirLock {
 public:
  static Result<DataDirLock> Acquire(const std::string& data_dir, std::string_view holder);
  DataDirLock(DataDirLock&& other) noexcept;
  DataDirLock& operator=(DataDirLock&&) = delete;
  ~DataDirLock();

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Reads a 32-byte secret key file, enforcing mode and size.
Result<SecureBuffer> ReadKeyFile(const std::string& path);
// Creates `path` with mode 0600 (failing if it exists) and writes `key`, fsynced.
Status WriteKeyFile(const std::string& path, ByteView key);

// The helpline's public keys (intake.pub, audit.pub in the data directory):
// 64 hex characters and a newline, mode 0644.
Status WritePublicKeyFile(const std::string& path, const noise::PublicKey& key);
Result<noise::PublicKey> ReadPublicKeyFile(const std::string& path);

}  // namespace haven::server
