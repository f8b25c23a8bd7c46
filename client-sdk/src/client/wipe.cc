#include "client/wipe.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <system_error>
#include <vector>

namespace haven::client {
namespace fs = std::filesystem;
namespace {

std::atomic<WipeStepHook> g_step_hook{nullptr};

void Step(int n) {
  if (WipeStepHook hook = g_step_hook.load()) hook(n);
}

void SyncDir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

bool IsHavenFile(const fs::directory_entry& e) {
  const std::string name = e.path().filename().string();
  return name.rfind("haven-", 0) == 0 && name != kWipeMarkerName;
}

}  // namespace

void SetWipeStepHookForTesting(WipeStepHook hook) { g_step_hook.store(hook); }

bool WipePending(const fs::path& dir) {
  std::error_code ec;
  return !dir.empty() && fs::exists(dir / kWipeMarkerName, ec);
}

Status WipeStorageDir(const fs::path& dir) {
  if (dir.empty()) return Status::Ok();
  const fs::path marker = dir / kWipeMarkerName;
  Status first_error;
  std::error_code ec;
  std::vector<fs::path> victims;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (IsHavenFile(entry)) victims.push_back(entry.path());
  }
  if (ec) first_error = Status::Unavailable("the storage directory could not be listed");
  // A memory-only client has nothing here: quick exit then touches no disk.
  if (victims.empty() && first_error.ok() && !WipePending(dir)) return Status::Ok();

  // The marker is empty: its existence is the message.
  const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
    SyncDir(dir);
  }
  Step(1);

  int step = 2;
  for (const auto& path : victims) {
    if (path.filename() == kSaltFileName) {
      // With the salt, a passphrase rebuilds the store key: overwrite it in
      // place first (best effort on flash, which remaps writes).
      const int sfd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
      if (sfd >= 0) {
        const std::uint8_t zeros[64] = {};
        (void)!::write(sfd, zeros, sizeof zeros);
        (void)::fdatasync(sfd);
        ::close(sfd);
      }
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && first_error.ok()) {
      first_error = Status::Unavailable("a file in the storage directory could not be removed");
    }
    Step(step++);
  }
  SyncDir(dir);
  if (!first_error.ok()) return first_error;
  if (::unlink(marker.c_str()) != 0 && errno != ENOENT) {
    return Status::Unavailable("the wipe marker could not be removed");
  }
  SyncDir(dir);
  Step(step);
  return Status::Ok();
}

}  // namespace haven::client
