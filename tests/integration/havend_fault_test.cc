// Storage faults under a real havend process (issue 8, item 3): havend_fault
// is havend's own program with tests/support/fault_vfs under SQLite, steered
// through a control file (tests/support/havend_fault_main.cc). Clients talk
// to it over real sockets on 127.0.0.1; afterwards the database is read back
// by the real havend, started on the same files after a SIGKILL.
//
// What must hold: a write the disk refuses is answered with a clear error
// (STORAGE_UNAVAILABLE), what needs no write is still served, nothing is
// acknowledged that is not in the file, it works again once the disk does
// (without a restart), and a disk dead at startup stops havend with a message
// that says what to fix. The recipient is offline whenever envelopes are
// sent, so every acceptance waits for the disk (an envelope the recipient
// acknowledges first is never written, by design).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/havend_process.h"
#include "support/noise_client.h"
#include "support/relay_client.h"
#include "support/relay_fixture.h"

namespace haven::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// What havend_fault reports in <control>.status.
struct FaultStatus {
  long long applied = -1;
  unsigned long long operations = 0;
  unsigned long long injected = 0;
};

class HavendFaultTest : public RelayServerTest {
 protected:
  void SetUp() override {
    control_ = MakeTempDir("fault-control") / "control";
    // Inherited by every havend_fault this test starts.
    ::setenv("HAVEN_FAULT_CONTROL", control_.c_str(), 1);
    WriteCommand("clear");
  }

  void StartFaulty() {
    server_ = HavendProcess::Start("", HAVEN_HAVEND_FAULT_PATH);
    ASSERT_NE(server_, nullptr);
  }

  // Tells the running havend_fault to change the disk and waits until it has.
  void SetDisk(const std::string& command) {
    const long long sequence = WriteCommand(command);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (Status().applied < sequence) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << "havend_fault did not apply '" << command << "'";
      std::this_thread::sleep_for(1ms);
    }
  }

  // Only writes the control file (for the next start).
  long long WriteCommand(const std::string& command) {
    const fs::path tmp = control_.string() + ".new";
    std::ofstream(tmp, std::ios::trunc) << ++sequence_ << ' ' << command << '\n';
    fs::rename(tmp, control_);
    return sequence_;
  }

  FaultStatus Status() const {
    FaultStatus s;
    std::ifstream in(control_.string() + ".status");
    in >> s.applied >> s.operations >> s.injected;
    return s;
  }

  // The counts, including every operation done before this call.
  FaultStatus FreshStatus() {
    SetDisk("report");
    return Status();
  }

  fs::path control_;
  long long sequence_ = 0;
};

TEST_F(HavendFaultTest, AFullDiskIsAnsweredClearlyWhatNeedsNoWriteIsServedAndItRecovers) {
  ASSERT_NO_FATAL_FAILURE(StartFaulty());
  Pair p = Claimed();
  p.counsellor->Disconnect();  // offline: every acceptance waits for the disk

  std::vector<std::string> accepted;
  auto send_accepted = [&](const std::string& text) {
    auto r = p.survivor->Send(p.id, text);
    ASSERT_TRUE(r.ok() && r->has_envelope_accepted()) << text << ": " << RelayClient::Describe(r);
    accepted.push_back(text);
  };
  for (int i = 0; i < 10; ++i) ASSERT_NO_FATAL_FAILURE(send_accepted("before-" + std::to_string(i)));

  ASSERT_NO_FATAL_FAILURE(SetDisk("full"));
  const FaultStatus at_full = FreshStatus();
  for (int i = 0; i < 5; ++i) {
    auto r = p.survivor->Send(p.id, "refused-" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << "no answer while the disk is full: " << r.status().ToString();
    EXPECT_EQ(RelayClient::ErrorOf(r), v1::ERROR_CODE_STORAGE_UNAVAILABLE) << r->DebugString();
    if (r->has_error()) {
      // The message tells the client what to do, and carries nothing else.
      EXPECT_NE(r->error().message().find("resend"), std::string::npos) << r->error().message();
      EXPECT_EQ(r->error().message().find(p.id), std::string::npos);
    }
  }
  EXPECT_GT(FreshStatus().injected, at_full.injected) << "the shim never refused a write";

  // What needs no write: the session, a new connection's handshake, pings.
  auto session = p.survivor->GetSession();
  EXPECT_TRUE(session.ok() && !session->has_error()) << RelayClient::Describe(session);
  auto newcomer = Survivor();
  v1::Request ping;
  ping.mutable_ping()->set_opaque("still there?");
  auto pong = newcomer->Call(ping);
  ASSERT_TRUE(pong.ok()) << pong.status().ToString();
  EXPECT_EQ(pong->response().pong().opaque(), "still there?");
  // ... but a new conversation needs the disk, and says so.
  v1::Request open;
  open.mutable_open_conversation()->set_language("en");
  EXPECT_EQ(RelayClient::ErrorOf(newcomer->Ask(open)), v1::ERROR_CODE_STORAGE_UNAVAILABLE);

  // The disk recovers; so does havend, without a restart.
  ASSERT_NO_FATAL_FAILURE(SetDisk("clear"));
  for (int i = 0; i < 10; ++i) ASSERT_NO_FATAL_FAILURE(send_accepted("after-" + std::to_string(i)));
  auto reopened = newcomer->Ask(open);
  EXPECT_TRUE(reopened.ok() && reopened->has_conversation_opened())
      << RelayClient::Describe(reopened);

  // No shutdown, no flush: the real havend reads back what is on disk.
  p.survivor->Disconnect();
  newcomer->Disconnect();
  server_->Kill();
  ASSERT_TRUE(server_->Restart(HAVEN_HAVEND_PATH));
  ASSERT_TRUE(p.counsellor->Connect());
  std::vector<std::string> delivered;
  while (auto e = p.counsellor->WaitEnvelope(delivered.size() < accepted.size() ? 3s : 500ms)) {
    delivered.push_back(e->ciphertext());
  }
  EXPECT_EQ(delivered, accepted) << "exactly what was acknowledged, in order, and nothing refused";
}

TEST_F(HavendFaultTest, ADiskDeadAtStartupStopsHavendWithAMessageThatSaysWhatToFix) {
  // A data directory with its keys and database, made by the real havend.
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const fs::path data_dir = server_->data_dir();
  // The key files hold raw bytes; a leak would be printed in hex.
  std::vector<std::string> secrets_in_hex;
  for (const fs::path& file : {fs::path(server_->DatabaseKeyPath()), data_dir / "server.key"}) {
    const std::string raw = ReadFile(file.string());
    ASSERT_GE(raw.size(), 32u) << file;
    std::string hex = ToHex(AsBytes(raw).first(32));
    secrets_in_hex.push_back(hex.substr(0, 16));
    for (char& ch : hex) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    secrets_in_hex.push_back(hex.substr(0, 16));
  }
  ASSERT_EQ(server_->Terminate(), 0);

  // Where it dies: 0, in SQLite's open; 1-3, reading the first page; 4 and
  // 6, the schema and the boot record (each message was checked by hand).
  for (const int healthy : {0, 1, 3, 4, 6}) {
    SCOPED_TRACE("fail after " + std::to_string(healthy));
    WriteCommand("fail-after " + std::to_string(healthy));
    const HavendRun run = HavendProcess::RunToExit(
        {"--data-dir", data_dir.string(), "--port", "0"}, 10s, HAVEN_HAVEND_FAULT_PATH);
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_NE(run.output.find("havend: "), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("database file " + (data_dir / "haven.db").string()),
              std::string::npos)
        << "the message should name the file: " << run.output;
    EXPECT_NE(run.output.find("disk I/O error"), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find("listening"), std::string::npos) << run.output;
    // A dead disk is not a wrong key: the operator must not go hunting for one.
    EXPECT_EQ(run.output.find("wrong key"), std::string::npos) << run.output;
    for (const std::string& secret : secrets_in_hex) {
      EXPECT_EQ(run.output.find(secret), std::string::npos) << "a key in the output";
    }
  }

  // The disk is healthy again: the real havend starts on the same files.
  WriteCommand("clear");
  ASSERT_TRUE(server_->Restart());
  auto survivor = Survivor();
  EXPECT_FALSE(survivor->OpenId().empty());
}

// The disk dies after n operations, for a range of n, while a survivor sends
// a burst (so that the fault lands in different places: a batch's WAL
// writes, its commit, its fsync, a checkpoint). havend is then SIGKILLed and
// the real havend, started on the same files, must hand over every envelope
// havend_fault acknowledged.
TEST_F(HavendFaultTest, ADyingDiskNeverLosesWhatWasAcknowledged) {
  ASSERT_NO_FATAL_FAILURE(StartFaulty());
  auto counsellor = Counsellor();
  const noise::KeyPair survivor_key = noise::KeyPair::Generate();
  std::string id;
  {
    NoiseClient survivor(server_->port(), server_->server_key(), survivor_key.Clone());
    ASSERT_TRUE(survivor.Handshake());
    v1::Request open;
    open.mutable_open_conversation()->set_language("en");
    ASSERT_TRUE(survivor.SendRequest(1, open));
    auto opened = survivor.ReceiveResponse(1);
    ASSERT_TRUE(opened && opened->response().has_conversation_opened());
    id = opened->response().conversation_opened().conversation().conversation_id();
  }
  auto claim = counsellor->Claim(id);
  ASSERT_TRUE(claim.ok() && claim->has_conversation_claimed()) << RelayClient::Describe(claim);
  counsellor->Disconnect();

  // Five sends one at a time (each its own batch), then five together (one
  // or two batches), so that the failing operation moves through single and
  // grouped commits as n grows.
  constexpr int kOneByOne = 5, kTogether = 5;
  std::size_t total_accepted = 0, total_refused = 0, total_stored = 0, refused_but_stored = 0;
  std::set<std::string> ever_refused;  // a late one may surface in a later round
  unsigned long long total_injected = 0;
  for (int healthy = 0; healthy <= 24; healthy += healthy < 12 ? 1 : 3) {
    SCOPED_TRACE("fail after " + std::to_string(healthy));
    std::set<std::string> accepted, refused;
    {
      NoiseClient survivor(server_->port(), server_->server_key(), survivor_key.Clone());
      ASSERT_TRUE(survivor.Handshake());
      const FaultStatus before = FreshStatus();
      ASSERT_NO_FATAL_FAILURE(SetDisk("fail-after " + std::to_string(healthy)));
      auto text_of = [&](int j) { return "n" + std::to_string(healthy) + "-" + std::to_string(j); };
      auto send = [&](int j) {
        v1::Request r;
        r.mutable_send_envelope()->set_conversation_id(id);
        r.mutable_send_envelope()->set_ciphertext(text_of(j));
        return survivor.SendRequest(100u + static_cast<std::uint64_t>(j), r);
      };
      auto answer = [&](int j) {
        auto a = survivor.ReceiveResponse(100u + static_cast<std::uint64_t>(j), 10s);
        ASSERT_TRUE(a.has_value()) << text_of(j) << " was never answered";
        if (a->response().has_envelope_accepted()) {
          accepted.insert(text_of(j));
          return;
        }
        ASSERT_TRUE(a->response().has_error()) << a->DebugString();
        EXPECT_EQ(a->response().error().code(), v1::ERROR_CODE_STORAGE_UNAVAILABLE)
            << a->DebugString();
        refused.insert(text_of(j));
      };
      for (int j = 0; j < kOneByOne; ++j) {
        ASSERT_TRUE(send(j));
        ASSERT_NO_FATAL_FAILURE(answer(j));
      }
      for (int j = kOneByOne; j < kOneByOne + kTogether; ++j) ASSERT_TRUE(send(j));
      for (int j = kOneByOne; j < kOneByOne + kTogether; ++j) ASSERT_NO_FATAL_FAILURE(answer(j));
      total_injected += FreshStatus().injected - before.injected;
    }
    // A crash on the dying disk, then the real havend on what it left.
    server_->Kill();
    WriteCommand("clear");
    ASSERT_TRUE(server_->Restart(HAVEN_HAVEND_PATH));
    ASSERT_TRUE(counsellor->Connect());
    // Everything accepted must come; then whatever else the file holds (a
    // refused envelope whose commit reached the disk after all).
    std::set<std::string> stored;
    std::uint64_t last_seq = 0;
    auto all_accepted_came = [&] {
      return std::includes(stored.begin(), stored.end(), accepted.begin(), accepted.end());
    };
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!all_accepted_came() && std::chrono::steady_clock::now() < deadline) {
      auto e = counsellor->WaitEnvelope(1s);
      if (!e) continue;
      EXPECT_TRUE(stored.insert(e->ciphertext()).second) << e->ciphertext() << " twice";
      last_seq = std::max(last_seq, e->seq());
    }
    while (auto e = counsellor->WaitEnvelope(300ms)) {
      EXPECT_TRUE(stored.insert(e->ciphertext()).second) << e->ciphertext() << " twice";
      last_seq = std::max(last_seq, e->seq());
    }
    for (const std::string& text : accepted) {
      EXPECT_TRUE(stored.count(text)) << text << " was acknowledged and is gone";
    }
    ever_refused.insert(refused.begin(), refused.end());
    for (const std::string& text : stored) {
      EXPECT_TRUE(accepted.count(text) || ever_refused.count(text)) << text << " was never sent";
      if (ever_refused.count(text)) ++refused_but_stored;
    }
    if (last_seq > 0) {
      ASSERT_TRUE(counsellor->Ack(id, last_seq)->has_done());
    }
    counsellor->Disconnect();
    total_accepted += accepted.size();
    total_refused += refused.size();
    total_stored += stored.size();
    ASSERT_TRUE(server_->Restart(HAVEN_HAVEND_FAULT_PATH));
  }
  std::cout << "[ dying disk ] " << total_accepted << " accepted, " << total_refused
            << " refused, " << total_stored << " stored (" << refused_but_stored
            << " of them refused), " << total_injected << " operations failed by the shim\n";
  // The faults really hit writes: otherwise this test would prove nothing.
  EXPECT_GT(total_injected, 0u);
  EXPECT_GT(total_refused, 0u);
  EXPECT_GT(total_accepted, 0u);
}

}  // namespace
}  // namespace haven::testing
