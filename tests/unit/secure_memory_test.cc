#include "haven/common/secure_memory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

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

std::size_t MappingCount() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

TEST(SecureBuffer, ASmallSecretsSlotIsZeroedWhenReleasedAndReused) {
  SecureBuffer keep(32);  // keeps the slab mapped, so the slot can be read after release
  SecureBuffer a(32);
  std::uint8_t* slot = a.data();
  std::fill(a.data(), a.data() + a.size(), std::uint8_t{0xAA});
  a.Reset();
  EXPECT_TRUE(std::all_of(slot, slot + 32, [](std::uint8_t x) { return x == 0; }))
      << "a released key stayed in memory";
  SecureBuffer b(20);
  EXPECT_EQ(b.data(), slot) << "the most recently freed slot is handed out first";
  EXPECT_TRUE(std::all_of(b.data(), b.data() + b.size(), [](std::uint8_t x) { return x == 0; }));
}

TEST(SecureBuffer, ManySmallSecretsShareAFewGuardedMappings) {
  // One sodium_malloc per key would map 3 regions each: 300,000 here, far
  // past vm.max_map_count (65,530 by default).
  const std::size_t before = MappingCount();
  std::vector<SecureBuffer> keys;
  keys.reserve(100'000);
  for (int i = 0; i < 100'000; ++i) keys.push_back(SecureBuffer::Random(32));
  const std::size_t during = MappingCount();
  EXPECT_LT(during - before, 1'000u) << "mappings grew from " << before << " to " << during;
  EXPECT_GE(SecurePoolStatsNow().slots_used, 100'000u);
  keys.clear();
  EXPECT_LT(SecurePoolStatsNow().slabs, 20u) << "free slabs are given back";
  // Larger secrets still get a region of their own.
  SecureBuffer large(4096);
  EXPECT_EQ(large.size(), 4096u);
  EXPECT_TRUE(std::all_of(large.data(), large.data() + large.size(),
                          [](std::uint8_t x) { return x == 0; }));
}

TEST(SecureBuffer, ThreadsAllocateAndReleaseConcurrently) {
  const std::size_t used_before = SecurePoolStatsNow().slots_used;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      std::vector<SecureBuffer> mine;
      for (int i = 0; i < 20'000; ++i) {
        mine.push_back(SecureBuffer::Random(static_cast<std::size_t>(1 + i % 200)));
        if (i % 3 == 0) mine.erase(mine.begin() + (i % static_cast<int>(mine.size())));
      }
    });
  }
  for (auto& t : threads) t.join();
  // Every slot handed out was given back exactly once (a lost update under
  // a race would leave the count off).
  EXPECT_EQ(SecurePoolStatsNow().slots_used, used_before);
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
