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
#include <unistd.h>

#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "haven/common/secure_memory.h"
#include "service/invitation.h"
#include "service/relay.h"
#include "support/fault_vfs.h"
#include "support/relay_fakes.h"

namespace haven::server {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using testing::FaultVfs;

using testing::SerialExecutor;
using testing::FakePeer;

class StorageFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vfs_ = &FaultVfs::Install();
    dir_ = fs::temp_directory_path() / ("haven-storage-fault-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto store = ServerStore::Open(Path(), key_.view(), true);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    const std::string code = NewInvitationCode();
    ASSERT_TRUE((*store)->CreateInvitation(*HashInvitationCode(code), v1::ROLE_COUNSELLOR,
                                           std::time(nullptr) + 60).ok());
    ASSERT_TRUE((*store)->RedeemInvitation(*HashInvitationCode(code), counsellor_key_,
                                           std::time(nullptr))->has_value());
    auto state = (*store)->Load();
    ASSERT_TRUE(state.ok());
    const std::uint32_t epoch = (*store)->boot_epoch();
    worker_ = std::make_unique<StorageWorker>(std::move(store).value(), 64);
    relay_ = std::make_unique<Relay>([this](std::function<void()> fn) { exec_.Post(std::move(fn)); },
                                     *worker_, Unthrottled(), std::move(state).value(), epoch,
                                     [] { return static_cast<std::int64_t>(std::time(nullptr)); });
    relay_->Connected(survivor_, survivor_key_);
    relay_->Connected(counsellor_, counsellor_key_);
    auto opened = Ask(survivor_, [](v1::Request& r) { r.mutable_open_conversation()->set_language("en"); });
    ASSERT_TRUE(opened && opened->response().has_conversation_opened());
    id_ = opened->response().conversation_opened().conversation().conversation_id();
    auto claimed = Ask(counsellor_, [this](v1::Request& r) {
      r.mutable_claim_conversation()->set_conversation_id(id_);
    });
    ASSERT_TRUE(claimed && claimed->response().has_conversation_claimed());
    relay_->Disconnected(counsellor_);  // offline: nothing is acknowledged early
  }

  void TearDown() override {
    vfs_->Clear();
    StopServer();
    fs::remove_all(dir_);
  }

  // The survivor sends ~100 requests in a burst: the rate limit is not
  // what this test is about.
  static Config Unthrottled() {
    Config config;
    config.relay.survivor_requests_per_second = 100000;
    config.relay.survivor_request_burst = 100000;
    return config;
  }

  std::string Path() const { return (dir_ / "haven.db").string(); }

  void StopServer() {
    relay_.reset();
    worker_.reset();  // runs what was submitted, then joins
  }

  template <typename Fill>
  std::optional<v1::Frame> Ask(const std::shared_ptr<FakePeer>& peer, Fill fill) {
    v1::Frame f;
    f.set_request_id(++next_id_);
    fill(*f.mutable_request());
    relay_->Request(peer, f);
    return peer->Response(f.request_id());
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
  fs::path dir_;
  SecureBuffer key_ = SecureBuffer::Random(32);
  noise::PublicKey survivor_key_ = noise::KeyPair::Generate().public_key;
  noise::PublicKey counsellor_key_ = noise::KeyPair::Generate().public_key;
  std::shared_ptr<FakePeer> survivor_ = std::make_shared<FakePeer>();
  std::shared_ptr<FakePeer> counsellor_ = std::make_shared<FakePeer>();
  SerialExecutor exec_;
  std::unique_ptr<StorageWorker> worker_;
  std::unique_ptr<Relay> relay_;
  std::string id_;
  std::uint64_t next_id_ = 0;
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
  StopServer();
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
  StopServer();
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
