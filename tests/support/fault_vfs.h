// A SQLite VFS shim for tests: it wraps the default VFS ("unix") and, when
// told to, fails I/O the way a dying or full disk does. Installed as the
// default VFS, it sits under every database the process opens afterwards
// (SQLCipher encrypts above it, so it sees what really reaches the disk).
//
//   auto& vfs = FaultVfs::Install();   // once per process; idempotent
//   vfs.DiskFull(true);                // every xWrite: SQLITE_FULL
//   vfs.FailAfter(12);                 // I/O operation 13 onwards: SQLITE_IOERR_*
//   vfs.Clear();                       // the disk is healthy again
//
// Counted I/O operations: xRead, xWrite, xTruncate and xSync on database,
// journal and WAL files (not the shared-memory index, which is not disk I/O).
// Test-only: nothing in havend or the SDK links it.
#pragma once

#include <cstdint>

namespace haven::testing {

class FaultVfs {
 public:
  // Registers the shim as the default VFS the first time; later calls
  // return the same object (faults cleared).
  static FaultVfs& Install();

  // From now on, xWrite fails with SQLITE_FULL (reads and syncs still work).
  void DiskFull(bool full);
  // The first `healthy_operations` counted operations from now succeed;
  // every one after fails (SQLITE_IOERR_READ/WRITE/TRUNCATE/FSYNC) until
  // Clear(): a disk that dies and stays dead.
  void FailAfter(std::int64_t healthy_operations);
  // No more faults.
  void Clear();

  // Counted operations since Install(), and how many were failed.
  std::uint64_t operations() const;
  std::uint64_t injected() const;

 private:
  FaultVfs() = default;
};

}  // namespace haven::testing
