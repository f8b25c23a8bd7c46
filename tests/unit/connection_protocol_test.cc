// The server's per-connection state machine driven by the client's, with no
// sockets: every byte that would cross the wire is handed over directly.
#include "net/connection_protocol.h"

#include <gtest/gtest.h>

#include "transport/client_channel.h"

namespace haven::server {
namespace {

class ConnectionProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = ConnectionProtocol::Create(server_key_);
    ASSERT_TRUE(p.ok());
    server_.emplace(std::move(p).value());
    auto c = client::ClientChannel::Create(server_key_.public_key, client_key_.Clone());
    ASSERT_TRUE(c.ok());
    client_.emplace(std::move(c).value());
  }

  void Handshake() {
    auto m1 = client_->Start();
    ASSERT_TRUE(m1.ok());
    ProtocolOutput o1 = server_->OnMessage(*m1);
    ASSERT_FALSE(o1.close);
    ASSERT_EQ(o1.messages.size(), 1u);
    auto m3 = client_->Finish(o1.messages[0]);
    ASSERT_TRUE(m3.ok()) << m3.status().ToString();
    ProtocolOutput o3 = server_->OnMessage(*m3);
    ASSERT_FALSE(o3.close);
    EXPECT_TRUE(o3.established);
    EXPECT_TRUE(o3.messages.empty());
    ASSERT_TRUE(server_->established());
    EXPECT_EQ(*server_->peer_static(), client_key_.public_key);
  }

  // Sends one frame; returns the server's replies, opened.
  std::vector<v1::Frame> Exchange(const v1::Frame& frame, bool* closed = nullptr) {
    auto sealed = client_->Seal(frame);
    EXPECT_TRUE(sealed.ok());
    return Deliver(*sealed, closed);
  }

  std::vector<v1::Frame> Deliver(ByteView message, bool* closed = nullptr) {
    ProtocolOutput out = server_->OnMessage(message);
    if (closed) *closed = out.close;
    std::vector<v1::Frame> frames;
    for (const Bytes& m : out.messages) {
      auto f = client_->Open(m);
      EXPECT_TRUE(f.ok()) << f.status().ToString();
      if (f.ok()) frames.push_back(std::move(f).value());
    }
    return frames;
  }

  noise::KeyPair server_key_ = noise::KeyPair::Generate();
  noise::KeyPair client_key_ = noise::KeyPair::Generate();
  std::optional<ConnectionProtocol> server_;
  std::optional<client::ClientChannel> client_;
};

TEST_F(ConnectionProtocolTest, PingIsAnsweredWithPongAndTheSameId) {
  Handshake();
  v1::Frame ping;
  ping.set_request_id(42);
  ping.mutable_request()->mutable_ping()->set_opaque("abc");
  auto replies = Exchange(ping);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].request_id(), 42u);
  EXPECT_EQ(replies[0].response().pong().opaque(), "abc");
}

TEST_F(ConnectionProtocolTest, GarbageBeforeTheHandshakeClosesSilently) {
  ProtocolOutput out = server_->OnMessage(Bytes(48, 0x11));
  EXPECT_TRUE(out.close);
  EXPECT_TRUE(out.messages.empty());
  EXPECT_FALSE(server_->established());
}

TEST_F(ConnectionProtocolTest, TamperedTransportMessageCloses) {
  Handshake();
  v1::Frame ping;
  ping.mutable_request()->mutable_ping();
  auto sealed = client_->Seal(ping);
  ASSERT_TRUE(sealed.ok());
  (*sealed)[0] ^= 0x80;
  bool closed = false;
  EXPECT_TRUE(Deliver(*sealed, &closed).empty());
  EXPECT_TRUE(closed);
}

TEST_F(ConnectionProtocolTest, ErrorsCarryStableCodes) {
  Handshake();
  auto raw = client_->SealRawForTesting(Bytes{0x0f});  // field 1, wire type 7: invalid
  ASSERT_TRUE(raw.ok());
  bool closed = true;
  auto replies = Deliver(*raw, &closed);
  EXPECT_FALSE(closed);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].response().error().code(), v1::ERROR_CODE_MALFORMED_FRAME);

  v1::Frame event;
  event.set_request_id(5);
  event.mutable_event()->mutable_closing();
  replies = Exchange(event);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].request_id(), 5u);
  EXPECT_EQ(replies[0].response().error().code(), v1::ERROR_CODE_UNEXPECTED_FRAME);

  v1::Frame pong;  // a response from the client is liveness only
  pong.mutable_response()->mutable_pong();
  EXPECT_TRUE(Exchange(pong).empty());
}

TEST_F(ConnectionProtocolTest, ServerOriginatedFramesNeedAnEstablishedChannel) {
  EXPECT_FALSE(server_->MakePing().ok());
  Handshake();
  auto ping = server_->MakePing();
  ASSERT_TRUE(ping.ok());
  auto frame = client_->Open(*ping);
  ASSERT_TRUE(frame.ok());
  EXPECT_TRUE(frame->request().has_ping());
  EXPECT_NE(frame->request_id(), 0u);
  auto closing = server_->MakeClosing(v1::ERROR_CODE_SHUTTING_DOWN);
  ASSERT_TRUE(closing.ok());
  EXPECT_EQ(client_->Open(*closing)->event().closing().reason(), v1::ERROR_CODE_SHUTTING_DOWN);
}

TEST_F(ConnectionProtocolTest, ReplayedHandshakeMessageIsRejected) {
  auto m1 = client_->Start();
  ASSERT_TRUE(m1.ok());
  ProtocolOutput o1 = server_->OnMessage(*m1);
  ASSERT_EQ(o1.messages.size(), 1u);
  // Message 1 again where message 3 is expected.
  ProtocolOutput again = server_->OnMessage(*m1);
  EXPECT_TRUE(again.close);
  EXPECT_FALSE(server_->established());
}

}  // namespace
}  // namespace haven::server
