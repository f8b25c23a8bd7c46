// The SDK's client object against a real havend on 127.0.0.1: a survivor and
// a counsellor talking end to end, the three endings a counsellor must tell
// apart, reconnection that the application does not see, and quick exit on
// both sides of the wire.
#include <gtest/gtest.h>

#include <thread>

#include "e2e/sealing.h"
#include "support/relay_fixture.h"
#include "support/sdk_harness.h"

namespace haven::testing {
namespace {

using namespace std::chrono_literals;
using sdk::Code;
using sdk::ConversationState;
using sdk::EventType;

class SdkClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = HavendProcess::Start();
    ASSERT_NE(server_, nullptr);
  }

  std::unique_ptr<SdkClient> NewSurvivor(std::optional<sdk::ClientOptions> given = std::nullopt) {
    const sdk::ClientOptions o = given ? *given : SdkClient::Options(*server_, sdk::Role::kSurvivor);
    auto s = std::make_unique<SdkClient>(o);
    EXPECT_TRUE(s->create_status().ok()) << s->create_status().message();
    return s;
  }

  struct Pair {
    std::unique_ptr<SdkClient> survivor, counsellor;
    sdk::ConversationId at_survivor = 0, at_counsellor = 0;
  };
  // Survivor opens, counsellor claims, the secure session is set up on both sides.
  Pair Connected(std::optional<sdk::ClientOptions> survivor_options = std::nullopt) {
    Pair p;
    p.counsellor = EnrolledCounsellor(*server_);
    p.survivor = NewSurvivor(survivor_options);
    EXPECT_TRUE((*p.survivor)->OpenConversation({"en", 1}, "", &p.at_survivor).ok());
    EXPECT_TRUE(p.survivor->WaitState(ConversationState::kWaiting).has_value());
    auto queued = p.counsellor->WaitFor([&](const Recorded& r) {
      if (r.type != EventType::kQueueChanged) return false;
      std::vector<sdk::QueueEntry> q;
      return (*p.counsellor)->Queue(&q).ok() && !q.empty();
    });
    EXPECT_TRUE(queued.has_value()) << "the counsellor never saw the queue entry";
    std::vector<sdk::QueueEntry> q;
    EXPECT_TRUE((*p.counsellor)->Queue(&q).ok());
    if (q.empty()) return p;
    EXPECT_EQ(q[0].language, "en");
    EXPECT_EQ(q[0].priority, 1u);
    EXPECT_TRUE(q[0].survivor_online);
    p.at_counsellor = q[0].conversation;
    EXPECT_TRUE((*p.counsellor)->Claim(p.at_counsellor).ok());
    EXPECT_TRUE(p.counsellor->WaitState(ConversationState::kActive).has_value());
    EXPECT_TRUE(p.survivor->WaitState(ConversationState::kActive).has_value());
    EXPECT_TRUE(p.survivor->WaitType(EventType::kSecureSessionReady).has_value());
    EXPECT_TRUE(p.counsellor->WaitType(EventType::kSecureSessionReady).has_value());
    return p;
  }

  std::unique_ptr<HavendProcess> server_;
};

TEST_F(SdkClientTest, SurvivorAndCounsellorTalkEndToEnd) {
  Pair p = Connected();
  ASSERT_NE(p.at_counsellor, 0u);
  sdk::MessageId m1 = 0, m2 = 0;
  ASSERT_TRUE((*p.survivor)->Send(p.at_survivor, "hello, is anyone there?", &m1).ok());
  ASSERT_TRUE(p.counsellor->WaitText("hello, is anyone there?").has_value());
  ASSERT_TRUE((*p.counsellor)->Send(p.at_counsellor, "Yes. You are safe to talk here.", &m2).ok());
  ASSERT_TRUE(p.survivor->WaitText("Yes. You are safe to talk here.").has_value());
  EXPECT_TRUE(p.survivor->WaitFor([&](const Recorded& r) {
    return r.type == EventType::kMessageSent && r.message == m1;
  }).has_value());
  EXPECT_TRUE(p.counsellor->WaitFor([&](const Recorded& r) {
    return r.type == EventType::kMessageSent && r.message == m2;
  }).has_value());

  std::string a, b;
  ASSERT_TRUE((*p.survivor)->SafetyNumber(p.at_survivor, &a).ok());
  ASSERT_TRUE((*p.counsellor)->SafetyNumber(p.at_counsellor, &b).ok());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 71u);  // 60 digits in 12 groups

  // Many messages arrive once each and in order.
  for (int i = 0; i < 50; ++i) {
    sdk::MessageId id = 0;
    ASSERT_TRUE((*p.survivor)->Send(p.at_survivor, "n" + std::to_string(i), &id).ok());
  }
  ASSERT_TRUE(p.counsellor->WaitText("n49").has_value());
  std::vector<std::string> got;
  for (const auto& e : p.counsellor->Events()) {
    if (e.type == EventType::kMessageReceived && e.text[0] == 'n') got.push_back(e.text);
  }
  ASSERT_EQ(got.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], "n" + std::to_string(i));
}

TEST_F(SdkClientTest, MessagesWrittenBeforeTheClaimWaitForTheSession) {
  auto counsellor = EnrolledCounsellor(*server_);
  auto survivor = NewSurvivor();
  sdk::ConversationId c = 0;
  sdk::MessageId m = 0;
  ASSERT_TRUE((*survivor)->OpenConversation({"pt-BR", 0}, "", &c).ok());
  ASSERT_TRUE((*survivor)->Send(c, "written while waiting", &m).ok());
  ASSERT_TRUE(counsellor->WaitType(EventType::kQueueChanged).has_value());
  std::vector<sdk::QueueEntry> q;
  ASSERT_TRUE(counsellor->WaitFor([&](const Recorded&) {
    return (*counsellor)->Queue(&q).ok() && !q.empty();
  }).has_value());
  ASSERT_TRUE((*counsellor)->Claim(q[0].conversation).ok());
  EXPECT_TRUE(counsellor->WaitText("written while waiting").has_value());
}

TEST_F(SdkClientTest, CounsellorTellsTheThreeEndingsApart) {
  {  // quick exit
    Pair p = Connected();
    p.survivor->get()->QuickExit();
    const auto t0 = std::chrono::steady_clock::now();
    auto e = p.counsellor->WaitState(ConversationState::kSurvivorLeftQuickly, 1s);
    ASSERT_TRUE(e.has_value()) << "no 'left quickly' event within a second";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_EQ(p.counsellor->Count(EventType::kConversationChanged), 2u);  // active, left quickly
  }
  {  // normal close by the survivor
    Pair p = Connected();
    ASSERT_TRUE((*p.survivor)->CloseConversation(p.at_survivor).ok());
    EXPECT_TRUE(p.counsellor->WaitState(ConversationState::kClosedBySurvivor).has_value());
    EXPECT_TRUE(p.survivor->WaitState(ConversationState::kClosedBySurvivor).has_value());
  }
  {  // the survivor's app is gone without a word
    Pair p = Connected();
    p.survivor->Destroy();
    EXPECT_TRUE(p.counsellor->WaitState(ConversationState::kConnectionLost).has_value());
    for (const auto& e : p.counsellor->Events()) {
      EXPECT_NE(e.state, ConversationState::kSurvivorLeftQuickly);
    }
  }
}

TEST_F(SdkClientTest, QuickExitOnTheServerDeletesTheSurvivorsQueueAndRevokesTheSession) {
  Pair p = Connected();
  ASSERT_NE(p.at_counsellor, 0u);
  p.survivor->get()->QuickExit();
  ASSERT_TRUE(p.counsellor->WaitState(ConversationState::kSurvivorLeftQuickly).has_value());
  // Nothing more can reach the survivor: the counsellor's send is refused.
  sdk::MessageId m = 0;
  const sdk::Status st = (*p.counsellor)->Send(p.at_counsellor, "are you there?", &m);
  EXPECT_EQ(st.code(), Code::kWrongState);
  // Nothing waits for the survivor in the database (envelopes for the
  // counsellor may: they are kept). The deletion commits with the next batch.
  auto store = OpenServerDatabase(*server_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::int64_t for_survivor = -1;
  for (int i = 0; i < 100 && for_survivor != 0; ++i) {
    auto n = (*store)->db().QueryInt("SELECT count(*) FROM envelopes WHERE recipient = 1");
    ASSERT_TRUE(n.ok());
    for_survivor = *n;
    if (for_survivor != 0) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(for_survivor, 0);
}

TEST_F(SdkClientTest, ReconnectionIsInvisibleAndNothingIsShownTwice) {
  Pair p = Connected();
  sdk::MessageId m = 0;
  ASSERT_TRUE((*p.counsellor)->Send(p.at_counsellor, "before", &m).ok());
  ASSERT_TRUE(p.survivor->WaitText("before").has_value());
  ASSERT_TRUE(p.survivor->WaitFor([&](const Recorded&) { return true; }).has_value());

  server_->Kill();
  ASSERT_TRUE(p.survivor->WaitFor([](const Recorded& r) {
    return r.type == EventType::kConnectionChanged && r.connection == sdk::ConnectionState::kOffline;
  }).has_value());
  // Written while the server is down: kept, then sent.
  ASSERT_TRUE((*p.survivor)->Send(p.at_survivor, "while offline", &m).ok());
  ASSERT_TRUE(server_->Restart());
  EXPECT_TRUE(p.counsellor->WaitText("while offline", 10s).has_value());
  ASSERT_TRUE((*p.counsellor)->Send(p.at_counsellor, "after", &m).ok());
  EXPECT_TRUE(p.survivor->WaitText("after", 10s).has_value());

  std::size_t before = 0, offline = 0;
  for (const auto& e : p.survivor->Events()) before += e.text == "before" ? 1u : 0u;
  for (const auto& e : p.counsellor->Events()) offline += e.text == "while offline" ? 1u : 0u;
  EXPECT_EQ(before, 1u);
  EXPECT_EQ(offline, 1u);
}

TEST_F(SdkClientTest, ResumptionSecretBringsTheConversationBack) {
  auto o = SdkClient::Options(*server_, sdk::Role::kSurvivor);
  o.resumable = true;
  Pair p = Connected(o);
  ASSERT_NE(p.at_counsellor, 0u);
  std::string secret;
  ASSERT_TRUE((*p.survivor)->ResumptionSecret(&secret).ok());
  EXPECT_EQ(secret.size(), 39u);
  std::string before;
  ASSERT_TRUE((*p.survivor)->SafetyNumber(p.at_survivor, &before).ok());
  p.survivor->Destroy();
  ASSERT_TRUE(p.counsellor->WaitState(ConversationState::kConnectionLost).has_value());

  auto again = SdkClient::Options(*server_, sdk::Role::kSurvivor);
  again.resumption_secret = secret;
  auto back = NewSurvivor(again);
  auto active = back->WaitState(ConversationState::kActive);
  ASSERT_TRUE(active.has_value());
  ASSERT_TRUE(back->WaitType(EventType::kSecureSessionReady).has_value());
  sdk::MessageId m = 0;
  ASSERT_TRUE((*back)->Send(active->conversation, "it is me again", &m).ok());
  EXPECT_TRUE(p.counsellor->WaitText("it is me again").has_value());
  ASSERT_TRUE((*p.counsellor)->Send(p.at_counsellor, "welcome back", &m).ok());
  EXPECT_TRUE(back->WaitText("welcome back").has_value());
  std::string after;
  ASSERT_TRUE((*back)->SafetyNumber(active->conversation, &after).ok());
  EXPECT_EQ(before, after);  // the same identity
}

TEST_F(SdkClientTest, BadOptionsAreRefusedWithAClearMessage) {
  std::unique_ptr<sdk::Client> c;
  sdk::ClientOptions o = SdkClient::Options(*server_, sdk::Role::kSurvivor);
  o.host = "helpline.example.org";
  auto st = sdk::Client::Create(o, {}, &c);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("numeric"), std::string::npos);
  o = SdkClient::Options(*server_, sdk::Role::kSurvivor);
  o.server_public_key = {};
  EXPECT_EQ(sdk::Client::Create(o, {}, &c).code(), Code::kInvalidArgument);
  o = SdkClient::Options(*server_, sdk::Role::kSurvivor);
  o.local_store = true;  // without a directory
  EXPECT_EQ(sdk::Client::Create(o, {}, &c).code(), Code::kInvalidArgument);
  o = SdkClient::Options(*server_, sdk::Role::kSurvivor);
  o.resumption_secret = "not a secret";
  EXPECT_EQ(sdk::Client::Create(o, {}, &c).code(), Code::kInvalidArgument);

  auto s = NewSurvivor();
  sdk::ConversationId id = 0;
  EXPECT_EQ((*s)->OpenConversation({"en;drop", 0}, "", &id).code(), Code::kInvalidArgument);
  EXPECT_EQ((*s)->OpenConversation({"en", 10}, "", &id).code(), Code::kInvalidArgument);
  EXPECT_EQ((*s)->OpenConversation({"en", 0}, "intake without a helpline key", &id).code(),
            Code::kInvalidArgument);
  EXPECT_EQ((*s)->Claim(1).code(), Code::kWrongRole);
  sdk::MessageId m = 0;
  EXPECT_EQ((*s)->Send(12345, "x", &m).code(), Code::kNotFound);
}

TEST_F(SdkClientTest, IntakeAnswersTravelSealedToTheHelpline) {
  const e2e::DhKeyPair helpline = e2e::DhKeyPair::Generate();
  // A raw counsellor connection sees what the server relays.
  RelayClient raw(*server_);
  ASSERT_TRUE(raw.Connect());
  ASSERT_TRUE(raw.Redeem(server_->Enrol()).ok());

  auto o = SdkClient::Options(*server_, sdk::Role::kSurvivor);
  o.helpline_public_key.emplace();
  std::copy(helpline.public_key.begin(), helpline.public_key.end(), o.helpline_public_key->begin());
  auto s = NewSurvivor(o);
  sdk::ConversationId id = 0;
  const std::string intake = "age band: 16-17; safe to call: no";
  ASSERT_TRUE((*s)->OpenConversation({"en", 5}, intake, &id).ok());
  auto e = raw.WaitEvent([](const v1::Event& ev) {
    return ev.has_queue_changed() && ev.queue_changed().kind() == v1::QueueChanged::KIND_NEW;
  });
  ASSERT_TRUE(e.has_value());
  const std::string& sealed = e->queue_changed().entry().sealed_intake();
  EXPECT_EQ(sealed.find("16-17"), std::string::npos);
  auto opened = e2e::OpenHelplineBlob(helpline, AsBytes(sealed));
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(opened->data()), opened->size()), intake);
}

TEST_F(SdkClientTest, CounsellorDeviceWithAStoreKeepsItsEnrolmentAndSessionsAcrossRestarts) {
  const auto dir = MakeTempDir("counsellor-store");
  auto co = SdkClient::Options(*server_, sdk::Role::kCounsellor);
  co.storage_dir = dir.string();
  co.local_store = true;
  co.store_key.emplace();
  co.store_key->fill(0x17);
  auto counsellor = EnrolledCounsellor(*server_, co);
  auto survivor = NewSurvivor();
  sdk::ConversationId at_survivor = 0;
  ASSERT_TRUE((*survivor)->OpenConversation({"en", 0}, "", &at_survivor).ok());
  std::vector<sdk::QueueEntry> q;
  ASSERT_TRUE(counsellor->WaitFor([&](const Recorded&) {
    return (*counsellor)->Queue(&q).ok() && !q.empty();
  }).has_value());
  ASSERT_TRUE((*counsellor)->Claim(q[0].conversation).ok());
  ASSERT_TRUE(counsellor->WaitType(EventType::kSecureSessionReady).has_value());
  ASSERT_TRUE(survivor->WaitType(EventType::kSecureSessionReady).has_value());
  counsellor->Destroy();

  // The same device again: no invitation, the conversation and its session are back.
  SdkClient again(co);
  ASSERT_TRUE(again.create_status().ok()) << again.create_status().message();
  auto restored = again.WaitState(ConversationState::kActive);
  ASSERT_TRUE(restored.has_value());
  sdk::MessageId m = 0;
  ASSERT_TRUE((*survivor)->Send(at_survivor, "are you still there?", &m).ok());
  EXPECT_TRUE(again.WaitText("are you still there?").has_value());
  ASSERT_TRUE(again->Send(restored->conversation, "yes, same counsellor", &m).ok());
  EXPECT_TRUE(survivor->WaitText("yes, same counsellor").has_value());
  EXPECT_EQ(again.Count(EventType::kEnrolled), 0u);

  // A resumption secret cannot take over a store that holds another identity.
  auto so = SdkClient::Options(*server_, sdk::Role::kSurvivor);
  so.storage_dir = dir.string();
  so.local_store = true;
  so.store_key = co.store_key;
  so.resumption_secret = "000G-40R4-0M30-E209-185G-R38E-1W81-24GK";
  std::unique_ptr<sdk::Client> other;
  const auto st = sdk::Client::Create(so, {}, &other);
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.message();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace haven::testing
