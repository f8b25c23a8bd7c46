// haven-chat as people use it: a counsellor and a survivor, each typing into
// a real terminal (a private tmux server), against a real havend on
// 127.0.0.1. The counsellor sees the queue entry and claims it, messages
// appear on the other screen both ways, then the survivor presses the
// quick-exit key: their terminal, scrollback included, shows nothing of the
// conversation (nor of Haven), their process has ended with status 0, and the
// counsellor sees the "left quickly" banner at once.
//
// tmux is required. Without it the test fails, unless HAVEN_ALLOW_NO_TMUX is
// set, in which case it is skipped. HAVEN_CHAT_SHOW_PANES=1 prints the
// terminals (scrollback included) at the end.
//
// Two more tests drive the counsellor workflow (see their comments below).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "haven/noise/primitives.h"
#include "support/havend_process.h"

namespace haven {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::HavendProcess;

struct CommandResult {
  int exit_code = -1;  // -1: did not start, was killed, or timed out
  std::string output;  // stdout and stderr
};

// Runs a program (no shell involved) and collects its output.
CommandResult RunCommand(const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = 10s) {
  CommandResult result;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return result;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return result;
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::unsetenv("TMUX");  // never talk to a tmux the test may itself run in
    if (::getenv("TERM") == nullptr) ::setenv("TERM", "xterm-256color", 1);
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) break;
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // end of output: the program is done
    result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (Clock::now() < deadline && ::waitpid(pid, &status, WNOHANG) == 0) {
    std::this_thread::sleep_for(5ms);
  }
  if (::waitpid(pid, &status, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return result;
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \r\n\t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \r\n\t") - first + 1);
}

// A private tmux server (its own socket), killed when this goes out of scope,
// whatever happened in the test.
class Tmux {
 public:
  Tmux()
      : socket_("haven-chat-test-" + std::to_string(::getpid()) + "-" +
                std::to_string(Clock::now().time_since_epoch().count())) {}
  ~Tmux() {
    if (!started_) return;
    Run({"kill-server"});
    if (!socket_path_.empty()) std::filesystem::remove(socket_path_);
  }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;

  CommandResult Run(const std::vector<std::string>& args) {
    std::vector<std::string> full = {"tmux", "-L", socket_, "-f", "/dev/null"};
    full.insert(full.end(), args.begin(), args.end());
    return RunCommand(full);
  }

  // A session whose first window is `window`; every window runs a plain
  // POSIX shell with a neutral prompt, as a person's terminal would.
  bool Start(const std::string& window, const std::string& home) {
    started_ = true;
    const CommandResult r = Run({"new-session", "-d", "-s", "chat", "-n", window, "-x", "160",
                                 "-y", "50", Shell(home)});
    if (r.exit_code != 0) {
      ADD_FAILURE() << "tmux new-session failed: " << r.output;
      return false;
    }
    socket_path_ = Trim(Run({"display-message", "-p", "#{socket_path}"}).output);
    // A shell that dies keeps its pane, so that a failure can be read.
    Run({"set-option", "-g", "remain-on-exit", "on"});
    Run({"set-option", "-g", "history-limit", "10000"});
    return true;
  }

  bool AddWindow(const std::string& window, const std::string& home) {
    const CommandResult r = Run({"new-window", "-d", "-t", "chat", "-n", window, Shell(home)});
    if (r.exit_code != 0) ADD_FAILURE() << "tmux new-window failed: " << r.output;
    return r.exit_code == 0;
  }

  // Types `text` (literally) and presses Enter.
  void Type(const std::string& window, const std::string& text) {
    Run({"send-keys", "-t", Target(window), "-l", text});
    Run({"send-keys", "-t", Target(window), "Enter"});
  }
  void Keys(const std::string& window, const std::vector<std::string>& keys) {
    std::vector<std::string> args = {"send-keys", "-t", Target(window)};
    args.insert(args.end(), keys.begin(), keys.end());
    Run(args);
  }

  // The visible screen, or with `history` the whole scrollback too. Wrapped
  // lines are joined.
  std::string Capture(const std::string& window, bool history = false) {
    std::vector<std::string> args = {"capture-pane", "-p", "-J", "-t", Target(window)};
    if (history) args.insert(args.end(), {"-S", "-", "-E", "-"});
    return Run(args).output;
  }

  // Polls the screen (with `history`, the scrollback too) until it shows
  // `needle`. Returns the last capture in `out`.
  bool WaitFor(const std::string& window, const std::string& needle,
               std::chrono::milliseconds timeout, std::string* out = nullptr,
               bool history = false) {
    const auto deadline = Clock::now() + timeout;
    std::string screen;
    do {
      screen = Capture(window, history);
      if (screen.find(needle) != std::string::npos) {
        if (out != nullptr) *out = screen;
        return true;
      }
      std::this_thread::sleep_for(40ms);
    } while (Clock::now() < deadline);
    if (out != nullptr) *out = screen;
    return false;
  }

 private:
  std::string Target(const std::string& window) const { return "chat:" + window; }
  static std::string Shell(const std::string& home) {
    return "env -i PATH=/usr/bin:/bin HOME=" + home +
           " TERM=tmux-256color LANG=C.UTF-8 PS1='$ ' /bin/sh";
  }

  std::string socket_;
  std::string socket_path_;  // removed at the end: kill-server leaves it behind
  bool started_ = false;
};

bool TmuxAvailable() { return RunCommand({"tmux", "-V"}).exit_code == 0; }

std::string Hex(const noise::PublicKey& key) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto b : key) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

std::string ReadSmallFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr const char* kCounsellor = "counsellor";
constexpr const char* kSurvivor = "survivor";

// Every test drives haven-chat through tmux: without tmux the test fails
// (it must not pass by doing nothing), unless HAVEN_ALLOW_NO_TMUX is set.
class HavenChatTmux : public ::testing::Test {
 protected:
  void SetUp() override {
    if (TmuxAvailable()) return;
    if (::getenv("HAVEN_ALLOW_NO_TMUX") != nullptr) {
      GTEST_SKIP() << "tmux is not installed (HAVEN_ALLOW_NO_TMUX is set)";
    }
    FAIL() << "tmux is not installed: this test drives haven-chat through it "
              "(install tmux, or set HAVEN_ALLOW_NO_TMUX=1 to skip)";
  }
  void TearDown() override {
    std::error_code ec;
    if (!home_.empty()) std::filesystem::remove_all(home_, ec);
  }

  // A havend with the shipped helpline configuration, a home directory for
  // the panes, and the options every haven-chat needs. The helpline key
  // pair: havend --init does not create it (the private half stays with the
  // helpline, offline); wrap-ups and block reasons are sealed to the public
  // half, which counsellors are given.
  void StartWithHelpline(const std::string& tag) {
    const std::string helpline_config = std::string(HAVEN_SOURCE_DIR) + "/config/helpline.toml";
    server_ = HavendProcess::Start("[files]\nhelpline = \"" + helpline_config + "\"\n");
    ASSERT_NE(server_, nullptr);
    home_ = testing::MakeTempDir(tag);
    common_ = std::string(" --port ") + std::to_string(server_->port()) + " --server-key " +
              Hex(server_->server_key());
    staff_ = common_ + " --helpline-key " + Hex(helpline_.public_key);
  }

  std::unique_ptr<HavendProcess> server_;
  noise::KeyPair helpline_ = noise::KeyPair::Generate();
  std::filesystem::path home_;
  std::string common_, staff_;
};

TEST_F(HavenChatTmux, ConversationThenQuickExit) {
  auto server = HavendProcess::Start();
  ASSERT_NE(server, nullptr);
  const std::string invite = server->Enrol("counsellor");
  ASSERT_FALSE(invite.empty());
  const auto home = testing::MakeTempDir("chat");
  struct RemoveAtEnd {
    std::filesystem::path dir;
    ~RemoveAtEnd() { std::filesystem::remove_all(dir); }
  } remove_home{home};
  const std::string exit_file = (home / "survivor-exit-status").string();
  const std::string common = std::string(" --port ") + std::to_string(server->port()) +
                             " --server-key " + Hex(server->server_key());

  Tmux tmux;
  ASSERT_TRUE(tmux.Start(kCounsellor, home.string()));
  ASSERT_TRUE(tmux.AddWindow(kSurvivor, home.string()));
  std::string counsellor_screen, survivor_screen;
  auto panes = [&] {
    return "\n--- counsellor pane ---\n" + tmux.Capture(kCounsellor, true) +
           "\n--- survivor pane ---\n" + tmux.Capture(kSurvivor, true) + "\n--- havend ---\n" +
           server->Output();
  };
  ASSERT_TRUE(tmux.WaitFor(kCounsellor, "$", 5s)) << panes();
  ASSERT_TRUE(tmux.WaitFor(kSurvivor, "$", 5s)) << panes();

  // The counsellor starts the console with their invitation.
  tmux.Type(kCounsellor, std::string(HAVEN_CHAT_PATH) + " --counsellor" + common + " --invite " +
                             invite);
  ASSERT_TRUE(tmux.WaitFor(kCounsellor, "This device is enrolled", 20s)) << panes();

  // The survivor starts theirs (and the shell records how it ended).
  tmux.Type(kSurvivor, std::string(HAVEN_CHAT_PATH) + " --survivor" + common +
                           " --language en --priority 3; echo $? > " + exit_file);
  ASSERT_TRUE(tmux.WaitFor(kSurvivor, "You are connected. A counsellor will join soon.", 20s))
      << panes();
  ASSERT_TRUE(tmux.WaitFor(kSurvivor, "Type a message and press Enter.", 5s)) << panes();

  // The counsellor hears that someone waits, looks at the queue, claims.
  ASSERT_TRUE(tmux.WaitFor(kCounsellor, "Someone is waiting", 15s)) << panes();
  tmux.Type(kCounsellor, "/queue");
  ASSERT_TRUE(tmux.WaitFor(kCounsellor, "Type /claim N", 5s, &counsellor_screen)) << panes();
  std::smatch m;
  const std::regex entry(
      R"(#(\d+)\s+language: en\s+priority: 3\s+waiting position: 1\s+online)");
  ASSERT_TRUE(std::regex_search(counsellor_screen, m, entry)) << panes();
  const std::string number = m[1].str();
  tmux.Type(kCounsellor, "/claim " + number);
  ASSERT_TRUE(tmux.WaitFor(kCounsellor, "You are now talking with the survivor in conversation #" +
                                            number,
                           15s))
      << panes();
  ASSERT_TRUE(tmux.WaitFor(kSurvivor, "A counsellor has joined. You can talk now.", 15s))
      << panes();

  // Messages, both ways, each shown on the other screen.
  const std::string from_survivor = "is anyone there? violet-lantern-2291";
  const std::string from_counsellor = "Yes, I am here. copper-meadow-5730";
  tmux.Type(kSurvivor, from_survivor);
  ASSERT_TRUE(tmux.WaitFor(kSurvivor, "You: " + from_survivor, 5s)) << panes();
  ASSERT_TRUE(tmux.WaitFor(kCounsellor, "Survivor: " + from_survivor, 15s)) << panes();
  tmux.Type(kCounsellor, from_counsellor);
  ASSERT_TRUE(tmux.WaitFor(kSurvivor, "Counsellor: " + from_counsellor, 15s)) << panes();

  // The survivor has started typing something else when they must leave.
  const std::string half_typed = "wait, someone is com";
  tmux.Keys(kSurvivor, {"-l", half_typed});
  ASSERT_TRUE(tmux.WaitFor(kSurvivor, "> " + half_typed, 5s)) << panes();

  // Quick exit: Esc twice.
  const auto pressed = Clock::now();
  tmux.Keys(kSurvivor, {"Escape", "Escape"});

  // The counsellor is told at once, with the distinct banner.
  ASSERT_TRUE(tmux.WaitFor(kCounsellor, "They used quick exit: they may not be safe right now.",
                           2s, &counsellor_screen))
      << "no quick-exit banner within 2 s of the key" << panes();
  const auto banner_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - pressed).count();
  std::cout << "[ haven-chat ] counsellor banner " << banner_ms << " ms after the key\n";
  EXPECT_NE(counsellor_screen.find("Do not try to re-contact unless a safe way was agreed."),
            std::string::npos)
      << counsellor_screen;
  EXPECT_EQ(counsellor_screen.find("Connection lost"), std::string::npos)
      << "a quick exit must not look like a lost connection\n"
      << counsellor_screen;

  // The survivor's haven-chat has ended, with status 0...
  const auto deadline = Clock::now() + 5s;
  std::string status;
  while (Clock::now() < deadline) {
    status = Trim(ReadSmallFile(exit_file));
    if (!status.empty()) break;
    std::this_thread::sleep_for(40ms);
  }
  EXPECT_EQ(status, "0") << "haven-chat did not exit (or not with 0) after the quick-exit key"
                         << panes();
  const auto exit_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - pressed).count();
  std::cout << "[ haven-chat ] survivor process ended " << exit_ms << " ms after the key\n";

  // ...and their terminal shows a shell prompt and nothing else, in the
  // scrollback too: no message, no label, not even the command line that
  // named the program.
  std::string history;
  const auto settle = Clock::now() + 3s;
  do {
    history = tmux.Capture(kSurvivor, true);
    if (Trim(history) == "$") break;
    std::this_thread::sleep_for(40ms);
  } while (Clock::now() < settle);
  EXPECT_EQ(Trim(history), "$") << "the survivor's terminal still shows something:\n" << history;
  const std::string lower = Lower(history);
  for (const std::string& secret :
       {from_survivor, from_counsellor, half_typed, std::string("violet"),
        std::string("copper"), std::string("haven"), std::string("counsellor"),
        std::string("survivor"), std::string("quick exit"), invite}) {
    EXPECT_EQ(lower.find(Lower(secret)), std::string::npos)
        << "'" << secret << "' is still in the survivor's terminal:\n"
        << history;
  }
  // The counsellor's own screen keeps the conversation (they need it).
  const std::string counsellor_history = tmux.Capture(kCounsellor, true);
  EXPECT_NE(counsellor_history.find("Survivor: " + from_survivor), std::string::npos);

  if (::getenv("HAVEN_CHAT_SHOW_PANES") != nullptr) std::cout << panes() << "\n";

  // The counsellor leaves normally.
  tmux.Type(kCounsellor, "/quit");
  EXPECT_TRUE(tmux.WaitFor(kCounsellor, "/quit\n$", 5s)) << panes();
}


// The counsellor workflow on four screens: a supervisor, two counsellors (A
// and B) and a survivor, against a havend started with the example helpline
// configuration (config/helpline.toml). A claims; A and the survivor talk; A
// sends a resource card (the survivor reads it as plain text); A flags the
// conversation as a minor (the supervisor is alerted, with no content); the
// supervisor looks at the load; A offers a warm transfer to B with a handoff
// note (B reads it, labelled as the colleague's); B accepts; the survivor is
// told that another counsellor is joining; B and the survivor talk (A, locked
// out, sees neither message); B runs the keyboard-only wrap-up and the
// conversation closes.
constexpr const char* kSupervisor = "supervisor";
constexpr const char* kCounsellorA = "counsellor-a";
constexpr const char* kCounsellorB = "counsellor-b";

TEST_F(HavenChatTmux, CounsellorWorkflowTransferWrapUpAndSupervisor) {
  ASSERT_NO_FATAL_FAILURE(StartWithHelpline("chat-workflow"));
  auto& server = server_;
  const std::string supervisor_invite = server->Enrol("supervisor");
  const std::string a_invite = server->Enrol("counsellor");
  const std::string b_invite = server->Enrol("counsellor");
  ASSERT_FALSE(supervisor_invite.empty());
  ASSERT_FALSE(a_invite.empty());
  ASSERT_FALSE(b_invite.empty());
  const auto& home = home_;
  const std::string chat = HAVEN_CHAT_PATH;
  const std::string& common = common_;
  const std::string& staff = staff_;

  Tmux tmux;
  ASSERT_TRUE(tmux.Start(kSupervisor, home.string()));
  for (const char* w : {kCounsellorA, kCounsellorB, kSurvivor}) {
    ASSERT_TRUE(tmux.AddWindow(w, home.string()));
  }
  auto panes = [&] {
    std::string out;
    for (const char* w : {kSupervisor, kCounsellorA, kCounsellorB, kSurvivor}) {
      out += std::string("\n--- ") + w + " pane ---\n" + tmux.Capture(w, true);
    }
    return out + "\n--- havend ---\n" + server->Output();
  };
  // Everything a pane has shown, scrollback included (long listings scroll).
  auto shows = [&](const char* w, const std::string& needle,
                   std::chrono::milliseconds timeout = 15s, std::string* out = nullptr) {
    return tmux.WaitFor(w, needle, timeout, out, /*history=*/true);
  };
  for (const char* w : {kSupervisor, kCounsellorA, kCounsellorB, kSurvivor}) {
    ASSERT_TRUE(tmux.WaitFor(w, "$", 5s)) << panes();
  }

  // The supervisor and both counsellors start their consoles.
  tmux.Type(kSupervisor, chat + " --supervisor" + staff + " --invite " + supervisor_invite);
  ASSERT_TRUE(shows(kSupervisor, "Supervisor console.")) << panes();
  ASSERT_TRUE(shows(kSupervisor, "This device is enrolled", 20s)) << panes();
  tmux.Type(kCounsellorA, chat + " --counsellor" + staff + " --invite " + a_invite);
  ASSERT_TRUE(shows(kCounsellorA, "This device is enrolled", 20s)) << panes();
  ASSERT_TRUE(shows(kCounsellorA, "Helpline: Example Anti-Trafficking Helpline.")) << panes();
  tmux.Type(kCounsellorB, chat + " --counsellor" + staff + " --invite " + b_invite);
  ASSERT_TRUE(shows(kCounsellorB, "This device is enrolled", 20s)) << panes();
  // B answers in English and Spanish (which is also how A tells B apart).
  tmux.Type(kCounsellorB, "/presence available en es");
  ASSERT_TRUE(shows(kCounsellorB, "You are available; your queue shows these languages: en es."))
      << panes();

  // The survivor reaches out; A claims.
  tmux.Type(kSurvivor, chat + " --survivor" + common + " --language en");
  ASSERT_TRUE(shows(kSurvivor, "You are connected. A counsellor will join soon.", 20s)) << panes();
  ASSERT_TRUE(shows(kCounsellorA, "Someone is waiting")) << panes();
  tmux.Type(kCounsellorA, "/queue");
  std::string screen;
  ASSERT_TRUE(shows(kCounsellorA, "Type /claim N", 5s, &screen)) << panes();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(screen, m, std::regex(R"(#(\d+)\s+language: en)"))) << panes();
  const std::string a_number = m[1].str();
  tmux.Type(kCounsellorA, "/claim " + a_number);
  ASSERT_TRUE(shows(kCounsellorA, "You are now talking with the survivor in conversation #" +
                                      a_number))
      << panes();
  ASSERT_TRUE(shows(kSurvivor, "A counsellor has joined. You can talk now.")) << panes();

  // A and the survivor exchange a message each.
  const std::string to_a = "hello, I need somewhere to stay amber-harbor-4417";
  const std::string from_a = "I can help with that. quartz-willow-8830";
  tmux.Type(kSurvivor, to_a);
  ASSERT_TRUE(shows(kCounsellorA, "Survivor: " + to_a)) << panes();
  tmux.Type(kCounsellorA, from_a);
  ASSERT_TRUE(shows(kSurvivor, "Counsellor: " + from_a)) << panes();

  // A sends a shelter's card; the survivor reads it as text.
  tmux.Type(kCounsellorA, "/card harbour-house-shelter");
  ASSERT_TRUE(shows(kCounsellorA, "You sent a card: Harbour House (example) (shelter).")) << panes();
  ASSERT_TRUE(shows(kSurvivor, "The counsellor shared a service you can contact:")) << panes();
  ASSERT_TRUE(shows(kSurvivor, "Harbour House (example) (shelter,")) << panes();
  ASSERT_TRUE(shows(kSurvivor, "24 hours: +1 555 0100 (call or text)")) << panes();

  // A flags the conversation: the supervisor is alerted at once.
  tmux.Type(kCounsellorA, "/flag minor");
  ASSERT_TRUE(shows(kCounsellorA, "flagged: minor. Supervisors are alerted")) << panes();
  ASSERT_TRUE(shows(kSupervisor, "SUPERVISOR ALERT  Flagged: minor")) << panes();

  // The supervisor's view of the load: counts, no content.
  tmux.Type(kSupervisor, "/load");
  ASSERT_TRUE(shows(kSupervisor, "Load: 0 queued, 1 active, 0 connection lost", 15s, &screen))
      << panes();
  ASSERT_TRUE(shows(kSupervisor, "Counsellors online: 3")) << panes();

  // The supervisor joins from the alert, visibly: the survivor is told, and
  // the three of them talk, each message end-to-end encrypted per recipient.
  ASSERT_TRUE(shows(kSupervisor, "SUPERVISOR ALERT", 5s, &screen)) << panes();
  ASSERT_TRUE(std::regex_search(screen, m, std::regex(R"(Flagged: minor  \(conversation #(\d+)\))")))
      << panes();
  const std::string s_number = m[1].str();
  tmux.Type(kSupervisor, "/join " + s_number);
  ASSERT_TRUE(shows(kSupervisor, "You joined conversation #" + s_number + " as a supervisor"))
      << panes();
  ASSERT_TRUE(shows(kSurvivor, "A supervisor has joined the conversation to support your counsellor."))
      << panes();
  ASSERT_TRUE(shows(kCounsellorA, "A supervisor joined conversation #" + a_number)) << panes();
  const std::string from_supervisor = "I am a supervisor, here to help too. teal-orchid-5521";
  tmux.Type(kSupervisor, from_supervisor);
  ASSERT_TRUE(shows(kSurvivor, "Supervisor: " + from_supervisor, 15s)) << panes();
  ASSERT_TRUE(shows(kCounsellorA, "Supervisor: " + from_supervisor, 15s)) << panes();
  const std::string to_both = "ok, thank you both plum-river-2290";
  tmux.Type(kSurvivor, to_both);
  ASSERT_TRUE(shows(kSupervisor, "Survivor: " + to_both, 15s)) << panes();
  ASSERT_TRUE(shows(kCounsellorA, "Survivor: " + to_both, 15s)) << panes();
  tmux.Type(kSupervisor, "/leave");
  ASSERT_TRUE(shows(kSupervisor, "You left conversation #" + s_number)) << panes();
  ASSERT_TRUE(shows(kSurvivor, "The supervisor has left the conversation.")) << panes();

  // A looks up B and offers a warm transfer with a handoff note.
  tmux.Type(kCounsellorA, "/colleagues");
  ASSERT_TRUE(shows(kCounsellorA, "Online now", 15s)) << panes();
  ASSERT_TRUE(
      shows(kCounsellorA, "/transfer ID warm NOTE offers the current conversation", 5s, &screen))
      << panes();
  const std::regex b_row(
      R"(([0-9a-f]{8})\s+counsellor\s+available\s+languages: en es\s+active: 0)");
  ASSERT_TRUE(std::regex_search(screen, m, b_row)) << panes();
  const std::string b_id = m[1].str();
  const std::string note = "Young person, shelter card sent, prefers short messages";
  tmux.Type(kCounsellorA, "/transfer " + b_id + " warm " + note);
  ASSERT_TRUE(shows(kCounsellorA, "Offered conversation #" + a_number + " to colleague " + b_id))
      << panes();
  ASSERT_TRUE(shows(kCounsellorB, "TRANSFER OFFERED", 15s)) << panes();
  ASSERT_TRUE(shows(kCounsellorB,
                    "Handoff note from your colleague (not from the survivor): " + note, 5s,
                    &screen))
      << panes();
  ASSERT_TRUE(std::regex_search(screen, m, std::regex(R"(Type /accept (\d+) to take it)")))
      << panes();
  const std::string b_number = m[1].str();

  // B accepts: the survivor is told, neutrally; A no longer has it.
  tmux.Type(kCounsellorB, "/accept " + b_number);
  ASSERT_TRUE(shows(kCounsellorB, "You are now talking with the survivor in conversation #" +
                                      b_number))
      << panes();
  ASSERT_TRUE(shows(kSurvivor, "Another counsellor is joining the conversation.")) << panes();
  ASSERT_TRUE(shows(kCounsellorA, "Your colleague accepted conversation #" + a_number)) << panes();
  ASSERT_TRUE(shows(kCounsellorA, "Conversation #" + a_number + " is now with a colleague"))
      << panes();

  // B and the survivor exchange a message each.
  const std::string to_b = "thank you, are you still there? cobalt-fern-6162";
  const std::string from_b = "Yes, I am here now. saffron-pier-3075";
  tmux.Type(kSurvivor, to_b);
  ASSERT_TRUE(shows(kCounsellorB, "Survivor: " + to_b, 20s)) << panes();
  tmux.Type(kCounsellorB, from_b);
  ASSERT_TRUE(shows(kSurvivor, "Counsellor: " + from_b, 20s)) << panes();

  // B closes with the wrap-up, answering each question from the keyboard.
  tmux.Type(kCounsellorB, "/wrapup");
  ASSERT_TRUE(shows(kCounsellorB, "Wrap-up for conversation #" + b_number)) << panes();
  auto answer = [&](const std::string& question, const std::string& text) {
    if (!shows(kCounsellorB, question, 5s)) return false;
    if (text.empty()) {
      tmux.Keys(kCounsellorB, {"Enter"});  // Enter alone: unknown (or the default)
    } else {
      tmux.Type(kCounsellorB, text);
    }
    return true;
  };
  ASSERT_TRUE(answer("Action 1 of 8:", "y")) << panes();  // recruited
  for (int i = 2; i <= 8; ++i) {
    ASSERT_TRUE(answer("Action " + std::to_string(i) + " of 8:", i == 6 ? "y" : "")) << panes();
  }
  ASSERT_TRUE(answer("Means 1 of 3:", "n")) << panes();
  ASSERT_TRUE(answer("Means 2 of 3:", "?")) << panes();
  ASSERT_TRUE(answer("Means 3 of 3:", "")) << panes();
  ASSERT_TRUE(answer("Purpose 1 of 1:", "y")) << panes();
  ASSERT_TRUE(answer("Age band, as far as you know:", "2")) << panes();  // 13 to 17
  ASSERT_TRUE(answer("Contact category (a number or an id):", "sex-trafficking")) << panes();
  ASSERT_TRUE(answer("Case note:", "Safe for tonight; will come back tomorrow.")) << panes();
  ASSERT_TRUE(answer("Referrals given", "harbour-house-shelter")) << panes();
  ASSERT_TRUE(answer("Did they consent to a follow-up?", "y")) << panes();
  ASSERT_TRUE(answer("Scope of the follow-up consent", "by chat only")) << panes();
  ASSERT_TRUE(answer("Did they consent to sharing information", "n")) << panes();
  // The summary, with the outcome the minor rule gives (no Means answered
  // yes) and the plain instruction to tell a supervisor.
  ASSERT_TRUE(shows(kCounsellorB, "Screening outcome: potential trafficking", 5s)) << panes();
  ASSERT_TRUE(shows(kCounsellorB,
                    "This is a potential trafficking case, and the person is a minor: tell a "
                    "supervisor now",
                    5s))
      << panes();
  ASSERT_TRUE(shows(kCounsellorB, "Action: recruits yes, advertises yes", 5s)) << panes();
  ASSERT_TRUE(shows(kCounsellorB, "Means: force no", 5s)) << panes();
  ASSERT_TRUE(shows(kCounsellorB, "Age band: 13 to 17", 5s)) << panes();
  ASSERT_TRUE(shows(kCounsellorB, "Follow-up consent: yes (by chat only)", 5s)) << panes();
  ASSERT_TRUE(answer("Close the conversation with this wrap-up?", "y")) << panes();
  ASSERT_TRUE(shows(kCounsellorB, "The wrap-up is sealed to the helpline key and sent.")) << panes();
  ASSERT_TRUE(shows(kCounsellorB, "You closed the conversation (#" + b_number + ").")) << panes();
  ASSERT_TRUE(shows(kSurvivor, "The counsellor has ended the conversation.")) << panes();

  // What each screen must never have shown.
  const std::string supervisor_pane = tmux.Capture(kSupervisor, true);
  for (const std::string& secret : {to_a, from_a, to_b, from_b, note,
                                    std::string("Harbour House"), std::string("Safe for tonight")}) {
    EXPECT_EQ(supervisor_pane.find(secret), std::string::npos)
        << "the supervisor saw '" << secret << "':\n"
        << supervisor_pane;
  }
  const std::string a_pane = tmux.Capture(kCounsellorA, true);
  EXPECT_EQ(a_pane.find(to_b), std::string::npos) << "A still read the conversation:\n" << a_pane;
  const std::string survivor_pane = tmux.Capture(kSurvivor, true);
  for (const std::string& hidden : {note, std::string("flag"), std::string("Flag"),
                                    std::string("wrap-up"), std::string("Safe for tonight")}) {
    EXPECT_EQ(survivor_pane.find(hidden), std::string::npos)
        << "the survivor saw '" << hidden << "':\n"
        << survivor_pane;
  }

  // The survivor starts again; B claims, flags high risk; the survivor then
  // uses quick exit, and the supervisor is alerted again (still no content).
  auto count = [](const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  };
  auto shows_times = [&](const char* w, const std::string& needle, std::size_t times,
                         std::chrono::milliseconds timeout = 15s) {
    const auto deadline = Clock::now() + timeout;
    do {
      if (count(tmux.Capture(w, true), needle) >= times) return true;
      std::this_thread::sleep_for(40ms);
    } while (Clock::now() < deadline);
    return false;
  };
  tmux.Type(kSurvivor, "/new");
  ASSERT_TRUE(shows_times(kSurvivor, "You are connected. A counsellor will join soon.", 2))
      << panes();
  ASSERT_TRUE(shows_times(kCounsellorB, "Someone is waiting", 2)) << panes();
  tmux.Type(kCounsellorB, "/queue");
  ASSERT_TRUE(shows_times(kCounsellorB, "Type /claim N", 1, 5s)) << panes();
  screen = tmux.Capture(kCounsellorB, true);
  std::string second;
  const std::regex queued(R"(#(\d+)\s+language: en\s+priority: 0)");
  for (auto it = std::sregex_iterator(screen.begin(), screen.end(), queued);
       it != std::sregex_iterator(); ++it) {
    second = (*it)[1].str();
  }
  ASSERT_FALSE(second.empty()) << panes();
  ASSERT_NE(second, b_number) << panes();
  tmux.Type(kCounsellorB, "/claim " + second);
  ASSERT_TRUE(shows(kCounsellorB, "You are now talking with the survivor in conversation #" +
                                      second))
      << panes();
  ASSERT_TRUE(shows_times(kSurvivor, "A counsellor has joined. You can talk now.", 2)) << panes();
  tmux.Type(kCounsellorB, "/flag risk");
  ASSERT_TRUE(shows(kSupervisor, "SUPERVISOR ALERT  Flagged: high risk")) << panes();
  tmux.Keys(kSurvivor, {"Escape", "Escape"});
  ASSERT_TRUE(shows(kSupervisor, "SUPERVISOR ALERT  A flagged survivor used quick exit")) << panes();
  ASSERT_TRUE(shows(kCounsellorB, "They used quick exit: they may not be safe right now."))
      << panes();

  if (::getenv("HAVEN_CHAT_SHOW_PANES") != nullptr) std::cout << panes() << "\n";

  // The staff leave normally (the survivor's haven-chat has ended).
  for (const char* w : {kSupervisor, kCounsellorA, kCounsellorB}) tmux.Type(w, "/quit");
  for (const char* w : {kSupervisor, kCounsellorA, kCounsellorB}) {
    EXPECT_TRUE(tmux.WaitFor(w, "/quit\n$", 5s)) << panes();
  }
}


// The rest of the counsellor's commands on three screens: /help lists them;
// a canned response reaches the survivor; a warm offer without a note is
// declined (the conversation stays); a cold transfer back to the queue for
// another language (the old counsellor loses it, the survivor hears that
// another counsellor is joining); the colleague who answers that language
// claims it and blocks the contact, which closes the conversation.
TEST_F(HavenChatTmux, CannedDeclinedOfferQueueTransferAndBlock) {
  ASSERT_NO_FATAL_FAILURE(StartWithHelpline("chat-commands"));
  auto& server = server_;
  const std::string a_invite = server->Enrol("counsellor");
  const std::string b_invite = server->Enrol("counsellor");
  ASSERT_FALSE(a_invite.empty());
  ASSERT_FALSE(b_invite.empty());
  const auto& home = home_;
  const std::string chat = HAVEN_CHAT_PATH;
  const std::string& common = common_;
  const std::string& staff = staff_;

  Tmux tmux;
  ASSERT_TRUE(tmux.Start(kCounsellorA, home.string()));
  ASSERT_TRUE(tmux.AddWindow(kCounsellorB, home.string()));
  ASSERT_TRUE(tmux.AddWindow(kSurvivor, home.string()));
  auto panes = [&] {
    std::string out;
    for (const char* w : {kCounsellorA, kCounsellorB, kSurvivor}) {
      out += std::string("\n--- ") + w + " pane ---\n" + tmux.Capture(w, true);
    }
    return out + "\n--- havend ---\n" + server->Output();
  };
  auto shows = [&](const char* w, const std::string& needle,
                   std::chrono::milliseconds timeout = 15s, std::string* out = nullptr) {
    return tmux.WaitFor(w, needle, timeout, out, /*history=*/true);
  };
  for (const char* w : {kCounsellorA, kCounsellorB, kSurvivor}) {
    ASSERT_TRUE(tmux.WaitFor(w, "$", 5s)) << panes();
  }

  tmux.Type(kCounsellorA, chat + " --counsellor" + staff + " --invite " + a_invite);
  ASSERT_TRUE(shows(kCounsellorA, "Helpline: Example Anti-Trafficking Helpline.", 20s)) << panes();
  tmux.Type(kCounsellorA, "/help");
  ASSERT_TRUE(shows(kCounsellorA, "/wrapup      screening, category, note, referrals and consent"))
      << panes();
  for (const char* command : {"/presence", "/colleagues", "/canned", "/referrals", "/card ID",
                              "/flag risk|minor|both|none", "/transfer queue", "/accept",
                              "/decline", "/block HOURS REASON"}) {
    EXPECT_TRUE(shows(kCounsellorA, command, 1s)) << command << panes();
  }
  // A answers English only; B Spanish only.
  tmux.Type(kCounsellorA, "/presence available en");
  ASSERT_TRUE(shows(kCounsellorA, "You are available; your queue shows these languages: en."))
      << panes();
  tmux.Type(kCounsellorB, chat + " --counsellor" + staff + " --invite " + b_invite);
  ASSERT_TRUE(shows(kCounsellorB, "Helpline: Example Anti-Trafficking Helpline.", 20s)) << panes();
  tmux.Type(kCounsellorB, "/presence busy es");
  ASSERT_TRUE(shows(kCounsellorB, "You are busy; your queue shows these languages: es."))
      << panes();

  tmux.Type(kSurvivor, chat + " --survivor" + common + " --language en");
  ASSERT_TRUE(shows(kSurvivor, "You are connected. A counsellor will join soon.", 20s)) << panes();
  ASSERT_TRUE(shows(kCounsellorA, "Someone is waiting")) << panes();
  tmux.Type(kCounsellorA, "/queue");
  std::string screen;
  ASSERT_TRUE(shows(kCounsellorA, "Type /claim N", 5s, &screen)) << panes();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(screen, m, std::regex(R"(#(\d+)\s+language: en)"))) << panes();
  const std::string a_number = m[1].str();
  tmux.Type(kCounsellorA, "/claim " + a_number);
  ASSERT_TRUE(shows(kSurvivor, "A counsellor has joined. You can talk now.")) << panes();
  // The survivor writes first: that sets up the end-to-end session.
  tmux.Type(kSurvivor, "hi ochre-lily-5521");
  ASSERT_TRUE(shows(kCounsellorA, "Survivor: hi ochre-lily-5521")) << panes();

  // A canned response, listed then sent.
  tmux.Type(kCounsellorA, "/canned");
  ASSERT_TRUE(shows(kCounsellorA, "safety-check: Are you somewhere you can talk safely right now?"))
      << panes();
  tmux.Type(kCounsellorA, "/canned safety-check");
  ASSERT_TRUE(shows(kSurvivor, "Counsellor: Are you somewhere you can talk safely right now?"))
      << panes();

  // A warm offer without a note, declined: the conversation stays with A.
  tmux.Type(kCounsellorA, "/colleagues");
  ASSERT_TRUE(shows(kCounsellorA, "/transfer ID warm NOTE offers", 15s, &screen)) << panes();
  ASSERT_TRUE(std::regex_search(
      screen, m, std::regex(R"(([0-9a-f]{8})\s+counsellor\s+busy\s+languages: es\s+active: 0)")))
      << panes();
  const std::string b_id = m[1].str();
  tmux.Type(kCounsellorA, "/transfer " + b_id + " some words");  // a note needs "warm"
  ASSERT_TRUE(shows(kCounsellorA, "A handoff note travels only with a warm transfer")) << panes();
  tmux.Type(kCounsellorA, "/transfer " + b_id + " warm");
  ASSERT_TRUE(shows(kCounsellorA, "to colleague " + b_id + " (no note)")) << panes();
  ASSERT_TRUE(shows(kCounsellorB, "They left no handoff note.")) << panes();
  tmux.Type(kCounsellorB, "/decline");
  ASSERT_TRUE(shows(kCounsellorB, "You declined conversation #")) << panes();
  ASSERT_TRUE(shows(kCounsellorA, "Your colleague declined conversation #" + a_number +
                                      ": it stays with you."))
      << panes();

  // A cold transfer back to the queue, for Spanish.
  tmux.Type(kCounsellorA, "/transfer queue es");
  ASSERT_TRUE(shows(kCounsellorA, "Conversation #" + a_number +
                                      " is now with a colleague (or back in the queue)"))
      << panes();
  ASSERT_TRUE(shows(kSurvivor, "Another counsellor is joining the conversation.")) << panes();
  ASSERT_TRUE(shows(kCounsellorB, "Someone is waiting")) << panes();
  tmux.Type(kCounsellorB, "/queue");
  ASSERT_TRUE(shows(kCounsellorB, "Type /claim N", 5s, &screen)) << panes();
  ASSERT_TRUE(std::regex_search(screen, m, std::regex(R"(#(\d+)\s+language: es)"))) << panes();
  const std::string b_number = m[1].str();
  tmux.Type(kCounsellorB, "/claim " + b_number);
  ASSERT_TRUE(shows(kCounsellorB, "You are now talking with the survivor in conversation #" +
                                      b_number))
      << panes();

  // B blocks the contact: the conversation closes on both sides.
  tmux.Type(kCounsellorB, "/block 0 nothing");
  ASSERT_TRUE(shows(kCounsellorB, "Usage: /block HOURS REASON")) << panes();
  tmux.Type(kCounsellorB, "/block 2 abusive messages");
  ASSERT_TRUE(shows(kCounsellorB, "Blocking this contact for 2 hours")) << panes();
  ASSERT_TRUE(shows(kCounsellorB, "You closed the conversation (#" + b_number + ").")) << panes();
  ASSERT_TRUE(shows(kSurvivor, "The counsellor has ended the conversation.")) << panes();
  const std::string survivor_pane = tmux.Capture(kSurvivor, true);
  EXPECT_EQ(survivor_pane.find("abusive"), std::string::npos) << survivor_pane;
  EXPECT_EQ(survivor_pane.find("block"), std::string::npos) << survivor_pane;

  if (::getenv("HAVEN_CHAT_SHOW_PANES") != nullptr) std::cout << panes() << "\n";
  tmux.Type(kCounsellorA, "/quit");
  tmux.Type(kCounsellorB, "/quit");
  tmux.Type(kSurvivor, "/exit");
  for (const char* w : {kCounsellorA, kCounsellorB}) {
    EXPECT_TRUE(tmux.WaitFor(w, "/quit\n$", 5s)) << panes();
  }
}

}  // namespace
}  // namespace haven
