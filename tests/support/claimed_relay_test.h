// A fixture for the relay without sockets: the real Relay, the real
// StorageWorker and a SQLCipher file, with fake peers (relay_fakes.h). A
// counsellor's device is enrolled in the file, the survivor and the
// counsellor are connected, and the counsellor has claimed the survivor's
// conversation (id_). Used by relay_unit_test and storage_fault_test.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "haven/common/secure_memory.h"
#include "service/invitation.h"
#include "service/relay.h"
#include "support/relay_fakes.h"

namespace haven::testing {

class ClaimedRelayTest : public ::testing::Test {
 protected:
  // Call from SetUp(). `tag` names the scratch directory.
  void StartRelay(const std::string& tag, const server::Config& config) {
    dir_ = std::filesystem::temp_directory_path() / ("haven-" + tag + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto store = server::ServerStore::Open(Path(), key_.view(), true);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    // Enrol the counsellor's device directly.
    const std::string code = server::NewInvitationCode();
    ASSERT_TRUE((*store)->CreateInvitation(*server::HashInvitationCode(code), v1::ROLE_COUNSELLOR,
                                           std::time(nullptr) + 60).ok());
    ASSERT_TRUE((*store)->RedeemInvitation(*server::HashInvitationCode(code), counsellor_key_,
                                           std::time(nullptr))->has_value());
    auto state = (*store)->Load();
    ASSERT_TRUE(state.ok());
    const std::uint32_t epoch = (*store)->boot_epoch();
    worker_ = std::make_unique<server::StorageWorker>(std::move(store).value(), 64);
    relay_ = std::make_unique<server::Relay>(
        [this](std::function<void()> fn) { exec_.Post(std::move(fn)); }, *worker_, config,
        std::move(state).value(), epoch,
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
  }

  void TearDown() override {
    StopRelay();
    std::filesystem::remove_all(dir_);
  }

  // The relay goes, then the worker, which runs what was submitted and joins.
  void StopRelay() {
    relay_.reset();
    worker_.reset();
  }

  std::string Path() const { return (dir_ / "haven.db").string(); }

  // Sends a request filled in by `fill` from `peer`; its response, or nullopt.
  template <typename Fill>
  std::optional<v1::Frame> Ask(const std::shared_ptr<FakePeer>& peer, Fill fill) {
    v1::Frame f;
    f.set_request_id(++next_id_);
    fill(*f.mutable_request());
    const std::uint64_t id = next_id_;
    relay_->Request(peer, std::move(f));
    return peer->Response(id);
  }

  std::filesystem::path dir_;
  SecureBuffer key_ = SecureBuffer::Random(32);
  noise::PublicKey survivor_key_ = noise::KeyPair::Generate().public_key;
  noise::PublicKey counsellor_key_ = noise::KeyPair::Generate().public_key;
  std::shared_ptr<FakePeer> survivor_ = std::make_shared<FakePeer>();
  std::shared_ptr<FakePeer> counsellor_ = std::make_shared<FakePeer>();
  SerialExecutor exec_;
  std::unique_ptr<server::StorageWorker> worker_;
  std::unique_ptr<server::Relay> relay_;
  std::string id_;
  std::uint64_t next_id_ = 0;
};

}  // namespace haven::testing
