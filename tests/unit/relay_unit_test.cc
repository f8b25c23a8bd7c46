// The relay without sockets: fake peers, a real SQLCipher store and the real
// storage worker, whose thread the tests can hold still to observe what is
// and is not durable at each moment.
#include "service/relay.h"

#include <gtest/gtest.h>

#include <future>
#include <memory>

#include "support/claimed_relay_test.h"

namespace haven::server {
namespace {

using namespace std::chrono_literals;

using testing::FakePeer;

class RelayUnitTest : public testing::ClaimedRelayTest {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartRelay("relay-unit", Config{})); }

  // Holds the storage thread until the returned promise is set.
  std::promise<void> HoldStorage() {
    std::promise<void> release;
    auto gate = std::make_shared<std::shared_future<void>>(release.get_future().share());
    std::promise<void> started;
    auto started_future = started.get_future();
    worker_->Submit(
        [gate, started = std::make_shared<std::promise<void>>(std::move(started))](ServerStore&) {
          started->set_value();
          gate->wait();
          return Status::Ok();
        },
        nullptr);
    started_future.wait();
    return release;
  }

  // Waits until everything submitted so far has committed.
  void Drain() {
    std::promise<void> done;
    auto f = done.get_future();
    worker_->Submit([](ServerStore&) { return Status::Ok(); },
                    [p = std::make_shared<std::promise<void>>(std::move(done))](const Status&) {
                      p->set_value();
                    });
    f.wait();
  }

  std::int64_t EnvelopesInDatabase() {
    auto store = ServerStore::Open(Path(), key_.view(), false);
    EXPECT_TRUE(store.ok());
    return store.ok() ? (*store)->Counts()->envelopes : -1;
  }
};

bool IsAccepted(const v1::Frame& f) {
  return f.has_response() && f.response().has_envelope_accepted();
}

TEST_F(RelayUnitTest, SenderHearsAcceptedOnlyOnceDurable) {
  std::promise<void> release = HoldStorage();
  v1::Frame send;
  send.set_request_id(1000);
  send.mutable_request()->mutable_send_envelope()->set_conversation_id(id_);
  send.mutable_request()->mutable_send_envelope()->set_ciphertext("durable-first");
  relay_->Request(survivor_, send);
  // Delivered at once, but not accepted while the database holds still.
  ASSERT_TRUE(counsellor_->Wait([](const v1::Frame& f) { return f.has_event() && f.event().has_envelope(); }));
  EXPECT_FALSE(survivor_->Wait(IsAccepted, 300ms).has_value());
  release.set_value();
  auto accepted = survivor_->Wait(IsAccepted);
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(accepted->request_id(), 1000u);
  Drain();
  EXPECT_EQ(EnvelopesInDatabase(), 1);
}

TEST_F(RelayUnitTest, EnvelopeAcknowledgedBeforeItsBatchCommitsIsNeverWritten) {
  std::promise<void> release = HoldStorage();
  v1::Frame send;
  send.set_request_id(2000);
  send.mutable_request()->mutable_send_envelope()->set_conversation_id(id_);
  send.mutable_request()->mutable_send_envelope()->set_ciphertext("acked-early");
  relay_->Request(survivor_, send);
  auto delivered = counsellor_->Wait([](const v1::Frame& f) { return f.has_event() && f.event().has_envelope(); });
  ASSERT_TRUE(delivered.has_value());
  auto ack = Ask(counsellor_, [&](v1::Request& r) {
    r.mutable_ack_envelopes()->set_conversation_id(id_);
    r.mutable_ack_envelopes()->set_up_to_seq(delivered->event().envelope().seq());
  });
  ASSERT_TRUE(ack && ack->response().has_done());
  // Accepted because the recipient has it, while the database still holds still.
  auto accepted = survivor_->Wait(IsAccepted);
  ASSERT_TRUE(accepted.has_value());
  EXPECT_EQ(accepted->request_id(), 2000u);
  release.set_value();
  Drain();
  EXPECT_EQ(EnvelopesInDatabase(), 0);
  EXPECT_GE(worker_->stats().cancelled, 1u);
}

TEST_F(RelayUnitTest, DeliveryWindowBoundsWhatIsInFlight) {
  // Default window: 64. The counsellor sends 100 (counsellors are not rate
  // limited) while the survivor does not acknowledge.
  for (int i = 0; i < 100; ++i) {
    auto r = Ask(counsellor_, [&](v1::Request& req) {
      req.mutable_send_envelope()->set_conversation_id(id_);
      req.mutable_send_envelope()->set_ciphertext("m" + std::to_string(i));
    });
    ASSERT_TRUE(r && r->response().has_envelope_accepted()) << i;
  }
  auto is_envelope = [](const v1::Frame& x) { return x.has_event() && x.event().has_envelope(); };
  std::vector<std::uint64_t> seqs;
  while (auto f = survivor_->Wait(is_envelope, 300ms)) seqs.push_back(f->event().envelope().seq());
  ASSERT_EQ(seqs.size(), 64u);
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  auto ack = Ask(survivor_, [&](v1::Request& r) {
    r.mutable_ack_envelopes()->set_conversation_id(id_);
    r.mutable_ack_envelopes()->set_up_to_seq(seqs.back());
  });
  ASSERT_TRUE(ack);
  std::size_t more = 0;
  while (survivor_->Wait(is_envelope, 300ms)) ++more;
  EXPECT_EQ(more, 36u);
}

TEST_F(RelayUnitTest, DeliveryWindowIsPerConnectionAcrossConversations) {
  // A second conversation for the same counsellor, from another survivor.
  auto other = std::make_shared<FakePeer>();
  relay_->Connected(other, noise::KeyPair::Generate().public_key);
  auto opened = Ask(other, [](v1::Request& r) { r.mutable_open_conversation()->set_language("en"); });
  ASSERT_TRUE(opened);
  const std::string id2 = opened->response().conversation_opened().conversation().conversation_id();
  ASSERT_TRUE(Ask(counsellor_, [&](v1::Request& r) {
    r.mutable_claim_conversation()->set_conversation_id(id2);
  }));
  // 40 envelopes in each conversation toward the counsellor: 80 > window 64.
  for (int i = 0; i < 40; ++i) {
    for (auto [peer, conv] : {std::pair{survivor_, id_}, std::pair{other, id2}}) {
      v1::Frame f;
      f.set_request_id(5000 + static_cast<std::uint64_t>(i));
      f.mutable_request()->mutable_send_envelope()->set_conversation_id(conv);
      f.mutable_request()->mutable_send_envelope()->set_ciphertext("x");
      relay_->Request(peer, f);
    }
  }
  auto is_envelope = [](const v1::Frame& x) { return x.has_event() && x.event().has_envelope(); };
  std::size_t delivered = 0;
  while (counsellor_->Wait(is_envelope, 300ms)) ++delivered;
  EXPECT_EQ(delivered, 64u);
}

TEST_F(RelayUnitTest, AckCoversOnlyWhatWasDelivered) {
  // An acknowledgement for sequence numbers not yet delivered removes nothing.
  auto ack = Ask(counsellor_, [&](v1::Request& r) {
    r.mutable_ack_envelopes()->set_conversation_id(id_);
    r.mutable_ack_envelopes()->set_up_to_seq(~0ull);
  });
  ASSERT_TRUE(ack);
  auto sent = Ask(survivor_, [&](v1::Request& req) {
    req.mutable_send_envelope()->set_conversation_id(id_);
    req.mutable_send_envelope()->set_ciphertext("still-delivered");
  });
  ASSERT_TRUE(sent && sent->response().has_envelope_accepted());
  auto got = counsellor_->Wait([](const v1::Frame& x) { return x.has_event() && x.event().has_envelope(); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->event().envelope().ciphertext(), "still-delivered");
}

TEST_F(RelayUnitTest, ATransferIsAnsweredAndAnnouncedOnlyOnceCommitted) {
  std::promise<void> release = HoldStorage();
  v1::Frame transfer;
  transfer.set_request_id(3000);
  transfer.mutable_request()->mutable_transfer_conversation()->set_conversation_id(id_);
  transfer.mutable_request()->mutable_transfer_conversation()->set_language("es");
  relay_->Request(counsellor_, transfer);
  auto is_answer = [](std::uint64_t id) {
    return [id](const v1::Frame& f) { return f.has_response() && f.request_id() == id; };
  };
  auto is_change = [](const v1::Frame& f) {
    return f.has_event() && f.event().has_conversation_changed();
  };
  ASSERT_TRUE(survivor_->Wait(is_change).has_value());  // the claim's, from SetUp
  // While the database holds still: no answer, nobody told, and a second
  // move of the same conversation waits its turn.
  EXPECT_FALSE(counsellor_->Wait(is_answer(3000), 300ms).has_value());
  EXPECT_FALSE(survivor_->Wait(is_change, 50ms).has_value());
  transfer.set_request_id(3001);
  relay_->Request(counsellor_, transfer);
  auto second = counsellor_->Wait(is_answer(3001));
  ASSERT_TRUE(second.has_value());
  ASSERT_TRUE(second->response().has_error());
  EXPECT_EQ(second->response().error().code(), v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE);

  release.set_value();
  auto done = counsellor_->Wait(is_answer(3000));
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->response().has_done());
  auto change = survivor_->Wait(is_change);
  ASSERT_TRUE(change.has_value());
  const auto& summary = change->event().conversation_changed().conversation();
  EXPECT_EQ(summary.state(), v1::CONVERSATION_STATE_QUEUED);
  EXPECT_EQ(summary.counsellor_epoch(), 1u);
  EXPECT_EQ(summary.language(), "es");
  // And the database says the same.
  Drain();
  auto store = ServerStore::Open(Path(), key_.view(), false);
  ASSERT_TRUE(store.ok());
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok());
  ASSERT_EQ(state->conversations.size(), 1u);
  EXPECT_EQ(state->conversations[0].state, v1::CONVERSATION_STATE_QUEUED);
  EXPECT_FALSE(state->conversations[0].counsellor_id.has_value());
  EXPECT_EQ(state->conversations[0].counsellor_epoch, 1u);
}

TEST_F(RelayUnitTest, ATransferRacingACloseLeavesTheClose) {
  std::promise<void> release = HoldStorage();
  v1::Frame transfer;
  transfer.set_request_id(4000);
  transfer.mutable_request()->mutable_transfer_conversation()->set_conversation_id(id_);
  relay_->Request(counsellor_, transfer);
  v1::Frame close;
  close.set_request_id(4001);
  close.mutable_request()->mutable_close_conversation()->set_conversation_id(id_);
  relay_->Request(survivor_, close);
  release.set_value();
  auto answer = counsellor_->Wait(
      [](const v1::Frame& f) { return f.has_response() && f.request_id() == 4000; });
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(answer->response().has_error());
  EXPECT_EQ(answer->response().error().code(), v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE);
  Drain();
  auto store = ServerStore::Open(Path(), key_.view(), false);
  ASSERT_TRUE(store.ok());
  auto state = (*store)->Load();
  ASSERT_TRUE(state.ok());
  ASSERT_EQ(state->conversations.size(), 1u);
  EXPECT_EQ(state->conversations[0].state, v1::CONVERSATION_STATE_CLOSED_BY_SURVIVOR);
  EXPECT_TRUE(state->conversations[0].counsellor_id.has_value()) << "the transfer's write stood";
  EXPECT_EQ(state->conversations[0].counsellor_epoch, 0u);
}

}  // namespace
}  // namespace haven::server
