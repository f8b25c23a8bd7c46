// Quick exit's removal of the SDK's files, crash-safe (quick-exit.md item 4):
// a marker is written and synced first and removed last, so a process that
// dies half-way leaves the marker behind, and the next SDK start finishes
// the wipe before anything else.
//
// The SDK owns only files named "haven-*" in its storage directory; nothing
// else there is touched.
#pragma once

#include <filesystem>

#include "haven/common/status.h"

namespace haven::client {

inline constexpr const char* kWipeMarkerName = "haven-wipe.marker";
inline constexpr const char* kStoreFileName = "haven-store.db";
inline constexpr const char* kSaltFileName = "haven-store.salt";

// True if an interrupted wipe left its marker in `dir`.
bool WipePending(const std::filesystem::path& dir);

// Marker, then every haven-* file (the store, its WAL, shared-memory and
// journal files, the salt), then the marker. Each removal is attempted even
// if another failed; the first error is returned (the marker then stays, so
// the next start tries again).
Status WipeStorageDir(const std::filesystem::path& dir);

// For the kill-mid-wipe test: called after each step with its number
// (1 = marker written, 2.. = a file removed, then the marker removed).
using WipeStepHook = void (*)(int step);
void SetWipeStepHookForTesting(WipeStepHook hook);

}  // namespace haven::client
