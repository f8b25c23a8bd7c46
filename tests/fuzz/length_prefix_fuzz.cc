// Fuzz target: haven::framing::LengthPrefixDecoder and AppendLengthPrefixed.
//
// Input layout (all of it is fuzzer-controlled):
//   byte 0..1  bound: big-endian 16-bit value % 65535 + 1, so 1..65535
//   byte 2     k = (byte & 0x0f) + 1: how many chunk-size bytes follow
//   k bytes    chunk sizes 0..255, used cyclically to split the stream into
//              Feed() calls; 0 is an empty Feed() (two empties in a row are
//              not allowed, the second becomes 1 so the loop always advances)
//   the rest   the byte stream handed to the decoder
//
// The decoder is compared against a one-pass reference parser of the whole
// stream: it must yield exactly the same messages whatever the split, fail
// with the same code at the same frame, never yield a message above the
// bound, never consume past a complete message, and stay failed after an
// error. Every decoded message is re-framed with AppendLengthPrefixed; the
// re-framed bytes must be identical to what was read (the framing is
// canonical) and must decode back to the same message.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "fuzz_check.h"
#include "haven/framing/length_prefix.h"

namespace {

using haven::ByteView;
using haven::Bytes;
using haven::Status;
using haven::framing::AppendLengthPrefixed;
using haven::framing::kHeaderLen;
using haven::framing::kMaxFrameLen;
using haven::framing::LengthPrefixDecoder;

bool SameBytes(ByteView a, ByteView b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

// What a correct decoder must produce for `stream` under `bound`.
struct Reference {
  std::vector<ByteView> messages;
  std::optional<Status::Code> error;  // set when a header is invalid
  std::size_t consumed = 0;           // bytes up to the end of the last message
  std::size_t trailing = 0;           // bytes after it (an unfinished or invalid frame)
};

Reference Parse(ByteView stream, std::size_t bound) {
  Reference ref;
  std::size_t pos = 0;
  while (stream.size() - pos >= kHeaderLen) {
    const std::size_t length = haven::LoadBigEndian16(stream.data() + pos);
    if (length == 0) {
      ref.error = Status::Code::kInvalidArgument;
      break;
    }
    if (length > bound) {
      ref.error = Status::Code::kResourceExhausted;
      break;
    }
    if (stream.size() - pos - kHeaderLen < length) break;
    ref.messages.push_back(stream.subspan(pos + kHeaderLen, length));
    pos += kHeaderLen + length;
  }
  ref.consumed = pos;
  ref.trailing = stream.size() - pos;
  return ref;
}

// A failed decoder must refuse everything from now on.
void CheckStaysFailed(LengthPrefixDecoder& decoder, ByteView more) {
  HAVEN_FUZZ_CHECK(!decoder.HasMessage());
  for (int round = 0; round < 2; ++round) {
    auto again = decoder.Feed(more);
    HAVEN_FUZZ_CHECK(!again.ok());
    HAVEN_FUZZ_CHECK(again.status().code() == Status::Code::kFailedPrecondition);
    auto empty = decoder.Feed({});
    HAVEN_FUZZ_CHECK(!empty.ok());
    HAVEN_FUZZ_CHECK(!decoder.HasMessage());
    decoder.Pop();  // must not revive it
  }
}

// Re-frames `message` and decodes it again in one piece and byte by byte.
void CheckRoundTrip(ByteView message, std::size_t bound, ByteView original_frame) {
  Bytes framed = {0x5a};  // AppendLengthPrefixed appends; keep a prefix to check that
  HAVEN_FUZZ_CHECK(AppendLengthPrefixed(message, &framed).ok());
  HAVEN_FUZZ_CHECK(framed.size() == 1 + kHeaderLen + message.size());
  HAVEN_FUZZ_CHECK(framed[0] == 0x5a);
  const ByteView frame = ByteView(framed).subspan(1);
  HAVEN_FUZZ_CHECK(SameBytes(frame, original_frame));

  LengthPrefixDecoder whole(bound);
  auto used = whole.Feed(frame);
  HAVEN_FUZZ_CHECK(used.ok());
  HAVEN_FUZZ_CHECK(*used == frame.size());
  HAVEN_FUZZ_CHECK(whole.HasMessage());
  HAVEN_FUZZ_CHECK(SameBytes(whole.message(), message));

  if (frame.size() <= 64) {  // byte by byte, for short frames only (cost)
    LengthPrefixDecoder bytewise(bound);
    for (std::size_t i = 0; i < frame.size(); ++i) {
      HAVEN_FUZZ_CHECK(!bytewise.HasMessage());
      auto one = bytewise.Feed(frame.subspan(i, 1));
      HAVEN_FUZZ_CHECK(one.ok());
      HAVEN_FUZZ_CHECK(*one == 1);
    }
    HAVEN_FUZZ_CHECK(bytewise.HasMessage());
    HAVEN_FUZZ_CHECK(SameBytes(bytewise.message(), message));
    bytewise.Pop();
    HAVEN_FUZZ_CHECK(bytewise.pending() == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const ByteView input(data, size);
  const std::size_t bound = static_cast<std::size_t>(haven::LoadBigEndian16(data)) % kMaxFrameLen + 1;
  const std::size_t k = std::min<std::size_t>((input[2] & 0x0fu) + 1u, size - 3);
  const ByteView sizes = input.subspan(3, k);
  const ByteView stream = input.subspan(3 + k);

  // The encoder refuses an empty frame and leaves the output alone.
  {
    Bytes out = {1, 2};
    HAVEN_FUZZ_CHECK(AppendLengthPrefixed({}, &out).code() == Status::Code::kInvalidArgument);
    HAVEN_FUZZ_CHECK(out.size() == 2);
  }

  const Reference ref = Parse(stream, bound);
  LengthPrefixDecoder decoder(bound);
  HAVEN_FUZZ_CHECK(decoder.pending() == 0);
  HAVEN_FUZZ_CHECK(!decoder.HasMessage());

  std::size_t offset = 0;      // next stream byte not yet consumed by the decoder
  std::size_t delivered = 0;   // messages taken out so far
  std::size_t chunk_index = 0;
  bool previous_empty = false;
  bool failed = false;
  while (offset < stream.size()) {
    std::size_t chunk_size = sizes.empty() ? stream.size() : sizes[chunk_index++ % sizes.size()];
    if (chunk_size == 0 && previous_empty) chunk_size = 1;
    previous_empty = chunk_size == 0;
    chunk_size = std::min(chunk_size, stream.size() - offset);
    const ByteView chunk = stream.subspan(offset, chunk_size);

    auto used = decoder.Feed(chunk);
    if (!used.ok()) {
      // Only an invalid header fails, and only once every earlier message is out.
      HAVEN_FUZZ_CHECK(ref.error.has_value());
      HAVEN_FUZZ_CHECK(used.status().code() == *ref.error);
      HAVEN_FUZZ_CHECK(delivered == ref.messages.size());
      HAVEN_FUZZ_CHECK(!chunk.empty());
      CheckStaysFailed(decoder, stream.subspan(offset));
      failed = true;
      break;
    }
    HAVEN_FUZZ_CHECK(*used <= chunk.size());
    offset += *used;

    if (!decoder.HasMessage()) {
      // Without a complete message the decoder must take everything it got.
      HAVEN_FUZZ_CHECK(*used == chunk.size());
      continue;
    }
    const ByteView message = decoder.message();
    HAVEN_FUZZ_CHECK(!message.empty());
    HAVEN_FUZZ_CHECK(message.size() <= bound);
    HAVEN_FUZZ_CHECK(delivered < ref.messages.size());
    HAVEN_FUZZ_CHECK(SameBytes(message, ref.messages[delivered]));
    ++delivered;

    // A complete message blocks further input until Pop().
    auto blocked = decoder.Feed(stream.subspan(offset));
    HAVEN_FUZZ_CHECK(blocked.ok());
    HAVEN_FUZZ_CHECK(*blocked == 0);
    HAVEN_FUZZ_CHECK(decoder.HasMessage());
    HAVEN_FUZZ_CHECK(SameBytes(decoder.message(), message));

    CheckRoundTrip(message, bound, stream.subspan(offset - message.size() - kHeaderLen,
                                                  message.size() + kHeaderLen));
    decoder.Pop();
    HAVEN_FUZZ_CHECK(!decoder.HasMessage());
    decoder.Pop();  // a second Pop() is harmless
    HAVEN_FUZZ_CHECK(!decoder.HasMessage());
  }

  if (!failed) {
    HAVEN_FUZZ_CHECK(!ref.error.has_value());
    HAVEN_FUZZ_CHECK(delivered == ref.messages.size());
    HAVEN_FUZZ_CHECK(!decoder.HasMessage());
    // pending() is exactly the bytes of the unfinished frame, header included.
    HAVEN_FUZZ_CHECK(decoder.pending() == ref.trailing);
    // An empty Feed() changes nothing.
    auto nothing = decoder.Feed({});
    HAVEN_FUZZ_CHECK(nothing.ok());
    HAVEN_FUZZ_CHECK(*nothing == 0);
  }

  // Every message re-framed, back to back, is exactly the consumed prefix.
  Bytes reframed;
  for (std::size_t i = 0; i < delivered; ++i) {
    HAVEN_FUZZ_CHECK(AppendLengthPrefixed(ref.messages[i], &reframed).ok());
  }
  HAVEN_FUZZ_CHECK(SameBytes(reframed, stream.first(ref.consumed)));
  return 0;
}
