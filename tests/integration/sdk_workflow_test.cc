// The counsellor workflow end to end, through the SDK against a real havend
// with a helpline configuration: the cap and the language filter, warm and
// cold transfers (the old counsellor locked out, the survivor on a new
// end-to-end session), resource cards, flags and supervisor alerts, the
// supervisor's load, blocks (resumptions included) and their expiry, the
// sealed wrap-up, and the sealed audit log read back with haven-audit (the helpline's tool).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "config/deployment.h"
#include "e2e/sealing.h"
#include "haven/v1/sealed.pb.h"
#include "support/files.h"
#include "support/relay_fixture.h"
#include "support/sdk_harness.h"
#include "workflow/records.h"

namespace haven::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sdk::Code;
using sdk::ConversationState;
using sdk::EventType;

constexpr const char* kHelpline = R"toml(
[helpline]
name = "Test Helpline"
languages = ["en", "es"]

[queue]
max_active_per_counsellor = 2

[blocking]
max_hours = 24

[[categories]]
id = "sex-trafficking"
label = "Sex trafficking"

[[canned_responses]]
id = "welcome"
text = "You are welcome here."

[[referrals]]
id = "shelter-north"
service = "shelter"
name = "Northside Safe House"
offers = "A safe bed tonight and someone to talk to"
contact = "Call 555-0100 any time"
region = "North"
languages = ["en"]
)toml";

// The events a client saw, for failure messages.
std::string Trace(SdkClient& c) {
  std::string out;
  for (const auto& e : c.Events()) {
    out += std::to_string(static_cast<int>(e.type));
    if (e.type == EventType::kConversationChanged) out += std::string("(") + sdk::ToString(e.state) + ")";
    if (!e.error_message.empty()) out += "[" + e.error_message + "]";
    out += " ";
  }
  return out;
}

class SdkWorkflowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("workflow");
    std::ofstream(dir_ / "helpline.toml") << kHelpline;
    server_ = HavendProcess::Start("[files]\nhelpline = \"" + (dir_ / "helpline.toml").string() + "\"\n");
    ASSERT_NE(server_, nullptr);
    helpline_ = e2e::DhKeyPair::Generate();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  sdk::ClientOptions Options(sdk::Role role) {
    auto o = SdkClient::Options(*server_, role);
    o.helpline_public_key.emplace();
    std::copy(helpline_.public_key.begin(), helpline_.public_key.end(),
              o.helpline_public_key->begin());
    return o;
  }

  std::unique_ptr<SdkClient> Staff(const std::string& role = "counsellor",
                                   std::vector<std::string> languages = {}) {
    auto o = Options(role == "supervisor" ? sdk::Role::kSupervisor : sdk::Role::kCounsellor);
    auto c = std::make_unique<SdkClient>(o);
    EXPECT_TRUE(c->create_status().ok());
    EXPECT_TRUE((*c)->SetPresence(sdk::Presence::kAvailable, std::move(languages)).ok());
    EXPECT_TRUE((*c)->RedeemInvitation(server_->Enrol(role)).ok());
    EXPECT_TRUE(c->WaitType(EventType::kEnrolled).has_value());
    EXPECT_TRUE(c->WaitType(EventType::kHelplineConfigReceived).has_value());
    return c;
  }

  std::unique_ptr<SdkClient> Survivor(const std::string& language = "en",
                                      std::optional<sdk::ClientOptions> given = std::nullopt,
                                      sdk::ConversationId* id = nullptr) {
    auto s = std::make_unique<SdkClient>(given ? *given : Options(sdk::Role::kSurvivor));
    EXPECT_TRUE(s->create_status().ok());
    sdk::ConversationId local = 0;
    EXPECT_TRUE((*s)->OpenConversation({language, 0}, "", &local).ok());
    EXPECT_TRUE(s->WaitState(ConversationState::kWaiting).has_value());
    if (id) *id = local;
    return s;
  }

  fs::path AuditKeyPath() const {
    return fs::path(server_->data_dir().lexically_normal().string() + "-helpline-keys") / "audit.key";
  }

  fs::path dir_;
  std::unique_ptr<HavendProcess> server_;
  e2e::DhKeyPair helpline_;
};

TEST_F(SdkWorkflowTest, CounsellorsGetTheHelplineConfigurationSurvivorsDoNot) {
  auto c = Staff();
  sdk::HelplineInfo info;
  ASSERT_TRUE((*c)->Helpline(&info).ok());
  EXPECT_EQ(info.name, "Test Helpline");
  EXPECT_EQ(info.max_active_per_counsellor, 2u);
  EXPECT_EQ(info.max_block_hours, 24u);
  ASSERT_EQ(info.categories.size(), 1u);
  EXPECT_EQ(info.categories[0].id, "sex-trafficking");
  ASSERT_EQ(info.referrals.size(), 1u);
  EXPECT_EQ(info.referrals[0].card.name, "Northside Safe House");
  ASSERT_EQ(info.canned_responses.size(), 1u);

  // A survivor's connection asking for it is refused by the server.
  RelayClient raw(*server_);
  ASSERT_TRUE(raw.Connect());
  v1::Request r;
  r.mutable_get_helpline_config();
  EXPECT_EQ(RelayClient::ErrorOf(raw.Ask(std::move(r))), v1::ERROR_CODE_PERMISSION_DENIED);
}

TEST_F(SdkWorkflowTest, TheQueueIsFilteredByLanguageAndClaimsStopAtTheCap) {
  auto spanish = Staff("counsellor", {"es"});
  auto english = Staff("counsellor", {"en"});
  auto s_es = Survivor("es");
  ASSERT_TRUE(WaitQueueEntry(*spanish).has_value());
  std::vector<sdk::QueueEntry> q;
  ASSERT_TRUE((*english)->Queue(&q).ok());
  EXPECT_TRUE(q.empty()) << "an English-only counsellor sees a Spanish conversation";

  // The cap (2 here): a third claim is refused with a clear reason.
  auto s1 = Survivor("en");
  ClaimAndSecure(*english, *s1);
  auto s2 = Survivor("en-GB");  // primary subtag "en"
  ClaimAndSecure(*english, *s2);
  auto s3 = Survivor("en");
  auto third = WaitQueueEntry(*english);
  ASSERT_TRUE(third.has_value());
  ASSERT_TRUE((*english)->Claim(third->conversation).ok());
  auto refused = english->WaitFor([&](const Recorded& r) {
    return r.type == EventType::kRequestFailed && r.conversation == third->conversation;
  });
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->error_message.find("LIMIT_REACHED"), std::string::npos) << refused->error_message;
}

TEST_F(SdkWorkflowTest, WarmTransferCarriesASealedNoteAndLocksTheOldCounsellorOut) {
  auto a = Staff();
  auto b = Staff();
  sdk::ConversationId at_survivor = 0;
  auto survivor = Survivor("en", std::nullopt, &at_survivor);
  const sdk::ConversationId at_a = ClaimAndSecure(*a, *survivor);
  sdk::MessageId m = 0;
  ASSERT_TRUE((*survivor)->Send(at_survivor, "I need somewhere to stay tonight", &m).ok());
  ASSERT_TRUE(a->WaitText("I need somewhere to stay tonight").has_value());

  // B's id, from the list of colleagues online.
  ASSERT_TRUE((*a)->RefreshColleagues().ok());
  std::vector<sdk::Colleague> colleagues;
  ASSERT_TRUE(a->WaitFor([&](const Recorded& r) {
    return r.type == EventType::kColleaguesChanged && (*a)->Colleagues(&colleagues).ok() &&
           colleagues.size() == 2;
  }).has_value());
  // The colleague who is not A: A has the conversation, so one active.
  auto other = std::find_if(colleagues.begin(), colleagues.end(),
                            [](const sdk::Colleague& c) { return c.active_conversations == 0; });
  ASSERT_NE(other, colleagues.end());
  const std::string note = "Needs a shelter bed tonight; prefers chat, no calls.";
  ASSERT_TRUE((*a)->TransferToColleague(at_a, other->id, /*warm=*/true, note).ok());
  auto offered = b->WaitType(EventType::kTransferOffered);
  ASSERT_TRUE(offered.has_value());
  EXPECT_EQ(offered->text, note);  // opened with B's own identity key
  ASSERT_TRUE((*b)->AnswerTransfer(offered->conversation, true).ok());

  auto answered = a->WaitType(EventType::kTransferAnswered);
  ASSERT_TRUE(answered.has_value());
  EXPECT_TRUE(answered->accepted);
  ASSERT_TRUE(a->WaitState(ConversationState::kTransferred).has_value());
  EXPECT_EQ((*a)->Send(at_a, "still there?", &m).code(), Code::kWrongState);

  // The survivor is told neutrally, and a new end-to-end session is set up with B.
  ASSERT_TRUE(survivor->WaitType(EventType::kCounsellorChanging).has_value());
  ASSERT_TRUE(b->WaitFor([&](const Recorded& r) {
    return r.type == EventType::kSecureSessionReady && r.conversation == offered->conversation;
  }).has_value());
  ASSERT_TRUE((*survivor)->Send(at_survivor, "hello again", &m).ok());
  EXPECT_TRUE(b->WaitText("hello again").has_value());
  ASSERT_TRUE((*b)->Send(offered->conversation, "I'm here now. Let's find you a bed.", &m).ok());
  EXPECT_TRUE(survivor->WaitText("I'm here now. Let's find you a bed.").has_value());
  std::string safety_s, safety_b;
  ASSERT_TRUE((*survivor)->SafetyNumber(at_survivor, &safety_s).ok());
  ASSERT_TRUE((*b)->SafetyNumber(offered->conversation, &safety_b).ok());
  EXPECT_EQ(safety_s, safety_b);
  // A learns nothing more: no message reached it after the transfer.
  for (const auto& e : a->Events()) EXPECT_NE(e.text, "hello again");

}

TEST_F(SdkWorkflowTest, ColdTransferToTheQueueInAnotherLanguage) {
  auto a = Staff("counsellor", {"en"});
  sdk::ConversationId at_survivor = 0;
  auto survivor = Survivor("en", std::nullopt, &at_survivor);
  const sdk::ConversationId at_a = ClaimAndSecure(*a, *survivor);
  auto spanish = Staff("counsellor", {"es"});
  ASSERT_TRUE((*a)->TransferToQueue(at_a, "es").ok());
  ASSERT_TRUE(a->WaitState(ConversationState::kTransferred).has_value());
  ASSERT_TRUE(survivor->WaitType(EventType::kCounsellorChanging).has_value());
  ASSERT_TRUE(survivor->WaitFor([](const Recorded& r) {
    return r.type == EventType::kConversationChanged && r.state == ConversationState::kWaiting;
  }).has_value());
  auto entry = WaitQueueEntry(*spanish);
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->language, "es");
  ASSERT_TRUE((*spanish)->Claim(entry->conversation).ok());
  ASSERT_TRUE(spanish->WaitType(EventType::kSecureSessionReady).has_value())
      << "survivor saw: " << Trace(*survivor) << "\ncounsellor saw: " << Trace(*spanish);
  sdk::MessageId m = 0;
  ASSERT_TRUE((*spanish)->Send(entry->conversation, "Hola, estoy aquí.", &m).ok());
  EXPECT_TRUE(survivor->WaitText("Hola, estoy aquí.").has_value());
}

TEST_F(SdkWorkflowTest, AResourceCardReachesTheSurvivorAsATypedMessage) {
  auto a = Staff();
  std::mutex mu;
  std::optional<sdk::ResourceCard> card;
  auto survivor = std::make_unique<SdkClient>(Options(sdk::Role::kSurvivor), true,
                                              [&](const sdk::Event& e) {
                                                if (e.type != EventType::kResourceCardReceived) return;
                                                std::lock_guard lock(mu);
                                                if (e.card) card = *e.card;
                                              });
  sdk::ConversationId at_survivor = 0;
  ASSERT_TRUE((*survivor)->OpenConversation({"en", 0}, "", &at_survivor).ok());
  const sdk::ConversationId at_a = ClaimAndSecure(*a, *survivor);
  sdk::MessageId m = 0;
  EXPECT_EQ((*a)->SendResourceCard(at_a, "no-such-referral", &m).code(), Code::kNotFound);
  ASSERT_TRUE((*a)->SendResourceCard(at_a, "shelter-north", &m).ok());
  ASSERT_TRUE(survivor->WaitType(EventType::kResourceCardReceived).has_value());
  std::lock_guard lock(mu);
  ASSERT_TRUE(card.has_value());
  EXPECT_EQ(card->service, "shelter");
  EXPECT_EQ(card->name, "Northside Safe House");
  EXPECT_EQ(card->offers, "A safe bed tonight and someone to talk to");
  EXPECT_EQ(card->contact, "Call 555-0100 any time");
  EXPECT_EQ(card->region, "North");
}

TEST_F(SdkWorkflowTest, FlagsAlertTheSupervisorAtOnceAndAgainOnAQuickExitAndNeverReachTheSurvivor) {
  auto supervisor = Staff("supervisor");
  auto a = Staff();
  // A raw survivor connection, to see exactly what the server tells it.
  RelayClient survivor(*server_);
  ASSERT_TRUE(survivor.Connect());
  ASSERT_FALSE(survivor.OpenId().empty());
  auto entry = WaitQueueEntry(*a);
  ASSERT_TRUE(entry.has_value());
  ASSERT_TRUE((*a)->Claim(entry->conversation).ok());
  ASSERT_TRUE(a->WaitState(ConversationState::kActive).has_value());

  ASSERT_TRUE((*supervisor)->RefreshLoad().ok());
  ASSERT_TRUE(supervisor->WaitType(EventType::kLoadChanged).has_value());
  sdk::LoadSnapshot load;
  ASSERT_TRUE((*supervisor)->Load(&load).ok());
  EXPECT_EQ(load.active, 1u);
  EXPECT_EQ(load.queued, 0u);
  EXPECT_EQ(load.counsellors.size(), 2u);
  // A counsellor may not see the load.
  ASSERT_TRUE((*a)->RefreshLoad().ok());
  EXPECT_TRUE(a->WaitFor([](const Recorded& r) {
    return r.type == EventType::kRequestFailed && r.error_message.find("PERMISSION_DENIED") != std::string::npos;
  }).has_value());

  ASSERT_TRUE((*a)->Flag(entry->conversation, /*high_risk=*/false, /*minor=*/true).ok());
  auto alert = supervisor->WaitType(EventType::kSupervisorAlert, 2s);
  ASSERT_TRUE(alert.has_value());
  EXPECT_EQ(alert->alert, sdk::AlertKind::kFlagged);
  EXPECT_TRUE(alert->flagged_minor);
  EXPECT_FALSE(alert->flagged_high_risk);

  auto session = survivor.GetSession();
  ASSERT_TRUE(session.ok() && session->has_session());
  ASSERT_EQ(session->session().conversations_size(), 1);
  EXPECT_FALSE(session->session().conversations(0).flagged_minor()) << "a flag reached the survivor";

  v1::Frame qe;
  qe.mutable_request()->mutable_quick_exit();
  ASSERT_TRUE(survivor.conn().Send(qe).ok());
  auto again = supervisor->WaitFor([](const Recorded& r) {
    return r.type == EventType::kSupervisorAlert && r.alert == sdk::AlertKind::kFlaggedQuickExit;
  }, 2s);
  ASSERT_TRUE(again.has_value()) << "no alert within 2 s of a flagged survivor's quick exit";
  EXPECT_TRUE(a->WaitState(ConversationState::kSurvivorLeftQuickly).has_value());
}

TEST_F(SdkWorkflowTest, ABlockHoldsForTheSessionAndItsResumptionsThenExpires) {
  auto a = Staff();
  auto o = Options(sdk::Role::kSurvivor);
  o.resumable = true;
  sdk::ConversationId at_survivor = 0;
  auto survivor = Survivor("en", o, &at_survivor);
  std::string secret;
  ASSERT_TRUE((*survivor)->ResumptionSecret(&secret).ok());
  const sdk::ConversationId at_a = ClaimAndSecure(*a, *survivor);

  // Longer than the helpline's max_block_hours (24): the server refuses.
  ASSERT_TRUE((*a)->Block(at_a, 25, "abusive messages").ok());
  ASSERT_TRUE(a->WaitFor([&](const Recorded& r) {
    return r.type == EventType::kRequestFailed && r.conversation == at_a;
  }).has_value());
  ASSERT_TRUE((*a)->Block(at_a, 2, "abusive messages").ok());
  ASSERT_TRUE(a->WaitState(ConversationState::kClosedByCounsellor).has_value());
  ASSERT_TRUE(survivor->WaitState(ConversationState::kClosedByCounsellor).has_value());

  // The same session, and a resumption of it, cannot open a new conversation.
  sdk::ConversationId again = 0;
  ASSERT_TRUE((*survivor)->OpenConversation({"en", 0}, "", &again).ok());
  auto refused = survivor->WaitFor([&](const Recorded& r) {
    return r.type == EventType::kRequestFailed && r.conversation == again;
  });
  ASSERT_TRUE(refused.has_value());
  EXPECT_NE(refused->error_message.find("BLOCKED"), std::string::npos);
  survivor->Destroy();
  auto ro = Options(sdk::Role::kSurvivor);
  ro.resumption_secret = secret;
  SdkClient resumed(ro);
  ASSERT_TRUE(resumed.create_status().ok());
  ASSERT_TRUE(resumed->OpenConversation({"en", 0}, "", &again).ok());
  ASSERT_TRUE(resumed.WaitFor([&](const Recorded& r) {
    return r.type == EventType::kRequestFailed && r.error_message.find("BLOCKED") != std::string::npos;
  }).has_value());
  resumed.Destroy();

  // Expiry: the block's hour passes (moved back in the stopped server's database).
  server_->Kill();
  {
    auto store = OpenServerDatabase(*server_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->db().Exec("UPDATE blocks SET expires_at = 1").ok());
  }
  ASSERT_TRUE(server_->Restart());
  SdkClient later(ro);
  ASSERT_TRUE(later.create_status().ok());
  ASSERT_TRUE(later->OpenConversation({"en", 0}, "", &again).ok());
  EXPECT_TRUE(later.WaitState(ConversationState::kWaiting, 10s).has_value());
}

TEST_F(SdkWorkflowTest, TheWrapUpIsSealedAndNothingOfItIsInTheDatabaseInClear) {
  auto a = Staff();
  sdk::ConversationId at_survivor = 0;
  auto survivor = Survivor("en", std::nullopt, &at_survivor);
  const sdk::ConversationId at_a = ClaimAndSecure(*a, *survivor);
  sdk::MessageId m = 0;
  ASSERT_TRUE((*a)->SendResourceCard(at_a, "shelter-north", &m).ok());

  sdk::WrapUp w;
  w.category_id = "sex-trafficking";
  w.case_note = "CASE-NOTE-MARKER said the recruiter took her passport";
  w.screening.action.recruits = sdk::Answer::kYes;
  w.screening.purpose.commercial_sex = sdk::Answer::kYes;
  w.screening.age_band = sdk::AgeBand::k13To17;
  w.referrals_given = {"shelter-north"};
  w.consent.follow_up = true;
  w.consent.follow_up_scope = "CONSENT-SCOPE-MARKER chat only";
  ASSERT_EQ(sdk::Assess(w.screening), sdk::ScreeningOutcome::kPotentialTrafficking);  // minor rule
  ASSERT_TRUE((*a)->CloseWithWrapUp(at_a, w).ok());
  ASSERT_TRUE(a->WaitState(ConversationState::kClosedByCounsellor).has_value());
  ASSERT_TRUE(survivor->WaitState(ConversationState::kClosedByCounsellor).has_value());

  // The stored blob opens with the helpline key, and only with it.
  {
    auto store = OpenServerDatabase(*server_);
    ASSERT_TRUE(store.ok());
    auto stmt = (*store)->db().Prepare("SELECT sealed_wrapup FROM conversations WHERE sealed_wrapup IS NOT NULL");
    ASSERT_TRUE(stmt.ok());
    auto row = stmt->Step();
    ASSERT_TRUE(row.ok() && *row) << "no wrap-up stored";
    const Bytes blob = stmt->ColumnBlob(0);
    auto opened = e2e::OpenHelplineBlob(helpline_, blob);
    ASSERT_TRUE(opened.ok());
    auto decoded = client::DecodeWrapUp(opened->view());
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->case_note, w.case_note);
    EXPECT_EQ(decoded->screening.age_band, sdk::AgeBand::k13To17);
    EXPECT_FALSE(e2e::OpenHelplineBlob(e2e::DhKeyPair::Generate(), blob).ok());
  }
  // A dump of the whole database with its key: no category, note, screening
  // answer or referral in clear.
  server_->Terminate();
  const std::string key_hex = ToHex(AsBytes(ReadFile(server_->DatabaseKeyPath())));
  const std::string dump_path = (dir_ / "dump.sql").string();
  {
    std::ofstream script(dir_ / "dump.cmd");
    // The key and cipher settings havend uses (common/src/sqlcipher/database.cc).
    script << "PRAGMA key = \"x'" << key_hex << "'\";\nPRAGMA cipher_page_size = 4096;\n"
           << "PRAGMA kdf_iter = 64000;\n.dump\n";
  }
  const std::string cmd = "sqlcipher " + server_->DatabasePath() + " < " + (dir_ / "dump.cmd").string() +
                          " > " + dump_path + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string dump = ReadFile(dump_path);
  ASSERT_NE(dump.find("CREATE TABLE conversations"), std::string::npos) << dump.substr(0, 400);
  for (const char* secret : {"CASE-NOTE-MARKER", "CONSENT-SCOPE-MARKER", "sex-trafficking",
                             "shelter-north", "Northside", "passport", "abusive"}) {
    EXPECT_EQ(dump.find(secret), std::string::npos) << secret << " is in the database in clear";
  }
  ASSERT_TRUE(server_->Restart());
}

TEST_F(SdkWorkflowTest, AWrapUpIsRecordedAfterTheSurvivorLeftQuickly) {
  auto a = Staff();
  sdk::ConversationId at_survivor = 0;
  auto survivor = Survivor("en", std::nullopt, &at_survivor);
  const sdk::ConversationId at_a = ClaimAndSecure(*a, *survivor);
  survivor->get()->QuickExit();
  ASSERT_TRUE(a->WaitState(ConversationState::kSurvivorLeftQuickly).has_value());
  sdk::WrapUp w;
  w.category_id = "sex-trafficking";
  w.case_note = "left quickly mid-sentence";
  w.screening.means.coercion = sdk::Answer::kYes;
  ASSERT_TRUE((*a)->CloseWithWrapUp(at_a, w).ok());
  auto store = OpenServerDatabase(*server_);
  ASSERT_TRUE(store.ok());
  std::int64_t stored = 0;
  for (int i = 0; i < 100 && stored == 0; ++i) {
    auto n = (*store)->db().QueryInt("SELECT count(*) FROM conversations WHERE sealed_wrapup IS NOT NULL");
    ASSERT_TRUE(n.ok());
    stored = *n;
    if (stored == 0) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(stored, 1);
  // How it ended is kept: the wrap-up does not turn it into a counsellor's close.
  std::vector<sdk::ConversationInfo> convs;
  ASSERT_TRUE((*a)->Conversations(&convs).ok());
  for (const auto& c : convs) {
    if (c.conversation == at_a) {
      EXPECT_EQ(c.state, ConversationState::kSurvivorLeftQuickly);
    }
  }
  // One wrap-up per conversation: a second is refused.
  ASSERT_TRUE((*a)->CloseWithWrapUp(at_a, w).ok());
  EXPECT_TRUE(a->WaitFor([&](const Recorded& r) {
    return r.type == EventType::kRequestFailed && r.conversation == at_a;
  }).has_value());
}

TEST_F(SdkWorkflowTest, TheAuditLogIsSealedAndReadableWithTheAuditKeyOnly) {
  auto a = Staff();
  auto b = Staff();
  sdk::ConversationId at_survivor = 0;
  auto survivor = Survivor("en", std::nullopt, &at_survivor);
  const sdk::ConversationId at_a = ClaimAndSecure(*a, *survivor);
  ASSERT_TRUE((*a)->Flag(at_a, true, false).ok());
  ASSERT_TRUE((*a)->TransferToQueue(at_a, "").ok());
  ASSERT_TRUE(a->WaitState(ConversationState::kTransferred).has_value());
  auto entry = WaitQueueEntry(*b);
  ASSERT_TRUE(entry.has_value());
  ASSERT_TRUE((*b)->Claim(entry->conversation).ok());
  ASSERT_TRUE(b->WaitType(EventType::kSecureSessionReady).has_value())
      << "survivor saw: " << Trace(*survivor) << "\ncounsellor saw: " << Trace(*b);
  ASSERT_TRUE((*b)->Block(entry->conversation, 1, "threats").ok());
  ASSERT_TRUE(b->WaitState(ConversationState::kClosedByCounsellor).has_value());

  ASSERT_TRUE(fs::exists(AuditKeyPath())) << AuditKeyPath();
  HavendRun run;
  for (int i = 0; i < 50; ++i) {  // the last events reach the database with the next commit
    // haven-audit, not haven-admin: nothing on the server can open the log.
    run = HavendProcess::RunToExit({"--data-dir", server_->data_dir().string(), "--audit-key",
                                    AuditKeyPath().string()},
                                   10s, HAVEN_AUDIT_PATH);
    if (run.output.find("blocked") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* kind : {"claimed", "flagged", "transferred", "blocked"}) {
    EXPECT_NE(run.output.find(kind), std::string::npos) << kind << " missing:\n" << run.output;
  }
  EXPECT_NE(run.output.find("to the queue"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("for 1 hours"), std::string::npos) << run.output;

  // With another key nothing opens.
  const fs::path wrong = dir_ / "wrong.key";
  {
    const SecureBuffer k = SecureBuffer::Random(32);
    ASSERT_TRUE(server::WriteKeyFile(wrong.string(), k.view()).ok());
  }
  auto bad = HavendProcess::RunToExit(
      {"--data-dir", server_->data_dir().string(), "--audit-key", wrong.string()}, 10s,
      HAVEN_AUDIT_PATH);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("not readable with this key"), std::string::npos) << bad.output;
}

// The audit log as haven-audit prints it, once it shows `until` (the last
// events reach the database with the next commit).
std::string AuditLog(const fs::path& data_dir, const fs::path& key, const std::string& until) {
  HavendRun run;
  for (int i = 0; i < 50; ++i) {
    run = HavendProcess::RunToExit({"--data-dir", data_dir.string(), "--audit-key", key.string()},
                                   10s, HAVEN_AUDIT_PATH);
    if (run.output.find(until) != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(run.exit_code, 0) << run.output;
  return run.output;
}

bool Said(SdkClient& c, const std::string& text, sdk::Role sender,
          std::chrono::milliseconds timeout = 5s) {
  return c.WaitFor([&](const Recorded& r) {
           return r.type == EventType::kMessageReceived && r.text == text && r.sender == sender;
         }, timeout).has_value();
}

TEST_F(SdkWorkflowTest, ASupervisorJoinsVisiblyWithEndToEndSessionsAndLeaves) {
  auto supervisor = Staff("supervisor");
  auto a = Staff();
  sdk::ConversationId at_survivor = 0;
  auto survivor = Survivor("en", std::nullopt, &at_survivor);
  const sdk::ConversationId at_a = ClaimAndSecure(*a, *survivor);
  ASSERT_NE(at_a, 0u);
  sdk::MessageId m = 0;
  ASSERT_TRUE((*survivor)->Send(at_survivor, "before the supervisor", &m).ok());
  ASSERT_TRUE(Said(*a, "before the supervisor", sdk::Role::kSurvivor));

  // Only a supervisor joins.
  EXPECT_EQ((*a)->JoinConversation(at_a).code(), Code::kWrongRole);

  ASSERT_TRUE((*a)->Flag(at_a, /*high_risk=*/true, /*minor=*/false).ok());
  auto alert = supervisor->WaitType(EventType::kSupervisorAlert);
  ASSERT_TRUE(alert.has_value());
  const sdk::ConversationId at_sup = alert->conversation;
  ASSERT_TRUE((*supervisor)->JoinConversation(at_sup).ok());

  // Visible to everyone: the survivor's app is told, and so is the counsellor's.
  ASSERT_TRUE(survivor->WaitType(EventType::kSupervisorJoined).has_value()) << Trace(*survivor);
  ASSERT_TRUE(a->WaitType(EventType::kSupervisorJoined).has_value()) << Trace(*a);
  ASSERT_TRUE(supervisor->WaitState(ConversationState::kActive).has_value()) << Trace(*supervisor);
  std::vector<sdk::ConversationInfo> infos;
  ASSERT_TRUE((*survivor)->Conversations(&infos).ok());
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_TRUE(infos[0].supervisor_present);

  // End to end: the survivor and the counsellor each start a session with it.
  for (sdk::Role with : {sdk::Role::kSurvivor, sdk::Role::kCounsellor}) {
    EXPECT_TRUE(supervisor->WaitFor([&](const Recorded& r) {
      return r.type == EventType::kSecureSessionReady && r.conversation == at_sup && r.sender == with;
    }).has_value()) << "no session with role " << static_cast<int>(with) << ": " << Trace(*supervisor);
  }

  // Every message reaches the two others, each with its sender.
  ASSERT_TRUE((*survivor)->Send(at_survivor, "from the survivor", &m).ok());
  EXPECT_TRUE(Said(*a, "from the survivor", sdk::Role::kSurvivor));
  EXPECT_TRUE(Said(*supervisor, "from the survivor", sdk::Role::kSurvivor)) << Trace(*supervisor);
  ASSERT_TRUE((*a)->Send(at_a, "from the counsellor", &m).ok());
  EXPECT_TRUE(Said(*survivor, "from the counsellor", sdk::Role::kCounsellor));
  EXPECT_TRUE(Said(*supervisor, "from the counsellor", sdk::Role::kCounsellor));
  ASSERT_TRUE((*supervisor)->Send(at_sup, "from the supervisor", &m).ok());
  EXPECT_TRUE(Said(*survivor, "from the supervisor", sdk::Role::kSupervisor)) << Trace(*survivor);
  EXPECT_TRUE(Said(*a, "from the supervisor", sdk::Role::kSupervisor)) << Trace(*a);
  // What was written before it joined was never encrypted for it.
  EXPECT_FALSE(supervisor->WaitText("before the supervisor", 200ms).has_value());
  // A supervisor leaves; it does not close the counsellor's conversation.
  EXPECT_EQ((*supervisor)->CloseConversation(at_sup).code(), Code::kWrongRole);

  ASSERT_TRUE((*supervisor)->LeaveConversation(at_sup).ok());
  ASSERT_TRUE(supervisor->WaitState(ConversationState::kLeft).has_value()) << Trace(*supervisor);
  ASSERT_TRUE(survivor->WaitType(EventType::kSupervisorLeft).has_value()) << Trace(*survivor);
  ASSERT_TRUE(a->WaitType(EventType::kSupervisorLeft).has_value());
  ASSERT_TRUE((*survivor)->Send(at_survivor, "after it left", &m).ok());
  EXPECT_TRUE(Said(*a, "after it left", sdk::Role::kSurvivor));
  EXPECT_FALSE(supervisor->WaitText("after it left", 300ms).has_value());
  EXPECT_EQ((*supervisor)->Send(at_sup, "too late", &m).code(), Code::kWrongState);
  // The counsellor's conversation goes on as before.
  ASSERT_TRUE((*survivor)->Conversations(&infos).ok());
  EXPECT_FALSE(infos[0].supervisor_present);
  EXPECT_EQ(infos[0].state, ConversationState::kActive);

  const std::string log = AuditLog(server_->data_dir(), AuditKeyPath(), "supervisor_left");
  EXPECT_NE(log.find("supervisor_joined"), std::string::npos) << log;
  EXPECT_NE(log.find("supervisor_left"), std::string::npos) << log;
}

TEST_F(SdkWorkflowTest, ASupervisorJoinsOnlyAHeldConversationAndATransferEndsItsPart) {
  auto supervisor = Staff("supervisor");
  auto a = Staff();
  sdk::ConversationId at_survivor = 0;
  auto survivor = Survivor("en", std::nullopt, &at_survivor);
  // Supervisors see the queue too: a waiting conversation cannot be joined.
  auto queued = WaitQueueEntry(*supervisor);
  ASSERT_TRUE(queued.has_value());
  ASSERT_TRUE((*supervisor)->JoinConversation(queued->conversation).ok());
  EXPECT_TRUE(supervisor->WaitFor([](const Recorded& r) {
    return r.type == EventType::kRequestFailed &&
           r.error_message.find("CONVERSATION_NOT_ACTIVE") != std::string::npos;
  }).has_value()) << Trace(*supervisor);

  const sdk::ConversationId at_a = ClaimAndSecure(*a, *survivor);
  ASSERT_NE(at_a, 0u);
  ASSERT_TRUE((*supervisor)->JoinConversation(queued->conversation).ok());
  ASSERT_TRUE(survivor->WaitType(EventType::kSupervisorJoined).has_value());
  ASSERT_TRUE(supervisor->WaitFor([&](const Recorded& r) {
    return r.type == EventType::kSecureSessionReady && r.sender == sdk::Role::kSurvivor;
  }).has_value()) << Trace(*supervisor);

  // Back to the queue: the supervisor's sessions were with this counsellor
  // too, so its part ends; the survivor sees it go and a counsellor change.
  ASSERT_TRUE((*a)->TransferToQueue(at_a, "").ok());
  EXPECT_TRUE(supervisor->WaitState(ConversationState::kLeft).has_value()) << Trace(*supervisor);
  EXPECT_TRUE(survivor->WaitType(EventType::kSupervisorLeft).has_value()) << Trace(*survivor);
  EXPECT_TRUE(survivor->WaitType(EventType::kCounsellorChanging).has_value());
  sdk::MessageId m = 0;
  EXPECT_EQ((*supervisor)->Send(queued->conversation, "no longer here", &m).code(),
            Code::kWrongState);
}

TEST_F(SdkWorkflowTest, ASupervisorStaysJoinedAcrossAServerRestartAndMessagesWaitForIt) {
  auto supervisor = Staff("supervisor");
  auto a = Staff();
  sdk::ConversationId at_survivor = 0;
  auto survivor = Survivor("en", std::nullopt, &at_survivor);
  const sdk::ConversationId at_a = ClaimAndSecure(*a, *survivor);
  ASSERT_NE(at_a, 0u);
  ASSERT_TRUE((*a)->Flag(at_a, true, false).ok());
  auto alert = supervisor->WaitType(EventType::kSupervisorAlert);
  ASSERT_TRUE(alert.has_value());
  const sdk::ConversationId at_sup = alert->conversation;
  ASSERT_TRUE((*supervisor)->JoinConversation(at_sup).ok());
  for (sdk::Role with : {sdk::Role::kSurvivor, sdk::Role::kCounsellor}) {
    ASSERT_TRUE(supervisor->WaitFor([&](const Recorded& r) {
      return r.type == EventType::kSecureSessionReady && r.sender == with;
    }).has_value()) << Trace(*supervisor);
  }

  // havend dies; the supervisor is away when it comes back, and the
  // survivor writes meanwhile: the copy for the supervisor is stored for it.
  server_->Kill();
  supervisor->Destroy();
  ASSERT_TRUE(server_->Restart());
  sdk::MessageId m = 0;
  ASSERT_TRUE((*survivor)->Send(at_survivor, "while the supervisor was away", &m).ok());
  EXPECT_TRUE(Said(*a, "while the supervisor was away", sdk::Role::kSurvivor, 10s));
  EXPECT_TRUE(survivor->WaitFor([&](const Recorded& r) {
    return r.type == EventType::kMessageSent && r.message == m;
  }, 10s).has_value());
  std::vector<sdk::ConversationInfo> infos;
  ASSERT_TRUE((*survivor)->Conversations(&infos).ok());
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_TRUE(infos[0].supervisor_present) << "the join did not survive the restart";
  // Its copy waits in the database, for the supervisor, from the survivor,
  // written since the restart (the seq's high half is the boot epoch):
  // accepted only because the membership was stored. (The session start
  // may be there too, resent, if the server died before accepting it.)
  auto store = OpenServerDatabase(*server_);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::int64_t waiting = 0;
  for (int i = 0; i < 100 && waiting == 0; ++i) {
    auto n = (*store)->db().QueryInt(
        "SELECT COUNT(*) FROM envelopes WHERE recipient = 3 AND sender = 1 AND "
        "(seq >> 32) = (SELECT boot_epoch FROM deployment)");
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    waiting = *n;
    if (waiting == 0) std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(waiting, 1);
}

}  // namespace
}  // namespace haven::testing
