#include "chat.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "terminal.h"
#include "wrapup.h"

namespace haven::chat {
namespace {

using sdk::ConnectionState;
using sdk::ConversationId;
using sdk::ConversationState;
using sdk::EventType;
using Style = Terminal::Style;

constexpr std::string_view kSurvivorHelp =
    "Type a message and press Enter to send it.\r\n"
    "  /exit     end the conversation and clear the screen\r\n"
    "  /new      talk to someone again after a conversation has ended\r\n"
    "  /safety   the safety number, to compare with the counsellor by voice\r\n"
    "  /help     this list";

constexpr std::string_view kCounsellorHelp =
    "Commands:\r\n"
    "  /queue       who is waiting: language, priority, waiting position, online\r\n"
    "  /claim N     take conversation N from the queue; it becomes the current one\r\n"
    "  /list        your conversations (* marks the current one)\r\n"
    "  /switch N    make conversation N the current one\r\n"
    "  /presence available|busy|away [lang ...]\r\n"
    "               your presence; languages (e.g. en es) filter your queue\r\n"
    "  /colleagues  who is online: id, role, presence, languages, load\r\n"
    "The current conversation:\r\n"
    "  /canned          the ready-made messages;  /canned ID  sends one\r\n"
    "  /referrals       the referral directory;   /card ID    sends one as a card\r\n"
    "  /flag risk|minor|both|none   flag it (supervisors are alerted at once)\r\n"
    "  /transfer queue [lang]       back to the queue (maybe for another language)\r\n"
    "  /transfer ID [warm] [note]   to a colleague (ID: the start of their id in\r\n"
    "                               /colleagues); warm: they accept first, read\r\n"
    "                               your note, and only then take it over\r\n"
    "  /accept [N], /decline [N]    answer a transfer a colleague offers you\r\n"
    "  /block HOURS REASON          block an abusive contact for a while, and close\r\n"
    "  /wrapup      screening, category, note, referrals and consent, then close\r\n"
    "  /close       close without a wrap-up\r\n"
    "  /safety      the safety number\r\n"
    "  /quit        leave\r\n"
    "Anything else you type is sent to the current conversation.";

constexpr std::string_view kSupervisorHelp =
    "Supervisor:\r\n"
    "  /load        queued, active and lost conversations, the longest wait, the\r\n"
    "               queue per language, each counsellor's presence and load\r\n"
    "               (never any content)\r\n"
    "  /join N      join conversation N (from an alert) as a visible participant:\r\n"
    "               the survivor and the counsellor see that you are there, and\r\n"
    "               you read and write from then on, end-to-end encrypted\r\n"
    "  /leave [N]   leave it again\r\n"
    "Alerts (a flagged conversation, a flagged survivor's quick exit) appear here\r\n"
    "at once.";

constexpr std::string_view kQuickExitBanner =
    "  They used quick exit: they may not be safe right now.  \r\n"
    "  Do not try to re-contact unless a safe way was agreed.  ";

bool IsOpen(ConversationState s) {
  return s == ConversationState::kOpening || s == ConversationState::kWaiting ||
         s == ConversationState::kActive || s == ConversationState::kConnectionLost;
}

std::string Tag(ConversationId id) { return "#" + std::to_string(id); }

// "/claim 3", "/claim #3": the number, or 0.
ConversationId ParseId(std::string_view arg) {
  while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
  while (!arg.empty() && arg.back() == ' ') arg.remove_suffix(1);
  if (!arg.empty() && arg.front() == '#') arg.remove_prefix(1);
  ConversationId id = 0;
  const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), id);
  if (ec != std::errc() || end != arg.data() + arg.size()) return 0;
  return id;
}

std::string Sanitized(std::string_view text, std::size_t indent = 0) {
  std::string out;
  out.reserve(text.size() * 6 + 16);  // worst case, so the buffer never moves
  SanitizeForTerminal(text, indent, &out);
  return out;
}

class Chat {
 public:
  Chat(ChatOptions options, Terminal& term) : options_(std::move(options)), term_(term) {}
  ~Chat() { Wipe(&options_.invite); }

  int Run();

 private:
  bool survivor() const { return options_.client.role == sdk::Role::kSurvivor; }
  bool supervisor() const { return options_.client.role == sdk::Role::kSupervisor; }

  void Say(std::string_view text, Style style = Style::kPlain) { term_.Print(text, style); }
  void ShowMessage(std::string_view label, std::string_view text);
  void OnEvent(const sdk::Event& e);
  void OnConnection(ConnectionState s);
  void OnConversation(ConversationId id, ConversationState s);
  void OnRequestFailed(const sdk::Event& e);
  void RefreshQueue();
  void OnHelpline();
  void OnTransferOffered(const sdk::Event& e);
  void OnTransferAnswered(const sdk::Event& e);
  void OnAlert(const sdk::Event& e);
  void Join(std::string_view arg);
  void Leave(std::string_view arg);
  void ShowCard(const sdk::ResourceCard& card);
  void ShowColleagues();
  void ShowLoad();

  // Input. Each returns true to keep going.
  bool HandleLine(std::string& line);
  bool SurvivorCommand(std::string_view cmd, std::string_view arg);
  bool CounsellorCommand(std::string_view cmd, std::string_view arg);
  void SendText(std::string_view text);
  void OpenConversation();
  void ShowQueue();
  void ShowConversations();
  void ShowSafetyNumber();
  void Claim(std::string_view arg);
  void Close(ConversationId id);
  // The counsellor workflow. Each acts on the current conversation.
  ConversationId CurrentOpen();  // 0 (and says so) if there is none
  bool GetHelpline(sdk::HelplineInfo* out);
  void SetPresence(std::string_view arg);
  void Colleagues();
  void Transfer(std::string_view arg);
  void AnswerOffer(std::string_view arg, bool accept);
  void Canned(std::string_view arg);
  void Referrals();
  void Card(std::string_view arg);
  void FlagCurrent(std::string_view arg);
  void BlockCurrent(std::string_view arg);
  void StartWrapUp();
  void WrapUpAnswer(std::string_view line);
  void Load();

  int QuickExit();
  int LeaveSurvivor();
  int LeaveCounsellor();

  ChatOptions options_;
  Terminal& term_;
  std::unique_ptr<sdk::Client> client_;
  // The client as the event thread sees it: null until Create() returned.
  std::atomic<sdk::Client*> live_{nullptr};

  std::mutex mu_;  // everything below
  std::condition_variable cv_;
  ConversationId current_ = 0;
  ConversationId claiming_ = 0;
  ConversationId joining_ = 0;  // supervisor: /join sent, not yet answered
  std::map<ConversationId, ConversationState> states_;
  std::size_t queue_size_ = 0;
  bool ever_online_ = false;
  bool drop_announced_ = false;
  bool welcomed_ = false;
  bool quick_exit_completed_ = false;
  ConversationId accepting_ = 0;           // a transfer this counsellor accepted
  std::vector<ConversationId> offers_;     // transfers offered to this counsellor
  std::map<ConversationId, std::vector<std::string>> cards_sent_;  // referral ids
  bool colleagues_wanted_ = false;         // /colleagues waits for a fresh list
  bool helpline_announced_ = false;

  // The wrap-up form: the input thread only.
  std::unique_ptr<WrapUpForm> form_;
  ConversationId form_conversation_ = 0;
};

// ---------------------------------------------------------------- events
// All on the SDK's event thread. Nothing here keeps message text: it goes to
// the terminal and the copies made for it are zeroed.

void Chat::ShowMessage(std::string_view label, std::string_view text) {
  std::string line;
  line.reserve(label.size() + 2 + text.size() * 6 + 16);
  line.append(label);
  line.append(": ");
  SanitizeForTerminal(text, label.size() + 2, &line);
  Say(line);
  Wipe(&line);
}

void Chat::OnEvent(const sdk::Event& e) {
  switch (e.type) {
    case EventType::kHelplineConfigReceived: return OnHelpline();
    case EventType::kColleaguesChanged: {
      bool wanted = false;
      {
        std::lock_guard lock(mu_);
        wanted = std::exchange(colleagues_wanted_, false);
      }
      if (wanted) ShowColleagues();
      return;
    }
    case EventType::kTransferOffered: return OnTransferOffered(e);
    case EventType::kTransferAnswered: return OnTransferAnswered(e);
    case EventType::kSupervisorAlert: return OnAlert(e);
    case EventType::kLoadChanged: return ShowLoad();
    case EventType::kCounsellorChanging:
      // Neutral: the survivor is not told why, only that someone else comes.
      if (survivor()) Say("Another counsellor is joining the conversation.", Style::kNotice);
      return;
    case EventType::kResourceCardReceived:
      if (e.card != nullptr) ShowCard(*e.card);
      return;
    case EventType::kSupervisorJoined:
      // Said plainly: nobody reads along unseen.
      if (survivor()) {
        return Say("A supervisor has joined the conversation to support your counsellor. They "
                   "can read what is written from now on.",
                   Style::kNotice);
      }
      return Say("A supervisor joined conversation " + Tag(e.conversation) +
                     ": they read and write from now on.",
                 Style::kNotice);
    case EventType::kSupervisorLeft:
      if (survivor()) return Say("The supervisor has left the conversation.", Style::kNotice);
      return Say("The supervisor left conversation " + Tag(e.conversation) + ".");
    case EventType::kConnectionChanged: return OnConnection(e.connection);
    case EventType::kConversationChanged: return OnConversation(e.conversation, e.state);
    case EventType::kMessageReceived: {
      const std::string who = e.sender == sdk::Role::kSupervisor   ? "Supervisor"
                              : e.sender == sdk::Role::kCounsellor ? "Counsellor"
                                                                   : "Survivor";
      if (survivor()) return ShowMessage(who, e.text);
      bool current = false;
      {
        std::lock_guard lock(mu_);
        current = e.conversation == current_;
      }
      return ShowMessage(current ? who : who + " (" + Tag(e.conversation) + ")", e.text);
    }
    case EventType::kMessageSent: return;  // the normal case needs no words
    case EventType::kQueueChanged: return RefreshQueue();
    case EventType::kRequestFailed: return OnRequestFailed(e);
    case EventType::kEnrolled:
      return Say("This device is enrolled. You will see here when someone is waiting.");
    case EventType::kSecureSessionReady:
      if (e.sender == sdk::Role::kSupervisor) return;  // kSupervisorJoined said it
      if (survivor()) return Say("This conversation is private: it is end-to-end encrypted.");
      return Say("Conversation " + Tag(e.conversation) +
                 " is end-to-end encrypted now. /safety shows its safety number.");
    case EventType::kQuickExitCompleted: {
      std::lock_guard lock(mu_);
      quick_exit_completed_ = true;
      cv_.notify_all();
      return;
    }
  }
}

void Chat::OnConnection(ConnectionState s) {
  std::string text;
  {
    std::lock_guard lock(mu_);
    switch (s) {
      case ConnectionState::kConnecting: return;
      case ConnectionState::kOnline:
        if (ever_online_ && drop_announced_) {
          text = survivor() ? "You are connected again." : "Connected to the server again.";
        } else if (!ever_online_ && !survivor()) {
          text = "Connected to the server.";
        }
        ever_online_ = true;
        drop_announced_ = false;
        break;
      case ConnectionState::kOffline:
        if (drop_announced_) return;  // once per drop, not once per retry
        drop_announced_ = true;
        if (!ever_online_) {
          text = "Still trying to connect...";
        } else if (survivor()) {
          text = "The connection was interrupted. Trying again; your messages will be sent "
                 "when it is back.";
        } else {
          text = "The connection to the server was interrupted. Trying again...";
        }
        break;
      case ConnectionState::kStopped:
        text = survivor() ? "The connection was closed."
                          : "The server closed this session (this counsellor may have signed "
                            "in on another device).";
        break;
    }
  }
  if (!text.empty()) Say(text);
}

void Chat::OnConversation(ConversationId id, ConversationState s) {
  ConversationState before{};
  bool first_waiting = false;
  bool became_current = false;
  bool transferred_in = false;
  bool joined = false;
  {
    std::lock_guard lock(mu_);
    auto it = states_.find(id);
    if (it != states_.end()) before = it->second;
    states_[id] = s;
    cv_.notify_all();
    if (s == ConversationState::kWaiting && !welcomed_) first_waiting = welcomed_ = true;
    if (!survivor() && id == claiming_ &&
        (s == ConversationState::kActive || s == ConversationState::kConnectionLost)) {
      claiming_ = 0;
      current_ = id;
      became_current = true;
    }
    if (!survivor() && id == joining_ &&
        (s == ConversationState::kActive || s == ConversationState::kConnectionLost)) {
      joining_ = 0;
      current_ = id;
      joined = true;
    }
    if (!survivor() && id == accepting_ &&
        (s == ConversationState::kActive || s == ConversationState::kConnectionLost)) {
      accepting_ = 0;
      current_ = id;
      became_current = transferred_in = true;
    }
    if (!survivor() && !IsOpen(s)) cards_sent_.erase(id);
    if (!survivor() && !IsOpen(s) && id == current_) current_ = 0;
  }
  if (before == s) return;

  if (survivor()) {
    switch (s) {
      case ConversationState::kWaiting:
        if (first_waiting) {
          Say("You are connected. A counsellor will join soon.");
          Say("Type a message and press Enter.");
        }
        return;
      case ConversationState::kActive:
        if (before != ConversationState::kConnectionLost) {
          Say("A counsellor has joined. You can talk now.");
        }
        return;
      case ConversationState::kClosedByCounsellor:
        Say("The counsellor has ended the conversation. Type /new to talk to someone again, "
            "or /exit to leave.");
        return;
      case ConversationState::kClosedBySurvivor: Say("The conversation has ended."); return;
      default: return;
    }
  }

  const std::string tag = Tag(id);
  if (joined) {
    Say("You joined conversation " + tag +
            " as a supervisor. The survivor and the counsellor see that you are here; you read "
            "what is written from now on. /leave leaves.",
        Style::kNotice);
    return;
  }
  switch (s) {
    case ConversationState::kActive:
      if (before == ConversationState::kConnectionLost) {
        Say("They are back (" + tag + ").", Style::kNotice);
      } else if (became_current) {
        Say("You are now talking with the survivor in conversation " + tag +
                (transferred_in ? " (handed over by a colleague; they cannot see it any more)"
                                : "") +
                ". Type a message and press Enter.",
            Style::kNotice);
      } else {
        Say("Conversation " + tag + " is active.");
      }
      return;
    case ConversationState::kConnectionLost:
      if (became_current) {
        Say("You took conversation " + tag +
                ". They are not connected right now: they may come back.",
            Style::kNotice);
      } else {
        Say("Connection lost: they may come back (" + tag + ").", Style::kNotice);
      }
      return;
    case ConversationState::kClosedBySurvivor:
      Say("They ended the conversation (" + tag + ").", Style::kNotice);
      return;
    case ConversationState::kClosedByCounsellor:
      Say("You closed the conversation (" + tag + ").");
      return;
    case ConversationState::kSurvivorLeftQuickly:
      Say("  QUICK EXIT in conversation " + tag + "  \r\n" + std::string(kQuickExitBanner),
          Style::kAlert);
      return;
    case ConversationState::kTransferred:
      Say("Conversation " + tag +
              " is now with a colleague (or back in the queue): you no longer have access to it.",
          Style::kNotice);
      return;
    case ConversationState::kLeft:
      Say("You left conversation " + tag + ".");
      return;
    case ConversationState::kOpening:
    case ConversationState::kWaiting: return;  // the queue announces these
  }
}

void Chat::OnRequestFailed(const sdk::Event& e) {
  bool claim = false;
  {
    std::lock_guard lock(mu_);
    if (e.conversation != 0 && e.conversation == claiming_) {
      claim = true;
      claiming_ = 0;
    }
    if (e.conversation != 0 && e.conversation == joining_) joining_ = 0;
    cv_.notify_all();
  }
  const std::string reason = Sanitized(e.error_message);
  if (claim) {
    Say("Could not take conversation " + Tag(e.conversation) + ": " + reason +
        " (someone else may have taken it).");
  } else if (e.message != 0) {
    Say("A message could not be sent: " + reason + ". Please try again.");
  } else {
    Say("That did not work: " + reason + ".");
  }
}

void Chat::RefreshQueue() {
  sdk::Client* client = live_.load();
  if (client == nullptr) return;
  std::vector<sdk::QueueEntry> entries;
  if (!client->Queue(&entries).ok()) return;
  std::size_t before = 0;
  {
    std::lock_guard lock(mu_);
    before = queue_size_;
    queue_size_ = entries.size();
  }
  const std::string n = std::to_string(entries.size());
  if (entries.size() > before) {
    Say("Someone is waiting (" + n + " in the queue). Type /queue to see the queue.",
        Style::kNotice);
  } else if (entries.size() < before) {
    Say(entries.empty() ? "The queue is empty." : "Queue: " + n + " waiting.");
  }
}

void Chat::OnHelpline() {
  sdk::Client* client = live_.load();
  sdk::HelplineInfo info;
  if (client == nullptr || !client->Helpline(&info).ok()) return;
  {
    std::lock_guard lock(mu_);
    if (std::exchange(helpline_announced_, true)) return;
  }
  Say("Helpline: " + (info.name.empty() ? std::string("(no name)") : Sanitized(info.name)) + ". " +
      std::to_string(info.canned_responses.size()) + " canned responses (/canned), " +
      std::to_string(info.referrals.size()) + " referrals (/referrals), " +
      std::to_string(info.categories.size()) + " wrap-up categories.");
}

void Chat::OnTransferOffered(const sdk::Event& e) {
  {
    std::lock_guard lock(mu_);
    if (std::find(offers_.begin(), offers_.end(), e.conversation) == offers_.end()) {
      offers_.push_back(e.conversation);
    }
  }
  const std::string tag = Tag(e.conversation);
  Say("  TRANSFER OFFERED: a colleague asks you to take conversation " + tag + ".  ",
      Style::kAlert);
  if (e.text.empty()) {
    Say("They left no handoff note.");
  } else {
    // The note is the colleague's words, never the survivor's: say so.
    ShowMessage("Handoff note from your colleague (not from the survivor)", e.text);
  }
  Say("Type /accept " + std::to_string(e.conversation) + " to take it, or /decline " +
      std::to_string(e.conversation) + ".");
}

void Chat::OnTransferAnswered(const sdk::Event& e) {
  const std::string tag = Tag(e.conversation);
  if (e.accepted) {
    Say("Your colleague accepted conversation " + tag + ".");
  } else {
    Say("Your colleague declined conversation " + tag + ": it stays with you.", Style::kNotice);
  }
}

void Chat::OnAlert(const sdk::Event& e) {
  std::string flags;
  if (e.flagged_high_risk && e.flagged_minor) {
    flags = "high risk and minor";
  } else if (e.flagged_high_risk) {
    flags = "high risk";
  } else if (e.flagged_minor) {
    flags = "minor";
  } else {
    flags = "no flag";
  }
  const std::string tag = Tag(e.conversation);
  switch (e.alert) {
    case sdk::AlertKind::kFlagged:
      Say("  SUPERVISOR ALERT  Flagged: " + flags + "  (conversation " + tag + ")  ",
          Style::kAlert);
      return;
    case sdk::AlertKind::kFlaggedQuickExit:
      Say("  SUPERVISOR ALERT  A flagged survivor used quick exit  (conversation " + tag +
              ", flagged: " + flags + ")  \r\n" + std::string(kQuickExitBanner),
          Style::kAlert);
      return;
  }
  Say("  SUPERVISOR ALERT  (conversation " + tag + ")  ", Style::kAlert);
}

// A referral from the counsellor, as plain text: the card is untrusted like
// any message, so every field is sanitised.
void Chat::ShowCard(const sdk::ResourceCard& card) {
  constexpr std::size_t kIndent = 4;
  std::string out = "The counsellor shared a service you can contact:\r\n  ";
  SanitizeForTerminal(card.name, 2, &out);
  if (!card.service.empty() || !card.region.empty()) {
    out += " (";
    SanitizeForTerminal(card.service, kIndent, &out);
    if (!card.service.empty() && !card.region.empty()) out += ", ";
    SanitizeForTerminal(card.region, kIndent, &out);
    out += ")";
  }
  out += "\r\n  What they offer:\r\n    ";
  SanitizeForTerminal(card.offers, kIndent, &out);
  out += "\r\n  How to reach them:\r\n    ";
  SanitizeForTerminal(card.contact, kIndent, &out);
  out += "\r\n  It is your choice whether to contact them.";
  Say(out);
  Wipe(&out);
}

std::string PresenceName(sdk::Presence p) {
  switch (p) {
    case sdk::Presence::kAvailable: return "available";
    case sdk::Presence::kBusy: return "busy";
    case sdk::Presence::kAway: return "away";
  }
  return "unknown";
}

std::string ColleagueLine(const sdk::Colleague& c) {
  std::string langs;
  for (const auto& l : c.languages) langs += (langs.empty() ? "" : " ") + Sanitized(l);
  std::string id = Sanitized(c.id.substr(0, 8));
  std::string role = c.role == sdk::Role::kSupervisor ? "supervisor" : "counsellor";
  std::string presence = PresenceName(c.presence);
  role.resize(std::max<std::size_t>(role.size(), 10), ' ');
  presence.resize(std::max<std::size_t>(presence.size(), 9), ' ');
  return "  " + id + "  " + role + "  " + presence + "  languages: " +
         (langs.empty() ? std::string("all") : langs) + "  active: " +
         std::to_string(c.active_conversations);
}

void Chat::ShowColleagues() {
  sdk::Client* client = live_.load();
  std::vector<sdk::Colleague> list;
  if (client == nullptr || !client->Colleagues(&list).ok()) return;
  if (list.empty()) {
    Say("Nobody is online.");
    return;
  }
  std::string out = "Online now (you are listed too):";
  for (const auto& c : list) out += "\r\n" + ColleagueLine(c);
  out += "\r\n/transfer ID warm NOTE offers the current conversation (ID: the first characters).";
  Say(out);
}

void Chat::ShowLoad() {
  sdk::Client* client = live_.load();
  sdk::LoadSnapshot load;
  if (client == nullptr || !client->Load(&load).ok()) return;
  const unsigned wait = load.longest_wait_seconds;
  std::string out = "Load: " + std::to_string(load.queued) + " queued, " +
                    std::to_string(load.active) + " active, " +
                    std::to_string(load.connection_lost) + " connection lost; longest wait " +
                    (wait >= 60 ? std::to_string(wait / 60) + " min " : std::string()) +
                    std::to_string(wait % 60) + " s";
  if (!load.queued_by_language.empty()) {
    out += "\r\n  Queued per language:";
    for (const auto& [language, n] : load.queued_by_language) {
      out += " " + (language.empty() ? std::string("(none)") : Sanitized(language)) + " " +
             std::to_string(n) + ";";
    }
  }
  out += "\r\n  Counsellors online: " + std::to_string(load.counsellors.size());
  for (const auto& c : load.counsellors) out += "\r\n" + ColleagueLine(c);
  Say(out);
}

// ---------------------------------------------------------------- input

bool Chat::HandleLine(std::string& line) {
  std::string_view view = line;
  while (!view.empty() && view.back() == ' ') view.remove_suffix(1);
  while (!view.empty() && view.front() == ' ') view.remove_prefix(1);
  if (form_) {
    WrapUpAnswer(view);  // Enter alone is an answer there
    return true;
  }
  if (view.empty()) return true;
  if (view.front() != '/') {
    SendText(view);
    return true;
  }
  Say(Sanitized(view));  // the command as typed, so the screen reads as a log
  const std::size_t space = view.find(' ');
  const std::string_view cmd = view.substr(0, space);
  const std::string_view arg = space == std::string_view::npos ? "" : view.substr(space + 1);
  return survivor() ? SurvivorCommand(cmd, arg) : CounsellorCommand(cmd, arg);
}

bool Chat::SurvivorCommand(std::string_view cmd, std::string_view /*arg*/) {
  if (cmd == "/exit" || cmd == "/quit") return false;
  if (cmd == "/new") {
    OpenConversation();
  } else if (cmd == "/safety") {
    ShowSafetyNumber();
  } else if (cmd == "/help") {
    Say(kSurvivorHelp);
    Say(std::string("To leave at once and clear the screen: ") + kQuickExitKeys + ".");
  } else {
    Say("That is not a command here. Type /help to see what you can do.");
  }
  return true;
}

bool Chat::CounsellorCommand(std::string_view cmd, std::string_view arg) {
  if (cmd == "/quit" || cmd == "/exit") return false;
  if (cmd == "/queue") {
    ShowQueue();
  } else if (cmd == "/claim") {
    Claim(arg);
  } else if (cmd == "/list") {
    ShowConversations();
  } else if (cmd == "/switch") {
    const ConversationId id = ParseId(arg);
    bool known = false;
    {
      std::lock_guard lock(mu_);
      auto it = states_.find(id);
      known = it != states_.end() && IsOpen(it->second);
      if (known) current_ = id;
    }
    Say(known ? "Now writing to conversation " + Tag(id) + "."
              : "No open conversation with that number (see /list).");
  } else if (cmd == "/close") {
    ConversationId id = arg.empty() ? 0 : ParseId(arg);
    if (arg.empty()) {
      std::lock_guard lock(mu_);
      id = current_;
    }
    if (id == 0) {
      Say("No conversation selected: /close N closes conversation N.");
    } else {
      Close(id);
    }
  } else if (cmd == "/safety") {
    ShowSafetyNumber();
  } else if (cmd == "/presence") {
    SetPresence(arg);
  } else if (cmd == "/colleagues") {
    Colleagues();
  } else if (cmd == "/transfer") {
    Transfer(arg);
  } else if (cmd == "/accept" || cmd == "/decline") {
    AnswerOffer(arg, cmd == "/accept");
  } else if (cmd == "/canned") {
    Canned(arg);
  } else if (cmd == "/referrals") {
    Referrals();
  } else if (cmd == "/card") {
    Card(arg);
  } else if (cmd == "/flag") {
    FlagCurrent(arg);
  } else if (cmd == "/block") {
    BlockCurrent(arg);
  } else if (cmd == "/wrapup") {
    StartWrapUp();
  } else if (cmd == "/load") {
    Load();
  } else if (cmd == "/join") {
    Join(arg);
  } else if (cmd == "/leave") {
    Leave(arg);
  } else if (cmd == "/help") {
    Say(kCounsellorHelp);
    if (supervisor()) Say(kSupervisorHelp);
  } else {
    Say("Unknown command. Type /help for the list.");
  }
  return true;
}

void Chat::SendText(std::string_view text) {
  ConversationId id = 0;
  bool open = false;
  {
    std::lock_guard lock(mu_);
    id = current_;
    auto it = states_.find(id);
    open = id != 0 && (it == states_.end() || IsOpen(it->second));
  }
  if (!open) {
    Say(survivor() ? "This conversation has ended. Type /new to talk to someone again, or "
                     "/exit to leave."
                   : "No conversation selected. Type /queue, then /claim N.");
    return;
  }
  sdk::MessageId message = 0;
  const sdk::Status st = client_->Send(id, text, &message);
  if (!st.ok()) {
    Say("Your message could not be sent: " + Sanitized(st.message()));
    return;
  }
  ShowMessage("You", text);
}

void Chat::OpenConversation() {
  {
    std::lock_guard lock(mu_);
    auto it = states_.find(current_);
    if (current_ != 0 && (it == states_.end() || IsOpen(it->second))) {
      Say("You are already in a conversation.");
      return;
    }
    welcomed_ = false;
  }
  ConversationId id = 0;
  const sdk::Status st = client_->OpenConversation(options_.hints, "", &id);
  if (!st.ok()) {
    Say("Could not start a conversation: " + Sanitized(st.message()));
    return;
  }
  std::lock_guard lock(mu_);
  current_ = id;
}

void Chat::ShowQueue() {
  std::vector<sdk::QueueEntry> entries;
  const sdk::Status st = client_->Queue(&entries);
  if (!st.ok()) {
    Say("The queue is not available: " + Sanitized(st.message()));
    return;
  }
  {
    std::lock_guard lock(mu_);
    queue_size_ = entries.size();
  }
  if (entries.empty()) {
    Say("Nobody is waiting.");
    return;
  }
  // Waiting position: 1 is whoever has waited longest.
  std::vector<std::uint64_t> arrivals;
  for (const auto& e : entries) arrivals.push_back(e.position);
  std::sort(arrivals.begin(), arrivals.end());
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.priority != b.priority ? a.priority > b.priority : a.position < b.position;
  });
  std::string out = "Queue: " + std::to_string(entries.size()) + " waiting";
  for (const auto& e : entries) {
    const auto rank = std::lower_bound(arrivals.begin(), arrivals.end(), e.position) -
                      arrivals.begin() + 1;
    std::string id = Tag(e.conversation);
    id.resize(std::max<std::size_t>(id.size(), 5), ' ');
    out += "\r\n  " + id + "  language: " +
           (e.language.empty() ? std::string("not given") : Sanitized(e.language)) +
           "   priority: " + std::to_string(e.priority) +
           "   waiting position: " + std::to_string(rank) + "   " +
           (e.survivor_online ? "online" : "offline");
  }
  out += "\r\nType /claim N to take conversation N, for example /claim " +
         std::to_string(entries.front().conversation) + ".";
  Say(out);
}

void Chat::ShowConversations() {
  std::vector<sdk::ConversationInfo> list;
  const sdk::Status st = client_->Conversations(&list);
  if (!st.ok()) {
    Say("Conversations are not available: " + Sanitized(st.message()));
    return;
  }
  ConversationId current = 0;
  {
    std::lock_guard lock(mu_);
    current = current_;
  }
  if (list.empty()) {
    Say("No conversations yet.");
    return;
  }
  std::string out = "Your conversations:";
  for (const auto& c : list) {
    out += "\r\n ";
    out += c.conversation == current ? "* " : "  ";
    out += Tag(c.conversation) + "  " + sdk::ToString(c.state) +
           (c.secure ? "  end-to-end encrypted" : "") +
           (c.language.empty() ? "" : "  language: " + Sanitized(c.language)) +
           "  priority: " + std::to_string(c.priority);
  }
  Say(out);
}

void Chat::ShowSafetyNumber() {
  ConversationId id = 0;
  {
    std::lock_guard lock(mu_);
    id = current_;
  }
  if (id == 0) {
    Say("No conversation selected.");
    return;
  }
  std::string number;
  const sdk::Status st = client_->SafetyNumber(id, &number);
  if (st.code() == sdk::Code::kWrongState) {
    Say("The secure session is not set up yet. Try again in a moment.");
  } else if (!st.ok()) {
    Say("No safety number: " + Sanitized(st.message()));
  } else {
    Say("Safety number (read it aloud to compare; it must match on both sides):\r\n  " +
        Sanitized(number));
  }
}

void Chat::Claim(std::string_view arg) {
  const ConversationId id = ParseId(arg);
  if (id == 0) {
    Say("Usage: /claim N, where N is a number from /queue.");
    return;
  }
  {
    std::lock_guard lock(mu_);
    claiming_ = id;
  }
  const sdk::Status st = client_->Claim(id);
  if (!st.ok()) {
    {
      std::lock_guard lock(mu_);
      claiming_ = 0;
    }
    Say("Could not take conversation " + Tag(id) + ": " + Sanitized(st.message()));
    return;
  }
  Say("Taking conversation " + Tag(id) + "...");
}

void Chat::Close(ConversationId id) {
  const sdk::Status st = client_->CloseConversation(id);
  if (!st.ok()) Say("Could not close " + Tag(id) + ": " + Sanitized(st.message()));
}

// ---------------------------------------------------------------- workflow

// The first word of `arg`, and the rest (trimmed) in `rest`.
std::string_view FirstWord(std::string_view arg, std::string_view* rest) {
  while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
  const std::size_t space = arg.find(' ');
  const std::string_view word = arg.substr(0, space);
  std::string_view after = space == std::string_view::npos ? std::string_view() : arg.substr(space);
  while (!after.empty() && after.front() == ' ') after.remove_prefix(1);
  if (rest != nullptr) *rest = after;
  return word;
}

ConversationId Chat::CurrentOpen() {
  ConversationId id = 0;
  bool open = false;
  {
    std::lock_guard lock(mu_);
    id = current_;
    auto it = states_.find(id);
    open = id != 0 && it != states_.end() && IsOpen(it->second);
  }
  if (!open) {
    Say("No conversation selected. Type /list, then /switch N (or /queue, then /claim N).");
    return 0;
  }
  return id;
}

bool Chat::GetHelpline(sdk::HelplineInfo* out) {
  const sdk::Status st = client_->Helpline(out);
  if (!st.ok()) {
    Say("The helpline's configuration has not arrived yet (it comes once this device is "
        "enrolled and connected). Try again in a moment.");
    return false;
  }
  return true;
}

void Chat::SetPresence(std::string_view arg) {
  std::string_view rest;
  const std::string_view word = FirstWord(arg, &rest);
  sdk::Presence presence{};
  if (word == "available") {
    presence = sdk::Presence::kAvailable;
  } else if (word == "busy") {
    presence = sdk::Presence::kBusy;
  } else if (word == "away") {
    presence = sdk::Presence::kAway;
  } else {
    Say("Usage: /presence available|busy|away [languages], for example /presence available en es");
    return;
  }
  std::vector<std::string> languages;
  while (!rest.empty()) languages.emplace_back(FirstWord(rest, &rest));
  std::string shown;
  for (const auto& l : languages) shown += " " + Sanitized(l);
  const sdk::Status st = client_->SetPresence(presence, std::move(languages));
  if (!st.ok()) {
    Say("Could not set your presence: " + Sanitized(st.message()));
    return;
  }
  Say("You are " + std::string(word) + "; your queue shows " +
      (shown.empty() ? std::string("every language") : "these languages:" + shown) + ".");
}

void Chat::Colleagues() {
  {
    std::lock_guard lock(mu_);
    colleagues_wanted_ = true;
  }
  const sdk::Status st = client_->RefreshColleagues();
  if (!st.ok()) {
    {
      std::lock_guard lock(mu_);
      colleagues_wanted_ = false;
    }
    Say("The list of colleagues is not available: " + Sanitized(st.message()));
  }
}

void Chat::Transfer(std::string_view arg) {
  std::string_view rest;
  const std::string_view target = FirstWord(arg, &rest);
  if (target.empty()) {
    Say("Usage: /transfer queue [language], or /transfer ID [warm] [note] (ID from /colleagues).");
    return;
  }
  const ConversationId id = CurrentOpen();
  if (id == 0) return;
  if (target == "queue") {
    std::string_view more;
    const std::string_view language = FirstWord(rest, &more);
    if (!more.empty()) {
      Say("Usage: /transfer queue [language], for example /transfer queue es");
      return;
    }
    const sdk::Status st = client_->TransferToQueue(id, language);
    if (!st.ok()) {
      Say("Could not transfer " + Tag(id) + ": " + Sanitized(st.message()));
      return;
    }
    Say("Sending conversation " + Tag(id) + " back to the queue" +
        (language.empty() ? std::string() : " for language " + Sanitized(language)) + "...");
    return;
  }
  // A colleague, by the first characters of their id.
  std::vector<sdk::Colleague> list;
  client_->Colleagues(&list);
  std::vector<const sdk::Colleague*> matches;
  for (const auto& c : list) {
    if (c.id.size() >= target.size() && std::string_view(c.id).substr(0, target.size()) == target) {
      matches.push_back(&c);
    }
  }
  if (matches.empty()) {
    Say("No colleague online has an id starting with " + Sanitized(target) +
        ". Type /colleagues to see who is online.");
    return;
  }
  if (matches.size() > 1) {
    Say("More than one colleague's id starts with " + Sanitized(target) +
        ": type more of it (see /colleagues).");
    return;
  }
  std::string_view note;
  const std::string_view mode = FirstWord(rest, &note);
  const bool warm = mode == "warm";
  if (!warm && !rest.empty()) {
    Say("A handoff note travels only with a warm transfer: /transfer " + Sanitized(target) +
        " warm NOTE (your colleague accepts first and reads the note).");
    return;
  }
  const std::string colleague = Sanitized(matches.front()->id.substr(0, 8));
  const sdk::Status st = client_->TransferToColleague(id, matches.front()->id, warm, note);
  if (!st.ok()) {
    Say("Could not transfer " + Tag(id) + ": " + Sanitized(st.message()));
    return;
  }
  if (warm) {
    Say("Offered conversation " + Tag(id) + " to colleague " + colleague +
        (note.empty() ? std::string(" (no note)") : std::string(" with your handoff note")) +
        ". Keep talking until they accept.");
  } else {
    Say("Handing conversation " + Tag(id) + " to colleague " + colleague + "...");
  }
}

void Chat::AnswerOffer(std::string_view arg, bool accept) {
  ConversationId id = arg.empty() ? 0 : ParseId(arg);
  {
    std::lock_guard lock(mu_);
    if (arg.empty() && offers_.size() == 1) id = offers_.front();
    const auto it = std::find(offers_.begin(), offers_.end(), id);
    if (id == 0 || it == offers_.end()) {
      id = 0;
    } else {
      offers_.erase(it);
      if (accept) accepting_ = id;
    }
  }
  if (id == 0) {
    Say(std::string("No such transfer offer. Usage: ") + (accept ? "/accept N" : "/decline N") +
        ", with N from the offer.");
    return;
  }
  const sdk::Status st = client_->AnswerTransfer(id, accept);
  if (!st.ok()) {
    {
      std::lock_guard lock(mu_);
      if (accepting_ == id) accepting_ = 0;
    }
    Say("Could not answer the offer for " + Tag(id) + ": " + Sanitized(st.message()));
    return;
  }
  Say(accept ? "Taking conversation " + Tag(id) + "..."
             : "You declined conversation " + Tag(id) + ": it stays with your colleague.");
}

void Chat::Canned(std::string_view arg) {
  sdk::HelplineInfo info;
  if (!GetHelpline(&info)) return;
  const std::string_view which = FirstWord(arg, nullptr);
  if (which.empty()) {
    if (info.canned_responses.empty()) {
      Say("This helpline has no canned responses.");
      return;
    }
    std::string out = "Canned responses (/canned ID sends one to the current conversation):";
    for (std::size_t i = 0; i < info.canned_responses.size(); ++i) {
      const auto& c = info.canned_responses[i];
      std::string text = c.text.substr(0, 90);
      if (text.size() < c.text.size()) text += "...";
      out += "\r\n  " + std::to_string(i + 1) + "  " + Sanitized(c.id) + ": ";
      SanitizeForTerminal(text, 6, &out);
    }
    Say(out);
    return;
  }
  const ConversationId n = ParseId(which);
  const auto it = std::find_if(info.canned_responses.begin(), info.canned_responses.end(),
                               [&](const auto& c) { return c.id == which; });
  const sdk::HelplineInfo::Entry* entry = nullptr;
  if (it != info.canned_responses.end()) {
    entry = &*it;
  } else if (n >= 1 && n <= info.canned_responses.size()) {
    entry = &info.canned_responses[n - 1];
  }
  if (entry == nullptr) {
    Say("No canned response " + Sanitized(which) + ". Type /canned for the list.");
    return;
  }
  SendText(entry->text);
}

void Chat::Referrals() {
  sdk::HelplineInfo info;
  if (!GetHelpline(&info)) return;
  if (info.referrals.empty()) {
    Say("This helpline's referral directory is empty.");
    return;
  }
  std::string out = "Referral directory (/card ID sends one to the current conversation):";
  for (std::size_t i = 0; i < info.referrals.size(); ++i) {
    const auto& r = info.referrals[i];
    std::string langs;
    for (const auto& l : r.languages) langs += " " + Sanitized(l);
    out += "\r\n  " + std::to_string(i + 1) + "  " + Sanitized(r.id) + "  " +
           Sanitized(r.card.service) + ": " + Sanitized(r.card.name) + " (" +
           Sanitized(r.card.region) + "; languages:" + langs + ")";
  }
  Say(out);
}

void Chat::Card(std::string_view arg) {
  sdk::HelplineInfo info;
  if (!GetHelpline(&info)) return;
  const std::string_view which = FirstWord(arg, nullptr);
  const ConversationId n = ParseId(which);
  const auto it = std::find_if(info.referrals.begin(), info.referrals.end(),
                               [&](const auto& r) { return r.id == which; });
  const sdk::HelplineInfo::Referral* ref = nullptr;
  if (it != info.referrals.end()) {
    ref = &*it;
  } else if (n >= 1 && n <= info.referrals.size()) {
    ref = &info.referrals[n - 1];
  }
  if (ref == nullptr) {
    Say(which.empty() ? std::string("Usage: /card ID, with an id from /referrals.")
                      : "No referral " + Sanitized(which) + ". Type /referrals for the list.");
    return;
  }
  const ConversationId id = CurrentOpen();
  if (id == 0) return;
  sdk::MessageId message = 0;
  const sdk::Status st = client_->SendResourceCard(id, ref->id, &message);
  if (!st.ok()) {
    Say("Could not send the card: " + Sanitized(st.message()));
    return;
  }
  {
    std::lock_guard lock(mu_);
    auto& sent = cards_sent_[id];
    if (std::find(sent.begin(), sent.end(), ref->id) == sent.end()) sent.push_back(ref->id);
  }
  Say("You sent a card: " + Sanitized(ref->card.name) + " (" + Sanitized(ref->card.service) +
      ").");
}

void Chat::FlagCurrent(std::string_view arg) {
  const std::string_view which = FirstWord(arg, nullptr);
  bool risk = false, minor = false;
  if (which == "risk") {
    risk = true;
  } else if (which == "minor") {
    minor = true;
  } else if (which == "both") {
    risk = minor = true;
  } else if (which != "none") {
    Say("Usage: /flag risk|minor|both|none");
    return;
  }
  const ConversationId id = CurrentOpen();
  if (id == 0) return;
  const sdk::Status st = client_->Flag(id, risk, minor);
  if (!st.ok()) {
    Say("Could not flag " + Tag(id) + ": " + Sanitized(st.message()));
    return;
  }
  if (!risk && !minor) {
    Say("Conversation " + Tag(id) + ": flags cleared.");
  } else {
    Say("Conversation " + Tag(id) + " flagged: " +
            (risk && minor ? "high risk and minor" : risk ? "high risk" : "minor") +
            ". Supervisors are alerted (they see the flag, never the conversation).",
        Style::kNotice);
  }
}

void Chat::BlockCurrent(std::string_view arg) {
  std::string_view reason;
  const std::string_view hours_text = FirstWord(arg, &reason);
  unsigned hours = 0;
  const auto [end, ec] =
      std::from_chars(hours_text.data(), hours_text.data() + hours_text.size(), hours);
  if (ec != std::errc() || end != hours_text.data() + hours_text.size() || hours == 0 ||
      reason.empty()) {
    Say("Usage: /block HOURS REASON, for example /block 24 abusive messages. The reason is "
        "sealed to the helpline key.");
    return;
  }
  const ConversationId id = CurrentOpen();
  if (id == 0) return;
  const sdk::Status st = client_->Block(id, hours, reason);
  if (!st.ok()) {
    Say("Could not block: " + Sanitized(st.message()));
    return;
  }
  Say("Blocking this contact for " + std::to_string(hours) +
      " hours; conversation " + Tag(id) + " closes.");
}

void Chat::StartWrapUp() {
  const ConversationId id = CurrentOpen();
  if (id == 0) return;
  if (!options_.client.helpline_public_key) {
    Say("A wrap-up is sealed to the helpline key: start haven-chat with --helpline-key.");
    return;
  }
  sdk::HelplineInfo info;
  if (!GetHelpline(&info)) return;
  std::vector<std::string> sent;
  {
    std::lock_guard lock(mu_);
    auto it = cards_sent_.find(id);
    if (it != cards_sent_.end()) sent = it->second;
  }
  form_ = std::make_unique<WrapUpForm>(std::move(info.categories), std::move(info.referrals),
                                       std::move(sent));
  form_conversation_ = id;
  Say("Wrap-up for conversation " + Tag(id) +
          ". Answer with the keyboard; /cancel stops without closing. The conversation stays "
          "open (and messages still appear) until you confirm at the end.",
      Style::kNotice);
  Say(form_->Prompt());
  term_.SetPrompt("wrap-up> ");
}

void Chat::WrapUpAnswer(std::string_view line) {
  Say("wrap-up> " + Sanitized(line));
  std::string reply;
  const WrapUpForm::Result r = form_->Answer(line, &reply);
  const ConversationId id = form_conversation_;
  if (r == WrapUpForm::Result::kNext) {
    if (!reply.empty()) {
      const bool correction = reply.rfind("Please", 0) == 0 || reply.rfind("Not in", 0) == 0 ||
                              reply.rfind("That note", 0) == 0 || reply.rfind("At most", 0) == 0;
      Say(correction ? reply : "  " + reply + "  ", correction ? Style::kPlain : Style::kAlert);
    }
    Say(form_->Prompt());
    return;
  }
  term_.SetPrompt("> ");
  if (r == WrapUpForm::Result::kCancelled) {
    form_.reset();
    Say("Wrap-up cancelled: nothing was recorded, and conversation " + Tag(id) +
        " is still open.");
    return;
  }
  const sdk::Status st = client_->CloseWithWrapUp(id, form_->wrapup());
  form_.reset();
  if (!st.ok()) {
    Say("Could not close with this wrap-up: " + Sanitized(st.message()));
    return;
  }
  Say("The wrap-up is sealed to the helpline key and sent. Closing conversation " + Tag(id) +
      "...");
}

void Chat::Join(std::string_view arg) {
  const ConversationId id = ParseId(arg);
  if (!supervisor() || id == 0) {
    Say(supervisor() ? "Usage: /join N, where N is a conversation number from an alert."
                     : "/join is for supervisors.");
    return;
  }
  {
    std::lock_guard lock(mu_);
    joining_ = id;
  }
  const sdk::Status st = client_->JoinConversation(id);
  if (!st.ok()) {
    {
      std::lock_guard lock(mu_);
      joining_ = 0;
    }
    Say("Could not join conversation " + Tag(id) + ": " + Sanitized(st.message()));
    return;
  }
  Say("Joining conversation " + Tag(id) + "...");
}

void Chat::Leave(std::string_view arg) {
  ConversationId id = arg.empty() ? 0 : ParseId(arg);
  if (arg.empty()) {
    std::lock_guard lock(mu_);
    id = current_;
  }
  const sdk::Status st = client_->LeaveConversation(id);
  if (!st.ok()) Say("Could not leave: " + Sanitized(st.message()));
}

void Chat::Load() {
  if (!supervisor()) {
    Say("/load is for supervisors.");
    return;
  }
  const sdk::Status st = client_->RefreshLoad();
  if (!st.ok()) Say("The load is not available: " + Sanitized(st.message()));
}

// ---------------------------------------------------------------- leaving

// The quick-exit key: the screen first (what someone in the room would see),
// then the SDK's wipe, which never waits on the network.
int Chat::QuickExit() {
  term_.WipeScreen();
  live_.store(nullptr);
  const auto notice = options_.client.quick_exit_notice_timeout;
  const auto notice_deadline = std::chrono::steady_clock::now() + notice;
  client_->QuickExit();
  // Whatever happens below, the process ends soon: the wipe is done and the
  // screen is blank, so a slow shutdown must not keep the program around.
  std::thread([notice] {
    std::this_thread::sleep_for(notice + std::chrono::seconds(2));
    std::_Exit(0);
  }).detach();
  {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, notice_deadline, [&] { return quick_exit_completed_; });
    states_.clear();
  }
  // ~Client lets the SDK's notice to the server out first (so that the
  // counsellor hears "left quickly", not "connection lost"), bounded by
  // quick_exit_notice_timeout. The screen is blank meanwhile.
  client_.reset();
  return 0;
}

// /exit: a goodbye the counsellor sees as such. The screen is cleared at
// once; the goodbye then has a moment to reach the server.
int Chat::LeaveSurvivor() {
  term_.WipeScreen();
  ConversationId id = 0;
  {
    std::lock_guard lock(mu_);
    auto it = states_.find(current_);
    if (current_ != 0 && (it == states_.end() || IsOpen(it->second))) id = current_;
  }
  if (id != 0 && client_->CloseConversation(id).ok()) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(2), [&] {
      auto it = states_.find(id);
      return it != states_.end() && !IsOpen(it->second);
    });
  }
  live_.store(nullptr);
  client_.reset();
  return 0;
}

int Chat::LeaveCounsellor() {
  live_.store(nullptr);
  client_.reset();
  term_.Finish();
  return 0;
}

int Chat::Run() {
  if (survivor()) {
    Say(std::string("To leave at once and clear this screen, press ") + kQuickExitKeys +
            ". Type /help for more.",
        Style::kNotice);
    Say("Connecting...");
  } else {
    Say(supervisor() ? "Supervisor console. Type /help for the commands."
                     : "Counsellor console. Type /help for the commands.");
    Say("Connecting to the server...");
  }

  std::unique_ptr<sdk::Client> client;
  const sdk::Status st = sdk::Client::Create(
      options_.client, [this](const sdk::Event& e) { OnEvent(e); }, &client);
  if (!st.ok()) {
    term_.Finish();
    std::string msg = "haven-chat: could not start: " + Sanitized(st.message()) + "\n";
    std::fputs(msg.c_str(), stderr);
    return 1;
  }
  client_ = std::move(client);
  live_.store(client_.get());

  if (survivor()) {
    OpenConversation();
  } else {
    if (!options_.invite.empty()) {
      const sdk::Status r = client_->RedeemInvitation(options_.invite);
      Wipe(&options_.invite);
      if (!r.ok()) Say("The invitation was not accepted: " + Sanitized(r.message()));
    }
    RefreshQueue();  // events that came before Create() returned
  }

  for (;;) {
    InputEvent in = term_.Next();
    switch (in.type) {
      case InputEvent::Type::kLine: {
        const bool keep_going = HandleLine(in.line);
        Wipe(&in.line);
        if (!keep_going) return survivor() ? LeaveSurvivor() : LeaveCounsellor();
        break;
      }
      case InputEvent::Type::kQuickExit:
        if (survivor()) return QuickExit();
        break;  // a counsellor has no quick exit; the key does nothing
      case InputEvent::Type::kInterrupt:
        // Ctrl-C in a panic must not leave the conversation on the screen.
        if (survivor()) return QuickExit();
        return LeaveCounsellor();
      case InputEvent::Type::kHangUp:
        // The terminal closed or the process is being stopped: a survivor's
        // session is wiped as by the key.
        if (survivor()) return QuickExit();
        return LeaveCounsellor();
      case InputEvent::Type::kEndOfInput:
        return survivor() ? LeaveSurvivor() : LeaveCounsellor();
    }
  }
}

}  // namespace

int RunChat(ChatOptions options) {
  Terminal term;
  Chat chat(std::move(options), term);
  return chat.Run();
}

}  // namespace haven::chat
