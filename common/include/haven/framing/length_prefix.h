// The transport framing of docs/protocol.md: every Noise message travels as a
// 2-byte big-endian length followed by that many bytes (1..65535).
//
// LengthPrefixDecoder is sans-I/O: feed it whatever bytes arrived, in any
// split, and it yields whole messages. It checks the announced length against
// its bound before allocating anything, so a hostile length costs nothing.
// Thread-safety: none; one decoder per connection.
#pragma once

#include <array>
#include <cstddef>

#include "haven/common/bytes.h"
#include "haven/common/status.h"

namespace haven::framing {

inline constexpr std::size_t kHeaderLen = 2;
inline constexpr std::size_t kMaxFrameLen = 65535;

// Appends header + message to `out`. InvalidArgument if empty or too long.
Status AppendLengthPrefixed(ByteView message, Bytes* out);

class LengthPrefixDecoder {
 public:
  // `max_length` (1..65535) bounds every announced length.
  explicit LengthPrefixDecoder(std::size_t max_length);

  // Consumes bytes from `input` until one message is complete or the input
  // is used up, and returns how many it consumed. Once a message is complete
  // it consumes nothing more until Pop(). A length of zero or above the bound
  // is an error (ResourceExhausted for too long, InvalidArgument for zero),
  // after which the decoder stays failed: the stream cannot be resynchronised.
  Result<std::size_t> Feed(ByteView input);

  bool HasMessage() const { return state_ == State::kComplete; }
  // The completed message; valid until Pop() or destruction.
  ByteView message() const { return body_; }
  // Discards the completed message and waits for the next header.
  void Pop();
  // Bytes buffered toward a message that is not complete yet, header
  // included; 0 on a message boundary (or with a completed message waiting
  // for Pop()). Nonzero at end of stream means the peer stopped mid-frame.
  std::size_t pending() const;

 private:
  enum class State { kHeader, kBody, kComplete, kFailed };

  std::size_t max_length_;
  State state_ = State::kHeader;
  std::array<std::uint8_t, kHeaderLen> header_{};
  std::size_t header_have_ = 0;
  std::size_t length_ = 0;
  Bytes body_;
};

}  // namespace haven::framing
