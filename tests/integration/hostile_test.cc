// Hostile clients against a real havend on 127.0.0.1 (issue 8, item 4;
// catalogue in docs/hostile-clients.md). Every test starts its own havend,
// sets a healthy survivor-counsellor pair talking in the background, measures
// the pair's round trips in a quiet phase, attacks, and then checks:
//   - the attacker got the answer the protocol promises (an error code, or a
//     clean close with nothing sent), within a deadline;
//   - the pair kept working (no error, and more round trips after the attack);
//   - havend still accepts a new client and answers its ping, and exits 0 at
//     the end (no crash, no sanitizer report);
//   - nothing of the pair (conversation id, ciphertext, key) appears in what
//     the attacker received or in havend's log.
// The pair's p99 under attack and in the quiet phase are printed, never
// asserted. Counts are scaled down under sanitizers (see Scaled()).
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "e2e/envelope.h"
#include "e2e/x3dh.h"
#include "support/frame_schema.h"
#include "support/havend_process.h"
#include "support/healthy_pair.h"
#include "support/noise_client.h"
#include "support/raw_socket.h"
#include "support/relay_client.h"
#include "support/relay_fixture.h"

namespace haven {
namespace {

using namespace std::chrono_literals;
using testing::FrameSchema;
using testing::HavendProcess;
using testing::HealthyPair;
using testing::NoiseClient;
using testing::RawSocket;
using testing::RelayClient;
using Clock = std::chrono::steady_clock;

// --- Scale, settings, measurements -------------------------------------------

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// Counts of the heavy cases: a fifth under sanitizers (havend is several
// times slower and larger there); HAVEN_HOSTILE_SCALE multiplies either.
int Scaled(int n) {
  double factor = kSanitized ? 0.2 : 1.0;
  if (const char* s = std::getenv("HAVEN_HOSTILE_SCALE")) factor *= std::atof(s);
  return std::max(1, static_cast<int>(n * factor));
}

// HAVEN_HOSTILE_PIN=1 (needs 2 CPUs): havend and the healthy pair run on CPU 0,
// the attacker on CPU 1, so that the pair's p99 shows what the attack costs
// havend, as with an attacker on another machine, and not the attacker's own
// CPU use beside them. Tests then must run one at a time (ctest -j1).
bool PinAttackerApart() {
  const char* pin = std::getenv("HAVEN_HOSTILE_PIN");
  return pin != nullptr && std::string(pin) == "1";
}
void PinThisThreadTo(std::size_t cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ASSERT_EQ(::sched_setaffinity(0, sizeof set, &set), 0) << "HAVEN_HOSTILE_PIN needs CPUs 0 and 1";
}

// havend.toml, table by table, so that a test can change one key.
class Settings {
 public:
  Settings& Set(const std::string& table, const std::string& key, const std::string& value) {
    tables_[table][key] = value;
    return *this;
  }
  std::string Toml() const {
    std::string out;
    for (const auto& [table, keys] : tables_) {
      out += "[" + table + "]\n";
      for (const auto& [k, v] : keys) out += k + " = " + v + "\n";
    }
    return out;
  }

 private:
  std::map<std::string, std::map<std::string, std::string>> tables_;
};

// What every test starts from: short deadlines (so tests are quick) and a
// survivor budget that the healthy pair's pace fits in.
Settings Defaults() {
  Settings s;
  s.Set("limits", "handshake_timeout_ms", "1000");
  s.Set("limits", "shutdown_grace_ms", "500");
  s.Set("relay", "survivor_requests_per_second", "1000");
  s.Set("relay", "survivor_request_burst", "1000");
  return s;
}

// havend's resident memory, from /proc (kB); 0 if unreadable.
long RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

// A random well-formed invitation code: 32 Crockford symbols in 8 groups.
std::string RandomCode(std::mt19937& rng) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::string code;
  for (int i = 0; i < 32; ++i) {
    if (i > 0 && i % 4 == 0) code += '-';
    code += kAlphabet[rng() % 32];
  }
  return code;
}

v1::ErrorCode CodeOf(const std::optional<v1::Frame>& f) {
  if (!f || !f->response().has_error()) return v1::ERROR_CODE_UNSPECIFIED;
  return f->response().error().code();
}

v1::ErrorCode CodeOf(const Result<v1::Response>& r) { return RelayClient::ErrorOf(r); }

bool Contains(const std::string& haystack, const std::string& needle) {
  return !needle.empty() && haystack.find(needle) != std::string::npos;
}

// Writes a Frame{request_id, request = <raw bytes>} by hand.
std::string FrameBytes(std::uint64_t request_id, const std::string& request) {
  std::string out;
  out.push_back(0x08);  // field 1, varint
  for (std::uint64_t v = request_id;; v >>= 7) {
    if (v < 0x80) {
      out.push_back(static_cast<char>(v));
      break;
    }
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
  }
  return out + testing::LengthDelimited(2, request);
}

// Sends raw plaintext and waits for the response to `request_id`.
std::optional<v1::Frame> RawAsk(RelayClient& c, std::uint64_t request_id, const std::string& plain,
                                std::chrono::milliseconds timeout = 3s) {
  if (!c.conn().SendRawPlaintext(AsBytes(plain)).ok()) return std::nullopt;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto f = c.conn().Receive(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!f.ok()) return std::nullopt;
    if (f->has_response() && f->request_id() == request_id) return *f;
  }
  return std::nullopt;
}

// --- The fixture ------------------------------------------------------------------

// Survivor(), Counsellor() and server_ come from RelayServerTest.
class HostileTest : public haven::testing::RelayServerTest {
 protected:
  static void SetUpTestSuite() {
    // Room for thousands of sockets here and in havend (which inherits it).
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
      r.rlim_cur = r.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &r);
    }
  }

  // Starts havend and the healthy pair, lets the pair talk through a quiet
  // phase, then marks the attack as begun.
  // `pair_sees_no_queue`: the pair's counsellor filters the queue to a
  // language nobody uses (for floods of queue events aimed at another client).
  void Start(const Settings& settings = Defaults(), std::chrono::milliseconds pace = 5ms,
             bool pair_sees_no_queue = false) {
    // havend (forked now) and the pair (its connections and threads, made
    // below) inherit CPU 0; the attack, after Start(), runs on CPU 1.
    if (PinAttackerApart()) {
      ASSERT_NO_FATAL_FAILURE(PinThisThreadTo(0));
    }
    // HAVEN_HOSTILE_HANDSHAKE_THREADS=N sets server.handshake_threads, to
    // compare the floods' cost to the pair with and without them.
    Settings effective = settings;
    if (const char* n = std::getenv("HAVEN_HOSTILE_HANDSHAKE_THREADS")) {
      effective.Set("server", "handshake_threads", n);
    }
    server_ = HavendProcess::Start(effective.Toml());
    ASSERT_NE(server_, nullptr);
    auto counsellor = Counsellor();
    auto survivor = Survivor();
    const std::string id = survivor->OpenId();
    auto claimed = counsellor->Claim(id);
    ASSERT_TRUE(claimed.ok() && claimed->has_conversation_claimed())
        << RelayClient::Describe(claimed);
    if (pair_sees_no_queue) {
      v1::Request presence;
      presence.mutable_set_presence()->set_presence(v1::PRESENCE_AVAILABLE);
      presence.mutable_set_presence()->add_languages("zz");
      ASSERT_TRUE(counsellor->Ask(presence)->has_done());
    }
    pair_id_ = id;
    pair_survivor_key_ = ToHex(survivor->key());
    pair_ = std::make_unique<HealthyPair>(std::move(survivor), std::move(counsellor), id, pace);
    pair_->Start();
    // The quiet run: 40 round trips, or as many as fit in 1.5 s for a pair
    // that paces itself slowly (at least 5).
    ASSERT_TRUE(pair_->WaitRounds(5, 10s)) << "the pair could not talk even before the attack";
    (void)pair_->WaitRounds(kQuietRounds - 5, 1500ms);
    pair_->SetPhase(HealthyPair::kAttack);
    rss_at_start_ = RssKb(server_->pid());
    if (PinAttackerApart()) {
      ASSERT_NO_FATAL_FAILURE(PinThisThreadTo(1));
    }
  }

  void EndAttack() {
    if (pair_) pair_->SetPhase(HealthyPair::kAfter);
  }

  void TearDown() override {
    if (!server_) return;
    if (pair_) {
      EndAttack();
      EXPECT_TRUE(pair_->WaitRounds(3, 10s)) << "the healthy pair stopped talking after the attack";
      pair_->Stop();
      Report();
      for (const std::string& e : pair_->Errors()) ADD_FAILURE() << "healthy pair: " << e;
      pair_.reset();
    }
    ExpectHavendServesANewcomer();
    ExpectNothingOfThePairInTheLog();
    server_.reset();  // SIGTERM; the destructor expects exit status 0
  }

  // The pair's p99 in the quiet phase and under attack, and their ratio.
  void Report() {
    const auto quiet = pair_->Samples(HealthyPair::kQuiet);
    const auto attack = pair_->Samples(HealthyPair::kAttack);
    const double q = HealthyPair::P99(quiet), a = HealthyPair::P99(attack);
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    char line[256];
    std::snprintf(line, sizeof line,
                  "[hostile] %s: pair p99 quiet %.2f ms (n=%zu), under attack %.2f ms (n=%zu), "
                  "ratio %.2f",
                  name.c_str(), q, quiet.size(), a, attack.size(), q > 0 ? a / q : 0.0);
    std::printf("%s\n", line);
    RecordProperty("pair_p99_quiet_ms", std::to_string(q));
    RecordProperty("pair_p99_attack_ms", std::to_string(a));
    if (const char* path = std::getenv("HAVEN_HOSTILE_REPORT")) {
      std::ofstream(path, std::ios::app)
          << name << "," << q << "," << quiet.size() << "," << a << "," << attack.size() << "\n";
    }
  }

  void ExpectHavendServesANewcomer() {
    ASSERT_EQ(::kill(server_->pid(), 0), 0) << "havend is gone";
    RelayClient newcomer(*server_);
    ASSERT_TRUE(newcomer.Connect(5s))
        << "havend accepts no new client: " << newcomer.last_error().ToString();
    auto pong = newcomer.conn().Ping("alive", 5s);
    ASSERT_TRUE(pong.ok() && pong->response().has_pong()) << "havend does not answer a ping";
  }

  // The log never names the pair's conversation, its survivor or its words.
  void ExpectNothingOfThePairInTheLog() {
    const std::string log = server_->Output();
    EXPECT_FALSE(Contains(log, ToHex(AsBytes(pair_id_)))) << log;
    EXPECT_FALSE(Contains(log, pair_id_)) << log;
    EXPECT_FALSE(Contains(log, pair_survivor_key_)) << log;
    EXPECT_FALSE(Contains(log, HealthyPair::kMarker)) << log;
    // No client address either: 127.0.0.1 appears once, in "listening on".
    std::size_t addresses = 0;
    for (std::size_t at = log.find("127.0.0.1"); at != std::string::npos;
         at = log.find("127.0.0.1", at + 1)) {
      ++addresses;
    }
    EXPECT_EQ(addresses, 1u) << log;
  }

  // Nothing an attacker received mentions the pair.
  void ExpectNothingOfThePair(const std::vector<v1::Frame>& frames) {
    for (const v1::Frame& f : frames) {
      const std::string bytes = f.SerializeAsString();
      EXPECT_FALSE(Contains(bytes, pair_id_)) << f.DebugString();
      EXPECT_FALSE(Contains(bytes, HealthyPair::kMarker)) << f.DebugString();
    }
  }

  // A survivor's conversation, claimed by `counsellor`.
  std::pair<std::unique_ptr<RelayClient>, std::string> ClaimedBy(RelayClient& counsellor) {
    auto s = Survivor();
    const std::string id = s->OpenId();
    auto claim = counsellor.Claim(id);
    EXPECT_TRUE(claim.ok() && claim->has_conversation_claimed()) << RelayClient::Describe(claim);
    return {std::move(s), id};
  }

  // A counsellor built by hand (it can stop reading whenever the test says).
  std::unique_ptr<NoiseClient> RawCounsellor(int receive_buffer = 0) {
    auto c = std::make_unique<NoiseClient>(server_->port(), server_->server_key(), std::nullopt,
                                           receive_buffer);
    EXPECT_TRUE(c->Handshake());
    v1::Request r;
    r.mutable_redeem_invitation()->set_code(server_->Enrol());
    EXPECT_TRUE(c->SendRequest(1, r));
    auto reply = c->ReceiveResponse(1);
    EXPECT_TRUE(reply && reply->response().has_invitation_redeemed());
    return c;
  }

  static constexpr std::size_t kQuietRounds = 40;
  std::unique_ptr<HealthyPair> pair_;
  std::string pair_id_;
  std::string pair_survivor_key_;
  long rss_at_start_ = 0;
};

// --- Framing: lengths -----------------------------------------------------------

Settings SmallFrames() {
  return Defaults()
      .Set("limits", "max_frame_bytes", "4096")
      .Set("relay", "max_envelope_bytes", "1024");
}

TEST_F(HostileTest, OversizeLengthBeforeTheHandshakeIsClosedUnread) {
  ASSERT_NO_FATAL_FAILURE(Start(SmallFrames()));
  RawSocket raw(server_->port());
  ASSERT_TRUE(raw.connected());
  std::vector<std::uint8_t> bytes = {0x10, 0x01};  // 4097 > 4096
  bytes.resize(2 + 1000, 0x41);
  ASSERT_TRUE(raw.Send(bytes));
  auto closed = raw.WaitClosed(2s);
  ASSERT_TRUE(closed.has_value()) << "an oversize length was not refused";
  EXPECT_LT(closed->count(), 900) << "closed at the handshake deadline, not at the header";
  EXPECT_EQ(raw.received(), 0u) << "nothing may be sent in clear";
}

TEST_F(HostileTest, OversizeLengthAfterTheHandshakeIsClosedWithoutAWord) {
  ASSERT_NO_FATAL_FAILURE(Start(SmallFrames()));
  NoiseClient attacker(server_->port(), server_->server_key());
  ASSERT_TRUE(attacker.Handshake());
  ASSERT_TRUE(attacker.SendRaw(Bytes{0xff, 0xff, 0x00, 0x01}));
  std::vector<v1::Frame> frames;
  auto closed = attacker.WaitClosed(2s, &frames);
  ASSERT_TRUE(closed.has_value());
  EXPECT_TRUE(frames.empty()) << "no goodbye on a broken stream: " << frames.front().DebugString();
}

TEST_F(HostileTest, ZeroLengthRecordAfterTheHandshakeIsClosed) {
  ASSERT_NO_FATAL_FAILURE(Start());
  NoiseClient attacker(server_->port(), server_->server_key());
  ASSERT_TRUE(attacker.Handshake());
  ASSERT_TRUE(attacker.SendRaw(Bytes{0x00, 0x00}));
  std::vector<v1::Frame> frames;
  ASSERT_TRUE(attacker.WaitClosed(2s, &frames).has_value());
  EXPECT_TRUE(frames.empty());
}

// --- The handshake: truncated, stalled, slow ---------------------------------------

TEST_F(HostileTest, TruncatedHandshakeIsClosedAtTheDeadline) {
  ASSERT_NO_FATAL_FAILURE(Start(Defaults().Set("limits", "handshake_timeout_ms", "500")));
  RawSocket raw(server_->port());
  std::vector<std::uint8_t> partial = {0x00, 0x30};  // announces 48 bytes
  partial.resize(2 + 10, 0x42);                      // sends 10
  ASSERT_TRUE(raw.Send(partial));
  auto closed = raw.WaitClosed(3s);
  ASSERT_TRUE(closed.has_value()) << "a truncated handshake was kept open";
  EXPECT_GE(closed->count(), 400);
  EXPECT_EQ(raw.received(), 0u);
}

TEST_F(HostileTest, SlowlorisHandshakeOneByteAtATimeIsClosedAtTheDeadline) {
  ASSERT_NO_FATAL_FAILURE(Start(Defaults().Set("limits", "handshake_timeout_ms", "500")));
  NoiseClient attacker(server_->port(), server_->server_key());
  Bytes message1 = {0x00, 0x30};
  message1.resize(2 + 48, 0x09);
  // One byte every 60 ms: the whole message would take 3 s.
  const auto start = Clock::now();
  std::size_t sent = 0;
  std::optional<std::chrono::milliseconds> closed;
  while (sent < message1.size() && !closed) {
    if (!attacker.SendRaw(ByteView(message1.data() + sent, 1))) break;
    ++sent;
    closed = attacker.WaitClosed(60ms);
  }
  if (!closed) closed = attacker.WaitClosed(2s);
  ASSERT_TRUE(closed.has_value()) << "a trickled handshake was kept open";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  EXPECT_LT(sent, message1.size()) << "the trickle outlived the deadline";
  EXPECT_LT(took.count(), 1500) << "closed after " << took.count() << " ms";
  EXPECT_EQ(attacker.received_raw(), 0u);
}

TEST_F(HostileTest, StalledHandshakeAfterMessage2IsClosedAtTheDeadline) {
  ASSERT_NO_FATAL_FAILURE(Start(Defaults().Set("limits", "handshake_timeout_ms", "500")));
  NoiseClient attacker(server_->port(), server_->server_key());
  ASSERT_TRUE(attacker.WriteMessage1());
  ASSERT_TRUE(attacker.ReadMessage2());  // the server did its part; we never send message 3
  auto closed = attacker.WaitClosed(3s);
  ASSERT_TRUE(closed.has_value()) << "a stalled handshake was kept open";
  EXPECT_LT(closed->count(), 1500);
  EXPECT_EQ(attacker.received_raw(), 0u) << "nothing after message 2";
}

TEST_F(HostileTest, SlowlorisAfterTheHandshakeIsClosedAtTheIdleTimeout) {
  ASSERT_NO_FATAL_FAILURE(
      Start(Defaults().Set("limits", "ping_interval_s", "1").Set("limits", "idle_timeout_s", "2")));
  NoiseClient attacker(server_->port(), server_->server_key());
  ASSERT_TRUE(attacker.Handshake());
  // A 1000-byte record, one byte every 100 ms: bytes keep arriving, but no
  // message ever completes, so nothing counts as activity.
  Bytes record = {0x03, 0xe8};
  record.resize(2 + 1000, 0x55);
  const auto start = Clock::now();
  std::vector<v1::Frame> frames;
  std::optional<std::chrono::milliseconds> closed;
  for (std::size_t i = 0; i < record.size() && !closed; ++i) {
    if (!attacker.SendRaw(ByteView(record.data() + i, 1))) break;
    closed = attacker.WaitClosed(100ms, &frames);
  }
  if (!closed) closed = attacker.WaitClosed(3s, &frames);
  ASSERT_TRUE(closed.has_value()) << "a trickling client was kept open";
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_GT(took, 1.5);
  EXPECT_LT(took, 5.0);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().event().closing().reason(), v1::ERROR_CODE_IDLE_TIMEOUT)
      << frames.back().DebugString();
}

// --- Connection counts ---------------------------------------------------------------

// Plain TCP connections to havend that send nothing.
class HalfOpenSockets {
 public:
  HalfOpenSockets(std::uint16_t port, int n) {
    fds_.reserve(static_cast<std::size_t>(n));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) break;
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        break;
      }
      fds_.push_back(fd);
    }
  }
  ~HalfOpenSockets() {
    for (int fd : fds_) ::close(fd);
  }
  int size() const { return static_cast<int>(fds_.size()); }

  // How many the server still holds open: no end-of-stream or reset yet.
  int StillOpen() const {
    int open = 0;
    for (int fd : fds_) {
      std::uint8_t b;
      const ssize_t n = ::recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) ++open;
    }
    return open;
  }

 private:
  std::vector<int> fds_;
};

// Waits until at most `limit` of `sockets` are still open (connections not
// yet accepted count as open: the kernel holds them); returns the count.
int WaitUntilAtMost(const HalfOpenSockets& sockets, int limit, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  int open = sockets.StillOpen();
  while (open > limit && Clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    open = sockets.StillOpen();
  }
  return open;
}

// `wanted` connections, or as many as this process's descriptor limit allows
// (havend inherits the same limit), keeping some for everything else.
int ConnectionsWithinTheFileLimit(int wanted) {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return wanted;
  const int allowed = static_cast<int>(r.rlim_cur) - 256;
  if (allowed < wanted) {
    std::printf("[hostile] note: RLIMIT_NOFILE %llu allows only %d connections of %d\n",
                static_cast<unsigned long long>(r.rlim_cur), allowed, wanted);
  }
  return std::max(1, std::min(wanted, allowed));
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

TEST_F(HostileTest, HalfOpenConnectionsBeyondTheCapAreShedAtOnce) {
  // A long handshake deadline, so that shedding (at accept) and expiry (at
  // the deadline) cannot be confused even when havend accepts slowly.
  ASSERT_NO_FATAL_FAILURE(Start(Defaults()
                                    .Set("limits", "max_connections", "1024")
                                    .Set("limits", "handshake_timeout_ms", "5000")));
  const int n = ConnectionsWithinTheFileLimit(Scaled(10000));
  const auto start = Clock::now();
  HalfOpenSockets sockets(server_->port(), n);
  const double connect_s = SecondsSince(start);
  ASSERT_EQ(sockets.size(), n) << "could not open every connection";
  // The cap counts every connection, the pair's two and the probe included.
  const int open = WaitUntilAtMost(sockets, 1024, 4000ms);
  const double shed_s = SecondsSince(start);
  std::printf(
      "[hostile] %d half-open connections in %.2f s; %d still held %.2f s after the "
      "first\n",
      n, connect_s, open, shed_s);
  EXPECT_LE(open, 1024) << "the connection cap did not hold";
  if (n > 1100 && shed_s < 4.5) {
    EXPECT_GE(open, 900) << "connections under the cap should wait for the deadline";
  }
  // At the handshake deadline, every one of them is gone.
  const int left = WaitUntilAtMost(sockets, 0, 8000ms);
  std::printf("[hostile] %d still open %.2f s after the first\n", left, SecondsSince(start));
  EXPECT_EQ(left, 0) << "half-open connections outlived the deadline";
}

TEST_F(HostileTest, HalfOpenConnectionsUpToARaisedCapAreHeldThenExpire) {
  // 12,000: once beyond what vm.max_map_count = 65530 let havend hold, when
  // every connection took secure memory at accept (running out used to end
  // the accept loop for good). Now a silent connection takes none.
  const int n = ConnectionsWithinTheFileLimit(Scaled(12000));
  ASSERT_NO_FATAL_FAILURE(Start(Defaults()
                                    .Set("limits", "max_connections", std::to_string(n + 100))
                                    .Set("limits", "handshake_timeout_ms", "3000")));
  const long rss_before = RssKb(server_->pid());
  const auto start = Clock::now();
  HalfOpenSockets sockets(server_->port(), n);
  const double connect_s = SecondsSince(start);
  ASSERT_EQ(sockets.size(), n) << "could not open every connection";
  std::this_thread::sleep_for(1000ms);
  const long rss_held = RssKb(server_->pid());
  const int open = sockets.StillOpen();
  std::printf(
      "[hostile] %d of %d half-open connections held 1 s after opening them (%.2f s to "
      "open); havend RSS %ld -> %ld kB\n",
      open, n, connect_s, rss_before, rss_held);
  // Far more than the default cap are held. (Accepts run below the I/O
  // threads' priority, so under this burst some connections wait in the
  // backlog and the earliest may reach their deadline before the last is
  // open: hence not all 12,000.)
  EXPECT_GE(open, std::min(n, 2000)) << "far fewer held than the cap allows";
  const int left = WaitUntilAtMost(sockets, 0, 12000ms);
  std::printf("[hostile] %d still open %.2f s after the first\n", left, SecondsSince(start));
  EXPECT_EQ(left, 0) << "half-open connections outlived the handshake deadline (or havend stopped "
                        "accepting: they wait in its backlog)";
}

// The control for the sustained cases: the pair alone, for as long as the
// connection flood lasts. The quiet phase (40 round trips, a fraction of a
// second) is too short to meet the machine's rarer stalls (an fsync, another
// process); over seconds the pair meets them with nobody attacking, and this
// case's "under attack" p99 shows how much.
TEST_F(HostileTest, NoAttackControlForAsLongAsTheConnectionFlood) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const int window_ms = Scaled(2000);
  std::this_thread::sleep_for(std::chrono::milliseconds(window_ms));
  // Paced at 5 ms, alone, the pair manages a round trip at least every 20 ms
  // (about every 5.5 ms measured; slower under sanitizers).
  EXPECT_GE(pair_->Samples(HealthyPair::kAttack).size(), static_cast<std::size_t>(window_ms / 20))
      << "the pair, alone, could not keep its pace";
}

TEST_F(HostileTest, ConnectionFloodFromOneClientLeavesTheHealthyPairTalking) {
  ASSERT_NO_FATAL_FAILURE(Start());
  std::atomic<int> handshakes{0}, failures{0};
  std::atomic<bool> stop{false};
  auto flood = [&] {
    while (!stop) {
      NoiseClient c(server_->port(), server_->server_key());
      if (!c.Handshake()) {
        ++failures;
        continue;
      }
      ++handshakes;
      v1::Request ping;
      ping.mutable_ping();
      c.SendRequest(1, ping);
      if (handshakes % 2) c.Reset();  // half of them leave with a reset
    }
  };
  std::thread a(flood), b(flood);
  std::this_thread::sleep_for(std::chrono::milliseconds(Scaled(2000)));
  stop = true;
  a.join();
  b.join();
  std::printf("[hostile] connection flood: %d handshakes, %d failed\n", handshakes.load(),
              failures.load());
  EXPECT_GT(handshakes.load(), 0);
  EXPECT_EQ(failures.load(), 0) << "below the cap every handshake should complete";
}

TEST_F(HostileTest, FloodThatTakesEveryFreeSlotLocksOutNewcomersButNotTheEstablished) {
  ASSERT_NO_FATAL_FAILURE(Start(Defaults().Set("limits", "max_connections", "24")));
  // The attacker completes handshakes and holds them until refused.
  std::vector<std::unique_ptr<NoiseClient>> held;
  for (int i = 0; i < 40; ++i) {
    auto c = std::make_unique<NoiseClient>(server_->port(), server_->server_key());
    if (!c->Handshake(1s)) break;
    held.push_back(std::move(c));
  }
  EXPECT_EQ(held.size(), 22u) << "the cap (24) less the pair's two connections";
  // A newcomer is closed before message 2: this is a denial of service for
  // new clients while the attacker holds the slots (docs/threat-model.md).
  NoiseClient newcomer(server_->port(), server_->server_key());
  ASSERT_TRUE(newcomer.WriteMessage1());
  EXPECT_FALSE(newcomer.ReadMessage2(1s));
  // The established pair is not touched (checked while held, and at the end).
  EXPECT_TRUE(pair_->WaitRounds(5, 5s));
  held.clear();
  std::this_thread::sleep_for(300ms);
  NoiseClient later(server_->port(), server_->server_key());
  EXPECT_TRUE(later.Handshake()) << "slots were not given back";
}

// --- The handshake: garbage and replays ----------------------------------------------

TEST_F(HostileTest, LowOrderEphemeralInMessage1IsRefusedWithoutAReply) {
  ASSERT_NO_FATAL_FAILURE(Start());
  RawSocket raw(server_->port());
  std::vector<std::uint8_t> message1 = {0x00, 0x30};
  message1.resize(2 + 48, 0x00);  // e = the all-zero point: DH gives zeros
  ASSERT_TRUE(raw.Send(message1));
  ASSERT_TRUE(raw.WaitClosed(2s).has_value());
  EXPECT_EQ(raw.received(), 0u);
}

TEST_F(HostileTest, MaximumSizeGarbageMessage1IsReadThenRefusedWithoutAReply) {
  ASSERT_NO_FATAL_FAILURE(Start());
  RawSocket raw(server_->port());
  std::vector<std::uint8_t> message1 = {0xff, 0xff};
  std::mt19937 rng(3);
  for (int i = 0; i < 65535; ++i) message1.push_back(static_cast<std::uint8_t>(rng()));
  ASSERT_TRUE(raw.Send(message1));
  auto closed = raw.WaitClosed(2s);
  ASSERT_TRUE(closed.has_value());
  EXPECT_LT(closed->count(), 900) << "refused at the tag, not at the deadline";
  EXPECT_EQ(raw.received(), 0u);
}

TEST_F(HostileTest, ReplayedHandshakeOnANewConnectionGetsNoSession) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // A survivor with a conversation: the prize, if a replay could take its place.
  NoiseClient victim(server_->port(), server_->server_key());
  ASSERT_TRUE(victim.Handshake());
  v1::Request open;
  open.mutable_open_conversation()->set_language("en");
  ASSERT_TRUE(victim.SendRequest(1, open));
  ASSERT_TRUE(victim.ReceiveResponse(1).has_value());
  const Bytes message1 = victim.sent_records()[0];
  const Bytes message3 = victim.sent_records()[1];

  RawSocket replayer(server_->port());
  ASSERT_TRUE(replayer.Send(message1));
  std::this_thread::sleep_for(100ms);  // message 2 comes back: the server cannot tell
  ASSERT_TRUE(replayer.Send(message3));
  ASSERT_TRUE(replayer.WaitClosed(2s).has_value()) << "a replayed message 3 was accepted";
  EXPECT_EQ(replayer.received(), 50u) << "only a fresh message 2, then nothing";
  // The victim's session is untouched: not replaced, still answered.
  v1::Request session;
  session.mutable_get_session();
  ASSERT_TRUE(victim.SendRequest(2, session));
  auto reply = victim.ReceiveResponse(2);
  ASSERT_TRUE(reply.has_value()) << "the victim's connection was disturbed";
  EXPECT_EQ(reply->response().session().conversations_size(), 1);
  for (const v1::Frame& f : victim.others()) {
    EXPECT_FALSE(f.has_event() && f.event().has_closing()) << f.DebugString();
  }
}

TEST_F(HostileTest, ReplayedMessage1InPlaceOfMessage3IsRefused) {
  ASSERT_NO_FATAL_FAILURE(Start());
  NoiseClient attacker(server_->port(), server_->server_key());
  ASSERT_TRUE(attacker.WriteMessage1());
  ASSERT_TRUE(attacker.ReadMessage2());
  ASSERT_TRUE(attacker.SendRaw(attacker.sent_records()[0]));  // message 1 again
  ASSERT_TRUE(attacker.WaitClosed(2s).has_value());
  EXPECT_EQ(attacker.received_raw(), 0u);
}

// --- Transport records: replays, tampering, garbage ---------------------------------

// A survivor built by hand with a conversation that `counsellor` claimed.
struct RawSurvivorConversation {
  std::unique_ptr<NoiseClient> survivor;
  std::string id;
};

RawSurvivorConversation RawSurvivorClaimedBy(const HavendProcess& server, RelayClient& counsellor) {
  RawSurvivorConversation out;
  out.survivor = std::make_unique<NoiseClient>(server.port(), server.server_key());
  EXPECT_TRUE(out.survivor->Handshake());
  v1::Request open;
  open.mutable_open_conversation()->set_language("en");
  EXPECT_TRUE(out.survivor->SendRequest(1, open));
  auto opened = out.survivor->ReceiveResponse(1);
  EXPECT_TRUE(opened && opened->response().has_conversation_opened());
  if (!opened) return out;
  out.id = opened->response().conversation_opened().conversation().conversation_id();
  auto claim = counsellor.Claim(out.id);
  EXPECT_TRUE(claim.ok() && claim->has_conversation_claimed()) << RelayClient::Describe(claim);
  return out;
}

TEST_F(HostileTest, ReplayedTransportRecordOnTheSameConnectionIsRefusedAndDeliveredOnce) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto counsellor = Counsellor();
  auto conv = RawSurvivorClaimedBy(*server_, *counsellor);
  v1::Request send;
  send.mutable_send_envelope()->set_conversation_id(conv.id);
  send.mutable_send_envelope()->set_ciphertext("only-once");
  ASSERT_TRUE(conv.survivor->SendRequest(5, send));
  ASSERT_TRUE(conv.survivor->ReceiveResponse(5).has_value());
  // The same sealed record again: its nonce is spent.
  ASSERT_TRUE(conv.survivor->SendRaw(conv.survivor->sent_records().back()));
  std::vector<v1::Frame> frames;
  ASSERT_TRUE(conv.survivor->WaitClosed(2s, &frames).has_value());
  EXPECT_TRUE(frames.empty());
  auto first = counsellor->WaitEnvelope();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->ciphertext(), "only-once");
  EXPECT_FALSE(counsellor->WaitEnvelope(500ms).has_value()) << "a replayed record was relayed";
}

TEST_F(HostileTest, ReplayedConnectionOnANewSocketRelaysNothing) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto counsellor = Counsellor();
  auto conv = RawSurvivorClaimedBy(*server_, *counsellor);
  v1::Request send;
  send.mutable_send_envelope()->set_conversation_id(conv.id);
  send.mutable_send_envelope()->set_ciphertext("recorded-by-an-observer");
  ASSERT_TRUE(conv.survivor->SendRequest(5, send));
  ASSERT_TRUE(conv.survivor->ReceiveResponse(5).has_value());
  ASSERT_TRUE(counsellor->WaitEnvelope().has_value());
  // An observer replays every record of that connection, in order.
  RawSocket replayer(server_->port());
  for (const Bytes& r : conv.survivor->sent_records()) {
    if (!replayer.Send(r)) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(replayer.WaitClosed(2s).has_value());
  EXPECT_EQ(replayer.received(), 50u) << "only message 2";
  EXPECT_FALSE(counsellor->WaitEnvelope(500ms).has_value()) << "a replayed envelope was relayed";
  auto queue = counsellor->ListQueue();
  ASSERT_TRUE(queue.ok());
  EXPECT_EQ(queue->queue().entries_size(), 0) << "a replayed open made a conversation";
}

TEST_F(HostileTest, TamperedTransportRecordClosesTheConnectionWithoutAWord) {
  ASSERT_NO_FATAL_FAILURE(Start());
  NoiseClient attacker(server_->port(), server_->server_key());
  ASSERT_TRUE(attacker.Handshake());
  v1::Frame ping;
  ping.set_request_id(1);
  ping.mutable_request()->mutable_ping()->set_opaque("x");
  ASSERT_TRUE(attacker.SendFrame(ping));
  ASSERT_TRUE(attacker.ReceiveResponse(1).has_value());
  // The next record, with the right nonce but one bit of ciphertext flipped.
  ping.set_request_id(2);
  auto record = attacker.SealedRecord(ping);
  ASSERT_TRUE(record.has_value());
  (*record)[5] ^= 0x80;
  ASSERT_TRUE(attacker.SendRaw(*record));
  std::vector<v1::Frame> frames;
  ASSERT_TRUE(attacker.WaitClosed(2s, &frames).has_value()) << "a tampered record was accepted";
  EXPECT_TRUE(frames.empty());
}

TEST_F(HostileTest, GarbageRecordsAfterTheHandshakeCloseThatConnectionOnly) {
  ASSERT_NO_FATAL_FAILURE(Start());
  NoiseClient attacker(server_->port(), server_->server_key());
  ASSERT_TRUE(attacker.Handshake());
  Bytes garbage(2 + 200);
  garbage[0] = 0x00;
  garbage[1] = 200;
  std::mt19937 rng(17);
  for (std::size_t i = 2; i < garbage.size(); ++i) garbage[i] = static_cast<std::uint8_t>(rng());
  ASSERT_TRUE(attacker.SendRaw(garbage));
  std::vector<v1::Frame> frames;
  ASSERT_TRUE(attacker.WaitClosed(2s, &frames).has_value());
  EXPECT_TRUE(frames.empty());
}

// --- Frames: malformed, unknown, out of range ------------------------------------

// The next response on `c` (any request id), skipping events.
std::optional<v1::Frame> NextResponse(RelayClient& c, std::chrono::milliseconds timeout = 3s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto f = c.conn().Receive(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!f.ok()) return std::nullopt;
    if (f->has_response()) return *f;
  }
  return std::nullopt;
}

std::optional<v1::Frame> SendPlain(RelayClient& c, const std::string& plain) {
  if (!c.conn().SendRawPlaintext(AsBytes(plain)).ok()) return std::nullopt;
  return NextResponse(c);
}

void ExpectPong(RelayClient& c) {
  auto pong = c.conn().Ping("after", 3s);
  ASSERT_TRUE(pong.ok() && pong->response().has_pong()) << "the connection did not survive";
}

TEST_F(HostileTest, MalformedProtobufGetsMalformedFrameAndTheConnectionSurvives) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto attacker = Survivor();
  for (const std::string& junk : {std::string("\xff\xff\xff", 3), std::string("\x08\xff", 2),
                                  std::string("\x12\x05\x0a", 3), std::string("\x0b", 1)}) {
    auto reply = SendPlain(*attacker, junk);
    EXPECT_EQ(CodeOf(reply), v1::ERROR_CODE_MALFORMED_FRAME);
    if (reply) {
      EXPECT_EQ(reply->request_id(), 0u);
    }
  }
  // A proto3 string (RedeemInvitation.code) that is not UTF-8.
  const std::string code = testing::LengthDelimited(1, "\xff\xfe");
  auto reply = SendPlain(*attacker, FrameBytes(7, testing::LengthDelimited(3, code)));
  EXPECT_EQ(CodeOf(reply), v1::ERROR_CODE_MALFORMED_FRAME);
  ExpectPong(*attacker);
}

TEST_F(HostileTest, UnknownFieldsAreIgnoredAndNeverRelayed) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto counsellor = RawCounsellor();
  auto survivor = Survivor();
  const std::string id = survivor->OpenId();
  v1::Request claim;
  claim.mutable_claim_conversation()->set_conversation_id(id);
  ASSERT_TRUE(counsellor->SendRequest(2, claim));
  ASSERT_TRUE(counsellor->ReceiveResponse(2).has_value());
  // SendEnvelope{id, ciphertext, 15: ...} inside Request{..., 1999: ...}
  // inside Frame{..., 777: ...}: unknown fields at every level.
  const std::string envelope = testing::LengthDelimited(1, id) +
                               testing::LengthDelimited(2, "the-ciphertext") +
                               testing::LengthDelimited(15, "UNKNOWN-FIELD-A");
  const std::string request =
      testing::LengthDelimited(7, envelope) + testing::LengthDelimited(1999, "UNKNOWN-FIELD-B");
  const std::string frame =
      FrameBytes(41, request) + testing::LengthDelimited(777, "UNKNOWN-FIELD-C");
  auto accepted = RawAsk(*survivor, 41, frame);
  ASSERT_TRUE(accepted && accepted->response().has_envelope_accepted())
      << (accepted ? accepted->DebugString() : "no answer");
  auto delivered = counsellor->Receive();
  while (delivered && !(delivered->has_event() && delivered->event().has_envelope())) {
    delivered = counsellor->Receive();
  }
  ASSERT_TRUE(delivered.has_value());
  EXPECT_EQ(delivered->event().envelope().ciphertext(), "the-ciphertext");
  const Bytes& plain = counsellor->last_plaintext();
  EXPECT_FALSE(Contains(std::string(plain.begin(), plain.end()), "UNKNOWN-FIELD"))
      << "unknown fields were relayed to the other party";
  // A Ping with an unknown field is still a Ping.
  auto pong = RawAsk(*survivor, 42,
                     FrameBytes(42, testing::LengthDelimited(1, testing::LengthDelimited(9, "?"))));
  ASSERT_TRUE(pong && pong->response().has_pong());
}

TEST_F(HostileTest, UnknownRequestAndFrameKindsGetStableErrors) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto attacker = Survivor();
  // Request kinds from the future, up to the largest field number protobuf allows.
  for (std::uint32_t future : {99u, 4096u, 536870911u}) {
    auto reply = RawAsk(*attacker, 50 + future,
                        FrameBytes(50 + future, testing::LengthDelimited(future, "")));
    EXPECT_EQ(CodeOf(reply), v1::ERROR_CODE_UNKNOWN_REQUEST) << future;
  }
  // A Frame with no kind, and one whose only kind is a future one (field 5).
  EXPECT_EQ(CodeOf(RawAsk(*attacker, 60, FrameBytes(60, "").substr(0, 2))),
            v1::ERROR_CODE_UNKNOWN_REQUEST);
  {
    std::string f = FrameBytes(61, "").substr(0, 2) + testing::LengthDelimited(5, "");
    EXPECT_EQ(CodeOf(RawAsk(*attacker, 61, f)), v1::ERROR_CODE_UNKNOWN_REQUEST);
  }
  // An Event from a client.
  v1::Frame event;
  event.set_request_id(62);
  event.mutable_event()->mutable_queue_changed();
  EXPECT_EQ(CodeOf(RawAsk(*attacker, 62, event.SerializeAsString())),
            v1::ERROR_CODE_UNEXPECTED_FRAME);
  // An unsolicited Response is ignored: the next answer is the Ping's.
  v1::Frame response;
  response.set_request_id(63);
  response.mutable_response()->mutable_done();
  ASSERT_TRUE(attacker->conn().SendRawPlaintext(AsBytes(response.SerializeAsString())).ok());
  v1::Frame ping;
  ping.set_request_id(64);
  ping.mutable_request()->mutable_ping();
  auto next = SendPlain(*attacker, ping.SerializeAsString());
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->request_id(), 64u);
  EXPECT_TRUE(next->response().has_pong());
}

TEST_F(HostileTest, UnknownEnumValuesAndOutOfRangeNumbersAreRefused) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto counsellor = Counsellor();
  auto [survivor, id] = ClaimedBy(*counsellor);
  v1::Request presence;
  presence.mutable_set_presence()->set_presence(static_cast<v1::Presence>(99));
  EXPECT_EQ(CodeOf(counsellor->Ask(presence)), v1::ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(survivor->Open("en", 0xffffffffu)), v1::ERROR_CODE_INVALID_ARGUMENT);
  v1::Request block;
  block.mutable_block_contact()->set_conversation_id(id);
  block.mutable_block_contact()->set_hours(0xffffffffu);
  EXPECT_EQ(CodeOf(counsellor->Ask(block)), v1::ERROR_CODE_INVALID_ARGUMENT);
  v1::Request transfer;
  transfer.mutable_transfer_conversation()->set_conversation_id(id);
  transfer.mutable_transfer_conversation()->set_language("en\n");
  EXPECT_EQ(CodeOf(counsellor->Ask(transfer)), v1::ERROR_CODE_INVALID_ARGUMENT);
  // Nothing of that changed the conversation.
  EXPECT_TRUE(survivor->Send(id, "still-open")->has_envelope_accepted());
}

TEST_F(HostileTest, NestedGroupBombIsAMalformedFrameNotACrash) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto attacker = Survivor();
  // 15,000 nested unknown groups (field 1000): protobuf's recursion limit
  // must stop the parser long before the stack does.
  std::string bomb = FrameBytes(70, "").substr(0, 2);
  for (int i = 0; i < 15000; ++i) bomb += "\xc3\x3e";  // start group, field 1000
  for (int i = 0; i < 15000; ++i) bomb += "\xc4\x3e";  // end group, field 1000
  auto reply = SendPlain(*attacker, bomb);
  EXPECT_EQ(CodeOf(reply), v1::ERROR_CODE_MALFORMED_FRAME);
  // A flat unknown field of 60 KB beside a Ping is merely ignored.
  v1::Frame ping;
  ping.set_request_id(71);
  ping.mutable_request()->mutable_ping();
  auto pong =
      RawAsk(*attacker, 71,
             ping.SerializeAsString() + testing::LengthDelimited(1000, std::string(60000, 'u')));
  ASSERT_TRUE(pong && pong->response().has_pong());
}

TEST_F(HostileTest, OversizedFieldsAreRefusedAndTheConnectionKept) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto counsellor = Counsellor();
  auto [survivor, id] = ClaimedBy(*counsellor);
  auto attacker = Survivor();
  EXPECT_EQ(CodeOf(attacker->Redeem(std::string(60000, 'A'))), v1::ERROR_CODE_INVITATION_INVALID);
  EXPECT_EQ(CodeOf(attacker->Open(std::string(36, 'e'))), v1::ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(attacker->Open("en", 0, std::string(16385, 'i'))),
            v1::ERROR_CODE_INVALID_ARGUMENT);
  v1::Request ping;
  ping.mutable_ping()->set_opaque(std::string(33, 'p'));
  EXPECT_EQ(CodeOf(attacker->Ask(ping)), v1::ERROR_CODE_INVALID_ARGUMENT);
  v1::Request presence;
  presence.mutable_set_presence()->set_presence(v1::PRESENCE_AVAILABLE);
  for (int i = 0; i < 21; ++i) presence.mutable_set_presence()->add_languages("en");
  EXPECT_EQ(CodeOf(counsellor->Ask(presence)), v1::ERROR_CODE_INVALID_ARGUMENT);
  v1::Request ephemeral;
  ephemeral.mutable_send_ephemeral()->set_conversation_id(id);
  ephemeral.mutable_send_ephemeral()->set_ciphertext(std::string(1025, 'e'));
  EXPECT_EQ(CodeOf(survivor->Ask(ephemeral)), v1::ERROR_CODE_ENVELOPE_TOO_LARGE);
  EXPECT_EQ(CodeOf(survivor->Send(id, std::string(16385, 'c'))), v1::ERROR_CODE_ENVELOPE_TOO_LARGE);
  ExpectPong(*attacker);
  ExpectPong(*survivor);
}

// --- Envelopes and acknowledgements --------------------------------------------------

// The counsellor's device of e2e_test.cc: identity, signed prekey, one-time prekeys.
struct CounsellorDevice {
  e2e::IdentityKey identity = e2e::IdentityKey::Generate();
  e2e::SignedPrekey spk = e2e::SignedPrekey::Make(identity, 1);
  std::map<std::uint32_t, e2e::OneTimePrekey> one_time;

  v1::Request Publish(std::uint32_t first_id, int count) {
    v1::Request r;
    v1::PublishPrekeys* p = r.mutable_publish_prekeys();
    const Bytes ik = identity.public_key().Encode();
    p->set_identity_key(std::string(ik.begin(), ik.end()));
    p->mutable_signed_prekey()->set_id(spk.id);
    p->mutable_signed_prekey()->set_public_key(
        std::string(spk.key.public_key.begin(), spk.key.public_key.end()));
    p->mutable_signed_prekey()->set_signature(
        std::string(spk.signature.begin(), spk.signature.end()));
    for (int i = 0; i < count; ++i) {
      const std::uint32_t id = first_id + static_cast<std::uint32_t>(i);
      e2e::OneTimePrekey k{id, e2e::DhKeyPair::Generate()};
      v1::OneTimePrekey* o = p->add_one_time_prekeys();
      o->set_id(id);
      o->set_public_key(std::string(k.key.public_key.begin(), k.key.public_key.end()));
      one_time.emplace(id, std::move(k));
    }
    return r;
  }
};

std::string AsString(const Bytes& b) { return std::string(b.begin(), b.end()); }

TEST_F(HostileTest, ReplayedEnvelopeIsRelayedAgainButReadOnlyOnce) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto counsellor = Counsellor();
  CounsellorDevice device;
  ASSERT_TRUE(counsellor->Ask(device.Publish(1, 5))->has_prekeys_published());
  auto [survivor, id] = ClaimedBy(*counsellor);
  v1::Request get;
  get.mutable_get_prekey_bundle()->set_conversation_id(id);
  auto wire = survivor->Ask(get);
  ASSERT_TRUE(wire.ok() && wire->has_prekey_bundle()) << RelayClient::Describe(wire);
  e2e::PrekeyBundle bundle;
  bundle.identity = *e2e::IdentityPublic::Decode(AsBytes(wire->prekey_bundle().identity_key()));
  bundle.signed_prekey_id = wire->prekey_bundle().signed_prekey().id();
  std::memcpy(bundle.signed_prekey.data(),
              wire->prekey_bundle().signed_prekey().public_key().data(), 32);
  std::memcpy(bundle.signature.data(), wire->prekey_bundle().signed_prekey().signature().data(),
              64);
  crypto::X25519Public opk{};
  std::memcpy(opk.data(), wire->prekey_bundle().one_time_prekey().public_key().data(), 32);
  bundle.one_time_prekey = std::pair{wire->prekey_bundle().one_time_prekey().id(), opk};
  const e2e::IdentityKey me = e2e::IdentityKey::Generate();
  auto init = e2e::InitiateX3dh(me, bundle);
  ASSERT_TRUE(init.ok());
  auto alice = e2e::DoubleRatchet::InitInitiator(
      init->secrets.shared_secret.view(), bundle.signed_prekey, init->secrets.associated_data);
  ASSERT_TRUE(alice.ok());
  const Bytes start =
      e2e::EncodeSessionStart(init->message, *alice->Encrypt(AsBytes(std::string("hello"))));
  const Bytes second = e2e::EncodeMessage(*alice->Encrypt(AsBytes(std::string("second"))));
  // Each envelope is sent twice, byte for byte (a faulty or hostile sender,
  // or a resend after a lost EnvelopeAccepted): the relay takes both.
  std::set<std::uint64_t> seqs;
  for (const Bytes* e : {&start, &start, &second, &second}) {
    auto r = survivor->Send(id, AsString(*e));
    ASSERT_TRUE(r.ok() && r->has_envelope_accepted()) << RelayClient::Describe(r);
    seqs.insert(r->envelope_accepted().seq());
  }
  EXPECT_EQ(seqs.size(), 4u) << "every send gets its own seq";
  // The counsellor's device reads each message once and rejects the copies.
  std::optional<e2e::DoubleRatchet> bob;
  std::vector<std::string> read;
  int rejected = 0;
  for (int i = 0; i < 4; ++i) {
    auto delivered = counsellor->WaitEnvelope();
    ASSERT_TRUE(delivered.has_value()) << i;
    auto decoded = e2e::DecodeEnvelope(AsBytes(delivered->ciphertext()));
    ASSERT_TRUE(decoded.has_value());
    if (decoded->session_start && !bob) {
      auto k = device.one_time.find(*decoded->session_start->one_time_prekey_id);
      ASSERT_NE(k, device.one_time.end());
      auto secrets =
          e2e::RespondX3dh(device.identity, device.spk, &k->second, *decoded->session_start);
      ASSERT_TRUE(secrets.ok());
      device.one_time.erase(k);  // used once
      bob.emplace(std::move(e2e::DoubleRatchet::InitResponder(secrets->shared_secret.view(),
                                                              device.spk.key.Clone(),
                                                              secrets->associated_data))
                      .value());
    }
    ASSERT_TRUE(bob.has_value());
    auto plain = bob->Decrypt(decoded->ratchet_message);
    if (plain.ok()) {
      read.emplace_back(plain->view().begin(), plain->view().end());
    } else {
      ++rejected;
    }
    ASSERT_TRUE(counsellor->Ack(id, delivered->seq())->has_done());
  }
  EXPECT_EQ(read, (std::vector<std::string>{"hello", "second"}));
  EXPECT_EQ(rejected, 2);
}

Settings SmallWindow() { return Defaults().Set("relay", "delivery_window", "4"); }

TEST_F(HostileTest, OutOfOrderAndDuplicateAcknowledgementsLoseNothing) {
  ASSERT_NO_FATAL_FAILURE(Start(SmallWindow()));
  auto counsellor = Counsellor();
  auto [survivor, id] = ClaimedBy(*counsellor);
  std::vector<std::uint64_t> seqs;
  for (int i = 0; i < 10; ++i) {
    auto r = survivor->Send(id, "m-" + std::to_string(i));
    ASSERT_TRUE(r.ok() && r->has_envelope_accepted());
    seqs.push_back(r->envelope_accepted().seq());
  }
  std::map<std::uint64_t, std::string> seen;
  auto receive = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto e = counsellor->WaitEnvelope();
      ASSERT_TRUE(e.has_value()) << "envelope " << i << " of " << n;
      seen[e->seq()] = e->ciphertext();
    }
    EXPECT_FALSE(counsellor->WaitEnvelope(300ms).has_value()) << "the window was overrun";
  };
  ASSERT_NO_FATAL_FAILURE(receive(4));
  // Acknowledge the second, then the first (out of order), the second
  // again (duplicate), and zero: only two slots are freed.
  for (std::uint64_t up_to : {seqs[1], seqs[0], seqs[1], std::uint64_t{0}}) {
    ASSERT_TRUE(counsellor->Ack(id, up_to)->has_done());
  }
  ASSERT_NO_FATAL_FAILURE(receive(2));
  // Far beyond anything delivered: frees exactly what was delivered.
  ASSERT_TRUE(counsellor->Ack(id, ~std::uint64_t{0})->has_done());
  ASSERT_NO_FATAL_FAILURE(receive(4));
  // Those last four were never acknowledged: they come again, and only they.
  counsellor->Disconnect();
  ASSERT_TRUE(counsellor->Connect());
  std::vector<std::uint64_t> again;
  for (int i = 0; i < 4; ++i) {
    auto e = counsellor->WaitEnvelope();
    ASSERT_TRUE(e.has_value());
    again.push_back(e->seq());
  }
  EXPECT_EQ(again, std::vector<std::uint64_t>(seqs.begin() + 6, seqs.end()));
  ASSERT_TRUE(counsellor->Ack(id, seqs.back())->has_done());
  ASSERT_EQ(seen.size(), 10u);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(seen[seqs[static_cast<std::size_t>(i)]], "m-" + std::to_string(i));
  counsellor->Disconnect();
  ASSERT_TRUE(counsellor->Connect());
  EXPECT_FALSE(counsellor->WaitEnvelope(300ms).has_value()) << "acknowledged envelopes came back";
}

TEST_F(HostileTest, NobodyCanAcknowledgeAnotherPartysEnvelopes) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto counsellor = Counsellor();
  auto [survivor, id] = ClaimedBy(*counsellor);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(survivor->Send(id, "for-counsellor")->has_envelope_accepted());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(counsellor->WaitEnvelope().has_value());
  // The sender acknowledges its own envelopes; an outsider tries too.
  ASSERT_TRUE(survivor->Ack(id, ~std::uint64_t{0})->has_done());
  auto outsider = Survivor();
  EXPECT_EQ(CodeOf(outsider->Ack(id, ~std::uint64_t{0})), v1::ERROR_CODE_NOT_FOUND);
  auto other_counsellor = Counsellor();
  EXPECT_EQ(CodeOf(other_counsellor->Ack(id, ~std::uint64_t{0})), v1::ERROR_CODE_NOT_FOUND);
  // None of that freed anything: all three come again.
  counsellor->Disconnect();
  ASSERT_TRUE(counsellor->Connect());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(counsellor->WaitEnvelope().has_value()) << i;
}

TEST_F(HostileTest, ClientResetWithRequestsInFlightLeavesAConsistentConversation) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto counsellor = Counsellor();
  const noise::KeyPair key = noise::KeyPair::Generate();
  auto attacker =
      std::make_unique<NoiseClient>(server_->port(), server_->server_key(), key.Clone());
  ASSERT_TRUE(attacker->Handshake());
  v1::Request open;
  open.mutable_open_conversation()->set_language("en");
  ASSERT_TRUE(attacker->SendRequest(1, open));
  auto opened = attacker->ReceiveResponse(1);
  ASSERT_TRUE(opened && opened->response().has_conversation_opened());
  const std::string id = opened->response().conversation_opened().conversation().conversation_id();
  ASSERT_TRUE(counsellor->Claim(id)->has_conversation_claimed());
  // 200 envelopes pipelined, then a TCP reset before any answer is read.
  for (int i = 0; i < 200; ++i) {
    v1::Request send;
    send.mutable_send_envelope()->set_conversation_id(id);
    send.mutable_send_envelope()->set_ciphertext("inflight-" + std::to_string(i));
    ASSERT_TRUE(attacker->SendRequest(static_cast<std::uint64_t>(10 + i), send));
  }
  // Reset once the first has gone through: the rest are somewhere between
  // the socket, the relay and the database.
  auto first = counsellor->WaitEnvelope();
  ASSERT_TRUE(first.has_value());
  attacker->Reset();
  std::uint64_t last_seq = first->seq();
  int last_index = std::stoi(first->ciphertext().substr(9));
  ASSERT_TRUE(counsellor->Ack(id, first->seq())->has_done());
  // What got through arrives in order, once each, with increasing seqs.
  while (auto e = counsellor->WaitEnvelope(1s)) {
    const int index = std::stoi(e->ciphertext().substr(9));
    EXPECT_GT(e->seq(), last_seq);
    EXPECT_GT(index, last_index);
    last_seq = e->seq();
    last_index = index;
    ASSERT_TRUE(counsellor->Ack(id, e->seq())->has_done());
  }
  std::printf("[hostile] %d of 200 in-flight envelopes got through before the reset\n",
              last_index + 1);
  // The survivor comes back with its key and finds its conversation.
  NoiseClient back(server_->port(), server_->server_key(), key.Clone());
  ASSERT_TRUE(back.Handshake());
  v1::Request session;
  session.mutable_get_session();
  ASSERT_TRUE(back.SendRequest(1, session));
  auto info = back.ReceiveResponse(1);
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->response().session().conversations_size(), 1);
  EXPECT_EQ(info->response().session().conversations(0).state(), v1::CONVERSATION_STATE_ACTIVE);
}

// --- Roles: every request type, from every role it is not for ------------------------

enum RoleBit : int { kSurvivorRole = 1, kCounsellorRole = 2, kSupervisorRole = 4 };
constexpr int kStaff = kCounsellorRole | kSupervisorRole;
constexpr int kAnyRole = kSurvivorRole | kStaff;

struct RoleRule {
  int allowed = 0;
  // The refusal a role that may not send it gets; UNSPECIFIED: any refusal.
  std::map<int, v1::ErrorCode> refusal = {};
  bool may_act_on_others = false;  // e.g. a supervisor joining a conversation
};

// Who may send what (docs/protocol.md 14.4 and 25.2). A kind missing here (a
// request added later) is still sent by every role: an anonymous client
// must be refused, the others must get an answer and keep their connection.
const std::map<std::string, RoleRule>& RoleRules() {
  static const std::map<std::string, RoleRule> rules = {
      {"ping", {kAnyRole}},
      {"get_session", {kAnyRole}},
      {"redeem_invitation", {kSurvivorRole}},
      {"open_conversation", {kSurvivorRole}},
      {"list_queue", {kStaff}},
      {"claim_conversation", {kStaff}},
      {"send_envelope", {kAnyRole}},
      {"ack_envelopes", {kAnyRole}},
      {"close_conversation", {kAnyRole}},
      {"send_ephemeral", {kAnyRole}},
      {"quick_exit", {kSurvivorRole}},
      {"publish_prekeys", {kStaff}},
      {"get_prekey_bundle",
       {kSurvivorRole,
        {{kCounsellorRole, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE},
         {kSupervisorRole, v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE}}}},
      {"get_helpline_config", {kStaff}},
      {"set_presence", {kStaff}},
      {"list_counsellors", {kStaff}},
      {"transfer_conversation", {kStaff}},
      {"answer_transfer", {kStaff, {{kSurvivorRole, v1::ERROR_CODE_NOT_FOUND}}}},
      {"block_contact", {kStaff}},
      {"flag_conversation", {kStaff}},
      {"get_load", {kSupervisorRole}},
      // Being added (supervisor joins a conversation): listed ahead so that
      // the rules apply as soon as the schema has them.
      {"join_conversation",
       {kSupervisorRole,
        {{kSurvivorRole, v1::ERROR_CODE_UNSPECIFIED},
         {kCounsellorRole, v1::ERROR_CODE_UNSPECIFIED}},
        true}},
      {"leave_conversation",
       {kSupervisorRole,
        {{kSurvivorRole, v1::ERROR_CODE_UNSPECIFIED},
         {kCounsellorRole, v1::ERROR_CODE_UNSPECIFIED}}}},
  };
  return rules;
}

bool IsRefusal(v1::ErrorCode c) {
  return c == v1::ERROR_CODE_PERMISSION_DENIED || c == v1::ERROR_CODE_NOT_FOUND ||
         c == v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE || c == v1::ERROR_CODE_ALREADY_CLAIMED;
}

const char* RoleName(int role) {
  return role == kSurvivorRole ? "survivor" : role == kCounsellorRole ? "counsellor" : "supervisor";
}

std::vector<testing::RequestKind> LoadRequestKinds() {
  auto schema = FrameSchema::Load(HAVEN_FRAME_DESCRIPTORS);
  EXPECT_TRUE(schema.has_value()) << "cannot read " << HAVEN_FRAME_DESCRIPTORS;
  if (!schema) return {};
  auto kinds = schema->RequestKinds();
  // The descriptor and the generated code come from the same file: check.
  for (const auto& k : kinds) {
    v1::Request parsed;
    const std::string bytes = testing::LengthDelimited(k.number, "");
    EXPECT_TRUE(parsed.ParseFromString(bytes));
    EXPECT_EQ(static_cast<std::uint32_t>(parsed.kind_case()), k.number) << k.name;
  }
  EXPECT_GE(kinds.size(), 21u);
  return kinds;
}

// Request{kind{conversation_id = id}} (or an empty kind), as bytes.
std::string RequestFor(const testing::RequestKind& k, const std::string& conversation_id) {
  const std::string inner =
      k.conversation_id_field ? testing::LengthDelimited(*k.conversation_id_field, conversation_id)
                              : std::string();
  return testing::LengthDelimited(k.number, inner);
}

struct Actor {
  int role;
  RelayClient* client;
  std::string own_conversation;
  std::vector<v1::Frame> skipped;  // everything it received besides answers
};

// Sends `request` as `actor`, collecting what else arrives meanwhile.
std::optional<v1::Frame> Ask(Actor& actor, std::uint64_t rid, const std::string& request) {
  if (!actor.client->conn().SendRawPlaintext(AsBytes(FrameBytes(rid, request))).ok()) {
    return std::nullopt;
  }
  const auto deadline = Clock::now() + 3s;
  while (Clock::now() < deadline) {
    auto f = actor.client->conn().Receive(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (!f.ok()) return std::nullopt;
    if (f->has_response() && f->request_id() == rid) return *f;
    actor.skipped.push_back(*f);
  }
  return std::nullopt;
}

TEST_F(HostileTest, EveryRequestTypeFromAWrongRoleIsRefused) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const auto kinds = LoadRequestKinds();
  ASSERT_FALSE(kinds.empty());
  // Each actor has a conversation of its own, so that only its role can be
  // the reason for a refusal.
  auto counsellor = Counsellor();
  auto supervisor = Counsellor("supervisor");
  auto [survivor, own] = ClaimedBy(*counsellor);
  auto [other_survivor, supervised] = ClaimedBy(*supervisor);
  std::vector<Actor> actors = {{kSurvivorRole, survivor.get(), own, {}},
                               {kCounsellorRole, counsellor.get(), own, {}},
                               {kSupervisorRole, supervisor.get(), supervised, {}}};
  std::uint64_t rid = 1000000;
  int refused = 0;
  for (Actor& actor : actors) {
    for (const auto& kind : kinds) {
      auto rule = RoleRules().find(kind.name);
      const bool known = rule != RoleRules().end();
      if (known && (rule->second.allowed & actor.role)) continue;
      if (!known && actor.role != kSurvivorRole) {
        // A new request type: staff roles are only checked for an answer.
        auto reply = Ask(actor, ++rid, RequestFor(kind, actor.own_conversation));
        EXPECT_TRUE(reply.has_value())
            << kind.name << " from a " << RoleName(actor.role) << ": no answer";
        std::printf("[hostile] note: request kind %s is not in RoleRules(); add it\n",
                    kind.name.c_str());
        continue;
      }
      auto reply = Ask(actor, ++rid, RequestFor(kind, actor.own_conversation));
      ASSERT_TRUE(reply.has_value())
          << kind.name << " from a " << RoleName(actor.role) << ": no answer";
      const v1::ErrorCode got = CodeOf(reply);
      v1::ErrorCode want = v1::ERROR_CODE_PERMISSION_DENIED;
      if (known) {
        auto o = rule->second.refusal.find(actor.role);
        if (o != rule->second.refusal.end()) want = o->second;
      } else {
        want = v1::ERROR_CODE_UNSPECIFIED;
      }
      if (want == v1::ERROR_CODE_UNSPECIFIED) {
        EXPECT_TRUE(IsRefusal(got))
            << kind.name << " from a " << RoleName(actor.role) << ": " << reply->DebugString();
      } else {
        EXPECT_EQ(got, want) << kind.name << " from a " << RoleName(actor.role) << ": "
                             << reply->DebugString();
      }
      ++refused;
    }
  }
  std::printf("[hostile] %zu request kinds from the schema; %d wrong-role requests refused\n",
              kinds.size(), refused);
  EXPECT_GE(refused, 20);
  // Nothing happened to anyone's conversation, and the survivor saw nothing
  // meant for staff.
  EXPECT_TRUE(survivor->Send(own, "still-mine")->has_envelope_accepted());
  EXPECT_TRUE(other_survivor->Send(supervised, "still-mine")->has_envelope_accepted());
  auto session = survivor->GetSession();
  ASSERT_TRUE(session.ok());
  ASSERT_EQ(session->session().conversations_size(), 1);
  EXPECT_EQ(session->session().conversations(0).state(), v1::CONVERSATION_STATE_ACTIVE);
  EXPECT_FALSE(session->session().conversations(0).flagged_high_risk());
  for (const v1::Frame& f : actors[0].skipped) {
    EXPECT_FALSE(f.event().has_queue_changed() || f.event().has_supervisor_alert() ||
                 f.event().has_transfer_offered() || f.event().has_prekeys_low())
        << "a survivor received a staff event: " << f.DebugString();
  }
  for (Actor& a : actors) ExpectNothingOfThePair(a.skipped);
}

TEST_F(HostileTest, EveryConversationRequestOnSomeoneElsesConversationIsRefused) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const auto kinds = LoadRequestKinds();
  ASSERT_FALSE(kinds.empty());
  auto outsider_survivor = Survivor();
  auto outsider_counsellor = Counsellor();
  auto outsider_supervisor = Counsellor("supervisor");
  std::vector<Actor> actors = {{kSurvivorRole, outsider_survivor.get(), "", {}},
                               {kCounsellorRole, outsider_counsellor.get(), "", {}},
                               {kSupervisorRole, outsider_supervisor.get(), "", {}}};
  const std::string made_up(16, '\x5a');
  std::uint64_t rid = 2000000;
  int refused = 0;
  for (Actor& actor : actors) {
    for (const auto& kind : kinds) {
      if (!kind.conversation_id_field) continue;
      auto rule = RoleRules().find(kind.name);
      const bool known = rule != RoleRules().end();
      if (known && rule->second.may_act_on_others && (rule->second.allowed & actor.role)) continue;
      auto theirs = Ask(actor, ++rid, RequestFor(kind, pair_id_));
      auto nobodys = Ask(actor, ++rid, RequestFor(kind, made_up));
      ASSERT_TRUE(theirs && nobodys) << kind.name << " from a " << RoleName(actor.role);
      if (!known && actor.role != kSurvivorRole) continue;  // a new kind: answered is enough
      EXPECT_TRUE(IsRefusal(CodeOf(theirs)))
          << kind.name << " on the pair's conversation from a " << RoleName(actor.role) << ": "
          << theirs->DebugString();
      // Staff may learn that a claimed id exists (they see the queue); an
      // anonymous client must not be able to tell a real id from a made-up one.
      if (actor.role == kSurvivorRole) {
        EXPECT_EQ(CodeOf(theirs), CodeOf(nobodys)) << kind.name << ": a survivor can probe ids";
        EXPECT_EQ(theirs->response().error().message(), nobodys->response().error().message())
            << kind.name;
      }
      ++refused;
    }
  }
  std::printf("[hostile] %d requests on someone else's conversation refused\n", refused);
  EXPECT_GE(refused, 20);
  for (Actor& a : actors) ExpectNothingOfThePair(a.skipped);
  // The pair's conversation is untouched: the pair keeps talking (TearDown).
}

TEST_F(HostileTest, ClaimsAndTransferAnswersForAnotherCounsellorsConversationAreRefused) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto holder = Counsellor();
  auto colleague = Counsellor();
  auto intruder = Counsellor();
  auto [survivor, id] = ClaimedBy(*holder);
  EXPECT_EQ(CodeOf(intruder->Claim(id)), v1::ERROR_CODE_ALREADY_CLAIMED);
  EXPECT_EQ(CodeOf(intruder->Claim(pair_id_)), v1::ERROR_CODE_ALREADY_CLAIMED);
  // The holder offers a warm transfer to a colleague; the intruder answers it.
  v1::Request list;
  list.mutable_list_counsellors();
  auto listed = colleague->Ask(list);
  ASSERT_TRUE(listed.ok());
  std::string colleague_id;
  for (const auto& e : listed->counsellors().counsellors()) {
    if (e.is_you()) colleague_id = e.counsellor_id();
  }
  ASSERT_EQ(colleague_id.size(), 16u);
  v1::Request offer;
  offer.mutable_transfer_conversation()->set_conversation_id(id);
  offer.mutable_transfer_conversation()->set_counsellor_id(colleague_id);
  offer.mutable_transfer_conversation()->set_warm(true);
  ASSERT_TRUE(holder->Ask(offer)->has_done());
  v1::Request hijack;
  hijack.mutable_answer_transfer()->set_conversation_id(id);
  hijack.mutable_answer_transfer()->set_accept(true);
  EXPECT_EQ(CodeOf(intruder->Ask(hijack)), v1::ERROR_CODE_NOT_FOUND);
  // The intruder also tries to move it, to itself or anywhere.
  v1::Request move = offer;
  move.mutable_transfer_conversation()->set_warm(false);
  EXPECT_EQ(CodeOf(intruder->Ask(move)), v1::ERROR_CODE_NOT_FOUND);
  // The holder cannot transfer to itself or to a made-up colleague.
  v1::Request to_nobody = move;
  to_nobody.mutable_transfer_conversation()->set_counsellor_id(std::string(16, '\x01'));
  EXPECT_EQ(CodeOf(holder->Ask(to_nobody)), v1::ERROR_CODE_NOT_FOUND);
  // The offer survived the intrusion: the colleague takes it.
  ASSERT_TRUE(colleague->Ask(hijack)->has_done());
  EXPECT_TRUE(colleague->Send(id, "hello from the colleague")->has_envelope_accepted());
  EXPECT_EQ(CodeOf(intruder->Send(id, "x")), v1::ERROR_CODE_NOT_FOUND);
  EXPECT_EQ(CodeOf(holder->Send(id, "x")), v1::ERROR_CODE_NOT_FOUND)
      << "the old holder kept access";
}

// --- Invitations -----------------------------------------------------------------------

// The most redemptions the server-wide bucket can allow in `seconds` at the
// default 10 per minute: a burst of 5, then one every 6 s.
double InvitationBudget(double seconds) { return 5 + seconds / 6.0 + 1; }

TEST_F(HostileTest, InvitationBruteForceFromOneConnectionIsRateLimited) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto attacker = Survivor();
  std::mt19937 rng(99);
  const auto start = Clock::now();
  int invalid = 0, limited = 0;
  for (int i = 0; i < 40; ++i) {
    const v1::ErrorCode c = CodeOf(attacker->Redeem(RandomCode(rng)));
    invalid += c == v1::ERROR_CODE_INVITATION_INVALID;
    limited += c == v1::ERROR_CODE_RATE_LIMITED;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(invalid + limited, 40);
  EXPECT_LE(invalid, InvitationBudget(elapsed));
  EXPECT_GE(limited, 30);
  // The budget is server-wide: for now, a real counsellor with a real code
  // is refused too (the price of the limit; docs/threat-model.md).
  auto real = Survivor();
  EXPECT_EQ(CodeOf(real->Redeem(server_->Enrol())), v1::ERROR_CODE_RATE_LIMITED);
}

TEST_F(HostileTest, InvitationBruteForceFromManyConnectionsSharesOneBudget) {
  ASSERT_NO_FATAL_FAILURE(Start());
  std::atomic<int> invalid{0}, limited{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 10; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int round = 0; round < 2; ++round) {
        RelayClient c(*server_);
        if (!c.Connect()) continue;
        for (int i = 0; i < 3; ++i) {
          const v1::ErrorCode code = CodeOf(c.Redeem(RandomCode(rng)));
          invalid += code == v1::ERROR_CODE_INVITATION_INVALID;
          limited += code == v1::ERROR_CODE_RATE_LIMITED;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_EQ(invalid + limited, 60);
  EXPECT_LE(invalid, InvitationBudget(elapsed)) << "fresh connections got fresh budgets";
}

// --- Prekeys ---------------------------------------------------------------------------

TEST_F(HostileTest, OneTimePrekeyDrainIsBoundedByTheSurvivorsRequestBudget) {
  // The default survivor budget (20/s, bursts of 60); the pair paces itself
  // to fit in its own connection's budget.
  Settings s = Defaults();
  s.Set("relay", "survivor_requests_per_second", "20").Set("relay", "survivor_request_burst", "60");
  ASSERT_NO_FATAL_FAILURE(Start(s, 120ms));
  auto counsellor = Counsellor();
  CounsellorDevice device;
  ASSERT_TRUE(counsellor->Ask(device.Publish(1, 40))->has_prekeys_published());
  auto [attacker, id] = ClaimedBy(*counsellor);
  const auto start = Clock::now();
  std::set<std::uint32_t> handed_out;
  int with_key = 0, without_key = 0, limited = 0;
  v1::Request get;
  get.mutable_get_prekey_bundle()->set_conversation_id(id);
  for (int i = 0; i < 150; ++i) {
    auto r = attacker->Ask(get);
    ASSERT_TRUE(r.ok());
    if (CodeOf(r) == v1::ERROR_CODE_RATE_LIMITED) {
      ++limited;
      continue;
    }
    ASSERT_TRUE(r->has_prekey_bundle()) << r->DebugString();
    // Every bundle still carries the signed prekey: sessions can start.
    EXPECT_EQ(r->prekey_bundle().signed_prekey().signature().size(), 64u);
    if (r->prekey_bundle().has_one_time_prekey()) {
      ++with_key;
      EXPECT_TRUE(handed_out.insert(r->prekey_bundle().one_time_prekey().id()).second)
          << "a one-time prekey was handed out twice";
    } else {
      ++without_key;
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "[hostile] prekey drain: %d bundles with a one-time prekey, %d without, %d rate "
      "limited, in %.2f s\n",
      with_key, without_key, limited, elapsed);
  EXPECT_LE(with_key + without_key, 60 + 20 * elapsed + 1) << "beyond the survivor's budget";
  EXPECT_EQ(with_key, 40) << "the pool of 40 was drained (a known limitation, protocol 23.4)";
  EXPECT_GT(limited, 0);
  // The device is told, and can publish more.
  auto low = counsellor->WaitEvent([](const v1::Event& e) { return e.has_prekeys_low(); });
  ASSERT_TRUE(low.has_value());
  ASSERT_TRUE(counsellor->Ask(device.Publish(100, 10))->has_prekeys_published());
}

TEST_F(HostileTest, PrekeyPublicationFloodIsCapped) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto counsellor = Counsellor();
  CounsellorDevice device;
  EXPECT_EQ(CodeOf(counsellor->Ask(device.Publish(1, 101))), v1::ERROR_CODE_LIMIT_REACHED);
  for (int i = 0; i < 5; ++i) {
    auto r = counsellor->Ask(device.Publish(1000 + static_cast<std::uint32_t>(i) * 100, 100));
    ASSERT_TRUE(r.ok() && r->has_prekeys_published()) << RelayClient::Describe(r);
  }
  EXPECT_EQ(CodeOf(counsellor->Ask(device.Publish(5000, 1))), v1::ERROR_CODE_LIMIT_REACHED)
      << "the pool grew beyond 500";
  v1::Request bad = device.Publish(6000, 0);
  bad.mutable_publish_prekeys()->add_one_time_prekeys()->set_public_key(std::string(31, 'k'));
  EXPECT_EQ(CodeOf(counsellor->Ask(bad)), v1::ERROR_CODE_LIMIT_REACHED);
  v1::Request wrong_identity = CounsellorDevice().Publish(7000, 0);
  EXPECT_EQ(CodeOf(counsellor->Ask(wrong_identity)), v1::ERROR_CODE_PERMISSION_DENIED);
}

// --- Clients that never read ------------------------------------------------------------

TEST_F(HostileTest, ClientThatNeverReadsItsAnswersIsCutOffWithMemoryBounded) {
  ASSERT_NO_FATAL_FAILURE(Start(Defaults()
                                    .Set("limits", "send_queue_frames", "16")
                                    .Set("limits", "ping_interval_s", "1")
                                    .Set("limits", "idle_timeout_s", "2")
                                    .Set("relay", "delivery_window", "8")));
  NoiseClient flooder(server_->port(), server_->server_key(), std::nullopt, 4096);
  ASSERT_TRUE(flooder.Handshake());
  ::fcntl(flooder.fd(), F_SETFL, ::fcntl(flooder.fd(), F_GETFL) | O_NONBLOCK);
  // Pipelined Pings, never a read, until the socket will take no more.
  v1::Frame ping;
  ping.mutable_request()->mutable_ping()->set_opaque(std::string(32, 'p'));
  std::size_t sent_bytes = 0;
  const auto give_up = Clock::now() + (kSanitized ? 20s : 5s);
  int stalls = 0;
  while (Clock::now() < give_up && stalls < 20) {
    ping.set_request_id(ping.request_id() + 1);
    auto record = flooder.SealedRecord(ping);
    ASSERT_TRUE(record.has_value());
    std::size_t off = 0;
    while (off < record->size() && Clock::now() < give_up) {
      const ssize_t n =
          ::send(flooder.fd(), record->data() + off, record->size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<std::size_t>(n);
        stalls = 0;
      } else if (errno == EAGAIN) {
        ++stalls;
        std::this_thread::sleep_for(20ms);
        if (stalls >= 20) break;
      } else {
        break;
      }
    }
    sent_bytes += off;
  }
  const long rss = RssKb(server_->pid());
  std::printf(
      "[hostile] a never-reading client wrote %zu bytes before stalling; havend RSS "
      "%ld -> %ld kB\n",
      sent_bytes, rss_at_start_, rss);
  EXPECT_GE(stalls, 20) << "the server kept reading from a client that reads nothing";
  if (!kSanitized) {  // ASan's quarantine keeps freed memory resident
    EXPECT_LT(rss - rss_at_start_, 64 * 1024) << "memory grew with the unread answers";
  }
  // Disconnected at the idle timeout, while it still has read nothing.
  const auto stalled = Clock::now();
  ASSERT_TRUE(flooder.WaitClosedUnread(10s)) << "the non-reader was never disconnected";
  std::printf("[hostile] disconnected %.2f s after its writes stalled\n", SecondsSince(stalled));
}

TEST_F(HostileTest, CounsellorThatNeverReadsEventsIsDisconnectedWithMemoryBounded) {
  ASSERT_NO_FATAL_FAILURE(Start(Defaults()
                                    .Set("limits", "send_queue_frames", "32")
                                    .Set("relay", "delivery_window", "16")
                                    .Set("relay", "conversations_opened_per_minute", "100000"),
                                5ms, /*pair_sees_no_queue=*/true));
  auto sleeper = RawCounsellor(4096);  // redeemed; from now on it reads nothing
  // Anonymous survivors open and withdraw conversations with the largest
  // intake allowed: every open and every withdrawal is an event of about
  // 16 KB to every counsellor, the sleeper included.
  // Not scaled: what must overflow is the kernel's socket buffers (a few MB).
  const int cycles = 400;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      RelayClient s(*server_);
      if (!s.Connect()) return;
      while (done.load() < cycles) {
        auto opened = s.Open("en", 0, std::string(16384, 'i'));
        if (!opened.ok() || !opened->has_conversation_opened()) continue;
        (void)s.Close(opened->conversation_opened().conversation().conversation_id());
        ++done;
        if (kSanitized) std::this_thread::sleep_for(10ms);  // leave the machine to the others
      }
    });
  }
  for (auto& t : threads) t.join();
  const long rss = RssKb(server_->pid());
  std::printf(
      "[hostile] %d open/withdraw cycles with 16 KB intakes; havend RSS %ld -> %ld kB "
      "(closed conversations keep their intake in memory until purged)\n",
      done.load(), rss_at_start_, rss);
  if (!kSanitized) {
    EXPECT_LT(rss - rss_at_start_, 200 * 1024);
  }
  // The sleeper was cut off: reading now ends in end-of-stream, not in a
  // connection that is still served.
  ASSERT_TRUE(sleeper->WaitClosed(10s).has_value()) << "a counsellor that reads nothing was kept";
}

TEST_F(HostileTest, RecipientThatNeverReadsEnvelopesIsBoundedByTheWindowAndTheQueueCap) {
  ASSERT_NO_FATAL_FAILURE(Start(
      Defaults().Set("relay", "delivery_window", "8").Set("relay", "max_queued_envelopes", "50")));
  auto counsellor = Counsellor();
  auto sleeper =
      std::make_unique<NoiseClient>(server_->port(), server_->server_key(), std::nullopt, 4096);
  ASSERT_TRUE(sleeper->Handshake());
  v1::Request open;
  open.mutable_open_conversation()->set_language("en");
  ASSERT_TRUE(sleeper->SendRequest(1, open));
  auto opened = sleeper->ReceiveResponse(1);
  ASSERT_TRUE(opened.has_value());
  const std::string id = opened->response().conversation_opened().conversation().conversation_id();
  ASSERT_TRUE(counsellor->Claim(id)->has_conversation_claimed());
  int accepted = 0, refused = 0;
  for (int i = 0; i < 60; ++i) {
    const v1::ErrorCode c = CodeOf(counsellor->Send(id, std::string(1000, 'z')));
    if (c == v1::ERROR_CODE_UNSPECIFIED) ++accepted;
    if (c == v1::ERROR_CODE_LIMIT_REACHED) ++refused;
  }
  EXPECT_EQ(accepted, 50);
  EXPECT_EQ(refused, 10);
  const long rss = RssKb(server_->pid());
  std::printf(
      "[hostile] 50 envelopes wait for a survivor that reads nothing; havend RSS %ld -> "
      "%ld kB\n",
      rss_at_start_, rss);
  if (!kSanitized) {
    EXPECT_LT(rss - rss_at_start_, 64 * 1024);
  }
}

// --- Floods of requests ------------------------------------------------------------------

TEST_F(HostileTest, RequestFloodFromOneAnonymousConnectionIsRateLimitedAndFullyAnswered) {
  Settings s = Defaults();
  s.Set("relay", "survivor_requests_per_second", "20").Set("relay", "survivor_request_burst", "60");
  ASSERT_NO_FATAL_FAILURE(Start(s, 120ms));
  NoiseClient attacker(server_->port(), server_->server_key());
  ASSERT_TRUE(attacker.Handshake());
  const auto start = Clock::now();
  v1::Request session;
  session.mutable_get_session();
  constexpr int kCount = 500;
  for (int i = 1; i <= kCount; ++i)
    ASSERT_TRUE(attacker.SendRequest(static_cast<std::uint64_t>(i), session));
  std::set<std::uint64_t> answered;
  int ok = 0, limited = 0;
  while (answered.size() < kCount) {
    auto f = attacker.Receive(5s);
    ASSERT_TRUE(f.has_value()) << answered.size() << " answered";
    if (!f->has_response()) continue;
    EXPECT_TRUE(answered.insert(f->request_id()).second) << "answered twice";
    if (f->response().has_session()) ++ok;
    if (CodeOf(f) == v1::ERROR_CODE_RATE_LIMITED) ++limited;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("[hostile] request flood: %d answered, %d rate limited, in %.2f s\n", ok, limited,
              elapsed);
  EXPECT_EQ(ok + limited, kCount);
  EXPECT_LE(ok, 60 + 20 * elapsed + 1);
}

TEST_F(HostileTest, OpenFloodFromManyAnonymousSessionsIsRateLimitedServerWide) {
  ASSERT_NO_FATAL_FAILURE(Start());  // conversations_opened_per_minute: the default 120
  auto watcher = Counsellor();
  const auto start = Clock::now();
  std::atomic<int> opened{0}, limited{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        RelayClient c(*server_);
        if (!c.Connect()) continue;
        const v1::ErrorCode code = CodeOf(c.Open());
        opened += code == v1::ERROR_CODE_UNSPECIFIED;
        limited += code == v1::ERROR_CODE_RATE_LIMITED;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("[hostile] open flood: %d opened, %d rate limited, in %.2f s\n", opened.load(),
              limited.load(), elapsed);
  EXPECT_EQ(opened + limited, 60);
  // Bursts of 20 (the pair's own conversation took one), then 2 per second.
  EXPECT_LE(opened.load(), 20 + 2 * elapsed + 1);
  auto queue = watcher->ListQueue();
  ASSERT_TRUE(queue.ok());
  EXPECT_EQ(queue->queue().entries_size(), opened.load());
}

}  // namespace
}  // namespace haven
