#include "haven/common/secure_memory.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace haven {
namespace {

TEST(SecureBuffer, ZeroedOnAllocationAndMovable) {
  SecureBuffer b(64);
  ASSERT_EQ(b.size(), 64u);
  EXPECT_TRUE(std::all_of(b.data(), b.data() + b.size(), [](std::uint8_t x) { return x == 0; }));
  b.data()[0] = 7;
  SecureBuffer moved = std::move(b);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(moved.data()[0], 7);
  moved.Reset();
  EXPECT_TRUE(moved.empty());
}

TEST(SecureBuffer, RandomDiffersAndCopyMatches) {
  SecureBuffer a = SecureBuffer::Random(32);
  SecureBuffer b = SecureBuffer::Random(32);
  EXPECT_FALSE(ConstantTimeEquals(a.view(), b.view()));
  SecureBuffer c = SecureBuffer::CopyOf(a.view());
  EXPECT_TRUE(ConstantTimeEquals(a.view(), c.view()));
}

TEST(Bytes, HexRoundTripAndRejectsBadInput) {
  const Bytes data = {0x00, 0x7f, 0x80, 0xff};
  EXPECT_EQ(ToHex(data), "007f80ff");
  EXPECT_EQ(FromHex("007F80ff"), data);
  EXPECT_FALSE(FromHex("abc").has_value());
  EXPECT_FALSE(FromHex("zz").has_value());
  std::uint8_t out[2];
  EXPECT_FALSE(DecodeHexInto("0102ff", out));
  EXPECT_TRUE(DecodeHexInto("0102", out));
}

TEST(Bytes, ConstantTimeEqualsHandlesSizes) {
  const Bytes a = {1, 2, 3};
  const Bytes b = {1, 2, 3, 4};
  EXPECT_FALSE(ConstantTimeEquals(a, b));
  EXPECT_TRUE(ConstantTimeEquals(a, ByteView(b).first(3)));
}

}  // namespace
}  // namespace haven
