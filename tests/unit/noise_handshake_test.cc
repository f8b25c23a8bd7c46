// Behaviour of the Noise state machines beyond the published vectors:
// Haven's own XK configuration, failures, and misuse.
#include <gtest/gtest.h>

#include "haven/noise/handshake_state.h"

namespace haven::noise {
namespace {

constexpr char kHavenProtocol[] = "Noise_XK_25519_ChaChaPoly_BLAKE2b";

struct Pair {
  HandshakeState initiator;
  HandshakeState responder;
};

Pair MakeXk(const KeyPair& server, const KeyPair& client, const PublicKey& pinned) {
  HandshakeConfig i;
  i.protocol_name = kHavenProtocol;
  i.role = Role::kInitiator;
  i.prologue = Bytes{'h', 'a', 'v', 'e', 'n', '/', '1'};
  i.s = client.Clone();
  i.rs = pinned;
  HandshakeConfig r;
  r.protocol_name = kHavenProtocol;
  r.role = Role::kResponder;
  r.prologue = i.prologue;
  r.s = server.Clone();
  auto hi = HandshakeState::Create(std::move(i));
  auto hr = HandshakeState::Create(std::move(r));
  EXPECT_TRUE(hi.ok() && hr.ok());
  return {std::move(hi).value(), std::move(hr).value()};
}

// Runs the three XK messages; returns the first failing status.
Status RunHandshake(Pair& p) {
  Bytes m, payload;
  HAVEN_RETURN_IF_ERROR(p.initiator.WriteMessage({}, &m));
  HAVEN_RETURN_IF_ERROR(p.responder.ReadMessage(m, &payload));
  m.clear();
  HAVEN_RETURN_IF_ERROR(p.responder.WriteMessage({}, &m));
  HAVEN_RETURN_IF_ERROR(p.initiator.ReadMessage(m, &payload));
  m.clear();
  HAVEN_RETURN_IF_ERROR(p.initiator.WriteMessage({}, &m));
  return p.responder.ReadMessage(m, &payload);
}

struct Established {
  TransportState initiator;
  TransportState responder;
};

// A completed XK handshake between fresh keys, split into transport states.
Established Establish() {
  const KeyPair server = KeyPair::Generate();
  const KeyPair client = KeyPair::Generate();
  Pair p = MakeXk(server, client, server.public_key);
  EXPECT_TRUE(RunHandshake(p).ok());
  return {std::move(p.initiator.Split()).value(), std::move(p.responder.Split()).value()};
}

TEST(NoiseXk, HandshakeAuthenticatesBothStaticKeysAndCarriesTraffic) {
  const KeyPair server = KeyPair::Generate();
  const KeyPair client = KeyPair::Generate();
  Pair p = MakeXk(server, client, server.public_key);
  ASSERT_TRUE(RunHandshake(p).ok());
  ASSERT_TRUE(p.initiator.IsComplete() && p.responder.IsComplete());
  EXPECT_EQ(*p.responder.remote_static(), client.public_key);
  EXPECT_TRUE(ConstantTimeEquals(p.initiator.handshake_hash(), p.responder.handshake_hash()));

  auto ti = p.initiator.Split();
  auto tr = p.responder.Split();
  ASSERT_TRUE(ti.ok() && tr.ok());
  for (int i = 0; i < 100; ++i) {
    Bytes c, plain;
    const Bytes msg(static_cast<std::size_t>(i) * 7, static_cast<std::uint8_t>(i));
    ASSERT_TRUE(ti->Encrypt(msg, &c).ok());
    ASSERT_TRUE(tr->Decrypt(c, &plain).ok());
    EXPECT_EQ(plain, msg);
    c.clear();
    plain.clear();
    ASSERT_TRUE(tr->Encrypt(msg, &c).ok());
    ASSERT_TRUE(ti->Decrypt(c, &plain).ok());
    EXPECT_EQ(plain, msg);
  }
}

TEST(NoiseXk, WrongPinnedKeyFailsAtTheResponderOnFirstMessage) {
  const KeyPair server = KeyPair::Generate();
  const KeyPair client = KeyPair::Generate();
  const KeyPair impostor = KeyPair::Generate();
  Pair p = MakeXk(server, client, impostor.public_key);
  Status st = RunHandshake(p);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kDataLoss);
  // Poisoned: no further use.
  Bytes m;
  EXPECT_FALSE(p.responder.WriteMessage({}, &m).ok());
}

TEST(NoiseXk, ImpostorServerCannotCompleteTheHandshake) {
  const KeyPair server = KeyPair::Generate();
  const KeyPair client = KeyPair::Generate();
  const KeyPair impostor = KeyPair::Generate();
  // The client pins `server`; the impostor cannot read its message 1 ...
  Pair victim = MakeXk(server, client, server.public_key);
  Pair evil = MakeXk(impostor, client, server.public_key);
  Bytes m1, m2, payload;
  ASSERT_TRUE(victim.initiator.WriteMessage({}, &m1).ok());
  EXPECT_FALSE(evil.responder.ReadMessage(m1, &payload).ok());
  // ... and a message 2 it produces from its own key is rejected by the client.
  Pair own = MakeXk(impostor, client, impostor.public_key);
  Bytes own_m1;
  ASSERT_TRUE(own.initiator.WriteMessage({}, &own_m1).ok());
  ASSERT_TRUE(own.responder.ReadMessage(own_m1, &payload).ok());
  ASSERT_TRUE(own.responder.WriteMessage({}, &m2).ok());
  Status st = victim.initiator.ReadMessage(m2, &payload);
  EXPECT_EQ(st.code(), Status::Code::kDataLoss);
}

TEST(NoiseXk, EveryTamperedByteIsRejected) {
  const KeyPair server = KeyPair::Generate();
  const KeyPair client = KeyPair::Generate();
  Bytes m1;
  {
    Pair p = MakeXk(server, client, server.public_key);
    ASSERT_TRUE(p.initiator.WriteMessage(Bytes{1, 2, 3}, &m1).ok());
  }
  for (std::size_t i = 0; i < m1.size(); ++i) {
    Pair p = MakeXk(server, client, server.public_key);
    Bytes tampered = m1;
    tampered[i] ^= 0x01;
    Bytes payload;
    EXPECT_FALSE(p.responder.ReadMessage(tampered, &payload).ok()) << "byte " << i;
  }
}

TEST(NoiseXk, TruncatedAndOversizeMessagesAreRejected) {
  const KeyPair server = KeyPair::Generate();
  const KeyPair client = KeyPair::Generate();
  Pair p = MakeXk(server, client, server.public_key);
  Bytes payload;
  EXPECT_FALSE(p.responder.ReadMessage(Bytes(31, 0), &payload).ok());
  Pair q = MakeXk(server, client, server.public_key);
  EXPECT_FALSE(q.responder.ReadMessage(Bytes(65536, 0), &payload).ok());
  Pair r = MakeXk(server, client, server.public_key);
  EXPECT_FALSE(r.responder.ReadMessage(Bytes(40, 0), &payload).ok());
}

TEST(NoiseXk, LowOrderEphemeralIsRejected) {
  const KeyPair server = KeyPair::Generate();
  const KeyPair client = KeyPair::Generate();
  Pair p = MakeXk(server, client, server.public_key);
  Bytes m(48, 0);  // all-zero "e": a low-order point
  Bytes payload;
  Status st = p.responder.ReadMessage(m, &payload);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kDataLoss);
}

TEST(NoiseXk, FailedCallsPoisonAndLeaveNoPartialOutput) {
  const KeyPair server = KeyPair::Generate();
  const KeyPair client = KeyPair::Generate();
  Pair p = MakeXk(server, client, server.public_key);
  Bytes m = {0xaa};
  EXPECT_FALSE(p.initiator.WriteMessage(Bytes(65500, 0), &m).ok());
  EXPECT_EQ(m, Bytes{0xaa});
  EXPECT_FALSE(p.initiator.WriteMessage({}, &m).ok());  // poisoned
  Pair q = MakeXk(server, client, server.public_key);
  Bytes m1, payload;
  ASSERT_TRUE(q.initiator.WriteMessage({}, &m1).ok());
  EXPECT_FALSE(q.responder.ReadMessage(Bytes(70000, 0), &payload).ok());
  EXPECT_FALSE(q.responder.ReadMessage(m1, &payload).ok());  // poisoned by the oversize one
}

TEST(NoiseXk, OutOfTurnCallsFail) {
  const KeyPair server = KeyPair::Generate();
  const KeyPair client = KeyPair::Generate();
  Pair p = MakeXk(server, client, server.public_key);
  Bytes m;
  EXPECT_FALSE(p.responder.WriteMessage({}, &m).ok());
  EXPECT_FALSE(p.initiator.ReadMessage(Bytes(48, 1), &m).ok());
  EXPECT_FALSE(p.initiator.Split().ok());
}

TEST(NoiseTransport, ReplayedOrReorderedMessagesFail) {
  Established t = Establish();
  TransportState* ti = &t.initiator;
  TransportState* tr = &t.responder;
  Bytes c1, c2, out;
  ASSERT_TRUE(ti->Encrypt(Bytes{1}, &c1).ok());
  ASSERT_TRUE(ti->Encrypt(Bytes{2}, &c2).ok());
  EXPECT_FALSE(tr->Decrypt(c2, &out).ok());  // out of order
  ASSERT_TRUE(tr->Decrypt(c1, &out).ok());   // a failure does not advance the nonce
  EXPECT_FALSE(tr->Decrypt(c1, &out).ok());  // replay
  ASSERT_TRUE(tr->Decrypt(c2, &out).ok());
}

TEST(NoiseTransport, RekeyIsSymmetricAndChangesKeys) {
  Established t = Establish();
  TransportState* ti = &t.initiator;
  TransportState* tr = &t.responder;
  ti->RekeySend();
  Bytes c, out;
  ASSERT_TRUE(ti->Encrypt(Bytes{5}, &c).ok());
  EXPECT_FALSE(tr->Decrypt(c, &out).ok());
  tr->RekeyReceive();
  EXPECT_TRUE(tr->Decrypt(c, &out).ok());
}

TEST(NoiseTransport, PlaintextBoundIsEnforced) {
  Established t = Establish();
  TransportState* ti = &t.initiator;
  Bytes c;
  EXPECT_TRUE(ti->Encrypt(Bytes(65519, 0), &c).ok());
  EXPECT_FALSE(ti->Encrypt(Bytes(65520, 0), &c).ok());
}

TEST(NoiseProtocolName, RejectsWhatIsNotImplemented) {
  EXPECT_TRUE(ParseProtocolName("Noise_XK_25519_ChaChaPoly_BLAKE2b").ok());
  EXPECT_TRUE(ParseProtocolName("Noise_NNpsk0+psk2_25519_ChaChaPoly_SHA256").ok());
  EXPECT_FALSE(ParseProtocolName("Noise_XK_448_ChaChaPoly_BLAKE2b").ok());
  EXPECT_FALSE(ParseProtocolName("Noise_XK_25519_AESGCM_BLAKE2b").ok());
  EXPECT_FALSE(ParseProtocolName("Noise_XK_25519_ChaChaPoly_BLAKE2s").ok());
  EXPECT_FALSE(ParseProtocolName("Noise_QQ_25519_ChaChaPoly_SHA256").ok());
  EXPECT_FALSE(ParseProtocolName("Noise_XKpsk9_25519_ChaChaPoly_SHA256").ok());
  EXPECT_FALSE(ParseProtocolName("Noise_XK_25519_ChaChaPoly").ok());
  EXPECT_FALSE(ParseProtocolName("Noise_XK_25519_ChaChaPoly_SHA256_x").ok());
}

TEST(NoisePattern, PskModifiersPlaceTokens) {
  auto p = LookupPattern("NNpsk0+psk2");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->has_psk);
  EXPECT_EQ(p->messages[0].front(), Token::kPsk);
  EXPECT_EQ(p->messages[1].back(), Token::kPsk);
}

TEST(NoiseHandshake, MissingKeysAreReportedAtCreate) {
  HandshakeConfig c;
  c.protocol_name = kHavenProtocol;
  c.role = Role::kInitiator;  // XK initiator needs rs
  EXPECT_FALSE(HandshakeState::Create(std::move(c)).ok());
  HandshakeConfig d;
  d.protocol_name = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
  d.psks.push_back(SecureBuffer(31));
  EXPECT_FALSE(HandshakeState::Create(std::move(d)).ok());
}

}  // namespace
}  // namespace haven::noise
