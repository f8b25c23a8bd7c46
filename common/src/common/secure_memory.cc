#include "haven/common/secure_memory.h"

#include <sodium.h>

#include <cstring>
#include <new>
#include <utility>

namespace haven {

Status EnsureSodium() {
  static const int result = sodium_init();  // thread-safe static init
  if (result < 0) return Status::Internal("libsodium failed to initialise");
  return Status::Ok();
}

void SecureZero(MutableByteView data) {
  if (!data.empty()) sodium_memzero(data.data(), data.size());
}

SecureBuffer::SecureBuffer(std::size_t size) {
  if (size == 0) return;
  if (!EnsureSodium().ok()) throw std::bad_alloc();
  void* p = sodium_malloc(size);
  if (p == nullptr) throw std::bad_alloc();
  data_ = static_cast<std::uint8_t*>(p);
  size_ = size;
  std::memset(data_, 0, size_);
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
  if (data_ != nullptr) sodium_free(data_);  // sodium_free zeroes before unmapping
  data_ = nullptr;
  size_ = 0;
}

}  // namespace haven
