// X3DH, the safety number, and a whole session: X3DH into the Double Ratchet.
#include "e2e/x3dh.h"

#include <gtest/gtest.h>

#include <sodium.h>

#include <regex>

namespace haven::e2e {
namespace {

struct Counsellor {
  IdentityKey identity = IdentityKey::Generate();
  SignedPrekey spk = SignedPrekey::Make(identity, 7);
  OneTimePrekey opk{42, DhKeyPair::Generate()};

  PrekeyBundle Bundle(bool with_one_time) const {
    PrekeyBundle b;
    b.identity = identity.public_key();
    b.signed_prekey_id = spk.id;
    b.signed_prekey = spk.key.public_key;
    b.signature = spk.signature;
    if (with_one_time) b.one_time_prekey = std::pair{opk.id, opk.key.public_key};
    return b;
  }
};

std::string Text(const SecureBuffer& b) { return std::string(b.view().begin(), b.view().end()); }

TEST(X3dh, BothSidesDeriveTheSameSecretAndAssociatedData) {
  for (bool with_one_time : {true, false}) {
    Counsellor c;
    const IdentityKey survivor = IdentityKey::Generate();
    auto init = InitiateX3dh(survivor, c.Bundle(with_one_time));
    ASSERT_TRUE(init.ok()) << init.status().ToString();
    // The initial message goes over the wire.
    auto decoded = InitialMessage::Decode(init->message.Encode());
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->one_time_prekey_id.has_value(), with_one_time);
    auto resp = RespondX3dh(c.identity, c.spk, with_one_time ? &c.opk : nullptr, *decoded);
    ASSERT_TRUE(resp.ok()) << resp.status().ToString();
    EXPECT_TRUE(ConstantTimeEquals(init->secrets.shared_secret.view(), resp->shared_secret.view()));
    EXPECT_EQ(init->secrets.associated_data, resp->associated_data);
    EXPECT_EQ(init->secrets.associated_data.size(), 7u + 64 + 64);
  }
}

TEST(X3dh, ForgedSignedPrekeyIsRefused) {
  Counsellor c;
  PrekeyBundle b = c.Bundle(true);
  b.signed_prekey = DhKeyPair::Generate().public_key;  // a man in the middle's key
  EXPECT_EQ(InitiateX3dh(IdentityKey::Generate(), b).status().code(), Status::Code::kDataLoss);
  PrekeyBundle other = c.Bundle(true);
  other.identity.signing = IdentityKey::Generate().signing.public_key;
  EXPECT_FALSE(InitiateX3dh(IdentityKey::Generate(), other).ok());
}

TEST(X3dh, MismatchedPrekeysDoNotAgree) {
  Counsellor c;
  const IdentityKey survivor = IdentityKey::Generate();
  auto init = InitiateX3dh(survivor, c.Bundle(true));
  ASSERT_TRUE(init.ok());
  EXPECT_FALSE(RespondX3dh(c.identity, c.spk, nullptr, init->message).ok());
  OneTimePrekey wrong{42, DhKeyPair::Generate()};  // right id, wrong key
  auto resp = RespondX3dh(c.identity, c.spk, &wrong, init->message);
  ASSERT_TRUE(resp.ok());
  EXPECT_FALSE(ConstantTimeEquals(init->secrets.shared_secret.view(), resp->shared_secret.view()));
}

TEST(X3dh, MalformedInitialMessagesAreRejected) {
  EXPECT_FALSE(InitialMessage::Decode(Bytes(100, 0)).has_value());
  Bytes with_bad_flag(101, 0);
  with_bad_flag[100] = 2;
  EXPECT_FALSE(InitialMessage::Decode(with_bad_flag).has_value());
  Bytes flag_without_id(101, 0);
  flag_without_id[100] = 1;
  EXPECT_FALSE(InitialMessage::Decode(flag_without_id).has_value());
}

TEST(SafetyNumber, SameOnBothSidesDifferentWhenEitherKeyDiffers) {
  const IdentityPublic a = IdentityKey::Generate().public_key();
  const IdentityPublic b = IdentityKey::Generate().public_key();
  const std::string ab = SafetyNumber(a, b);
  EXPECT_EQ(ab, SafetyNumber(b, a));
  EXPECT_TRUE(std::regex_match(ab, std::regex(R"(\d{5}( \d{5}){11})"))) << ab;
  const IdentityPublic c = IdentityKey::Generate().public_key();
  EXPECT_NE(ab, SafetyNumber(a, c));
  EXPECT_NE(ab, SafetyNumber(c, b));
  IdentityPublic a_other_signing = a;
  a_other_signing.signing[0] ^= 1;
  EXPECT_NE(ab, SafetyNumber(a_other_signing, b));
}

TEST(SafetyNumber, KnownAnswer) {
  IdentityPublic a, b;
  for (std::size_t i = 0; i < 32; ++i) {
    a.dh[i] = static_cast<std::uint8_t>(i);
    a.signing[i] = static_cast<std::uint8_t>(0x20 + i);
    b.dh[i] = static_cast<std::uint8_t>(0x40 + i);
    b.signing[i] = static_cast<std::uint8_t>(0x60 + i);
  }
  // Computed independently (Python hashlib) from the construction in x3dh.h.
  EXPECT_EQ(SafetyNumber(a, b),
            "27904 66472 40568 57611 92937 41306 99784 44154 33005 44025 66704 89856");
}

// docs/protocol.md 18.4: fixed keys in, exact bytes out (the vector there was
// computed by an independent implementation).
SecureBuffer ByteRun(std::uint8_t start) {
  SecureBuffer b(32);
  for (std::size_t i = 0; i < 32; ++i) b.data()[i] = static_cast<std::uint8_t>(start + i);
  return b;
}

IdentityKey FixedIdentity(std::uint8_t dh_start, std::uint8_t seed_start) {
  IdentityKey id{DhKeyPair::FromPrivate(ByteRun(dh_start).view()), {}};
  id.signing.secret = SecureBuffer(crypto::kEd25519SecretLen);
  crypto_sign_seed_keypair(id.signing.public_key.data(), id.signing.secret.data(),
                           ByteRun(seed_start).data());
  return id;
}

TEST(X3dh, KnownAnswerFromTheSpecification) {
  const IdentityKey alice = FixedIdentity(0x00, 0x20);
  const IdentityKey bob = FixedIdentity(0x60, 0x80);
  EXPECT_EQ(ToHex(alice.signing.public_key),
            "29acbae141bccaf0b22e1a94d34d0bc7361e526d0bfe12c89794bc9322966dd7");
  SignedPrekey spk;
  spk.id = 7;
  spk.key = DhKeyPair::FromPrivate(ByteRun(0xa0).view());
  Bytes to_sign = {'h', 'a', 'v', 'e', 'n', '/', '1', ' ', 's', 'i', 'g', 'n', 'e', 'd', ' ',
                   'p', 'r', 'e', 'k', 'e', 'y'};
  to_sign.insert(to_sign.end(), spk.key.public_key.begin(), spk.key.public_key.end());
  spk.signature = crypto::Sign(bob.signing, to_sign);
  EXPECT_EQ(ToHex(spk.signature),
            "6e0ab93dbb15f88525ec1191c574b14f96e4b66e2a3a9e55d03ffa671e67d68d"
            "54e375aa7b90b7590ad5b938621905a66652ae7b4e8ab8a64cd4e61971fd2208");
  const OneTimePrekey opk{42, DhKeyPair::FromPrivate(ByteRun(0xc0).view())};
  PrekeyBundle bundle;
  bundle.identity = bob.public_key();
  bundle.signed_prekey_id = 7;
  bundle.signed_prekey = spk.key.public_key;
  bundle.signature = spk.signature;
  auto ephemeral = [] { return DhKeyPair::FromPrivate(ByteRun(0x40).view()); };

  bundle.one_time_prekey = std::pair{opk.id, opk.key.public_key};
  auto with = InitiateX3dh(alice, bundle, ephemeral);
  ASSERT_TRUE(with.ok());
  EXPECT_EQ(ToHex(with->secrets.shared_secret.view()),
            "3545c9a744b6884dbf9bb0327a98ffc3ff3324ba5045fe01e7baf9996f8e39a4");
  EXPECT_EQ(ToHex(with->message.Encode()).substr(128),
            "79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a00000007010000002a");
  auto resp = RespondX3dh(bob, spk, &opk, with->message);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(ToHex(resp->shared_secret.view()), ToHex(with->secrets.shared_secret.view()));

  bundle.one_time_prekey.reset();
  auto without = InitiateX3dh(alice, bundle, ephemeral);
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(ToHex(without->secrets.shared_secret.view()),
            "876db9e3ff23ca68efbceca15af1e41b89c0679ba4be4433ac42e3087f25fa5e");
  EXPECT_EQ(without->secrets.associated_data.size(), 135u);
}

TEST(E2eSession, X3dhThenRatchetedMessagesBothWays) {
  Counsellor c;
  const IdentityKey survivor = IdentityKey::Generate();
  auto init = InitiateX3dh(survivor, c.Bundle(true));
  ASSERT_TRUE(init.ok());
  auto alice = DoubleRatchet::InitInitiator(init->secrets.shared_secret.view(), c.spk.key.public_key,
                                            init->secrets.associated_data);
  ASSERT_TRUE(alice.ok());
  auto first = alice->Encrypt(AsBytes("I need help"));
  ASSERT_TRUE(first.ok());

  // The counsellor's device: from the initial message and the first ratchet message.
  auto resp = RespondX3dh(c.identity, c.spk, &c.opk, init->message);
  ASSERT_TRUE(resp.ok());
  auto bob = DoubleRatchet::InitResponder(resp->shared_secret.view(), c.spk.key.Clone(),
                                          resp->associated_data);
  ASSERT_TRUE(bob.ok());
  auto got = bob->Decrypt(*first);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(Text(*got), "I need help");
  auto reply = bob->Encrypt(AsBytes("You are safe to talk here"));
  EXPECT_EQ(Text(*alice->Decrypt(*reply)), "You are safe to talk here");
  EXPECT_EQ(SafetyNumber(survivor.public_key(), c.identity.public_key()),
            SafetyNumber(init->message.initiator, c.identity.public_key()));
}

}  // namespace
}  // namespace haven::e2e
