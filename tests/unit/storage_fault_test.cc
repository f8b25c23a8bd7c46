// Storage fault injection: the relay, its storage worker and a real SQLCipher
// file on top of support/fault_vfs.h, which makes the disk full or makes it
// die after N I/O operations. What must hold (issue 8):
//   - a write that fails is answered with a clear error (STORAGE_UNAVAILABLE),
//   - the relay keeps answering what needs no write,
//   - nothing is acknowledged (EnvelopeAccepted) that is not in the file,
//   - it works again as soon as the disk does, without a restart.
// The recipient is offline throughout, so that every acceptance has to wait
// for the database (none is acknowledged early by a recipient).
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "service/relay.h"
#include "support/claimed_relay_test.h"
#include "support/fault_vfs.h"

namespace haven::server {
namespace {

using testing::FaultVfs;

class StorageFaultTest : public testing::ClaimedRelayTest {
 protected:
  void SetUp() override {
    vfs_ = &FaultVfs::Install();
    ASSERT_NO_FATAL_FAILURE(StartRelay("storage-fault", Unthrottled()));
    relay_->Disconnected(counsellor_);  // offline: nothing is acknowledged early
  }

  void TearDown() override {
    vfs_->Clear();
    ClaimedRelayTest::TearDown();
  }

  // The survivor sends ~100 requests in a burst: the rate limit is not
  // what this test is about.
  static Config Unthrottled() {
    Config config;
    config.relay.survivor_requests_per_second = 100000;
    config.relay.survivor_request_burst = 100000;
    return config;
  }

  std::optional<v1::Frame> Send(const std::string& text) {
    return Ask(survivor_, [&](v1::Request& r) {
      r.mutable_send_envelope()->set_conversation_id(id_);
      r.mutable_send_envelope()->set_ciphertext(text);
    });
  }

  // Every envelope ciphertext in the file, read through a fresh connection
  // once the server has stopped.
  std::set<std::string> StoredEnvelopes() {
    std::set<std::string> out;
    auto store = ServerStore::Open(Path(), key_.view(), false);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (!store.ok()) return out;
    auto state = (*store)->Load();
    EXPECT_TRUE(state.ok());
    if (!state.ok()) return out;
    for (const EnvelopeRecord& e : state->envelopes) {
      out.insert(std::string(e.ciphertext.begin(), e.ciphertext.end()));
    }
    return out;
  }

  // Protobuf-lite has no DebugString: the error, if any, for messages.
  static std::string Describe(const std::optional<v1::Frame>& f) {
    if (!f) return "no response";
    if (!f->response().has_error()) return "response kind " + std::to_string(f->response().kind_case());
    return "error " + std::to_string(f->response().error().code()) + ": " +
           f->response().error().message();
  }
  static bool IsAccepted(const std::optional<v1::Frame>& f) {
    return f && f->response().has_envelope_accepted();
  }
  static bool IsStorageError(const std::optional<v1::Frame>& f) {
    return f && f->response().has_error() &&
           f->response().error().code() == v1::ERROR_CODE_STORAGE_UNAVAILABLE;
  }

  FaultVfs* vfs_ = nullptr;
};

TEST_F(StorageFaultTest, FullDiskRefusesEnvelopesClearlyKeepsServingAndRecovers) {
  vfs_->DiskFull(true);
  for (int i = 0; i < 3; ++i) {
    auto r = Send("while-full-" + std::to_string(i));
    ASSERT_TRUE(r.has_value()) << "a refused envelope must still be answered";
    EXPECT_TRUE(IsStorageError(r)) << Describe(r);
    EXPECT_NE(r->response().error().message().find("resend"), std::string::npos);
  }
  EXPECT_GT(vfs_->injected(), 0u);
  // What needs no write is still served.
  auto session = Ask(survivor_, [](v1::Request& r) { r.mutable_get_session(); });
  ASSERT_TRUE(session && session->response().has_session()) << Describe(session);

  vfs_->Clear();  // space freed
  EXPECT_TRUE(IsAccepted(Send("after-space-freed")));
  StopRelay();
  EXPECT_EQ(StoredEnvelopes(), std::set<std::string>{"after-space-freed"});
}

// The disk dies after N operations, for every N up to a bound: whatever
// operation fails (WAL write, fsync, checkpoint read, ...), the sender is
// told either Accepted (and the envelope is in the file) or
// STORAGE_UNAVAILABLE, and the next write after the disk comes back works.
TEST_F(StorageFaultTest, AcceptedMeansDurableWhicheverOperationFails) {
  std::set<std::string> accepted;
  std::size_t refused = 0;
  constexpr int kBurst = 6;  // sent together, so batches and their commits vary
  for (int n = 0; n < 30; ++n) {
    vfs_->FailAfter(n);
    std::vector<std::pair<std::uint64_t, std::string>> sent;
    for (int i = 0; i < kBurst; ++i) {
      v1::Frame f;
      f.set_request_id(++next_id_);
      const std::string text = "fail-after-" + std::to_string(n) + "-" + std::to_string(i);
      f.mutable_request()->mutable_send_envelope()->set_conversation_id(id_);
      f.mutable_request()->mutable_send_envelope()->set_ciphertext(text);
      relay_->Request(survivor_, f);
      sent.emplace_back(f.request_id(), text);
    }
    for (const auto& [request_id, text] : sent) {
      auto r = survivor_->Response(request_id);
      ASSERT_TRUE(r.has_value()) << "unanswered: " << text;
      if (IsAccepted(r)) {
        accepted.insert(text);
      } else {
        ASSERT_TRUE(IsStorageError(r)) << text << ": " << Describe(r);
        ++refused;
      }
    }
    vfs_->Clear();
    const std::string healthy = "healthy-after-" + std::to_string(n);
    auto after = Send(healthy);
    ASSERT_TRUE(IsAccepted(after)) << "no recovery after n=" << n << ": " << Describe(after);
    accepted.insert(healthy);
  }
  EXPECT_GT(refused, 0u) << "no fault was ever hit: the shim is not in the path";
  StopRelay();
  const std::set<std::string> stored = StoredEnvelopes();
  for (const std::string& text : accepted) {
    EXPECT_EQ(stored.count(text), 1u) << "acknowledged but not stored: " << text;
  }
  std::printf("[ faults   ] %zu accepted, %zu refused, %zu stored, %llu operations failed\n",
              accepted.size(), refused, stored.size(),
              static_cast<unsigned long long>(vfs_->injected()));
}

}  // namespace
}  // namespace haven::server
