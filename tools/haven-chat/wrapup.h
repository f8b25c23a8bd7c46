// haven-chat's wrap-up form: the keyboard-only questions a counsellor answers
// when closing a conversation (Action-Means-Purpose screening, age band,
// contact category, case note, referrals given, consent with its scope).
// A pure state machine: it is fed one typed line at a time and says what to
// ask next, so tests drive it without a terminal or a server.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "haven/client.h"
#include "haven/workflow.h"

namespace haven::chat {

class WrapUpForm {
 public:
  enum class Result {
    kNext,       // show Prompt() (the next question, or the same one again)
    kDone,       // the form is complete and confirmed: wrapup() is ready
    kCancelled,  // the counsellor typed /cancel (or declined at the end)
  };

  // `categories` and `referrals` come from the helpline's configuration;
  // `cards_sent` are the referral ids already sent in this conversation
  // (offered as the default answer for "referrals given").
  WrapUpForm(std::vector<sdk::HelplineInfo::Entry> categories,
             std::vector<sdk::HelplineInfo::Referral> referrals,
             std::vector<std::string> cards_sent);
  ~WrapUpForm();
  WrapUpForm(const WrapUpForm&) = delete;
  WrapUpForm& operator=(const WrapUpForm&) = delete;

  // The current question, ready to print (plain text; "\r\n" between lines;
  // helpline-supplied labels are sanitised).
  std::string Prompt() const;
  // Feeds one typed answer. `reply` receives a short message to show before
  // the next prompt (a correction, or the screening outcome), or stays empty.
  Result Answer(std::string_view line, std::string* reply);

  const sdk::WrapUp& wrapup() const { return wrapup_; }
  bool asks_to_tell_supervisor() const;

 private:
  enum class Step {
    kScreening,  // item_ indexes the Action, Means and Purpose questions
    kAgeBand,
    kCategory,
    kCaseNote,
    kReferrals,
    kFollowUp,
    kFollowUpScope,
    kSharing,
    kSharingScope,
    kConfirm,
  };
  void Advance();
  std::string Summary() const;

  std::vector<sdk::HelplineInfo::Entry> categories_;
  std::vector<sdk::HelplineInfo::Referral> referrals_;
  std::vector<std::string> cards_sent_;
  sdk::WrapUp wrapup_;
  Step step_ = Step::kScreening;
  std::size_t item_ = 0;
};

// The number of Action, Means and Purpose questions the form asks.
std::size_t ScreeningQuestionCount();

}  // namespace haven::chat
