#include "haven/framing/length_prefix.h"

#include <gtest/gtest.h>

#include <random>

namespace haven::framing {
namespace {

std::vector<Bytes> DecodeAll(LengthPrefixDecoder& d, ByteView stream, std::size_t chunk) {
  std::vector<Bytes> out;
  while (!stream.empty()) {
    const ByteView piece = stream.first(std::min(chunk, stream.size()));
    auto used = d.Feed(piece);
    EXPECT_TRUE(used.ok()) << used.status().ToString();
    if (!used.ok()) break;
    stream = stream.subspan(*used);
    if (d.HasMessage()) {
      out.emplace_back(d.message().begin(), d.message().end());
      d.Pop();
    }
  }
  return out;
}

TEST(LengthPrefix, RoundTripsInEverySplit) {
  std::vector<Bytes> messages = {{1}, Bytes(300, 0xab), Bytes(65535, 0x11), {9, 8, 7}};
  Bytes stream;
  for (const Bytes& m : messages) ASSERT_TRUE(AppendLengthPrefixed(m, &stream).ok());
  for (std::size_t chunk : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{4096},
                            stream.size()}) {
    LengthPrefixDecoder d(kMaxFrameLen);
    EXPECT_EQ(DecodeAll(d, stream, chunk), messages) << "chunk " << chunk;
    EXPECT_EQ(d.pending(), 0u);
  }
}

TEST(LengthPrefix, HeaderIsBigEndian) {
  Bytes out;
  ASSERT_TRUE(AppendLengthPrefixed(Bytes(0x0102, 0), &out).ok());
  EXPECT_EQ(out[0], 0x01);
  EXPECT_EQ(out[1], 0x02);
}

TEST(LengthPrefix, RejectsOversizeBeforeReadingBody) {
  LengthPrefixDecoder d(1024);
  const Bytes header = {0x04, 0x01};  // 1025
  auto r = d.Feed(header);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted);
  // Failed for good: the stream cannot be resynchronised.
  EXPECT_FALSE(d.Feed(Bytes{0x00, 0x01, 0x00}).ok());
}

TEST(LengthPrefix, PendingCountsAnUnfinishedFrameIncludingItsHeader) {
  LengthPrefixDecoder d(100);
  EXPECT_EQ(d.pending(), 0u);
  ASSERT_TRUE(d.Feed(Bytes{0x00}).ok());
  EXPECT_EQ(d.pending(), 1u);
  ASSERT_TRUE(d.Feed(Bytes{0x05}).ok());
  EXPECT_EQ(d.pending(), 2u);  // a header alone is still a cut-off frame
  ASSERT_TRUE(d.Feed(Bytes{1, 2, 3}).ok());
  EXPECT_EQ(d.pending(), 5u);
  ASSERT_TRUE(d.Feed(Bytes{4, 5}).ok());
  ASSERT_TRUE(d.HasMessage());
  EXPECT_EQ(d.pending(), 0u);
}

TEST(LengthPrefix, RejectsZeroLength) {
  LengthPrefixDecoder d(1024);
  auto r = d.Feed(Bytes{0x00, 0x00});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

TEST(LengthPrefix, EncoderRejectsEmptyAndOversize) {
  Bytes out;
  EXPECT_FALSE(AppendLengthPrefixed({}, &out).ok());
  EXPECT_FALSE(AppendLengthPrefixed(Bytes(65536, 0), &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(LengthPrefix, StopsAtMessageBoundaryUntilPopped) {
  Bytes stream;
  ASSERT_TRUE(AppendLengthPrefixed(Bytes{1, 2}, &stream).ok());
  ASSERT_TRUE(AppendLengthPrefixed(Bytes{3}, &stream).ok());
  LengthPrefixDecoder d(16);
  auto used = d.Feed(stream);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, 4u);
  ASSERT_TRUE(d.HasMessage());
  EXPECT_EQ(*d.Feed(ByteView(stream).subspan(4)), 0u);  // nothing until Pop()
  d.Pop();
  EXPECT_EQ(*d.Feed(ByteView(stream).subspan(4)), 3u);
  ASSERT_TRUE(d.HasMessage());
  EXPECT_EQ(Bytes(d.message().begin(), d.message().end()), Bytes{3});
}

TEST(LengthPrefix, RandomStreamsNeverCrash) {
  std::mt19937 rng(42);
  for (int round = 0; round < 2000; ++round) {
    Bytes junk(rng() % 64);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    LengthPrefixDecoder d(1 + rng() % 40);
    ByteView rest = junk;
    while (!rest.empty()) {
      auto used = d.Feed(rest);
      if (!used.ok()) break;
      if (*used == 0 && !d.HasMessage()) break;
      rest = rest.subspan(*used);
      if (d.HasMessage()) {
        EXPECT_LE(d.message().size(), 40u);
        d.Pop();
      }
    }
  }
}

}  // namespace
}  // namespace haven::framing
