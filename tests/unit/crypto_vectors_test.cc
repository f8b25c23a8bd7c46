// The end-to-end primitives on the Wycheproof vectors in ../shared/vectors:
// every test case, valid and invalid, with the counts printed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "haven/crypto/primitives.h"
#include "support/vectors.h"

namespace haven::crypto {
namespace {

using nlohmann::json;

Bytes Hex(const json& t, const char* key) { return FromHex(t.at(key).get<std::string>()).value(); }

struct Tally {
  int valid = 0, invalid = 0, acceptable = 0;
  void Count(const std::string& result) {
    (result == "valid" ? valid : result == "invalid" ? invalid : acceptable)++;
  }
  int total() const { return valid + invalid + acceptable; }
  void Print(const char* name) const {
    std::printf("[ wycheproof ] %s: %d cases (%d valid, %d invalid, %d acceptable)\n", name,
                total(), valid, invalid, acceptable);
  }
};

json Load(const std::filesystem::path& path) { return json::parse(testing::ReadFile(path)); }

// Calls fn(group, test, result) for every case of a Wycheproof file, counts
// them, prints the tally and checks it against the file's numberOfTests.
template <typename Fn>
Tally ForEachCase(const json& doc, const char* name, Fn fn) {
  Tally tally;
  for (const json& group : doc.at("testGroups")) {
    for (const json& t : group.at("tests")) {
      const std::string result = t.at("result");
      tally.Count(result);
      SCOPED_TRACE("tcId " + std::to_string(t.at("tcId").get<int>()));
      fn(group, t, result);
    }
  }
  tally.Print(name);
  EXPECT_EQ(tally.total(), doc.at("numberOfTests").get<int>());
  return tally;
}

TEST(Wycheproof, HmacSha256) {
  HAVEN_REQUIRE_VECTOR_FILE(path, "wycheproof/hmac_sha256_test.json");
  ForEachCase(Load(path), "hmac_sha256", [](const json& group, const json& t, const std::string& result) {
    const std::size_t tag_bytes = group.at("tagSize").get<std::size_t>() / 8;
    const Sha256 mac = HmacSha256(Hex(t, "key"), Hex(t, "msg"));
    const Bytes expected = Hex(t, "tag");
    const bool match = expected.size() == tag_bytes &&
                       ConstantTimeEquals(ByteView(mac).first(tag_bytes), expected);
    EXPECT_EQ(match, result == "valid");
  });
}

TEST(Wycheproof, HkdfSha256) {
  HAVEN_REQUIRE_VECTOR_FILE(path, "wycheproof/hkdf_sha256_test.json");
  ForEachCase(Load(path), "hkdf_sha256", [](const json&, const json& t, const std::string& result) {
    auto okm = HkdfSha256(Hex(t, "ikm"), Hex(t, "salt"), Hex(t, "info"), t.at("size").get<std::size_t>());
    if (result == "valid") {
      ASSERT_TRUE(okm.ok()) << okm.status().ToString();
      EXPECT_EQ(ToHex(okm->view()), t.at("okm").get<std::string>());
    } else {
      EXPECT_FALSE(okm.ok());
    }
  });
}

TEST(Wycheproof, XChaCha20Poly1305) {
  HAVEN_REQUIRE_VECTOR_FILE(path, "wycheproof/xchacha20_poly1305_test.json");
  ForEachCase(Load(path), "xchacha20_poly1305", [](const json&, const json& t, const std::string& result) {
    const Bytes key = Hex(t, "key"), iv = Hex(t, "iv"), aad = Hex(t, "aad"), msg = Hex(t, "msg");
    Bytes ct = Hex(t, "ct");
    const Bytes tag = Hex(t, "tag");
    ct.insert(ct.end(), tag.begin(), tag.end());
    Bytes opened;
    const Status open = AeadOpen(key, iv, aad, ct, &opened);
    if (result == "valid") {
      ASSERT_TRUE(open.ok()) << open.ToString();
      EXPECT_EQ(opened, msg);
      Bytes sealed;
      ASSERT_TRUE(AeadSeal(key, iv, aad, msg, &sealed).ok());
      EXPECT_EQ(sealed, ct);
    } else {
      EXPECT_FALSE(open.ok());
      EXPECT_TRUE(opened.empty());
    }
  });
}

TEST(Wycheproof, X25519) {
  HAVEN_REQUIRE_VECTOR_FILE(path, "wycheproof/x25519_test.json");
  int rejected_acceptable = 0;
  ForEachCase(Load(path), "x25519", [&](const json&, const json& t, const std::string& result) {
    auto shared = X25519(Hex(t, "private"), Hex(t, "public"));
    const std::string expected = t.at("shared");
    if (result == "valid") {
      ASSERT_TRUE(shared.ok());
      EXPECT_EQ(ToHex(shared->view()), expected);
    } else if (result == "acceptable") {
      // Either refused (we refuse all-zero secrets from low-order points)
      // or computed correctly; never a wrong value.
      if (shared.ok()) {
        EXPECT_EQ(ToHex(shared->view()), expected);
      } else {
        ++rejected_acceptable;
        EXPECT_EQ(expected, std::string(64, '0'));
      }
    } else {
      EXPECT_FALSE(shared.ok());
    }
  });
  std::printf("[ wycheproof ] x25519: %d acceptable cases refused (all-zero shared secret)\n",
              rejected_acceptable);
}

TEST(Wycheproof, Ed25519) {
  HAVEN_REQUIRE_VECTOR_FILE(path, "wycheproof/ed25519_test.json");
  ForEachCase(Load(path), "ed25519", [](const json& group, const json& t, const std::string& result) {
    const Bytes pk = FromHex(group.at("publicKey").at("pk").get<std::string>()).value();
    EXPECT_EQ(Verify(pk, Hex(t, "msg"), Hex(t, "sig")), result == "valid") << t.at("comment");
  });
}

TEST(Crypto, SealedBoxOpensOnlyWithTheRecipientKey) {
  const SecureBuffer priv = SecureBuffer::Random(kX25519Len);
  const X25519Public pub = X25519Base(priv.view());
  auto sealed = Seal(pub, AsBytes("case note"));
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), 9 + kSealOverhead);
  auto opened = OpenSealed(pub, priv.view(), *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(std::string(opened->view().begin(), opened->view().end()), "case note");
  const SecureBuffer other = SecureBuffer::Random(kX25519Len);
  EXPECT_FALSE(OpenSealed(X25519Base(other.view()), other.view(), *sealed).ok());
  (*sealed)[sealed->size() - 1] ^= 1;
  EXPECT_FALSE(OpenSealed(pub, priv.view(), *sealed).ok());
}

TEST(Crypto, SignAndVerify) {
  const SigningKeyPair kp = SigningKeyPair::Generate();
  const Ed25519Signature sig = Sign(kp, AsBytes("signed prekey"));
  EXPECT_TRUE(Verify(kp.public_key, AsBytes("signed prekey"), sig));
  EXPECT_FALSE(Verify(kp.public_key, AsBytes("signed prekeY"), sig));
}

}  // namespace
}  // namespace haven::crypto
