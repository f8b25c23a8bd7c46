// Splits a fuzz input into the pieces the newer targets read: single bytes
// and records (a 2-byte big-endian length, then that many bytes, cut short at
// the end of the input). Reading past the end yields zeros and empty records,
// so every input is a valid program.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "haven/common/bytes.h"

namespace haven::fuzz {

class Reader {
 public:
  explicit Reader(ByteView input) : rest_(input) {}

  bool done() const { return rest_.empty(); }
  ByteView rest() const { return rest_; }

  std::uint8_t Byte() {
    if (rest_.empty()) return 0;
    const std::uint8_t b = rest_[0];
    rest_ = rest_.subspan(1);
    return b;
  }

  ByteView Record() {
    if (rest_.size() < 2) {
      rest_ = {};
      return {};
    }
    const std::size_t length =
        std::min<std::size_t>(LoadBigEndian16(rest_.data()), rest_.size() - 2);
    const ByteView record = rest_.subspan(2, length);
    rest_ = rest_.subspan(2 + length);
    return record;
  }

 private:
  ByteView rest_;
};

// Appends a record in the format Reader::Record() reads.
inline void AppendFuzzRecord(ByteView bytes, Bytes* out) {
  std::uint8_t header[2];
  StoreBigEndian16(static_cast<std::uint16_t>(std::min<std::size_t>(bytes.size(), 0xffff)), header);
  out->insert(out->end(), header, header + 2);
  out->insert(out->end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(
                                                            std::min<std::size_t>(bytes.size(), 0xffff)));
}

inline bool SameBytes(ByteView a, ByteView b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

}  // namespace haven::fuzz
