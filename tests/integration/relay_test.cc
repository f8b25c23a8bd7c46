// Conversations through a real havend on 127.0.0.1: open, claim, envelopes
// both ways with acknowledgements, catch-up after reconnect and restart,
// close, retention, and every refusal of the relay.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <fstream>

#include "service/invitation.h"
#include "store/server_store.h"
#include "support/havend_process.h"
#include "support/relay_client.h"
#include "support/relay_fixture.h"

namespace haven {
namespace {

using namespace std::chrono_literals;
using testing::HavendProcess;
using testing::RelayClient;

class RelayTest : public testing::RelayServerTest {};

TEST_F(RelayTest, SurvivorOpensCounsellorClaimsEnvelopesFlowBothWays) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto counsellor = Counsellor();
  auto survivor = Survivor();

  auto opened = survivor->Open("pt-BR", 7, "intake-blob");
  ASSERT_TRUE(opened.ok() && opened->has_conversation_opened()) << RelayClient::Describe(opened);
  const v1::ConversationSummary& summary = opened->conversation_opened().conversation();
  EXPECT_EQ(summary.conversation_id().size(), 16u);
  EXPECT_EQ(summary.state(), v1::CONVERSATION_STATE_QUEUED);
  const std::string id = summary.conversation_id();

  // The counsellor hears about it without polling, and sees it in the queue.
  auto fresh = counsellor->WaitEvent([&](const v1::Event& e) {
    return e.has_queue_changed() && e.queue_changed().kind() == v1::QueueChanged::KIND_NEW &&
           e.queue_changed().entry().conversation_id() == id;
  });
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->queue_changed().entry().language(), "pt-BR");
  EXPECT_EQ(fresh->queue_changed().entry().priority(), 7u);
  EXPECT_EQ(fresh->queue_changed().entry().sealed_intake(), "intake-blob");
  auto queue = counsellor->ListQueue();
  ASSERT_TRUE(queue.ok());
  ASSERT_EQ(queue->queue().entries_size(), 1);
  EXPECT_EQ(queue->queue().entries(0).conversation_id(), id);

  auto claimed = counsellor->Claim(id);
  ASSERT_TRUE(claimed.ok() && claimed->has_conversation_claimed()) << RelayClient::Describe(claimed);
  EXPECT_EQ(claimed->conversation_claimed().conversation().state(), v1::CONVERSATION_STATE_ACTIVE);
  ASSERT_TRUE(survivor->WaitConversationChange(v1::CONVERSATION_STATE_ACTIVE).has_value());

  // Survivor -> counsellor.
  auto sent = survivor->Send(id, "ciphertext-1");
  ASSERT_TRUE(sent.ok() && sent->has_envelope_accepted()) << RelayClient::Describe(sent);
  auto got = counsellor->WaitEnvelope();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->conversation_id(), id);
  EXPECT_EQ(got->ciphertext(), "ciphertext-1");
  EXPECT_EQ(got->seq(), sent->envelope_accepted().seq());
  ASSERT_TRUE(counsellor->Ack(id, got->seq())->has_done());

  // Counsellor -> survivor, several, in order.
  std::vector<std::uint64_t> seqs;
  for (int i = 0; i < 5; ++i) {
    auto r = counsellor->Send(id, "reply-" + std::to_string(i));
    ASSERT_TRUE(r.ok() && r->has_envelope_accepted()) << RelayClient::Describe(r);
    seqs.push_back(r->envelope_accepted().seq());
  }
  for (int i = 0; i < 5; ++i) {
    auto e = survivor->WaitEnvelope();
    ASSERT_TRUE(e.has_value()) << i;
    EXPECT_EQ(e->ciphertext(), "reply-" + std::to_string(i));
    EXPECT_EQ(e->seq(), seqs[static_cast<std::size_t>(i)]);
  }
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  ASSERT_TRUE(survivor->Ack(id, seqs.back())->has_done());

  // Everything acknowledged: nothing waits in the database.
  std::this_thread::sleep_for(200ms);
  auto db = OpenDatabase();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ((*db)->Counts()->envelopes, 0);
}

TEST_F(RelayTest, OfflineRecipientCatchesUpAfterReconnect) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = Claimed();
  p.counsellor->Disconnect();
  for (int i = 0; i < 3; ++i) {
    auto r = p.survivor->Send(p.id, "while-away-" + std::to_string(i));
    ASSERT_TRUE(r.ok() && r->has_envelope_accepted()) << RelayClient::Describe(r);
  }
  ASSERT_TRUE(p.counsellor->Connect());
  std::uint64_t last = 0;
  for (int i = 0; i < 3; ++i) {
    auto e = p.counsellor->WaitEnvelope();
    ASSERT_TRUE(e.has_value()) << i;
    EXPECT_EQ(e->ciphertext(), "while-away-" + std::to_string(i));
    EXPECT_GT(e->seq(), last);
    last = e->seq();
  }
  ASSERT_TRUE(p.counsellor->Ack(p.id, last)->has_done());
  // Acknowledged: a later connection gets nothing again.
  p.counsellor->Disconnect();
  ASSERT_TRUE(p.counsellor->Connect());
  EXPECT_FALSE(p.counsellor->WaitEnvelope(500ms).has_value());
}

TEST_F(RelayTest, UnacknowledgedEnvelopesAreRedeliveredOnReconnect) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = Claimed();
  ASSERT_TRUE(p.survivor->Send(p.id, "once")->has_envelope_accepted());
  auto first = p.counsellor->WaitEnvelope();
  ASSERT_TRUE(first.has_value());
  p.counsellor->Disconnect();  // without acknowledging
  ASSERT_TRUE(p.counsellor->Connect());
  auto again = p.counsellor->WaitEnvelope();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->seq(), first->seq());
  EXPECT_EQ(again->ciphertext(), "once");
}

TEST_F(RelayTest, AcceptedEnvelopesSurviveARestart) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = Claimed();
  p.counsellor->Disconnect();
  std::uint64_t before_restart = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = p.survivor->Send(p.id, "durable-" + std::to_string(i));
    ASSERT_TRUE(r.ok() && r->has_envelope_accepted());
    before_restart = r->envelope_accepted().seq();
  }
  p.survivor->Disconnect();
  server_->Kill();  // no shutdown: only what was committed remains
  ASSERT_TRUE(server_->Restart());
  ASSERT_TRUE(p.counsellor->Connect());
  for (int i = 0; i < 5; ++i) {
    auto e = p.counsellor->WaitEnvelope();
    ASSERT_TRUE(e.has_value()) << i;
    EXPECT_EQ(e->ciphertext(), "durable-" + std::to_string(i));
  }
  // New sequence numbers after the restart are larger than any before it.
  ASSERT_TRUE(p.survivor->Connect());
  auto r = p.counsellor->Send(p.id, "after");
  ASSERT_TRUE(r.ok() && r->has_envelope_accepted()) << RelayClient::Describe(r);
  EXPECT_GT(r->envelope_accepted().seq(), before_restart);
}

TEST_F(RelayTest, ExactlyOneOfTwoSimultaneousClaimsWins) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto a = Counsellor();
  auto b = Counsellor();
  for (int round = 0; round < 10; ++round) {
    auto survivor = Survivor();
    const std::string id = survivor->OpenId();
    Result<v1::Response> ra = Status::Internal("unset"), rb = Status::Internal("unset");
    std::thread ta([&] { ra = a->Claim(id); });
    std::thread tb([&] { rb = b->Claim(id); });
    ta.join();
    tb.join();
    ASSERT_TRUE(ra.ok() && rb.ok());
    const int wins = ra->has_conversation_claimed() + rb->has_conversation_claimed();
    EXPECT_EQ(wins, 1);
    const auto loser = ra->has_conversation_claimed() ? RelayClient::ErrorOf(rb)
                                                      : RelayClient::ErrorOf(ra);
    EXPECT_EQ(loser, v1::ERROR_CODE_ALREADY_CLAIMED);
    // The winner closes it: a counsellor has a limit of active conversations.
    auto& winner = ra->has_conversation_claimed() ? a : b;
    ASSERT_TRUE(winner->Close(id).ok());
  }
}

TEST_F(RelayTest, PartiesOnlyActOnTheirOwnConversations) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = Claimed();
  auto other_counsellor = Counsellor();
  auto other_survivor = Survivor();
  for (RelayClient* outsider : {other_counsellor.get(), other_survivor.get()}) {
    EXPECT_EQ(RelayClient::ErrorOf(outsider->Send(p.id, "x")), v1::ERROR_CODE_NOT_FOUND);
    EXPECT_EQ(RelayClient::ErrorOf(outsider->Ack(p.id, 1)), v1::ERROR_CODE_NOT_FOUND);
    EXPECT_EQ(RelayClient::ErrorOf(outsider->Close(p.id)), v1::ERROR_CODE_NOT_FOUND);
  }
  // A made-up id looks exactly like someone else's.
  EXPECT_EQ(RelayClient::ErrorOf(p.survivor->Send(std::string(16, '\x01'), "x")),
            v1::ERROR_CODE_NOT_FOUND);
  // Roles.
  EXPECT_EQ(RelayClient::ErrorOf(p.survivor->ListQueue()), v1::ERROR_CODE_PERMISSION_DENIED);
  EXPECT_EQ(RelayClient::ErrorOf(p.survivor->Claim(p.id)), v1::ERROR_CODE_PERMISSION_DENIED);
  EXPECT_EQ(RelayClient::ErrorOf(p.counsellor->Open()), v1::ERROR_CODE_PERMISSION_DENIED);
  EXPECT_EQ(RelayClient::ErrorOf(other_counsellor->Claim(p.id)), v1::ERROR_CODE_ALREADY_CLAIMED);
  // The rightful parties still work.
  EXPECT_TRUE(p.survivor->Send(p.id, "mine")->has_envelope_accepted());
}

TEST_F(RelayTest, InvitationsWorkOnceAndExpire) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string code = server_->Enrol();
  auto first = Survivor();
  auto ok = first->Redeem(code);
  ASSERT_TRUE(ok.ok() && ok->has_invitation_redeemed());
  EXPECT_EQ(ok->invitation_redeemed().role(), v1::ROLE_COUNSELLOR);

  auto replay = Survivor();
  EXPECT_EQ(RelayClient::ErrorOf(replay->Redeem(code)), v1::ERROR_CODE_INVITATION_INVALID);
  EXPECT_EQ(RelayClient::ErrorOf(replay->Redeem("not-a-code")), v1::ERROR_CODE_INVITATION_INVALID);

  // An expired invitation, written beside the running server.
  const std::string expired_code = server::NewInvitationCode();
  {
    auto db = OpenDatabase();
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->CreateInvitation(*server::HashInvitationCode(expired_code), 2,
                                        std::time(nullptr) - 60)
                    .ok());
  }
  EXPECT_EQ(RelayClient::ErrorOf(replay->Redeem(expired_code)), v1::ERROR_CODE_INVITATION_INVALID);

  // The enrolled device is a counsellor on its next connection too.
  first->Disconnect();
  ASSERT_TRUE(first->Connect());
  auto session = first->GetSession();
  ASSERT_TRUE(session.ok());
  EXPECT_EQ(session->session().role(), v1::ROLE_COUNSELLOR);
  EXPECT_TRUE(first->ListQueue()->has_queue());
}

TEST_F(RelayTest, SurvivorLimitsAndEnvelopeBounds) {
  ASSERT_NO_FATAL_FAILURE(StartServer(
      "[relay]\nmax_envelope_bytes = 1024\nmax_queued_envelopes = 3\n"
      "max_open_conversations_per_survivor = 2\n"));
  Pair p = Claimed();
  EXPECT_EQ(RelayClient::ErrorOf(p.survivor->Send(p.id, std::string(1025, 'x'))),
            v1::ERROR_CODE_ENVELOPE_TOO_LARGE);
  EXPECT_EQ(RelayClient::ErrorOf(p.survivor->Send(p.id, "")), v1::ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_TRUE(p.survivor->Send(p.id, std::string(1024, 'x'))->has_envelope_accepted());
  // The counsellor is not reading: the fourth waiting envelope is refused.
  p.counsellor->Disconnect();
  EXPECT_TRUE(p.survivor->Send(p.id, "2")->has_envelope_accepted());
  EXPECT_TRUE(p.survivor->Send(p.id, "3")->has_envelope_accepted());
  EXPECT_EQ(RelayClient::ErrorOf(p.survivor->Send(p.id, "4")), v1::ERROR_CODE_LIMIT_REACHED);
  // One more open conversation is allowed, then no more.
  EXPECT_TRUE(p.survivor->Open()->has_conversation_opened());
  EXPECT_EQ(RelayClient::ErrorOf(p.survivor->Open()), v1::ERROR_CODE_LIMIT_REACHED);
  // Bad routing hints.
  auto other = Survivor();
  EXPECT_EQ(RelayClient::ErrorOf(other->Open("en\n", 0)), v1::ERROR_CODE_INVALID_ARGUMENT);
  EXPECT_EQ(RelayClient::ErrorOf(other->Open("en", 10)), v1::ERROR_CODE_INVALID_ARGUMENT);
}

TEST_F(RelayTest, AnonymousRequestRateIsLimitedPerConnection) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer("[relay]\nsurvivor_requests_per_second = 1\nsurvivor_request_burst = 5\n"));
  auto survivor = Survivor();
  int limited = 0;
  for (int i = 0; i < 10; ++i) {
    if (RelayClient::ErrorOf(survivor->GetSession()) == v1::ERROR_CODE_RATE_LIMITED) ++limited;
  }
  EXPECT_GE(limited, 4);
  // Another session has its own bucket.
  auto other = Survivor();
  EXPECT_TRUE(other->GetSession()->has_session());
}

TEST_F(RelayTest, NewConversationsAreRateLimitedGlobally) {
  ASSERT_NO_FATAL_FAILURE(StartServer("[relay]\nconversations_opened_per_minute = 1\n"));
  auto a = Survivor();
  auto b = Survivor();
  EXPECT_TRUE(a->Open()->has_conversation_opened());
  EXPECT_EQ(RelayClient::ErrorOf(b->Open()), v1::ERROR_CODE_RATE_LIMITED);
}

TEST_F(RelayTest, CloseAndConnectionLossAreDistinctForTheCounsellor) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = Claimed();
  p.survivor->Disconnect();
  ASSERT_TRUE(p.counsellor->WaitConversationChange(v1::CONVERSATION_STATE_CONNECTION_LOST));
  ASSERT_TRUE(p.survivor->Connect());
  ASSERT_TRUE(p.counsellor->WaitConversationChange(v1::CONVERSATION_STATE_ACTIVE));
  auto session = p.survivor->GetSession();
  ASSERT_TRUE(session.ok());
  ASSERT_EQ(session->session().conversations_size(), 1);
  EXPECT_EQ(session->session().conversations(0).conversation_id(), p.id);

  ASSERT_TRUE(p.survivor->Close(p.id)->has_done());
  ASSERT_TRUE(p.counsellor->WaitConversationChange(v1::CONVERSATION_STATE_CLOSED_BY_SURVIVOR));
  EXPECT_EQ(RelayClient::ErrorOf(p.counsellor->Send(p.id, "late")),
            v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE);
  EXPECT_EQ(RelayClient::ErrorOf(p.survivor->Close(p.id)), v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE);
}

TEST_F(RelayTest, QueuedConversationWithdrawnWhenTheSurvivorCloses) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto counsellor = Counsellor();
  auto survivor = Survivor();
  const std::string id = survivor->OpenId();
  ASSERT_TRUE(survivor->Close(id)->has_done());
  auto withdrawn = counsellor->WaitEvent([&](const v1::Event& e) {
    return e.has_queue_changed() && e.queue_changed().kind() == v1::QueueChanged::KIND_WITHDRAWN;
  });
  ASSERT_TRUE(withdrawn.has_value());
  EXPECT_EQ(counsellor->ListQueue()->queue().entries_size(), 0);
  // Never claimed: deleted at once, intake and all (not kept for the
  // retention period), so the id is simply unknown now.
  EXPECT_EQ(RelayClient::ErrorOf(counsellor->Claim(id)), v1::ERROR_CODE_NOT_FOUND);
  std::int64_t rows = -1;
  for (int i = 0; i < 100 && rows != 0; ++i) {
    auto db = OpenDatabase();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto counts = (*db)->Counts();
    ASSERT_TRUE(counts.ok());
    rows = counts->conversations_open + counts->conversations_closed;
    if (rows != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(rows, 0) << "a withdrawn conversation is still in the database";
}

TEST_F(RelayTest, QueueIsOrderedByPriorityThenArrival) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto counsellor = Counsellor();
  std::vector<std::unique_ptr<RelayClient>> survivors;
  std::vector<std::string> ids;
  for (std::uint32_t priority : {1u, 5u, 1u, 9u}) {
    survivors.push_back(Survivor());
    ids.push_back(survivors.back()->OpenId("en", priority));
  }
  auto queue = counsellor->ListQueue();
  ASSERT_TRUE(queue.ok());
  ASSERT_EQ(queue->queue().entries_size(), 4);
  EXPECT_EQ(queue->queue().entries(0).conversation_id(), ids[3]);
  EXPECT_EQ(queue->queue().entries(1).conversation_id(), ids[1]);
  EXPECT_EQ(queue->queue().entries(2).conversation_id(), ids[0]);
  EXPECT_EQ(queue->queue().entries(3).conversation_id(), ids[2]);
}

TEST_F(RelayTest, ClosedConversationsArePurgedByRetention) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer("[retention]\nclosed_conversation_days = 0\nsweep_interval_s = 1\n"));
  Pair p = Claimed();
  ASSERT_TRUE(p.survivor->Close(p.id)->has_done());
  std::int64_t left = -1;
  for (int i = 0; i < 40 && left != 0; ++i) {
    std::this_thread::sleep_for(100ms);
    auto db = OpenDatabase();
    ASSERT_TRUE(db.ok());
    left = (*db)->Counts()->conversations_closed;
  }
  EXPECT_EQ(left, 0);
  EXPECT_EQ(RelayClient::ErrorOf(p.survivor->GetSession()), v1::ERROR_CODE_UNSPECIFIED);
  EXPECT_EQ(p.survivor->GetSession()->session().conversations_size(), 0);
}

TEST_F(RelayTest, QuickExitEndsTheConversationAndLeavesNothingForTheSurvivor) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = Claimed();
  // Messages wait for the survivor while it is away.
  p.survivor->Disconnect();
  ASSERT_TRUE(p.counsellor->WaitConversationChange(v1::CONVERSATION_STATE_CONNECTION_LOST));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(p.counsellor->Send(p.id, "for-survivor-" + std::to_string(i))->has_envelope_accepted());
  }
  ASSERT_TRUE(p.survivor->Connect());
  ASSERT_TRUE(p.counsellor->WaitConversationChange(v1::CONVERSATION_STATE_ACTIVE));

  const auto start = std::chrono::steady_clock::now();
  v1::Frame quick;
  quick.set_request_id(77);
  quick.mutable_request()->mutable_quick_exit();
  ASSERT_TRUE(p.survivor->conn().Send(quick).ok());
  // The counsellor hears it at once, as its own state.
  auto left = p.counsellor->WaitConversationChange(v1::CONVERSATION_STATE_SURVIVOR_LEFT_QUICKLY, 1s);
  ASSERT_TRUE(left.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  // Nothing comes back toward the survivor; the connection is closed.
  auto after = p.survivor->conn().WaitForClose(2s);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  for (const v1::Frame& f : *after) {
    EXPECT_FALSE(f.has_response() && f.request_id() == 77) << "quick exit must not be answered";
    EXPECT_FALSE(f.has_event() && f.event().has_closing()) << "no goodbye either";
  }
  // The waiting envelopes are gone from the database.
  std::int64_t waiting = -1;
  for (int i = 0; i < 20 && waiting != 0; ++i) {
    std::this_thread::sleep_for(50ms);
    auto db = OpenDatabase();
    ASSERT_TRUE(db.ok());
    waiting = (*db)->Counts()->envelopes;
  }
  EXPECT_EQ(waiting, 0);
  // Coming back with the same key finds nothing: no history, no conversation.
  ASSERT_TRUE(p.survivor->Connect());
  EXPECT_FALSE(p.survivor->WaitEnvelope(300ms).has_value());
  EXPECT_EQ(p.survivor->GetSession()->session().conversations_size(), 0);
  EXPECT_EQ(RelayClient::ErrorOf(p.counsellor->Send(p.id, "are you there?")),
            v1::ERROR_CODE_CONVERSATION_NOT_ACTIVE);
}

TEST_F(RelayTest, QuickExitWhileQueuedWithdrawsTheConversation) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto counsellor = Counsellor();
  auto survivor = Survivor();
  const std::string id = survivor->OpenId();
  v1::Frame quick;
  quick.mutable_request()->mutable_quick_exit();
  ASSERT_TRUE(survivor->conn().Send(quick).ok());
  auto withdrawn = counsellor->WaitEvent([&](const v1::Event& e) {
    return e.has_queue_changed() && e.queue_changed().kind() == v1::QueueChanged::KIND_WITHDRAWN &&
           e.queue_changed().entry().state() == v1::CONVERSATION_STATE_SURVIVOR_LEFT_QUICKLY;
  });
  ASSERT_TRUE(withdrawn.has_value());
  EXPECT_EQ(counsellor->ListQueue()->queue().entries_size(), 0);
}

TEST_F(RelayTest, QuickExitIsHonouredEvenWhenRateLimited) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer("[relay]\nsurvivor_requests_per_second = 1\nsurvivor_request_burst = 3\n"));
  Pair p = Claimed();
  while (RelayClient::ErrorOf(p.survivor->GetSession()) != v1::ERROR_CODE_RATE_LIMITED) {
  }
  v1::Frame quick;
  quick.mutable_request()->mutable_quick_exit();
  ASSERT_TRUE(p.survivor->conn().Send(quick).ok());
  EXPECT_TRUE(
      p.counsellor->WaitConversationChange(v1::CONVERSATION_STATE_SURVIVOR_LEFT_QUICKLY, 1s));
}

TEST_F(RelayTest, EphemeralCiphertextsAreRelayedLiveAndNeverStored) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = Claimed();
  v1::Request typing;
  typing.mutable_send_ephemeral()->set_conversation_id(p.id);
  typing.mutable_send_ephemeral()->set_ciphertext("e2e-typing");
  ASSERT_TRUE(p.survivor->Ask(typing)->has_done());
  auto live = p.counsellor->WaitEvent([](const v1::Event& e) { return e.has_ephemeral(); });
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(live->ephemeral().ciphertext(), "e2e-typing");
  // Offline recipient: dropped, not kept for later.
  p.counsellor->Disconnect();
  ASSERT_TRUE(p.survivor->Ask(typing)->has_done());
  ASSERT_TRUE(p.counsellor->Connect());
  EXPECT_FALSE(p.counsellor->WaitEvent([](const v1::Event& e) { return e.has_ephemeral(); }, 300ms));
  auto db = OpenDatabase();
  ASSERT_TRUE(db.ok());
  EXPECT_EQ((*db)->Counts()->envelopes, 0);
  typing.mutable_send_ephemeral()->set_ciphertext(std::string(1025, 'x'));
  EXPECT_EQ(RelayClient::ErrorOf(p.survivor->Ask(typing)), v1::ERROR_CODE_ENVELOPE_TOO_LARGE);
}

TEST_F(RelayTest, LastWordsAfterACloseStillReachAnOfflineSurvivor) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = Claimed();
  p.survivor->Disconnect();
  ASSERT_TRUE(p.counsellor->Send(p.id, "take care; call us any time")->has_envelope_accepted());
  ASSERT_TRUE(p.counsellor->Close(p.id)->has_done());
  ASSERT_TRUE(p.survivor->Connect());
  auto session = p.survivor->GetSession();
  ASSERT_TRUE(session.ok());
  ASSERT_EQ(session->session().conversations_size(), 1);
  EXPECT_EQ(session->session().conversations(0).state(), v1::CONVERSATION_STATE_CLOSED_BY_COUNSELLOR);
  auto e = p.survivor->WaitEnvelope();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->ciphertext(), "take care; call us any time");
  ASSERT_TRUE(p.survivor->Ack(p.id, e->seq())->has_done());
  EXPECT_EQ(p.survivor->GetSession()->session().conversations_size(), 0);
}

TEST_F(RelayTest, CounsellorsCannotQuickExit) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  auto counsellor = Counsellor();
  v1::Request r;
  r.mutable_quick_exit();
  EXPECT_EQ(RelayClient::ErrorOf(counsellor->Ask(r)), v1::ERROR_CODE_PERMISSION_DENIED);
}

}  // namespace
}  // namespace haven
