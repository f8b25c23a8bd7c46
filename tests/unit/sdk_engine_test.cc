// The SDK's pieces that do no I/O: the resumption secret (written form and
// key derivation, against the known answer of docs/protocol.md 24.2), the
// device keys as the local store keeps them, and WipedBytes.
#include <gtest/gtest.h>

#include "client/engine.h"
#include "haven/common/secure_memory.h"

namespace haven::client {
namespace {

Bytes Counting(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i);
  return b;
}

TEST(ResumptionSecret, KnownAnswerOfTheSpecification) {
  const Bytes secret = Counting(20);
  EXPECT_EQ(EncodeResumptionSecret(secret), "000G-40R4-0M30-E209-185G-R38E-1W81-24GK");
  auto keys = DeviceKeys::FromResumptionSecret(secret);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(ToHex(keys->transport.private_key.view()),
            "709a71c2442025d5abe0d4a3093b22ab7a16eea331078e2bf711e9d26eb5ed0f");
  EXPECT_EQ(ToHex(keys->transport.public_key),
            "b5986f581ff506583b1cf7084b608cd5aead0673e6b3dc2c261881dec7b45c4f");
  EXPECT_EQ(ToHex(keys->identity.dh.public_key),
            "44b6cfab8500eb3c8a017ea7991bec5550db0c746449f81286def4569f197f01");
  EXPECT_EQ(ToHex(keys->identity.signing.secret.view().first(32)),
            "8fa9e659473f8e3df2969eeddbcef0cde2ae53035ac52002f114220702ec225b");
  EXPECT_EQ(ToHex(keys->identity.signing.public_key),
            "66ed670cc4996923026018ae644764f87f343d94dfe4e3c1c310dddd6bfbbf1f");
}

TEST(ResumptionSecret, DecodingForgivesWhatPeopleMistypeAndNothingElse) {
  const Bytes secret = Counting(20);
  for (const char* typed : {"000G-40R4-0M30-E209-185G-R38E-1W81-24GK",
                            "000g40r40m30e209185gr38e1w8124gk",
                            "OOOG 4OR4 OM3O E2O9 185G R38E 1W81 24GK",
                            "000G-40R4-0M30-E209-185G-R38E-1W8L-24GK"}) {
    auto d = DecodeResumptionSecret(typed);
    ASSERT_TRUE(d.has_value()) << typed;
    EXPECT_EQ(ToHex(d->view()), ToHex(secret)) << typed;
  }
  for (const char* bad : {"", "000G-40R4-0M30-E209-185G-R38E-1W81-24G",     // 31 symbols
                          "000G-40R4-0M30-E209-185G-R38E-1W81-24GK0",       // 33
                          "000G-40R4-0M30-E209-185G-R38E-1W81-24GU",        // U is not a symbol
                          "000G-40R4-0M30-E209-185G-R38E-1W81-24G!"}) {
    EXPECT_FALSE(DecodeResumptionSecret(bad).has_value()) << bad;
  }
}

TEST(DeviceKeys, SurviveTheStoreByteForByte) {
  DeviceKeys k = DeviceKeys::Generate();
  k.signed_prekeys.push_back(e2e::SignedPrekey::Make(k.identity, 7));
  for (std::uint32_t id = 8; id < 12; ++id) {
    e2e::OneTimePrekey opk;
    opk.id = id;
    opk.key = e2e::DhKeyPair::Generate();
    k.one_time_prekeys.emplace(id, std::move(opk));
  }
  k.next_prekey_id = 12;
  k.one_time_prekeys_published = true;
  const SecureBuffer blob = k.Serialize();
  auto back = DeviceKeys::Deserialize(blob.view());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->transport.public_key, k.transport.public_key);
  EXPECT_EQ(back->identity.public_key(), k.identity.public_key());
  ASSERT_EQ(back->signed_prekeys.size(), 1u);
  EXPECT_EQ(back->signed_prekeys[0].id, 7u);
  EXPECT_EQ(back->signed_prekeys[0].key.public_key, k.signed_prekeys[0].key.public_key);
  EXPECT_EQ(back->signed_prekeys[0].signature, k.signed_prekeys[0].signature);
  ASSERT_EQ(back->one_time_prekeys.size(), 4u);
  EXPECT_EQ(back->one_time_prekeys.at(9).key.public_key, k.one_time_prekeys.at(9).key.public_key);
  EXPECT_EQ(back->next_prekey_id, 12u);
  EXPECT_TRUE(back->one_time_prekeys_published);
  // Truncated anywhere: refused, never read past the end.
  for (std::size_t n = 0; n < blob.size(); n += 7) {
    EXPECT_FALSE(DeviceKeys::Deserialize(blob.view().first(n)).ok()) << n;
  }
}

TEST(WipedBytes, MovesWithoutCopiesAndKeepsItsContent) {
  WipedBytes a = WipedBytes::CopyOf(AsBytes("plaintext"));
  const std::uint8_t* where = a.data();
  WipedBytes b = std::move(a);
  EXPECT_EQ(b.data(), where);  // moved, not copied
  EXPECT_TRUE(a.empty());      // NOLINT(bugprone-use-after-move): the state after a move is specified
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data()), b.size()), "plaintext");
}

}  // namespace
}  // namespace haven::client
