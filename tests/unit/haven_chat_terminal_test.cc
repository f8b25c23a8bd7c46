// haven-chat's terminal layer without a terminal: which bytes are the
// quick-exit key, what the line editor keeps, and that text from the other
// side can never drive the terminal. And the counsellor's wrap-up form
// without a server: what each answer records, the minor rule, corrections.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "terminal.h"
#include "wrapup.h"

namespace haven::chat {
namespace {

std::vector<Key> Decode(std::string_view bytes) {
  KeyDecoder d;
  std::vector<Key> keys;
  for (char c : bytes) {
    if (auto k = d.Feed(static_cast<unsigned char>(c))) keys.push_back(*k);
  }
  return keys;
}

std::string Text(const std::vector<Key>& keys) {
  std::string out;
  for (const Key& k : keys) {
    if (k.kind == KeyKind::kChar) out.push_back(k.byte);
  }
  return out;
}

bool HasQuickExit(const std::vector<Key>& keys) {
  for (const Key& k : keys) {
    if (k.kind == KeyKind::kQuickExit) return true;
  }
  return false;
}

TEST(KeyDecoder, EscTwiceIsQuickExit) {
  const auto keys = Decode("hel\x1b\x1b");
  ASSERT_EQ(keys.size(), 4u);
  EXPECT_EQ(keys.back().kind, KeyKind::kQuickExit);
}

TEST(KeyDecoder, CtrlXIsQuickExit) { EXPECT_TRUE(HasQuickExit(Decode("\x18"))); }

TEST(KeyDecoder, ArrowAndFunctionKeysAreNotQuickExitNorText) {
  // Up, Down, F1 (SS3), F12, Delete, a bracketed-paste marker.
  const auto keys = Decode("a\x1b[Ab\x1b[B\x1bOP\x1b[24~\x1b[3~\x1b[200~c");
  EXPECT_FALSE(HasQuickExit(keys));
  EXPECT_EQ(Text(keys), "abc");
}

TEST(KeyDecoder, SingleEscIsNothing) {
  const auto keys = Decode("\x1bx");
  EXPECT_FALSE(HasQuickExit(keys));
  EXPECT_EQ(Text(keys), "");  // Alt+x: ignored
}

TEST(KeyDecoder, EscInsideASequenceStillCounts) {
  // A sequence cut short by Esc, then Esc again: the person pressed Esc twice.
  EXPECT_TRUE(HasQuickExit(Decode("\x1b[1\x1b\x1b")));
}

TEST(KeyDecoder, EnterBackspaceAndControls) {
  const auto keys = Decode("a\r\nb\n\x7f\x08\x15\x17\x03\x04\x01");
  std::vector<KeyKind> kinds;
  for (const Key& k : keys) kinds.push_back(k.kind);
  const std::vector<KeyKind> want = {KeyKind::kChar,      KeyKind::kEnter,      KeyKind::kChar,
                                     KeyKind::kEnter,     KeyKind::kBackspace,  KeyKind::kBackspace,
                                     KeyKind::kClearLine, KeyKind::kDeleteWord, KeyKind::kInterrupt,
                                     KeyKind::kEndOfInput};
  EXPECT_EQ(kinds, want);  // "\r\n" is one Enter; Ctrl-A does nothing
}

TEST(LineEditor, EditsByCharacterAndWord) {
  LineEditor e;
  for (char c : std::string("hi caf\xC3\xA9")) e.Insert(c);
  e.Backspace();  // removes the whole two-byte é
  EXPECT_EQ(e.text(), "hi caf");
  e.DeleteWord();
  EXPECT_EQ(e.text(), "hi ");
  e.DeleteWord();
  EXPECT_EQ(e.text(), "");
  e.Backspace();
  EXPECT_EQ(e.text(), "");
}

TEST(LineEditor, TakeClearsAndBufferNeverMoves) {
  LineEditor e;
  const char* before = e.text().data();
  for (std::size_t i = 0; i < LineEditor::kMaxBytes + 10; ++i) e.Insert('x');
  EXPECT_EQ(e.text().size(), LineEditor::kMaxBytes);
  EXPECT_EQ(e.text().data(), before);  // no reallocation left copies behind
  std::string out;
  e.Take(&out);
  EXPECT_EQ(out.size(), LineEditor::kMaxBytes);
  EXPECT_TRUE(e.text().empty());
  Wipe(&out);
  EXPECT_TRUE(out.empty());
}

TEST(LineEditor, VisibleTailCountsCharacters) {
  LineEditor e;
  for (char c : std::string("ab\xC3\xA9" "cd")) e.Insert(c);
  EXPECT_EQ(e.VisibleTail(10), "ab\xC3\xA9" "cd");
  EXPECT_EQ(e.VisibleTail(3), "\xC3\xA9" "cd");
  EXPECT_EQ(e.VisibleTail(0), "");
}

std::string Sanitize(std::string_view in, std::size_t indent = 0) {
  std::string out;
  SanitizeForTerminal(in, indent, &out);
  return out;
}

TEST(Sanitize, PlainTextAndUtf8PassThrough) {
  EXPECT_EQ(Sanitize("hello, caf\xC3\xA9 \xF0\x9F\x99\x82"), "hello, caf\xC3\xA9 \xF0\x9F\x99\x82");
}

TEST(Sanitize, EscapeSequencesCannotReachTheTerminal) {
  // Clear screen, window title (OSC), an 8-bit CSI, a C1 control in UTF-8.
  const std::string out =
      Sanitize("a\x1b[2Jb\x1b]0;title\x07" "c\x9b" "2Jd\xC2\x9B" "2Je\x7f");
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out.find('\x07'), std::string::npos);
  EXPECT_EQ(out.find('\x7f'), std::string::npos);
  EXPECT_EQ(out.find("\xC2\x9B"), std::string::npos);
  EXPECT_EQ(out.find('\x9b'), std::string::npos);  // the raw byte is invalid UTF-8
  EXPECT_NE(out.find("title"), std::string::npos);  // the text itself stays readable
}

TEST(Sanitize, InvalidUtf8AndBidiOverridesAreReplaced) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Sanitize("\xC0\xAF"), fffd + fffd);         // overlong
  EXPECT_EQ(Sanitize("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate
  EXPECT_EQ(Sanitize("\xE2\x80\xAE"), fffd);            // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(Sanitize("\xE2\x81\xA6"), fffd);            // LEFT-TO-RIGHT ISOLATE
  EXPECT_EQ(Sanitize("ab\xE2\x82"), "ab" + fffd + fffd);  // truncated
}

TEST(Sanitize, LineBreaksAreIndentedAndCarriageReturnsDropped) {
  EXPECT_EQ(Sanitize("one\r\ntwo\rthree\tfour", 4), "one\r\n    twothree four");
}


// ---------------------------------------------------------------- wrap-up form

using sdk::AgeBand;
using sdk::Answer;
using Result = WrapUpForm::Result;

std::vector<sdk::HelplineInfo::Entry> Categories() {
  return {{"sex-trafficking", "Sex trafficking"}, {"other", "Other"}};
}

std::vector<sdk::HelplineInfo::Referral> Directory() {
  sdk::HelplineInfo::Referral shelter;
  shelter.id = "shelter-a";
  shelter.card.service = "shelter";
  sdk::HelplineInfo::Referral legal;
  legal.id = "legal-b";
  legal.card.service = "legal aid";
  return {shelter, legal};
}

// Feeds answers in order; every one but the last must ask for more.
Result Feed(WrapUpForm& form, const std::vector<std::string>& answers,
            std::vector<std::string>* replies = nullptr) {
  Result r = Result::kNext;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    std::string reply;
    r = form.Answer(answers[i], &reply);
    if (replies != nullptr && !reply.empty()) replies->push_back(reply);
    if (i + 1 < answers.size()) {
      EXPECT_EQ(r, Result::kNext) << "answer " << i << ": " << answers[i];
    }
  }
  return r;
}

std::vector<std::string> Screening(std::vector<std::string> action, std::vector<std::string> means,
                                   std::string purpose) {
  std::vector<std::string> out = std::move(action);
  out.insert(out.end(), means.begin(), means.end());
  out.push_back(std::move(purpose));
  return out;
}

TEST(WrapUpForm, RecordsEveryAnswer) {
  ASSERT_EQ(ScreeningQuestionCount(), 12u);
  WrapUpForm form(Categories(), Directory(), {});
  EXPECT_NE(form.Prompt().find("Action 1 of 8"), std::string::npos) << form.Prompt();
  auto answers = Screening({"y", "n", "?", "", "yes", "no", "unknown", "Y"}, {"y", "n", ""}, "y");
  for (const char* a : {"4", "2", "  a short note  ", "2 shelter-a", "y", "chat only", "y",
                        "shelter referral only"}) {
    answers.emplace_back(a);
  }
  EXPECT_EQ(Feed(form, answers), Result::kNext);
  EXPECT_NE(form.Prompt().find("Screening outcome: potential trafficking"), std::string::npos)
      << form.Prompt();
  std::string reply;
  EXPECT_EQ(form.Answer("y", &reply), Result::kDone);

  const sdk::WrapUp& w = form.wrapup();
  EXPECT_EQ(w.screening.action.recruits, Answer::kYes);
  EXPECT_EQ(w.screening.action.harbours, Answer::kNo);
  EXPECT_EQ(w.screening.action.transports, Answer::kUnknown);
  EXPECT_EQ(w.screening.action.provides, Answer::kUnknown);
  EXPECT_EQ(w.screening.action.obtains, Answer::kYes);
  EXPECT_EQ(w.screening.action.advertises, Answer::kNo);
  EXPECT_EQ(w.screening.action.patronises, Answer::kUnknown);
  EXPECT_EQ(w.screening.action.solicits, Answer::kYes);
  EXPECT_EQ(w.screening.means.force, Answer::kYes);
  EXPECT_EQ(w.screening.means.fraud, Answer::kNo);
  EXPECT_EQ(w.screening.means.coercion, Answer::kUnknown);
  EXPECT_EQ(w.screening.purpose.commercial_sex, Answer::kYes);
  EXPECT_EQ(w.screening.age_band, AgeBand::k25To39);
  EXPECT_EQ(w.category_id, "other");
  EXPECT_EQ(w.case_note, "a short note");
  EXPECT_EQ(w.referrals_given, (std::vector<std::string>{"legal-b", "shelter-a"}));
  EXPECT_TRUE(w.consent.follow_up);
  EXPECT_EQ(w.consent.follow_up_scope, "chat only");
  EXPECT_TRUE(w.consent.sharing);
  EXPECT_EQ(w.consent.sharing_scope, "shelter referral only");
  EXPECT_TRUE(form.asks_to_tell_supervisor());
}

TEST(WrapUpForm, MinorNeedsNoMeansAndAsksToTellASupervisor) {
  WrapUpForm form(Categories(), Directory(), {});
  auto answers = Screening({"y", "", "", "", "", "", "", ""}, {"n", "n", "n"}, "y");
  answers.emplace_back("2");  // 13 to 17
  std::vector<std::string> replies;
  Feed(form, answers, &replies);
  EXPECT_TRUE(replies.empty());
  // Category, note, referrals, follow-up, sharing: the last one leads to the summary.
  Feed(form, {"1", "", "-", "n", "n"}, &replies);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_NE(replies[0].find("potential trafficking case, and the person is a minor"),
            std::string::npos)
      << replies[0];
  EXPECT_NE(replies[0].find("tell a supervisor now"), std::string::npos) << replies[0];
  EXPECT_EQ(sdk::Assess(form.wrapup().screening), sdk::ScreeningOutcome::kPotentialTrafficking);
  EXPECT_TRUE(form.wrapup().referrals_given.empty());
  EXPECT_FALSE(form.wrapup().consent.follow_up);
}

TEST(WrapUpForm, AMinorAloneStillAsksToTellASupervisor) {
  WrapUpForm form({}, {}, {});
  auto answers = Screening(std::vector<std::string>(8, ""), {"", "", ""}, "");
  answers.emplace_back("1");  // under 13; no categories, no directory: straight to the note
  std::vector<std::string> replies;
  Feed(form, answers, &replies);
  EXPECT_NE(form.Prompt().find("Case note"), std::string::npos) << form.Prompt();
  Feed(form, {"", "n", "n"}, &replies);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_NE(replies[0].find("This is a minor: tell a supervisor now"), std::string::npos)
      << replies[0];
  EXPECT_NE(form.Prompt().find("Screening outcome: not indicated"), std::string::npos);
}

TEST(WrapUpForm, UnknownAndAdultIsNotIndicatedAndAsksNothingMore) {
  WrapUpForm form(Categories(), Directory(), {"shelter-a"});
  auto answers = Screening({"y", "", "", "", "", "", "", ""}, {"?", "", ""}, "y");
  answers.emplace_back("");  // age unknown: not treated as a minor
  std::vector<std::string> replies;
  Feed(form, answers, &replies);
  Feed(form, {"sex-trafficking", "", "", "", ""}, &replies);
  EXPECT_TRUE(replies.empty()) << replies.front();
  EXPECT_FALSE(form.asks_to_tell_supervisor());
  EXPECT_NE(form.Prompt().find("Screening outcome: not indicated"), std::string::npos);
  // Enter alone at "referrals given": the cards sent in this conversation.
  EXPECT_EQ(form.wrapup().referrals_given, std::vector<std::string>{"shelter-a"});
  EXPECT_EQ(form.wrapup().screening.age_band, AgeBand::kUnknown);
}

TEST(WrapUpForm, WrongAnswersAreAskedAgain) {
  WrapUpForm form(Categories(), Directory(), {});
  const std::string first = form.Prompt();
  std::string reply;
  EXPECT_EQ(form.Answer("maybe", &reply), Result::kNext);
  EXPECT_EQ(reply.rfind("Please", 0), 0u) << reply;
  EXPECT_EQ(form.Prompt(), first);
  Feed(form, Screening(std::vector<std::string>(8, "n"), {"n", "n", "n"}, "n"));
  EXPECT_EQ(form.Answer("7", &reply), Result::kNext);  // not an age band
  EXPECT_EQ(reply.rfind("Please", 0), 0u) << reply;
  EXPECT_EQ(form.Answer("3", &reply), Result::kNext);
  EXPECT_EQ(form.Answer("9", &reply), Result::kNext);  // no such category
  EXPECT_EQ(reply.rfind("Please", 0), 0u) << reply;
  EXPECT_EQ(form.Answer("no-such-id", &reply), Result::kNext);
  EXPECT_EQ(form.Answer("2", &reply), Result::kNext);
  EXPECT_EQ(form.wrapup().category_id, "other");
  EXPECT_EQ(form.Answer(std::string(sdk::kMaxWorkflowFieldBytes + 1, 'x'), &reply),
            Result::kNext);  // too long a note
  EXPECT_NE(reply.find("too long"), std::string::npos);
  EXPECT_EQ(form.Answer("note", &reply), Result::kNext);
  EXPECT_EQ(form.Answer("shelter-a nowhere", &reply), Result::kNext);
  EXPECT_NE(reply.find("Not in the directory: nowhere"), std::string::npos) << reply;
  EXPECT_EQ(form.Answer("1 1 shelter-a", &reply), Result::kNext);  // once each
  EXPECT_EQ(form.wrapup().referrals_given, std::vector<std::string>{"shelter-a"});
  EXPECT_EQ(form.Answer("perhaps", &reply), Result::kNext);  // consent: y or n only
  EXPECT_EQ(reply.rfind("Please", 0), 0u) << reply;
  EXPECT_EQ(form.Answer("y", &reply), Result::kNext);
  EXPECT_EQ(form.Answer("", &reply), Result::kNext);  // a scope is required
  EXPECT_EQ(reply.rfind("Please", 0), 0u) << reply;
  EXPECT_EQ(form.Answer("by chat", &reply), Result::kNext);
  EXPECT_EQ(form.Answer("n", &reply), Result::kNext);
  EXPECT_EQ(form.Answer("", &reply), Result::kNext);  // confirming needs an explicit y or n
  EXPECT_EQ(form.Answer("n", &reply), Result::kCancelled);
}

TEST(WrapUpForm, CancelStopsAtAnyStep) {
  for (std::size_t steps = 0; steps < 20; ++steps) {
    WrapUpForm form(Categories(), Directory(), {});
    std::string reply;
    for (std::size_t i = 0; i < steps; ++i) {
      // Answers every question of the form validly, whatever it is.
      const std::string prompt = form.Prompt();
      const std::string a = prompt.find("Scope") != std::string::npos              ? "scope"
                            : prompt.find("Contact category") != std::string::npos ? "1"
                                                                                    : "";
      if (prompt.find("Close the conversation") != std::string::npos) break;
      ASSERT_EQ(form.Answer(a, &reply), Result::kNext) << prompt;
    }
    EXPECT_EQ(form.Answer("  /cancel ", &reply), Result::kCancelled) << "after " << steps;
  }
}

TEST(WrapUpForm, HelplineLabelsCannotDriveTheTerminal) {
  WrapUpForm form({{"x", "Label\x1b]0;owned\x07\x1b[2J"}}, {}, {});
  Feed(form, Screening(std::vector<std::string>(8, ""), {"", "", ""}, ""));
  std::string reply;
  form.Answer("", &reply);
  const std::string prompt = form.Prompt();
  EXPECT_NE(prompt.find("Contact category"), std::string::npos) << prompt;
  EXPECT_EQ(prompt.find('\x1b'), std::string::npos);
  EXPECT_EQ(prompt.find('\x07'), std::string::npos);
}

}  // namespace
}  // namespace haven::chat
