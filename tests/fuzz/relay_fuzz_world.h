// A relay without sockets for the relay_* fuzz targets: the real Relay, the
// real StorageWorker and a real SQLCipher file (in /dev/shm when it exists,
// so fsync is cheap), with the fake peers of support/relay_fakes.h in place
// of connections, as tests/unit/relay_unit_test.cc drives it. Unlike that
// test, everything the relay posts runs on the fuzzing thread (Settle()), so
// each request is answered before the next one is sent.
//
// The world: a survivor whose conversation A a counsellor has claimed, a
// second survivor whose conversation B waits in the queue, a colleague
// counsellor and a supervisor, all connected; database ids are 16 random
// bytes, so a frame names them through placeholders (ApplyPlaceholders).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "relay_fuzz_ids.h"
#include "haven/common/secure_memory.h"
#include "service/invitation.h"
#include "service/relay.h"
#include "support/relay_fakes.h"

namespace haven::fuzz {

class RelayWorld {
 public:
  struct Actor {
    noise::PublicKey key{};
    std::shared_ptr<testing::FakePeer> peer;
  };
  enum ActorIndex : std::size_t { kSurvivor, kCounsellor, kSupervisor, kSurvivor2, kColleague, kActors };

  RelayWorld() : dir_(MakeDir()) { Build(); }
  ~RelayWorld() {
    TearDown();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  Actor& actor(std::size_t i) { return actors_[i]; }
  const std::vector<std::string>& ids() const { return ids_; }
  std::int64_t& now() { return now_; }
  server::Relay& relay() { return *relay_; }

  // Starts again from the initial world (called every few hundred inputs, so
  // that the database and the relay's memory stay small).
  void Reset() {
    TearDown();
    Build();
  }

  // Runs everything the relay posted, waiting for the storage thread, until
  // nothing is left to do.
  void Settle() {
    for (int round = 0; round < 1000; ++round) {
      RunPosted();
      Barrier();
      std::lock_guard lock(mu_);
      if (posted_.empty()) return;
    }
    CheckFailed("the relay never settled", __FILE__, __LINE__);
  }

  // Sends `frame` from actor `who` (request id set here) and returns what
  // came back to that actor.
  std::vector<v1::Frame> Ask(std::size_t who, v1::Frame frame, std::uint64_t request_id) {
    frame.set_request_id(request_id);
    relay_->Request(actors_[who].peer, std::move(frame));
    Settle();
    return actors_[who].peer->Take();
  }

  // The actor's connection ends (as after a close or a network loss) and a
  // new one with the same key comes in.
  void Reconnect(std::size_t who) {
    relay_->Disconnected(actors_[who].peer);
    actors_[who].peer = std::make_shared<testing::FakePeer>();
    relay_->Connected(actors_[who].peer, actors_[who].key);
    Settle();
  }

  // Learns ids the relay handed out (conversations opened during a run).
  void Learn(const v1::Frame& f) {
    if (f.has_response() && f.response().has_conversation_opened() && ids_.size() < 32) {
      ids_.push_back(f.response().conversation_opened().conversation().conversation_id());
    }
  }

  void ApplyPlaceholders(std::string* bytes) const {
    std::size_t at = 0;
    while ((at = bytes->find(kIdPlaceholder, at)) != std::string::npos) {
      if (at + 16 > bytes->size()) return;
      const auto which = static_cast<unsigned char>((*bytes)[at + 15]);
      const std::string& id = ids_[which % ids_.size()];
      bytes->replace(at, 16, id);  // ids are 16 bytes: lengths stay valid
      at += 16;
    }
  }

 private:
  static std::filesystem::path MakeDir() {
    std::error_code ec;
    const std::filesystem::path base =
        std::filesystem::is_directory("/dev/shm", ec) ? std::filesystem::path("/dev/shm")
                                                      : std::filesystem::temp_directory_path();
    std::filesystem::path dir = base / ("haven-relay-fuzz-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir, ec);
    std::filesystem::create_directories(dir);
    return dir;
  }

  static noise::PublicKey KeyOf(std::uint8_t tag) {
    noise::PublicKey key{};
    for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(tag + 13 * i);
    return key;
  }

  server::CounsellorId Enrol(server::ServerStore& store, const noise::PublicKey& key, int role) {
    const std::string code = server::NewInvitationCode();
    const auto hash = server::HashInvitationCode(code);
    HAVEN_FUZZ_CHECK(hash.has_value());
    HAVEN_FUZZ_CHECK(store.CreateInvitation(*hash, role, now_ + 3600).ok());
    auto record = store.RedeemInvitation(*hash, key, now_);
    HAVEN_FUZZ_CHECK(record.ok() && record->has_value());
    return (*record)->id;
  }

  // The rate limits run on the real clock; at thousands of requests a second
  // they would answer nearly every survivor request with RATE_LIMITED and hide
  // everything behind them, so they are opened wide here.
  static server::Config FuzzConfig() {
    server::Config config;
    config.relay.survivor_requests_per_second = 1'000'000;
    config.relay.survivor_request_burst = 1'000'000;
    config.relay.conversations_opened_per_minute = 1'000'000;
    config.relay.invitation_attempts_per_minute = 1'000'000;
    return config;
  }

  void Build() {
    now_ = 1'800'000'000;
    const std::string path = (dir_ / "haven.db").string();
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
    auto store = server::ServerStore::Open(path, db_key_.view(), true);
    HAVEN_FUZZ_CHECK(store.ok());
    const std::uint8_t tags[kActors] = {0x10, 0x20, 0x30, 0x40, 0x50};
    for (std::size_t i = 0; i < kActors; ++i) {
      actors_[i].key = KeyOf(tags[i]);
      actors_[i].peer = std::make_shared<testing::FakePeer>();
    }
    const auto counsellor = Enrol(**store, actors_[kCounsellor].key, v1::ROLE_COUNSELLOR);
    const auto colleague = Enrol(**store, actors_[kColleague].key, v1::ROLE_COUNSELLOR);
    const auto supervisor = Enrol(**store, actors_[kSupervisor].key, v1::ROLE_SUPERVISOR);
    auto state = (*store)->Load();
    HAVEN_FUZZ_CHECK(state.ok());
    const std::uint32_t epoch = (*store)->boot_epoch();
    worker_ = std::make_unique<server::StorageWorker>(std::move(store).value(), 64);
    relay_ = std::make_unique<server::Relay>(
        [this](std::function<void()> fn) {
          std::lock_guard lock(mu_);
          posted_.push_back(std::move(fn));
        },
        *worker_, FuzzConfig(), std::move(state).value(), epoch, [this] { return now_; });
    for (Actor& a : actors_) relay_->Connected(a.peer, a.key);
    Settle();

    ids_.assign(5, std::string(16, '\0'));
    ids_[kConversationA] = OpenConversation(kSurvivor);
    ids_[kConversationB] = OpenConversation(kSurvivor2);
    ids_[kCounsellorId].assign(counsellor.begin(), counsellor.end());
    ids_[kColleagueId].assign(colleague.begin(), colleague.end());
    ids_[kSupervisorId].assign(supervisor.begin(), supervisor.end());
    v1::Frame claim;
    claim.mutable_request()->mutable_claim_conversation()->set_conversation_id(ids_[kConversationA]);
    bool claimed = false;
    for (const v1::Frame& f : Ask(kCounsellor, claim, 2)) {
      claimed = claimed || (f.has_response() && f.response().has_conversation_claimed());
    }
    HAVEN_FUZZ_CHECK(claimed);
    for (Actor& a : actors_) a.peer->Take();  // the setup's events
  }

  std::string OpenConversation(std::size_t who) {
    v1::Frame open;
    open.mutable_request()->mutable_open_conversation()->set_language("en");
    for (const v1::Frame& f : Ask(who, open, 1)) {
      if (f.has_response() && f.response().has_conversation_opened()) {
        return f.response().conversation_opened().conversation().conversation_id();
      }
    }
    CheckFailed("the setup could not open a conversation", __FILE__, __LINE__);
  }

  void RunPosted() {
    for (;;) {
      std::function<void()> fn;
      {
        std::lock_guard lock(mu_);
        if (posted_.empty()) return;
        fn = std::move(posted_.front());
        posted_.pop_front();
      }
      fn();
    }
  }

  // Everything submitted to the storage thread before this has completed
  // (and posted its completion) when it returns.
  void Barrier() {
    auto done = std::make_shared<std::promise<void>>();
    auto f = done->get_future();
    worker_->Submit([](server::ServerStore&) { return Status::Ok(); },
                    [done](const Status&) { done->set_value(); });
    f.wait();
  }

  void TearDown() {
    if (relay_) {
      for (Actor& a : actors_) relay_->Disconnected(a.peer);
      Settle();
    }
    relay_.reset();
    worker_.reset();
    std::lock_guard lock(mu_);
    posted_.clear();
  }

  const std::filesystem::path dir_;
  SecureBuffer db_key_ = SecureBuffer::Random(32);
  std::mutex mu_;
  std::deque<std::function<void()>> posted_;  // guarded by mu_
  std::unique_ptr<server::StorageWorker> worker_;
  std::unique_ptr<server::Relay> relay_;
  Actor actors_[kActors];
  std::vector<std::string> ids_;
  std::int64_t now_ = 0;
};

}  // namespace haven::fuzz
