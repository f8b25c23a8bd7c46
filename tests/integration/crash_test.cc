// Crash safety: a sender and a receiver keep a conversation busy while havend
// is killed with SIGKILL at random moments and restarted, again and again.
// Every envelope the sender saw accepted must reach the receiver's
// application exactly once after de-duplication, in order.
//
// The suite runs a short version; the long one is
//   HAVEN_CRASH_KILLS=1000 build/default/tests/crash_integration_test
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "support/havend_process.h"
#include "support/relay_client.h"

namespace haven {
namespace {

using namespace std::chrono_literals;
using testing::HavendProcess;
using testing::RelayClient;

int KillCount() {
  const char* env = std::getenv("HAVEN_CRASH_KILLS");
  return env != nullptr ? std::max(1, std::atoi(env)) : 20;
}

// Keeps trying until connected or `stop` is set.
bool Reconnect(RelayClient& c, const std::atomic<bool>& stop) {
  c.Disconnect();
  while (!stop.load()) {
    if (c.Connect(2s)) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

std::uint64_t MessageId(const std::string& ciphertext) {
  return std::stoull(ciphertext.substr(ciphertext.find(':') + 1));
}

TEST(CrashTest, NoAcceptedEnvelopeIsLostOrReorderedAcrossKills) {
  const int kills = KillCount();
  // The sender is an anonymous survivor sending as fast as it can: lift the
  // per-connection rate limit, which is not what this test is about.
  auto server = HavendProcess::Start(
      "[relay]\nsurvivor_requests_per_second = 100000\nsurvivor_request_burst = 100000\n");
  ASSERT_NE(server, nullptr);

  RelayClient counsellor(*server);
  ASSERT_TRUE(counsellor.Connect());
  ASSERT_TRUE(counsellor.Redeem(server->Enrol())->has_invitation_redeemed());
  RelayClient survivor(*server);
  ASSERT_TRUE(survivor.Connect());
  const std::string id = survivor.OpenId();
  ASSERT_TRUE(counsellor.Claim(id)->has_conversation_claimed());

  std::mutex mu;
  std::set<std::uint64_t> accepted;         // guarded by mu
  std::vector<std::uint64_t> first_seen;    // receiver's application, after de-duplication
  std::set<std::uint64_t> seen;             // guarded by mu
  std::uint64_t duplicates = 0;             // guarded by mu
  std::uint64_t send_failures = 0;          // sender
  std::atomic<bool> stop_sending{false};
  std::atomic<bool> stop_receiving{false};
  std::atomic<std::uint64_t> unexpected_errors{0};

  std::thread sender([&] {
    std::uint64_t next = 1;
    while (!stop_sending.load()) {
      if (!survivor.connected() && !Reconnect(survivor, stop_sending)) break;
      auto r = survivor.Send(id, "msg:" + std::to_string(next));
      if (!r.ok()) {  // the server died under us: resend the same message
        ++send_failures;
        Reconnect(survivor, stop_sending);
        continue;
      }
      if (r->has_envelope_accepted()) {
        std::lock_guard lock(mu);
        accepted.insert(next++);
      } else if (RelayClient::ErrorOf(r) == v1::ERROR_CODE_LIMIT_REACHED) {
        std::this_thread::sleep_for(10ms);  // the receiver is behind: back off
      } else if (RelayClient::ErrorOf(r) != v1::ERROR_CODE_STORAGE_UNAVAILABLE) {
        ++unexpected_errors;
        std::printf("unexpected: %s\n", r->DebugString().c_str());
      }
    }
  });

  std::thread receiver([&] {
    while (!stop_receiving.load()) {
      if (!counsellor.connected() && !Reconnect(counsellor, stop_receiving)) break;
      auto f = counsellor.conn().Receive(200ms);
      if (!f.ok()) {
        if (f.status().code() != Status::Code::kDeadlineExceeded) counsellor.Disconnect();
        continue;
      }
      if (!f->has_event() || !f->event().has_envelope()) continue;
      const v1::EnvelopeDelivery& e = f->event().envelope();
      const std::uint64_t msg = MessageId(e.ciphertext());
      {
        std::lock_guard lock(mu);
        if (seen.insert(msg).second) {
          first_seen.push_back(msg);
        } else {
          ++duplicates;
        }
      }
      // Acknowledge only after the application has it.
      if (!counsellor.Ack(id, e.seq()).ok()) counsellor.Disconnect();
    }
  });

  std::mt19937 rng(12345);
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 250));
    server->Kill();
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 50));
    ASSERT_TRUE(server->Restart()) << "restart " << k;
  }
  stop_sending = true;
  sender.join();

  // Let the receiver catch up with everything accepted.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (std::includes(seen.begin(), seen.end(), accepted.begin(), accepted.end())) break;
    }
    std::this_thread::sleep_for(50ms);
  }
  stop_receiving = true;
  receiver.join();

  std::lock_guard lock(mu);
  std::vector<std::uint64_t> lost;
  std::set_difference(accepted.begin(), accepted.end(), seen.begin(), seen.end(),
                      std::back_inserter(lost));
  std::printf("[ crash    ] %d kills: %zu envelopes accepted, %zu received once after "
              "de-duplication (%llu duplicates), %llu sends interrupted, %zu lost\n",
              kills, accepted.size(), seen.size(), static_cast<unsigned long long>(duplicates),
              static_cast<unsigned long long>(send_failures), lost.size());
  EXPECT_TRUE(lost.empty()) << "first lost message: " << (lost.empty() ? 0 : lost.front());
  EXPECT_TRUE(std::is_sorted(first_seen.begin(), first_seen.end())) << "delivered out of order";
  EXPECT_EQ(unexpected_errors.load(), 0u);
  EXPECT_GT(accepted.size(), static_cast<std::size_t>(kills)) << "too little traffic to mean much";
  RecordProperty("accepted", static_cast<int>(accepted.size()));
}

}  // namespace
}  // namespace haven
