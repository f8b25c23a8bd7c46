// Memory for secrets.
//
// SecureBuffer owns a fixed-size region of guarded memory from sodium_malloc:
// guard pages around it, mlock'ed where the OS allows, excluded from core
// dumps, and zeroed on release. Move-only, so a secret is never silently
// copied.
//
// Small secrets (keys: at most kPooledSecretMax bytes) share guarded slabs of
// 64 KiB instead of one sodium_malloc each: a sodium_malloc costs three
// mappings and at least three pages, which on a server holding tens of
// thousands of connections runs into vm.max_map_count (about 8,000
// connections) and costs kilobytes per 32-byte key. The slab as a whole has
// the guard pages and the lock; a slot is zeroed when its buffer is released.
// What is given up: no guard page between two keys of the same slab.
//
// Thread-safety: a SecureBuffer is owned by one thread at a time; creating
// and releasing them is safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "haven/common/bytes.h"
#include "haven/common/status.h"

namespace haven {

// Initialises libsodium once per process (idempotent, thread-safe). Every
// entry point that uses libsodium calls it; it only fails if the platform
// has no usable randomness source.
Status EnsureSodium();

// Overwrites `data` with zeros in a way the compiler cannot elide.
void SecureZero(MutableByteView data);

// Secrets up to this size come from the shared guarded slabs.
inline constexpr std::size_t kPooledSecretMax = 256;

// What the slabs hold now (for tests and diagnostics).
struct SecurePoolStats {
  std::size_t slabs = 0;       // guarded 64 KiB regions mapped
  std::size_t slots_used = 0;  // buffers handed out from them
};
SecurePoolStats SecurePoolStatsNow();

class SecureBuffer {
 public:
  SecureBuffer() = default;
  // Allocates `size` zeroed bytes. Throws std::bad_alloc on failure.
  explicit SecureBuffer(std::size_t size);
  // Allocates and copies `data`.
  static SecureBuffer CopyOf(ByteView data);
  // Allocates and fills with random bytes.
  static SecureBuffer Random(std::size_t size);

  SecureBuffer(SecureBuffer&& other) noexcept;
  SecureBuffer& operator=(SecureBuffer&& other) noexcept;
  SecureBuffer(const SecureBuffer&) = delete;
  SecureBuffer& operator=(const SecureBuffer&) = delete;
  ~SecureBuffer();

  std::uint8_t* data() { return data_; }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  ByteView view() const { return {data_, size_}; }
  MutableByteView mutable_view() { return {data_, size_}; }

  // Zeroes and frees now; the buffer becomes empty.
  void Reset();

 private:
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

// Ordinary heap memory that is zeroed before it is freed: for message
// plaintext, of which there can be thousands. A SecureBuffer costs a few
// pages and several system calls to allocate and to free (munmap shoots down
// TLBs on every thread), which quick exit cannot afford per message; keys
// stay in SecureBuffer. Fixed size, move-only.
class WipedBytes {
 public:
  WipedBytes() = default;
  static WipedBytes CopyOf(ByteView data) {
    WipedBytes b;
    b.bytes_.assign(data.begin(), data.end());
    return b;
  }
  WipedBytes(WipedBytes&& other) noexcept : bytes_(std::move(other.bytes_)) { other.bytes_.clear(); }
  WipedBytes& operator=(WipedBytes&& other) noexcept {
    if (this != &other) {
      SecureZero(bytes_);
      bytes_ = std::move(other.bytes_);
      other.bytes_.clear();
    }
    return *this;
  }
  WipedBytes(const WipedBytes&) = delete;
  WipedBytes& operator=(const WipedBytes&) = delete;
  ~WipedBytes() { SecureZero(bytes_); }

  const std::uint8_t* data() const { return bytes_.data(); }
  std::size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  ByteView view() const { return bytes_; }

 private:
  Bytes bytes_;  // never resized after construction: no stale copies
};

}  // namespace haven
