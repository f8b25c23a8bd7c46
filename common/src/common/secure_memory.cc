#include "haven/common/secure_memory.h"

#include <sodium.h>

#include <pthread.h>

#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace haven {

Status EnsureSodium() {
  static const int result = sodium_init();  // thread-safe static init
  if (result < 0) return Status::Internal("libsodium failed to initialise");
  return Status::Ok();
}

void SecureZero(MutableByteView data) {
  if (!data.empty()) sodium_memzero(data.data(), data.size());
}

namespace {

// Guarded slabs for small secrets (see the header). Slots of one size class
// per slab; a slab whose slots are all free is unmapped while another slab
// of its class still has room for 512 more.
class SecurePool {
 public:
  static constexpr std::size_t kSlabBytes = 64 * 1024;  // a multiple of the page size

  // Never destroyed: buffers held by other statics may be released after
  // main returns.
  static SecurePool& Instance() {
    static SecurePool* pool = [] {
      auto* p = new SecurePool;
      // A fork while another thread holds the lock must not leave the
      // child's pool locked forever (the SDK's crash tests fork).
      pthread_atfork([] { Instance().mu_.lock(); }, [] { Instance().mu_.unlock(); },
                     [] { Instance().mu_.unlock(); });
      return p;
    }();
    return *pool;
  }

  static std::size_t ClassOf(std::size_t size) {
    std::size_t c = 0;
    while (kSlotSizes[c] < size) ++c;
    return c;
  }

  std::uint8_t* Allocate(std::size_t size) {
    const std::size_t c = ClassOf(size);
    std::lock_guard lock(mu_);
    std::vector<std::uint8_t*>& free = free_[c];
    if (free.empty() && !AddSlab(c)) return nullptr;
    std::uint8_t* slot = free.back();
    free.pop_back();
    ++SlabOf(slot).used;
    ++slots_used_;
    return slot;  // zero: zeroed when released, and fresh slabs are zero
  }

  void Release(std::uint8_t* slot, std::size_t size) {
    const std::size_t c = ClassOf(size);
    sodium_memzero(slot, kSlotSizes[c]);
    std::lock_guard lock(mu_);
    Slab& slab = SlabOf(slot);
    --slab.used;
    --slots_used_;
    free_[c].push_back(slot);
    const std::size_t per_slab = kSlabBytes / kSlotSizes[c];
    if (slab.used == 0 && free_[c].size() >= per_slab + 512) RemoveSlab(slab.base, c);
  }

  SecurePoolStats Stats() {
    std::lock_guard lock(mu_);
    return {slabs_.size(), slots_used_};
  }

 private:
  static constexpr std::size_t kSlotSizes[] = {32, 64, 128, kPooledSecretMax};
  static constexpr std::size_t kClasses = std::size(kSlotSizes);

  struct Slab {
    std::uint8_t* base = nullptr;
    std::size_t used = 0;
  };

  bool AddSlab(std::size_t c) {
    auto* base = static_cast<std::uint8_t*>(sodium_malloc(kSlabBytes));
    if (base == nullptr) return false;
    std::memset(base, 0, kSlabBytes);
    slabs_[reinterpret_cast<std::uintptr_t>(base)] = Slab{base, 0};
    for (std::size_t off = kSlabBytes; off >= kSlotSizes[c]; off -= kSlotSizes[c]) {
      free_[c].push_back(base + off - kSlotSizes[c]);
    }
    return true;
  }

  void RemoveSlab(std::uint8_t* base, std::size_t c) {
    std::erase_if(free_[c], [base](std::uint8_t* p) { return p >= base && p < base + kSlabBytes; });
    slabs_.erase(reinterpret_cast<std::uintptr_t>(base));
    sodium_free(base);
  }

  Slab& SlabOf(std::uint8_t* slot) {
    auto it = slabs_.upper_bound(reinterpret_cast<std::uintptr_t>(slot));
    return std::prev(it)->second;  // every slot lies in a slab
  }

  std::mutex mu_;
  std::map<std::uintptr_t, Slab> slabs_;  // by base address
  std::vector<std::uint8_t*> free_[kClasses];
  std::size_t slots_used_ = 0;
};

}  // namespace

SecurePoolStats SecurePoolStatsNow() { return SecurePool::Instance().Stats(); }

SecureBuffer::SecureBuffer(std::size_t size) {
  if (size == 0) return;
  if (!EnsureSodium().ok()) throw std::bad_alloc();
  void* p = size <= kPooledSecretMax ? SecurePool::Instance().Allocate(size) : sodium_malloc(size);
  if (p == nullptr) throw std::bad_alloc();
  data_ = static_cast<std::uint8_t*>(p);
  size_ = size;
  if (size > kPooledSecretMax) std::memset(data_, 0, size_);
}

SecureBuffer SecureBuffer::CopyOf(ByteView data) {
  SecureBuffer b(data.size());
  if (!data.empty()) std::memcpy(b.data_, data.data(), data.size());
  return b;
}

SecureBuffer SecureBuffer::Random(std::size_t size) {
  SecureBuffer b(size);
  if (size != 0) randombytes_buf(b.data_, size);
  return b;
}

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept {
  if (this != &other) {
    Reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecureBuffer::~SecureBuffer() { Reset(); }

void SecureBuffer::Reset() {
  if (data_ != nullptr) {
    if (size_ <= kPooledSecretMax) {
      SecurePool::Instance().Release(data_, size_);  // zeroes the whole slot
    } else {
      sodium_free(data_);  // zeroes before unmapping
    }
  }
  data_ = nullptr;
  size_ = 0;
}

}  // namespace haven
