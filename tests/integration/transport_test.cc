// The haven/1 transport against a real havend on 127.0.0.1: the pinned
// handshake, ping/pong, structured errors, limits, and hostile clients, each
// checked while a second, healthy client keeps working.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "support/havend_process.h"
#include "support/raw_socket.h"
#include "transport/connection.h"

namespace haven {
namespace {

using namespace std::chrono_literals;
using client::Connection;
using client::ConnectOptions;
using testing::HavendProcess;
using testing::RawSocket;

ConnectOptions OptionsFor(const HavendProcess& server) {
  ConnectOptions o;
  o.port = server.port();
  o.server_key = server.server_key();
  o.timeout = 3s;
  return o;
}

std::unique_ptr<Connection> MustConnect(const HavendProcess& server) {
  auto c = Connection::Connect(OptionsFor(server));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

void ExpectPingWorks(Connection& c, const std::string& opaque = "still-here") {
  auto reply = c.Ping(opaque, 3s);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_TRUE(reply->response().has_pong()) << reply->DebugString();
  EXPECT_EQ(reply->response().pong().opaque(), opaque);
}

v1::ErrorCode ErrorOf(const Result<v1::Frame>& reply) {
  EXPECT_TRUE(reply.ok()) << reply.status().ToString();
  if (!reply.ok() || !reply->response().has_error()) return v1::ERROR_CODE_UNSPECIFIED;
  EXPECT_FALSE(reply->response().error().message().empty());
  return reply->response().error().code();
}

class TransportTest : public ::testing::Test {
 protected:
  void StartServer(const std::string& toml = "") {
    server_ = HavendProcess::Start(toml);
    ASSERT_NE(server_, nullptr);
    healthy_ = MustConnect(*server_);
    ASSERT_NE(healthy_, nullptr);
  }
  // The healthy client is unaffected by whatever the test did.
  void ExpectHealthyClientUnaffected() { ExpectPingWorks(*healthy_); }
  // Connects `n` clients one after another, each answered a ping, and keeps
  // them open until the test ends.
  void ConnectClientsThatPing(int n) {
    for (int i = 0; i < n; ++i) {
      clients_.push_back(MustConnect(*server_));
      ASSERT_NE(clients_.back(), nullptr);
      ExpectPingWorks(*clients_.back());
    }
  }

  std::unique_ptr<HavendProcess> server_;
  std::unique_ptr<Connection> healthy_;
  std::vector<std::unique_ptr<Connection>> clients_;  // from ConnectClientsThatPing
};

TEST_F(TransportTest, HandshakeThenPingPong) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  for (int i = 0; i < 20; ++i) ExpectPingWorks(*healthy_, "ping-" + std::to_string(i));
  // Request ids are echoed.
  v1::Frame request;
  request.mutable_request()->mutable_ping();
  auto reply = healthy_->Call(request, 3s);
  ASSERT_TRUE(reply.ok());
  EXPECT_NE(reply->request_id(), 0u);
}

TEST_F(TransportTest, WrongPinnedKeyFailsWithAClearError) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  ConnectOptions o = OptionsFor(*server_);
  o.server_key = noise::KeyPair::Generate().public_key;
  auto c = Connection::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(c.status().message().find("pinned server key"), std::string::npos)
      << c.status().message();
  ExpectHealthyClientUnaffected();
}

TEST_F(TransportTest, OversizeLengthClosesThatConnectionOnly) {
  ASSERT_NO_FATAL_FAILURE(StartServer("[limits]\nmax_frame_bytes = 4096\n[relay]\nmax_envelope_bytes = 1024\n"));
  RawSocket raw(server_->port());
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.Send({0x10, 0x01}));  // 4097 > 4096
  auto closed = raw.WaitClosed(2s);
  ASSERT_TRUE(closed.has_value()) << "server kept an oversize-length connection open";
  EXPECT_EQ(raw.received(), 0u) << "nothing may be sent in clear";
  ExpectHealthyClientUnaffected();
}

TEST_F(TransportTest, OversizeLengthAfterHandshakeClosesThatConnectionOnly) {
  ASSERT_NO_FATAL_FAILURE(StartServer("[limits]\nmax_frame_bytes = 4096\n[relay]\nmax_envelope_bytes = 1024\n"));
  auto victim = MustConnect(*server_);
  ASSERT_NE(victim, nullptr);
  ASSERT_TRUE(victim->SendRawBytes(Bytes{0xff, 0xff, 0x00}).ok());
  auto frames = victim->WaitForClose(2s);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ExpectHealthyClientUnaffected();
}

TEST_F(TransportTest, ZeroLengthFrameClosesThatConnection) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  RawSocket raw(server_->port());
  ASSERT_TRUE(raw.Send({0x00, 0x00}));
  EXPECT_TRUE(raw.WaitClosed(2s).has_value());
  ExpectHealthyClientUnaffected();
}

TEST_F(TransportTest, TruncatedHandshakeIsClosedAtTheDeadline) {
  ASSERT_NO_FATAL_FAILURE(StartServer("[limits]\nhandshake_timeout_ms = 400\n"));
  RawSocket raw(server_->port());
  std::vector<std::uint8_t> partial = {0x00, 0x30};  // announces 48 bytes
  partial.resize(2 + 10, 0x42);                         // sends 10
  ASSERT_TRUE(raw.Send(partial));
  auto closed = raw.WaitClosed(3s);
  ASSERT_TRUE(closed.has_value()) << "truncated handshake was never closed";
  EXPECT_GE(closed->count(), 300);
  EXPECT_EQ(raw.received(), 0u);
  ExpectHealthyClientUnaffected();
}

TEST_F(TransportTest, SilentClientIsClosedAtTheHandshakeDeadline) {
  ASSERT_NO_FATAL_FAILURE(StartServer("[limits]\nhandshake_timeout_ms = 400\n"));
  RawSocket silent(server_->port());
  ASSERT_TRUE(silent.connected());
  auto closed = silent.WaitClosed(3s);
  ASSERT_TRUE(closed.has_value()) << "silent client was never closed";
  EXPECT_GE(closed->count(), 300);
  ExpectHealthyClientUnaffected();
}

TEST_F(TransportTest, GarbageHandshakeIsClosedWithoutAReply) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  RawSocket raw(server_->port());
  std::vector<std::uint8_t> junk = {0x00, 0x30};
  std::mt19937 rng(7);
  for (int i = 0; i < 48; ++i) junk.push_back(static_cast<std::uint8_t>(rng()));
  junk[2] = 9;  // not a low-order point, so it fails at the tag instead
  ASSERT_TRUE(raw.Send(junk));
  ASSERT_TRUE(raw.WaitClosed(2s).has_value());
  EXPECT_EQ(raw.received(), 0u);
  ExpectHealthyClientUnaffected();
}

TEST_F(TransportTest, GarbageAfterHandshakeClosesThatConnectionOnly) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto victim = MustConnect(*server_);
  ASSERT_NE(victim, nullptr);
  Bytes garbage = {0x00, 0x40};
  std::mt19937 rng(11);
  for (int i = 0; i < 64; ++i) garbage.push_back(static_cast<std::uint8_t>(rng()));
  ASSERT_TRUE(victim->SendRawBytes(garbage).ok());
  auto frames = victim->WaitForClose(2s);
  ASSERT_TRUE(frames.ok()) << "server kept a connection that sent unauthenticated data";
  ExpectHealthyClientUnaffected();
}

TEST_F(TransportTest, MalformedFrameGetsAStructuredErrorAndTheConnectionSurvives) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // Authenticated, but not a protobuf Frame (an invalid wire type).
  ASSERT_TRUE(healthy_->SendRawPlaintext(Bytes{0xff, 0xff, 0xff}).ok());
  auto reply = healthy_->Receive(3s);
  EXPECT_EQ(ErrorOf(reply), v1::ERROR_CODE_MALFORMED_FRAME);
  EXPECT_EQ(reply->request_id(), 0u);
  ExpectPingWorks(*healthy_);
}

TEST_F(TransportTest, UnknownAndMisdirectedFramesGetStableErrorCodes) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  v1::Frame empty;  // no kind at all
  EXPECT_EQ(ErrorOf(healthy_->Call(empty, 3s)), v1::ERROR_CODE_UNKNOWN_REQUEST);

  v1::Frame empty_request;  // a request of a kind this server does not know
  empty_request.mutable_request();
  EXPECT_EQ(ErrorOf(healthy_->Call(empty_request, 3s)), v1::ERROR_CODE_UNKNOWN_REQUEST);

  // A future request type: field 99 inside Request, unknown to this schema.
  const Bytes future = {0x08, 0x07, 0x12, 0x03, 0x9a, 0x06, 0x00};  // id 7, request{99: ""}
  ASSERT_TRUE(healthy_->SendRawPlaintext(future).ok());
  auto reply = healthy_->Receive(3s);
  EXPECT_EQ(ErrorOf(reply), v1::ERROR_CODE_UNKNOWN_REQUEST);
  EXPECT_EQ(reply->request_id(), 7u);

  v1::Frame event;
  event.mutable_event()->mutable_closing();
  EXPECT_EQ(ErrorOf(healthy_->Call(event, 3s)), v1::ERROR_CODE_UNEXPECTED_FRAME);

  v1::Frame big_ping;
  big_ping.mutable_request()->mutable_ping()->set_opaque(std::string(33, 'x'));
  EXPECT_EQ(ErrorOf(healthy_->Call(big_ping, 3s)), v1::ERROR_CODE_INVALID_ARGUMENT);
  ExpectPingWorks(*healthy_);
}

TEST_F(TransportTest, IdleClientIsPingedThenClosed) {
  ASSERT_NO_FATAL_FAILURE(StartServer("[limits]\nping_interval_s = 1\nidle_timeout_s = 2\n"));
  auto idle = MustConnect(*server_);
  ASSERT_NE(idle, nullptr);
  idle->set_auto_pong(false);
  auto frames = idle->WaitForClose(5s);
  ASSERT_TRUE(frames.ok()) << "idle connection was not closed: " << frames.status().ToString();
  ASSERT_GE(frames->size(), 2u);
  EXPECT_TRUE(frames->front().request().has_ping());
  EXPECT_EQ(frames->back().event().closing().reason(), v1::ERROR_CODE_IDLE_TIMEOUT);
}

TEST_F(TransportTest, ClientAnsweringPingsStaysConnected) {
  ASSERT_NO_FATAL_FAILURE(StartServer("[limits]\nping_interval_s = 1\nidle_timeout_s = 2\n"));
  auto alive = MustConnect(*server_);
  ASSERT_NE(alive, nullptr);
  // Receive() answers pings; nothing else should arrive in 3.5 s.
  auto frame = alive->Receive(3500ms);
  EXPECT_EQ(frame.status().code(), Status::Code::kDeadlineExceeded) << frame.status().ToString();
  ExpectPingWorks(*alive);
}

TEST_F(TransportTest, ConnectionsBeyondTheLimitAreClosedAtOnce) {
  ASSERT_NO_FATAL_FAILURE(StartServer("[limits]\nmax_connections = 2\n"));
  auto second = MustConnect(*server_);
  ASSERT_NE(second, nullptr);
  RawSocket third(server_->port());
  auto closed = third.WaitClosed(2s);
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(third.received(), 0u);
  ExpectHealthyClientUnaffected();
  // A slot frees up when a client leaves.
  second.reset();
  std::this_thread::sleep_for(300ms);
  auto again = MustConnect(*server_);
  ASSERT_NE(again, nullptr);
  ExpectPingWorks(*again);
}

TEST_F(TransportTest, PipelinedRequestsAreAllAnswered) {
  // Many requests in one TCP segment must not trip the send-queue bound: the
  // server stops reading while its queue is full instead.
  ASSERT_NO_FATAL_FAILURE(StartServer("[limits]\nsend_queue_frames = 8\n[relay]\ndelivery_window = 4\n"));
  constexpr int kCount = 2000;
  v1::Frame ping;
  for (int i = 0; i < kCount; ++i) {
    ping.set_request_id(static_cast<std::uint64_t>(i + 1));
    ping.mutable_request()->mutable_ping()->set_opaque(std::to_string(i));
    ASSERT_TRUE(healthy_->Send(ping).ok());
  }
  for (int i = 0; i < kCount; ++i) {
    auto pong = healthy_->Receive(5s);
    ASSERT_TRUE(pong.ok()) << "pong " << i << ": " << pong.status().ToString();
    ASSERT_EQ(pong->request_id(), static_cast<std::uint64_t>(i + 1));
    ASSERT_EQ(pong->response().pong().opaque(), std::to_string(i));
  }
}

TEST_F(TransportTest, ClientThatNeverReadsIsThrottledThenDisconnected) {
  ASSERT_NO_FATAL_FAILURE(StartServer(
      "[limits]\nsend_queue_frames = 8\nping_interval_s = 1\nidle_timeout_s = 2\n"
      "shutdown_grace_ms = 500\n[relay]\ndelivery_window = 4\n"));
  auto flooder = MustConnect(*server_);
  ASSERT_NE(flooder, nullptr);
  // Pipeline pings without reading a single pong. Once socket buffers are
  // full the server stops reading, so our writes stall and time out.
  v1::Frame ping;
  ping.mutable_request()->mutable_ping()->set_opaque("flood");
  bool write_stalled = false;
  for (int i = 0; i < 2000000 && !write_stalled; ++i) {
    ping.set_request_id(static_cast<std::uint64_t>(i + 1));
    write_stalled = !flooder->Send(ping).ok();
  }
  EXPECT_TRUE(write_stalled) << "the server read 2 million unanswered requests";
  // Meanwhile others are served (a new client: the healthy one has been
  // silent past this test's short idle timeout), and the flooder is cut off.
  auto other = MustConnect(*server_);
  ASSERT_NE(other, nullptr);
  ExpectPingWorks(*other);
  auto frames = flooder->WaitForClose(10s);
  ASSERT_TRUE(frames.ok()) << "flooding client was never disconnected: "
                           << frames.status().ToString();
}

TEST_F(TransportTest, ShutdownSaysGoodbyeAndExitsCleanly) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const int code = [&] {
    std::thread stopper([&] {
      std::this_thread::sleep_for(100ms);
      ::kill(server_->pid(), SIGTERM);
    });
    auto frames = healthy_->WaitForClose(5s);
    healthy_->Close();  // as a client does on the server's goodbye
    stopper.join();
    EXPECT_TRUE(frames.ok()) << frames.status().ToString();
    if (frames.ok()) {
      EXPECT_FALSE(frames->empty());
      if (!frames->empty()) {
        EXPECT_EQ(frames->back().event().closing().reason(), v1::ERROR_CODE_SHUTTING_DOWN);
      }
    }
    return server_->Terminate();
  }();
  EXPECT_EQ(code, 0) << server_->Output();
}

TEST_F(TransportTest, ManyClientsAtOnce) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::vector<std::unique_ptr<Connection>> clients;
  for (int i = 0; i < 50; ++i) {
    clients.push_back(MustConnect(*server_));
    ASSERT_NE(clients.back(), nullptr);
  }
  for (auto& c : clients) ExpectPingWorks(*c);
}

// The nice value of every thread of `pid`, from /proc/<pid>/task/*/stat
// (field 19; the command name before it is in parentheses and may hold
// spaces, so fields are counted after the last ')').
std::vector<int> ThreadNiceValues(pid_t pid) {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 2));  // from field 3 (state) on
    std::string field;
    for (int i = 3; i < 19 && fields >> field; ++i) {
    }
    int nice = 0;
    if (fields >> nice) out.push_back(nice);
  }
  return out;
}

int OwnNice() {
  errno = 0;
  return ::getpriority(PRIO_PROCESS, 0);
}

// Handshake threads exist, run below the I/O threads' priority by the
// configured increment, and serve handshakes.
TEST_F(TransportTest, HandshakesRunOnThreadsBelowTheIoThreadsPriority) {
  const int base = OwnNice();  // havend inherits it
  if (base + 7 > 19) GTEST_SKIP() << "running at nice " << base << ": no room to go lower";
  ASSERT_NO_FATAL_FAILURE(
      StartServer("[server]\nthreads = 2\nhandshake_threads = 2\nhandshake_nice = 7\n"));
  ASSERT_NO_FATAL_FAILURE(ConnectClientsThatPing(20));
  const auto nice = ThreadNiceValues(server_->pid());
  EXPECT_EQ(std::count(nice.begin(), nice.end(), base + 7), 2) << ::testing::PrintToString(nice);
  EXPECT_EQ(std::count(nice.begin(), nice.end(), base), static_cast<long>(nice.size()) - 2)
      << ::testing::PrintToString(nice);
  ExpectHealthyClientUnaffected();
}

// handshake_threads = 0: the I/O threads run handshakes, as before there
// were handshake threads; nothing runs at a lower priority.
TEST_F(TransportTest, WithoutHandshakeThreadsTheIoThreadsRunHandshakes) {
  const int base = OwnNice();
  ASSERT_NO_FATAL_FAILURE(StartServer("[server]\nhandshake_threads = 0\n"));
  ASSERT_NO_FATAL_FAILURE(ConnectClientsThatPing(20));
  const auto nice = ThreadNiceValues(server_->pid());
  ASSERT_FALSE(nice.empty());
  EXPECT_EQ(std::count(nice.begin(), nice.end(), base), static_cast<long>(nice.size()))
      << ::testing::PrintToString(nice);
}

// Clients that complete handshakes from several threads at once, while the
// handshake thread works: every one is served, in any interleaving.
TEST_F(TransportTest, ConcurrentHandshakesAllComplete) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        auto c = Connection::Connect(OptionsFor(*server_));
        if (!c.ok()) continue;
        auto reply = (*c)->Ping("x", 3s);
        if (reply.ok() && reply->response().has_pong()) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
  ExpectHealthyClientUnaffected();
}

}  // namespace
}  // namespace haven
