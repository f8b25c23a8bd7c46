// Known-answer test for Haven's own construction (docs/protocol.md, 10.3):
// fixed keys in, exact bytes out. A change of any byte on the wire fails here.
#include <gtest/gtest.h>

#include "haven/framing/length_prefix.h"
#include "haven/noise/handshake_state.h"
#include "haven/v1/frame.pb.h"

namespace haven {
namespace {


noise::KeyPair Key(std::uint8_t first) {
  Bytes priv(32);
  for (std::size_t i = 0; i < priv.size(); ++i) priv[i] = static_cast<std::uint8_t>(first + i);
  return noise::KeyPair::FromPrivateKey(priv).value();
}

std::string Record(ByteView message) {
  Bytes out;
  EXPECT_TRUE(framing::AppendLengthPrefixed(message, &out).ok());
  return ToHex(out);
}

TEST(Haven1KnownAnswer, HandshakeAndPingPongMatchTheSpecification) {
  const Bytes prologue = {'h', 'a', 'v', 'e', 'n', '/', '1'};
  noise::HandshakeConfig client;
  client.protocol_name = "Noise_XK_25519_ChaChaPoly_BLAKE2b";
  client.role = noise::Role::kInitiator;
  client.prologue = prologue;
  client.s = Key(0x40);
  client.rs = Key(0x00).public_key;
  client.fixed_ephemeral_for_testing = Key(0x60);
  noise::HandshakeConfig server;
  server.protocol_name = client.protocol_name;
  server.role = noise::Role::kResponder;
  server.prologue = prologue;
  server.s = Key(0x00);
  server.fixed_ephemeral_for_testing = Key(0x20);

  EXPECT_EQ(ToHex(Key(0x00).public_key),
            "8f40c5adb68f25624ae5b214ea767a6ec94d829d3d7b5e1ad1ba6f3e2138285f");
  auto c = noise::HandshakeState::Create(std::move(client));
  auto s = noise::HandshakeState::Create(std::move(server));
  ASSERT_TRUE(c.ok() && s.ok());

  Bytes m1, m2, m3, payload;
  ASSERT_TRUE(c->WriteMessage({}, &m1).ok());
  EXPECT_EQ(Record(m1),
            "0030675dd574ed7789310b3d2e7681f3790b466c773b1521fecf36577958371ea52f"
            "7f5ce185ea3b9fcdde1bf53e18bcaf50");
  ASSERT_TRUE(s->ReadMessage(m1, &payload).ok());
  ASSERT_TRUE(s->WriteMessage({}, &m2).ok());
  EXPECT_EQ(Record(m2),
            "0030358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254"
            "b98442352f77fadd182f5b7879586b38");
  ASSERT_TRUE(c->ReadMessage(m2, &payload).ok());
  ASSERT_TRUE(c->WriteMessage({}, &m3).ok());
  EXPECT_EQ(Record(m3),
            "004000a64d2a02f94f40f0f74705870864dc7d21bef6e20c40e0c88518247fef1a83"
            "d2fbd8248929fdbebf41107a221c168043fc236ed9d39bd4d796635446efa729");
  ASSERT_TRUE(s->ReadMessage(m3, &payload).ok());
  EXPECT_EQ(ToHex(c->handshake_hash()),
            "5e0aee0fdd633377a86bb4d9d8f682791ceb1ac405ce713746ab932cdd837496"
            "b08ec459be5f9978df597884fb1f0225810f498340f1fbfb1b389e6fb78dd1a3");

  auto ct = c->Split();
  auto st = s->Split();
  ASSERT_TRUE(ct.ok() && st.ok());

  v1::Frame ping;
  ping.set_request_id(1);
  ping.mutable_request()->mutable_ping()->set_opaque(std::string("\x01\x02\x03\x04\x05\x06\x07\x08"));
  const std::string ping_bytes = ping.SerializeAsString();
  EXPECT_EQ(ToHex(AsBytes(ping_bytes)), "0801120c0a0a0a080102030405060708");
  Bytes m4;
  ASSERT_TRUE(ct->Encrypt(AsBytes(ping_bytes), &m4).ok());
  EXPECT_EQ(Record(m4), "00206ea3244874b0f93fadcf1383cdf8aa106da3d12b0609650d64a2a7a431e1f717");

  v1::Frame pong;
  pong.set_request_id(1);
  pong.mutable_response()->mutable_pong()->set_opaque(ping.request().ping().opaque());
  const std::string pong_bytes = pong.SerializeAsString();
  EXPECT_EQ(ToHex(AsBytes(pong_bytes)), "08011a0c120a0a080102030405060708");
  Bytes m5;
  ASSERT_TRUE(st->Encrypt(AsBytes(pong_bytes), &m5).ok());
  EXPECT_EQ(Record(m5), "0020c14a969352c4b36da7268a942462586fc6ef8322a13785bdf139d79d9b11e499");

  v1::Frame closing;
  closing.mutable_event()->mutable_closing()->set_reason(v1::ERROR_CODE_IDLE_TIMEOUT);
  EXPECT_EQ(ToHex(AsBytes(closing.SerializeAsString())), "22040a020805");
}

}  // namespace
}  // namespace haven
