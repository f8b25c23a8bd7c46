#include "deployment.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace haven::server {
namespace {

constexpr std::size_t kKeyLen = 32;

std::string Join(const std::string& dir, const std::string& file) {
  if (!file.empty() && file.front() == '/') return file;
  return (std::filesystem::path(dir) / file).string();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

Status PrepareDirectory(const std::string& dir, bool create) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (!create) {
      return Status::NotFound("data directory " + dir +
                              " does not exist; create a deployment with `havend --init` or "
                              "`haven-admin init`");
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::Unavailable("cannot create data directory " + dir + ": " + ec.message());
    if (::chmod(dir.c_str(), 0700) != 0) {
      return Status::Unavailable("cannot set mode 0700 on " + dir + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(dir + " is not a directory");
  if ((st.st_mode & 077) != 0) {
    return Status::PermissionDenied("data directory " + dir +
                                    " is accessible by group or others; run: chmod 700 " + dir);
  }
  return Status::Ok();
}

}  // namespace

Result<DataDirLock> DataDirLock::Acquire(const std::string& data_dir, std::string_view holder) {
  const std::string path = Join(data_dir, "havend.lock");
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return Status::Unavailable("cannot open lock file " + path + ": " + std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    const std::string who = holder.empty() ? "" : std::string(holder) + ": ";
    return Status::FailedPrecondition(who + data_dir +
                                      " is in use by a running havend (or another haven-admin "
                                      "command); stop it first");
  }
  return DataDirLock(fd);
}

DataDirLock::DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

Result<SecureBuffer> ReadKeyFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::NotFound("key file " + path +
                              " is missing; create the deployment with `havend --init` or "
                              "restore the file from your backup");
    }
    return Status::PermissionDenied("cannot read key file " + path + ": " + std::strerror(err));
  }
  struct stat st {};
  Status status;
  SecureBuffer key;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    status = Status::InvalidArgument("key file " + path + " is not a regular file");
  } else if ((st.st_mode & 077) != 0) {
    status = Status::PermissionDenied("key file " + path +
                                      " is readable by group or others; run: chmod 600 " + path);
  } else if (st.st_size != static_cast<off_t>(kKeyLen)) {
    status = Status::InvalidArgument("key file " + path + " must hold exactly 32 bytes, holds " +
                                     std::to_string(st.st_size));
  } else {
    key = SecureBuffer(kKeyLen);
    std::size_t got = 0;
    while (got < kKeyLen) {
      const ssize_t n = ::read(fd, key.data() + got, kKeyLen - got);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        status = Status::Unavailable("short read from key file " + path);
        key.Reset();
        break;
      }
      got += static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  if (!status.ok()) return status;
  return key;
}

Status WriteKeyFile(const std::string& path, ByteView key) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::Unavailable("cannot create key file " + path + ": " + std::strerror(errno));
  }
  std::size_t done = 0;
  Status status;
  while (done < key.size()) {
    const ssize_t n = ::write(fd, key.data() + done, key.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status = Status::Unavailable("cannot write key file " + path + ": " + std::strerror(errno));
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (status.ok() && ::fsync(fd) != 0) {
    status = Status::Unavailable("cannot sync key file " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (!status.ok()) ::unlink(path.c_str());
  return status;
}

Status WritePublicKeyFile(const std::string& path, const noise::PublicKey& key) {
  std::ofstream out(path, std::ios::trunc);
  out << ToHex(key) << "\n";
  if (!out) return Status::Unavailable("cannot write " + path);
  ::chmod(path.c_str(), 0644);
  return Status::Ok();
}

Result<noise::PublicKey> ReadPublicKeyFile(const std::string& path) {
  std::ifstream in(path);
  std::string hex;
  in >> hex;
  noise::PublicKey key{};
  if (!in || !DecodeHexInto(hex, key)) {
    return Status::InvalidArgument(path + ": must hold a public key as 64 hex characters");
  }
  return key;
}

Result<Deployment> LoadDeployment(const Config& config, const std::string& data_dir,
                                  const DeploymentOptions& options) {
  HAVEN_RETURN_IF_ERROR(EnsureSodium());
  HAVEN_RETURN_IF_ERROR(PrepareDirectory(data_dir, options.create_if_missing));
  Deployment d;
  d.data_dir = data_dir;
  d.database_path = Join(data_dir, config.database_file);

  const std::string server_key_path = Join(data_dir, config.server_key_file);
  if (options.create_if_missing && !Exists(server_key_path)) {
    SecureBuffer fresh = SecureBuffer::Random(kKeyLen);
    HAVEN_RETURN_IF_ERROR(WriteKeyFile(server_key_path, fresh.view()));
  }
  HAVEN_ASSIGN_OR_RETURN(SecureBuffer server_private, ReadKeyFile(server_key_path));
  HAVEN_ASSIGN_OR_RETURN(d.server_key, noise::KeyPair::FromPrivateKey(server_private.view()));

  if (options.database_key_hex != nullptr && *options.database_key_hex != '\0') {
    const std::string_view hex(options.database_key_hex);
    d.database_key = SecureBuffer(kKeyLen);
    if (!DecodeHexInto(hex, d.database_key.mutable_view())) {
      return Status::InvalidArgument(
          "HAVEN_DB_KEY must be exactly 64 hexadecimal characters (a 32-byte key)");
    }
    return d;
  }
  const std::string db_key_path = Join(data_dir, config.database_key_file);
  if (options.create_if_missing && !Exists(db_key_path)) {
    if (Exists(d.database_path)) {
      return Status::FailedPrecondition(
          "database " + d.database_path + " exists but its key file " + db_key_path +
          " is missing; restore the key file (a new key cannot open the existing database)");
    }
    SecureBuffer fresh = SecureBuffer::Random(kKeyLen);
    HAVEN_RETURN_IF_ERROR(WriteKeyFile(db_key_path, fresh.view()));
  }
  HAVEN_ASSIGN_OR_RETURN(d.database_key, ReadKeyFile(db_key_path));
  return d;
}

}  // namespace haven::server
