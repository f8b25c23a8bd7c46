#include "wrapup.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

#include "terminal.h"

namespace haven::chat {
namespace {

using sdk::AgeBand;
using sdk::Answer;
using sdk::Screening;

struct Question {
  const char* column;  // "Action", "Means", "Purpose"
  const char* name;    // the element, for the summary
  std::size_t number;  // within its column, from 1
  std::size_t of;
  const char* text;
  Answer& (*field)(Screening&);
};

// Plain words for each element of the Action-Means-Purpose model.
constexpr Question kQuestions[] = {
    {"Action", "recruits", 1, 8, "Was the person recruited (for example offered a job, a place to stay or a relationship)?",
     [](Screening& s) -> Answer& { return s.action.recruits; }},
    {"Action", "harbours", 2, 8, "Was the person harboured (kept or housed somewhere by someone)?",
     [](Screening& s) -> Answer& { return s.action.harbours; }},
    {"Action", "transports", 3, 8, "Was the person transported (moved from place to place)?",
     [](Screening& s) -> Answer& { return s.action.transports; }},
    {"Action", "provides", 4, 8, "Was the person provided (handed over) to others?",
     [](Screening& s) -> Answer& { return s.action.provides; }},
    {"Action", "obtains", 5, 8, "Was the person obtained (bought, taken or received) by someone?",
     [](Screening& s) -> Answer& { return s.action.obtains; }},
    {"Action", "advertises", 6, 8, "Was the person advertised (online or elsewhere)?",
     [](Screening& s) -> Answer& { return s.action.advertises; }},
    {"Action", "patronises", 7, 8, "Did someone patronise them (pay for a sex act with them)?",
     [](Screening& s) -> Answer& { return s.action.patronises; }},
    {"Action", "solicits", 8, 8, "Did someone solicit them (ask them for a sex act for payment)?",
     [](Screening& s) -> Answer& { return s.action.solicits; }},
    {"Means", "force", 1, 3, "Was force used (violence, confinement, physical harm)?",
     [](Screening& s) -> Answer& { return s.means.force; }},
    {"Means", "fraud", 2, 3, "Was fraud used (lies about the work, the pay, the relationship)?",
     [](Screening& s) -> Answer& { return s.means.fraud; }},
    {"Means", "coercion", 3, 3, "Was coercion used (threats, debts, documents taken, threats to family)?",
     [](Screening& s) -> Answer& { return s.means.coercion; }},
    {"Purpose", "commercial sex", 1, 1, "Was it for commercial sex (a sex act in exchange for anything of value)?",
     [](Screening& s) -> Answer& { return s.purpose.commercial_sex; }},
};

constexpr std::string_view kYesNoUnknown = "y = yes, n = no, ? = unknown (Enter alone: unknown)";

struct Band {
  AgeBand band;
  const char* label;
};
constexpr Band kBands[] = {
    {AgeBand::kUnder13, "under 13"}, {AgeBand::k13To17, "13 to 17"}, {AgeBand::k18To24, "18 to 24"},
    {AgeBand::k25To39, "25 to 39"},  {AgeBand::k40Plus, "40 or over"},
};

std::string Safe(std::string_view text, std::size_t indent = 0) {
  std::string out;
  SanitizeForTerminal(text, indent, &out);
  return out;
}

std::string_view Trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// 1-based index in a list of `size`, or 0.
std::size_t ParseIndex(std::string_view s, std::size_t size) {
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size() || n == 0 || n > size) return 0;
  return n;
}

// y / n / ? (and the words). False if the answer is none of them.
bool ParseAnswer(std::string_view line, Answer* out) {
  const std::string a = Lower(Trimmed(line));
  if (a.empty() || a == "?" || a == "u" || a == "unknown") {
    *out = Answer::kUnknown;
  } else if (a == "y" || a == "yes") {
    *out = Answer::kYes;
  } else if (a == "n" || a == "no") {
    *out = Answer::kNo;
  } else {
    return false;
  }
  return true;
}

// y / n for consent; Enter alone is no (consent is never assumed).
bool ParseYesNo(std::string_view line, bool* out) {
  const std::string a = Lower(Trimmed(line));
  if (a == "y" || a == "yes") {
    *out = true;
  } else if (a.empty() || a == "n" || a == "no") {
    *out = false;
  } else {
    return false;
  }
  return true;
}

const char* AnswerWord(Answer a) {
  switch (a) {
    case Answer::kYes: return "yes";
    case Answer::kNo: return "no";
    case Answer::kUnknown: return "unknown";
  }
  return "unknown";
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += ' ';
    out += i;
  }
  return out;
}

}  // namespace

std::size_t ScreeningQuestionCount() { return std::size(kQuestions); }

WrapUpForm::WrapUpForm(std::vector<sdk::HelplineInfo::Entry> categories,
                       std::vector<sdk::HelplineInfo::Referral> referrals,
                       std::vector<std::string> cards_sent)
    : categories_(std::move(categories)),
      referrals_(std::move(referrals)),
      cards_sent_(std::move(cards_sent)) {}

WrapUpForm::~WrapUpForm() {
  Wipe(&wrapup_.case_note);
  Wipe(&wrapup_.consent.follow_up_scope);
  Wipe(&wrapup_.consent.sharing_scope);
}

bool WrapUpForm::asks_to_tell_supervisor() const {
  return sdk::Assess(wrapup_.screening) == sdk::ScreeningOutcome::kPotentialTrafficking ||
         sdk::IsMinor(wrapup_.screening.age_band);
}

std::string WrapUpForm::Prompt() const {
  switch (step_) {
    case Step::kScreening: {
      const Question& q = kQuestions[item_];
      return std::string(q.column) + " " + std::to_string(q.number) + " of " +
             std::to_string(q.of) + ": " + q.text + "\r\n  " + std::string(kYesNoUnknown);
    }
    case Step::kAgeBand: {
      std::string out = "Age band, as far as you know:";
      for (std::size_t i = 0; i < std::size(kBands); ++i) {
        out += "  " + std::to_string(i + 1) + " " + kBands[i].label;
      }
      out += "  ? unknown (Enter alone)";
      return out;
    }
    case Step::kCategory: {
      std::string out = "Contact category (a number or an id):";
      for (std::size_t i = 0; i < categories_.size(); ++i) {
        out += "\r\n  " + std::to_string(i + 1) + "  " + Safe(categories_[i].id) + "  " +
               Safe(categories_[i].text);
      }
      return out;
    }
    case Step::kCaseNote:
      return "Case note: a short note, with nothing that identifies anyone (names, places, "
             "numbers). Enter alone for none.";
    case Step::kReferrals: {
      std::string out =
          "Referrals given (numbers or ids, separated by spaces; - for none; Enter alone: ";
      out += cards_sent_.empty() ? "none" : "the cards you sent, " + Safe(Joined(cards_sent_));
      out += "):";
      for (std::size_t i = 0; i < referrals_.size(); ++i) {
        out += "\r\n  " + std::to_string(i + 1) + "  " + Safe(referrals_[i].id) + "  (" +
               Safe(referrals_[i].card.service) + ")";
      }
      return out;
    }
    case Step::kFollowUp:
      return "Did they consent to a follow-up? y or n (Enter alone: no)";
    case Step::kFollowUpScope:
      return "Scope of the follow-up consent (for example: by chat only, after 18:00):";
    case Step::kSharing:
      return "Did they consent to sharing information with a service? y or n (Enter alone: no)";
    case Step::kSharingScope:
      return "Scope of the sharing consent (for example: shelter referral only):";
    case Step::kConfirm:
      return Summary() +
             "\r\nClose the conversation with this wrap-up? y to close, n or /cancel to go back "
             "to the conversation.";
  }
  return {};
}

std::string WrapUpForm::Summary() const {
  const auto& s = wrapup_.screening;
  std::string out = "Wrap-up summary:";
  for (const char* column : {"Action", "Means", "Purpose"}) {
    std::string answers;
    for (const Question& q : kQuestions) {
      if (std::string_view(q.column) != column) continue;
      Screening copy = s;
      const sdk::Answer a = q.field(copy);
      if (a == sdk::Answer::kUnknown) continue;
      if (!answers.empty()) answers += ", ";
      answers += std::string(q.name) + " " + AnswerWord(a);
    }
    out += "\r\n  " + std::string(column) + ": " + (answers.empty() ? "all unknown" : answers);
  }
  std::string band = "unknown";
  for (const Band& b : kBands) {
    if (b.band == s.age_band) band = b.label;
  }
  out += "\r\n  Age band: " + band;
  out += "\r\n  Category: " + (wrapup_.category_id.empty() ? std::string("none")
                                                           : Safe(wrapup_.category_id));
  out += "\r\n  Referrals given: " +
         (wrapup_.referrals_given.empty() ? std::string("none") : Safe(Joined(wrapup_.referrals_given)));
  out += "\r\n  Follow-up consent: " +
         (wrapup_.consent.follow_up ? "yes (" + Safe(wrapup_.consent.follow_up_scope) + ")"
                                    : std::string("no"));
  out += "\r\n  Sharing consent: " +
         (wrapup_.consent.sharing ? "yes (" + Safe(wrapup_.consent.sharing_scope) + ")"
                                  : std::string("no"));
  out += "\r\n  Screening outcome: " + std::string(sdk::ToString(sdk::Assess(s)));
  return out;
}

void WrapUpForm::Advance() {
  switch (step_) {
    case Step::kScreening:
      if (++item_ < std::size(kQuestions)) return;
      step_ = Step::kAgeBand;
      return;
    case Step::kAgeBand:
      step_ = categories_.empty() ? Step::kCaseNote : Step::kCategory;
      return;
    case Step::kCategory: step_ = Step::kCaseNote; return;
    case Step::kCaseNote:
      step_ = referrals_.empty() ? Step::kFollowUp : Step::kReferrals;
      return;
    case Step::kReferrals: step_ = Step::kFollowUp; return;
    case Step::kFollowUp:
      step_ = wrapup_.consent.follow_up ? Step::kFollowUpScope : Step::kSharing;
      return;
    case Step::kFollowUpScope: step_ = Step::kSharing; return;
    case Step::kSharing:
      step_ = wrapup_.consent.sharing ? Step::kSharingScope : Step::kConfirm;
      return;
    case Step::kSharingScope: step_ = Step::kConfirm; return;
    case Step::kConfirm: return;
  }
}

WrapUpForm::Result WrapUpForm::Answer(std::string_view line, std::string* reply) {
  reply->clear();
  const std::string_view answer = Trimmed(line);
  if (Lower(answer) == "/cancel") return Result::kCancelled;
  switch (step_) {
    case Step::kScreening: {
      sdk::Answer a{};
      if (!ParseAnswer(answer, &a)) {
        *reply = "Please answer y, n or ? (Enter alone: unknown).";
        return Result::kNext;
      }
      kQuestions[item_].field(wrapup_.screening) = a;
      break;
    }
    case Step::kAgeBand: {
      if (answer.empty() || answer == "?") {
        wrapup_.screening.age_band = AgeBand::kUnknown;
      } else if (const std::size_t n = ParseIndex(answer, std::size(kBands)); n != 0) {
        wrapup_.screening.age_band = kBands[n - 1].band;
      } else {
        *reply = "Please type a number from 1 to " + std::to_string(std::size(kBands)) +
                 ", or ? if you do not know.";
        return Result::kNext;
      }
      break;
    }
    case Step::kCategory: {
      std::size_t n = ParseIndex(answer, categories_.size());
      if (n == 0) {
        const auto it = std::find_if(categories_.begin(), categories_.end(),
                                     [&](const auto& c) { return c.id == answer; });
        if (it != categories_.end()) n = static_cast<std::size_t>(it - categories_.begin()) + 1;
      }
      if (n == 0) {
        *reply = "Please type one of the numbers or ids listed.";
        return Result::kNext;
      }
      wrapup_.category_id = categories_[n - 1].id;
      break;
    }
    case Step::kCaseNote:
      if (answer.size() > sdk::kMaxWorkflowFieldBytes) {
        *reply = "That note is too long: keep it under " +
                 std::to_string(sdk::kMaxWorkflowFieldBytes) + " bytes.";
        return Result::kNext;
      }
      Wipe(&wrapup_.case_note);
      wrapup_.case_note.assign(answer);
      break;
    case Step::kReferrals: {
      std::vector<std::string> given;
      if (answer.empty()) {
        given = cards_sent_;
      } else if (answer != "-") {
        std::string_view rest = answer;
        while (!rest.empty()) {
          const std::size_t space = rest.find(' ');
          const std::string_view word = rest.substr(0, space);
          rest = space == std::string_view::npos ? std::string_view() : Trimmed(rest.substr(space));
          if (word.empty()) continue;
          std::size_t n = ParseIndex(word, referrals_.size());
          if (n == 0) {
            const auto it = std::find_if(referrals_.begin(), referrals_.end(),
                                         [&](const auto& r) { return r.id == word; });
            if (it != referrals_.end()) n = static_cast<std::size_t>(it - referrals_.begin()) + 1;
          }
          if (n == 0) {
            *reply = "Not in the directory: " + Safe(word) + ". Use the numbers or ids listed.";
            return Result::kNext;
          }
          const std::string& id = referrals_[n - 1].id;
          if (std::find(given.begin(), given.end(), id) == given.end()) given.push_back(id);
        }
      }
      if (given.size() > sdk::kMaxReferralsGiven) {
        *reply = "At most " + std::to_string(sdk::kMaxReferralsGiven) + " referrals.";
        return Result::kNext;
      }
      wrapup_.referrals_given = std::move(given);
      break;
    }
    case Step::kFollowUp:
      if (!ParseYesNo(answer, &wrapup_.consent.follow_up)) {
        *reply = "Please answer y or n.";
        return Result::kNext;
      }
      break;
    case Step::kSharing:
      if (!ParseYesNo(answer, &wrapup_.consent.sharing)) {
        *reply = "Please answer y or n.";
        return Result::kNext;
      }
      break;
    case Step::kFollowUpScope:
    case Step::kSharingScope: {
      std::string& scope = step_ == Step::kFollowUpScope ? wrapup_.consent.follow_up_scope
                                                         : wrapup_.consent.sharing_scope;
      if (answer.empty() || answer.size() > sdk::kMaxWorkflowFieldBytes) {
        *reply = "Please write the scope in a few words (consent is recorded with its scope).";
        return Result::kNext;
      }
      Wipe(&scope);
      scope.assign(answer);
      break;
    }
    case Step::kConfirm: {
      bool yes = false;
      if (!ParseYesNo(answer, &yes) || answer.empty()) {
        *reply = "Please answer y (close) or n (go back to the conversation).";
        return Result::kNext;
      }
      return yes ? Result::kDone : Result::kCancelled;
    }
  }
  Advance();
  if (step_ == Step::kConfirm && asks_to_tell_supervisor()) {
    const bool trafficking =
        sdk::Assess(wrapup_.screening) == sdk::ScreeningOutcome::kPotentialTrafficking;
    const bool minor = sdk::IsMinor(wrapup_.screening.age_band);
    *reply = std::string("This is ") +
             (trafficking && minor ? "a potential trafficking case, and the person is a minor"
              : trafficking        ? "a potential trafficking case"
                                   : "a minor") +
             ": tell a supervisor now (and /flag it if you have not).";
  }
  return Result::kNext;
}

}  // namespace haven::chat
