// The Double Ratchet as a state machine: two parties, no network.
#include "e2e/double_ratchet.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace haven::e2e {
namespace {

std::string Text(const SecureBuffer& b) { return std::string(b.view().begin(), b.view().end()); }

SecureBuffer FixedSecret(std::uint8_t start) {
  SecureBuffer s(32);
  for (std::size_t i = 0; i < 32; ++i) s.data()[i] = static_cast<std::uint8_t>(start + i);
  return s;
}

// Deterministic key generator for known-answer tests.
DoubleRatchet::KeyGenerator FixedKeys(std::uint8_t seed) {
  auto counter = std::make_shared<std::uint8_t>(seed);
  return [counter] {
    SecureBuffer priv(32);
    for (std::size_t i = 0; i < 32; ++i) priv.data()[i] = static_cast<std::uint8_t>(*counter + i);
    *counter = static_cast<std::uint8_t>(*counter + 37);
    return DhKeyPair::FromPrivate(priv.view());
  };
}

struct Parties {
  DoubleRatchet alice;
  DoubleRatchet bob;
};

Parties MakeParties(RatchetLimits limits = {}) {
  const SecureBuffer sk = SecureBuffer::Random(32);
  DhKeyPair bob_spk = DhKeyPair::Generate();
  const crypto::X25519Public spk_pub = bob_spk.public_key;
  const Bytes ad = {'A', 'D'};
  auto bob = DoubleRatchet::InitResponder(sk.view(), std::move(bob_spk), ad, limits);
  auto alice = DoubleRatchet::InitInitiator(sk.view(), spk_pub, ad, limits);
  EXPECT_TRUE(alice.ok() && bob.ok());
  return {std::move(alice).value(), std::move(bob).value()};
}

TEST(DoubleRatchet, ConversationBothWays) {
  Parties p = MakeParties();
  EXPECT_FALSE(p.bob.Encrypt(AsBytes("too early")).ok());  // Bob speaks after hearing
  for (int round = 0; round < 20; ++round) {
    auto m = p.alice.Encrypt(AsBytes("hello " + std::to_string(round)));
    ASSERT_TRUE(m.ok());
    auto got = p.bob.Decrypt(*m);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(Text(*got), "hello " + std::to_string(round));
    auto r = p.bob.Encrypt(AsBytes("reply " + std::to_string(round)));
    ASSERT_TRUE(r.ok());
    auto back = p.alice.Decrypt(*r);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(Text(*back), "reply " + std::to_string(round));
  }
}

TEST(DoubleRatchet, SizesArePaddedToBuckets) {
  Parties p = MakeParties();
  for (std::size_t len : {0u, 1u, 251u, 252u, 253u, 1000u}) {
    auto m = p.alice.Encrypt(Bytes(len, 'x'));
    ASSERT_TRUE(m.ok());
    const std::size_t body = m->size() - kMessageOverhead;
    EXPECT_EQ(body % kPadBucket, 0u) << len;
    EXPECT_GE(body, len + 4);
    auto got = p.bob.Decrypt(*m);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->size(), len);
  }
}

// Thousands of messages both ways, delivered in random order with drops and
// duplicates: each delivered message opens exactly once with the right text.
TEST(DoubleRatchet, RandomOrderDropsAndDuplicates) {
  Parties p = MakeParties();
  std::mt19937 rng(2026);
  struct InFlight {
    bool to_bob;
    Bytes wire;
    std::string text;
  };
  std::vector<InFlight> net;
  std::set<std::string> opened;
  int sent = 0, dropped = 0, duplicates_rejected = 0, delivered = 0;
  // Alice speaks first so that Bob has a sending chain.
  {
    auto m = p.alice.Encrypt(AsBytes("first"));
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(p.bob.Decrypt(*m).ok());
  }
  for (int step = 0; step < 6000; ++step) {
    const int action = static_cast<int>(rng() % 10);
    if (action < 5 || net.empty()) {  // send
      const bool from_alice = rng() % 2 == 0;
      const std::string text = "m" + std::to_string(sent++);
      auto m = (from_alice ? p.alice : p.bob).Encrypt(AsBytes(text));
      ASSERT_TRUE(m.ok());
      net.push_back({from_alice, std::move(*m), text});
      continue;
    }
    // Deliver (or drop) a random message from those in flight, but not one
    // so far behind that it exceeds the skip bound.
    const std::size_t i = rng() % net.size();
    InFlight msg = net[i];
    if (action == 9) {  // drop
      net.erase(net.begin() + static_cast<std::ptrdiff_t>(i));
      ++dropped;
      continue;
    }
    const bool duplicate = action == 8 && opened.count(msg.text) == 0;
    auto got = (msg.to_bob ? p.bob : p.alice).Decrypt(msg.wire);
    if (opened.count(msg.text)) {
      EXPECT_FALSE(got.ok()) << "a message opened twice: " << msg.text;
      ++duplicates_rejected;
      net.erase(net.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    if (!got.ok()) {
      // Only acceptable reason: its key was dropped by age or bound.
      EXPECT_NE(got.status().code(), Status::Code::kInternal);
      net.erase(net.begin() + static_cast<std::ptrdiff_t>(i));
      ++dropped;
      continue;
    }
    EXPECT_EQ(Text(*got), msg.text);
    opened.insert(msg.text);
    ++delivered;
    if (!duplicate) net.erase(net.begin() + static_cast<std::ptrdiff_t>(i));
  }
  std::printf("[ ratchet  ] %d sent, %d delivered, %d dropped or expired, %d duplicates rejected\n",
              sent, delivered, dropped, duplicates_rejected);
  EXPECT_GT(delivered, 2000);
  EXPECT_GT(duplicates_rejected, 100);
}

TEST(DoubleRatchet, TamperedMessagesAreRejectedWithoutHarm) {
  Parties p = MakeParties();
  auto m = p.alice.Encrypt(AsBytes("genuine"));
  ASSERT_TRUE(m.ok());
  for (std::size_t i = 0; i < m->size(); i += 7) {
    Bytes bad = *m;
    bad[i] ^= 0x20;
    EXPECT_FALSE(p.bob.Decrypt(bad).ok()) << "byte " << i;
  }
  Bytes truncated(m->begin(), m->end() - 1);
  EXPECT_FALSE(p.bob.Decrypt(truncated).ok());
  // The genuine message still opens: the failures changed nothing.
  auto got = p.bob.Decrypt(*m);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(Text(*got), "genuine");
}

TEST(DoubleRatchet, AssociatedDataBindsTheSession) {
  const SecureBuffer sk = SecureBuffer::Random(32);
  DhKeyPair spk = DhKeyPair::Generate();
  const auto pub = spk.public_key;
  auto alice = DoubleRatchet::InitInitiator(sk.view(), pub, Bytes{'I', 'K', 'a', 'b'});
  auto bob = DoubleRatchet::InitResponder(sk.view(), std::move(spk), Bytes{'I', 'K', 'x', 'y'});
  auto m = alice->Encrypt(AsBytes("hi"));
  EXPECT_EQ(bob->Decrypt(*m).status().code(), Status::Code::kDataLoss);
}

TEST(DoubleRatchet, ReplayIsRejected) {
  Parties p = MakeParties();
  auto m1 = p.alice.Encrypt(AsBytes("one"));
  auto m2 = p.alice.Encrypt(AsBytes("two"));
  ASSERT_TRUE(p.bob.Decrypt(*m2).ok());  // m1's key is skipped and kept
  ASSERT_TRUE(p.bob.Decrypt(*m1).ok());
  EXPECT_FALSE(p.bob.Decrypt(*m1).ok());  // the skipped key was used up
  EXPECT_FALSE(p.bob.Decrypt(*m2).ok());
}

TEST(DoubleRatchet, SkipBoundIsEnforcedWithoutCorruptingState) {
  RatchetLimits limits;
  limits.max_skip = 50;
  Parties p = MakeParties(limits);
  ASSERT_TRUE(p.bob.Decrypt(*p.alice.Encrypt(AsBytes("warm-up"))).ok());
  std::vector<Bytes> held;
  for (int i = 0; i < 60; ++i) held.push_back(*p.alice.Encrypt(AsBytes("m" + std::to_string(i))));
  // 59 skipped messages at once: refused, and nothing changed.
  EXPECT_EQ(p.bob.Decrypt(held.back()).status().code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(p.bob.skipped_keys(), 0u);
  // Within the bound, in order, all still open.
  for (int i = 0; i < 60; ++i) {
    auto got = p.bob.Decrypt(held[static_cast<std::size_t>(i)]);
    ASSERT_TRUE(got.ok()) << i;
  }
}

TEST(DoubleRatchet, SkippedKeysExpireAfterDhSteps) {
  RatchetLimits limits;
  limits.max_age_steps = 2;
  Parties p = MakeParties(limits);
  auto lost = p.alice.Encrypt(AsBytes("late"));
  ASSERT_TRUE(p.bob.Decrypt(*p.alice.Encrypt(AsBytes("next"))).ok());
  EXPECT_EQ(p.bob.skipped_keys(), 1u);
  for (int i = 0; i < 3; ++i) {  // each round trip is a DH step on each side
    ASSERT_TRUE(p.alice.Decrypt(*p.bob.Encrypt(AsBytes("b"))).ok());
    ASSERT_TRUE(p.bob.Decrypt(*p.alice.Encrypt(AsBytes("a"))).ok());
  }
  EXPECT_EQ(p.bob.skipped_keys(), 0u);
  EXPECT_FALSE(p.bob.Decrypt(*lost).ok());
}

// Post-compromise security: an attacker who copied Bob's whole state keeps
// reading until Bob's next ratchet key, generated after the theft, is mixed
// in; from then on the copy is useless.
TEST(DoubleRatchet, CompromisedStateStopsWorkingAfterTheNextDhStep) {
  Parties p = MakeParties();
  ASSERT_TRUE(p.bob.Decrypt(*p.alice.Encrypt(AsBytes("hello"))).ok());
  auto stolen = DoubleRatchet::Deserialize(p.bob.Serialize().view());
  ASSERT_TRUE(stolen.ok());
  // Same chain: the thief reads along.
  auto m = p.alice.Encrypt(AsBytes("same chain"));
  EXPECT_EQ(Text(*stolen->Decrypt(*m)), "same chain");
  ASSERT_TRUE(p.bob.Decrypt(*m).ok());
  // Bob's reply still uses a ratchet key from before the theft, so Alice's
  // answer to it is readable to the thief too.
  ASSERT_TRUE(p.alice.Decrypt(*p.bob.Encrypt(AsBytes("bob"))).ok());
  auto still_exposed = p.alice.Encrypt(AsBytes("still exposed"));
  EXPECT_TRUE(stolen->Decrypt(*still_exposed).ok());
  ASSERT_TRUE(p.bob.Decrypt(*still_exposed).ok());  // Bob now makes a fresh key
  // Bob answers with the fresh key; Alice's next message is out of reach.
  ASSERT_TRUE(p.alice.Decrypt(*p.bob.Encrypt(AsBytes("fresh key"))).ok());
  auto healed = p.alice.Encrypt(AsBytes("after healing"));
  ASSERT_TRUE(healed.ok());
  EXPECT_FALSE(stolen->Decrypt(*healed).ok());
  EXPECT_EQ(Text(*p.bob.Decrypt(*healed)), "after healing");
}

TEST(DoubleRatchet, StateSurvivesSerializationMidConversation) {
  Parties p = MakeParties();
  ASSERT_TRUE(p.bob.Decrypt(*p.alice.Encrypt(AsBytes("1"))).ok());
  auto skipped = p.alice.Encrypt(AsBytes("skipped"));
  ASSERT_TRUE(p.bob.Decrypt(*p.alice.Encrypt(AsBytes("2"))).ok());
  auto alice = DoubleRatchet::Deserialize(p.alice.Serialize().view());
  auto bob = DoubleRatchet::Deserialize(p.bob.Serialize().view());
  ASSERT_TRUE(alice.ok() && bob.ok());
  EXPECT_EQ(bob->skipped_keys(), 1u);
  EXPECT_EQ(Text(*bob->Decrypt(*skipped)), "skipped");
  EXPECT_EQ(Text(*alice->Decrypt(*bob->Encrypt(AsBytes("3")))), "3");
  EXPECT_EQ(Text(*bob->Decrypt(*alice->Encrypt(AsBytes("4")))), "4");
  // Damaged state is refused, not half-loaded.
  SecureBuffer data = p.bob.Serialize();
  Bytes cut(data.view().begin(), data.view().end() - 1);
  EXPECT_FALSE(DoubleRatchet::Deserialize(cut).ok());
}

// Known answer for our construction: fixed secrets and keys in, exact bytes
// out. Any change to the labels, layouts or KDF chain changes these bytes.
TEST(DoubleRatchet, KnownAnswer) {
  const SecureBuffer sk = FixedSecret(0x10);
  DhKeyPair bob_spk = DhKeyPair::FromPrivate(FixedSecret(0x80).view());
  const auto spk_pub = bob_spk.public_key;
  const Bytes ad = {'h', 'a', 'v', 'e', 'n'};
  auto alice = DoubleRatchet::InitInitiator(sk.view(), spk_pub, ad, {}, FixedKeys(0x40));
  auto bob = DoubleRatchet::InitResponder(sk.view(), std::move(bob_spk), ad, {}, FixedKeys(0xa0));
  ASSERT_TRUE(alice.ok() && bob.ok());
  auto m1 = alice->Encrypt(AsBytes("kat"));
  ASSERT_TRUE(m1.ok());
  ASSERT_EQ(m1->size(), kMessageOverhead + 256);
  ASSERT_TRUE(bob->Decrypt(*m1).ok());
  auto m2 = bob->Encrypt(AsBytes("kat reply"));
  ASSERT_TRUE(m2.ok());
  const std::string h1 = ToHex(*m1), h2 = ToHex(*m2);
  // First 73 bytes: version (1), header (40) and the first 32 bytes of ciphertext.
  EXPECT_EQ(h1.substr(0, 146),
            "0179a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a0000000000000000"
            "5792633c1a869e46de9ec1e3e15eec4779856b1591be9314f64f1ff6ff5da184");
  EXPECT_EQ(h2.substr(0, 146),
            "01605a725d2a4adfeeb1a29e17edd621c1b7593ee8cdbc44ac6c4ab6e2f805d23c0000000000000000"
            "c22894cd31d17b8bd50dadc15bfbda1c387b01a4afc3658e5a8b40619c04b14e");
  EXPECT_EQ(h1.substr(h1.size() - 32), "33ca6d4efd70eb18000ba5b27db9e50c");
}

}  // namespace
}  // namespace haven::e2e
