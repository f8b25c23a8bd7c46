#include "haven/framing/length_prefix.h"

#include <algorithm>

namespace haven::framing {

Status AppendLengthPrefixed(ByteView message, Bytes* out) {
  if (message.empty()) return Status::InvalidArgument("a frame cannot be empty");
  if (message.size() > kMaxFrameLen) return Status::InvalidArgument("frame exceeds 65535 bytes");
  std::uint8_t header[kHeaderLen];
  StoreBigEndian16(static_cast<std::uint16_t>(message.size()), header);
  out->insert(out->end(), header, header + kHeaderLen);
  out->insert(out->end(), message.begin(), message.end());
  return Status::Ok();
}

LengthPrefixDecoder::LengthPrefixDecoder(std::size_t max_length)
    : max_length_(std::clamp<std::size_t>(max_length, 1, kMaxFrameLen)) {}

Result<std::size_t> LengthPrefixDecoder::Feed(ByteView input) {
  std::size_t used = 0;
  while (used < input.size()) {
    if (state_ == State::kFailed) return Status::FailedPrecondition("framing already failed");
    if (state_ == State::kComplete) break;
    if (state_ == State::kHeader) {
      const std::size_t take = std::min(kHeaderLen - header_have_, input.size() - used);
      std::copy_n(input.begin() + static_cast<std::ptrdiff_t>(used), take,
                  header_.begin() + static_cast<std::ptrdiff_t>(header_have_));
      header_have_ += take;
      used += take;
      if (header_have_ < kHeaderLen) break;
      length_ = LoadBigEndian16(header_.data());
      if (length_ == 0) {
        state_ = State::kFailed;
        return Status::InvalidArgument("zero-length frame");
      }
      if (length_ > max_length_) {
        state_ = State::kFailed;
        return Status::ResourceExhausted("frame length above the configured maximum");
      }
      header_have_ = 0;
      body_.clear();
      body_.reserve(length_);  // bounded by max_length_, checked above
      state_ = State::kBody;
    }
    if (state_ == State::kBody) {
      const std::size_t take = std::min(length_ - body_.size(), input.size() - used);
      body_.insert(body_.end(), input.begin() + static_cast<std::ptrdiff_t>(used),
                   input.begin() + static_cast<std::ptrdiff_t>(used + take));
      used += take;
      if (body_.size() == length_) state_ = State::kComplete;
    }
  }
  if (state_ == State::kFailed) return Status::FailedPrecondition("framing already failed");
  return used;
}

std::size_t LengthPrefixDecoder::pending() const {
  switch (state_) {
    case State::kHeader: return header_have_;
    case State::kBody: return kHeaderLen + body_.size();
    case State::kComplete:
    case State::kFailed: return 0;
  }
  return 0;
}

void LengthPrefixDecoder::Pop() {
  if (state_ != State::kComplete) return;
  body_.clear();
  // A connection that once sent a large message does not keep its buffer
  // while it idles.
  if (body_.capacity() > 4096) Bytes().swap(body_);
  length_ = 0;
  state_ = State::kHeader;
}

}  // namespace haven::framing
