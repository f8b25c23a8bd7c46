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
#include <vector>

#include "terminal.h"

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
    "  /close       close the current conversation\r\n"
    "  /safety      the safety number of the current conversation\r\n"
    "  /quit        leave\r\n"
    "Anything else you type is sent to the current conversation.";

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

  void Say(std::string_view text, Style style = Style::kPlain) { term_.Print(text, style); }
  void ShowMessage(std::string_view label, std::string_view text);
  void OnEvent(const sdk::Event& e);
  void OnConnection(ConnectionState s);
  void OnConversation(ConversationId id, ConversationState s);
  void OnRequestFailed(const sdk::Event& e);
  void RefreshQueue();

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
  std::map<ConversationId, ConversationState> states_;
  std::size_t queue_size_ = 0;
  bool ever_online_ = false;
  bool drop_announced_ = false;
  bool welcomed_ = false;
  bool quick_exit_completed_ = false;
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
    case EventType::kHelplineConfigReceived:
    case EventType::kColleaguesChanged:
    case EventType::kTransferOffered:
    case EventType::kTransferAnswered:
    case EventType::kSupervisorAlert:
    case EventType::kLoadChanged:
    case EventType::kCounsellorChanging:
    case EventType::kResourceCardReceived:
      return;  // the counsellor workflow's events: not shown by haven-chat yet
    case EventType::kConnectionChanged: return OnConnection(e.connection);
    case EventType::kConversationChanged: return OnConversation(e.conversation, e.state);
    case EventType::kMessageReceived: {
      if (survivor()) return ShowMessage("Counsellor", e.text);
      bool current = false;
      {
        std::lock_guard lock(mu_);
        current = e.conversation == current_;
      }
      return ShowMessage(current ? "Survivor" : "Survivor (" + Tag(e.conversation) + ")", e.text);
    }
    case EventType::kMessageSent: return;  // the normal case needs no words
    case EventType::kQueueChanged: return RefreshQueue();
    case EventType::kRequestFailed: return OnRequestFailed(e);
    case EventType::kEnrolled:
      return Say("This device is enrolled. You will see here when someone is waiting.");
    case EventType::kSecureSessionReady:
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
  switch (s) {
    case ConversationState::kActive:
      if (before == ConversationState::kConnectionLost) {
        Say("They are back (" + tag + ").", Style::kNotice);
      } else if (became_current) {
        Say("You are now talking with the survivor in conversation " + tag +
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
      Say("Conversation " + tag + " is now with a colleague.");
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

// ---------------------------------------------------------------- input

bool Chat::HandleLine(std::string& line) {
  std::string_view view = line;
  while (!view.empty() && view.back() == ' ') view.remove_suffix(1);
  while (!view.empty() && view.front() == ' ') view.remove_prefix(1);
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
  } else if (cmd == "/help") {
    Say(kCounsellorHelp);
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
    Say("Counsellor console. Type /help for the commands.");
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
