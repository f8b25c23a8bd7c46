// A survivor on the Haven C++ API (haven/client.h): connects, opens a
// conversation, sends each line typed, and quick-exits on one key.
//
//   survivor HOST PORT SERVER_KEY_HEX
//
// Escape is the quick-exit key here: pressed alone, without Enter, it wipes
// the session and ends the program. Integrators choose their own trigger (a
// button, a gesture, Shift three times); the SDK only needs QuickExit().
// On a terminal the screen is cleared too: the SDK wipes its own memory and
// storage, hiding what is on screen is the application's part.
#include <haven/client.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

namespace {

constexpr char kQuickExitKey = '\x1b';  // Escape

bool DecodeHex(const std::string& hex, haven::sdk::Key32* out) {
  if (hex.size() != 2 * out->size()) return false;
  for (std::size_t i = 0; i < out->size(); ++i) {
    const std::string pair = hex.substr(2 * i, 2);
    char* end = nullptr;
    const unsigned long v = std::strtoul(pair.c_str(), &end, 16);
    if (end != pair.c_str() + 2) return false;
    (*out)[i] = static_cast<std::uint8_t>(v);
  }
  return true;
}

// Non-canonical input on a terminal, so that Escape acts at once; restored
// on every way out.
class RawTerminal {
 public:
  RawTerminal() {
    if (::isatty(STDIN_FILENO) == 0 || ::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

void Say(const char* format, ...) __attribute__((format(printf, 1, 2)));
void Say(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vprintf(format, args);
  va_end(args);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace haven::sdk;
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s HOST PORT SERVER_KEY_HEX\n", argv[0]);
    return 2;
  }
  ClientOptions options;
  options.role = Role::kSurvivor;
  options.host = argv[1];
  const unsigned long port = std::strtoul(argv[2], nullptr, 10);
  if (port == 0 || port > 65535 || !DecodeHex(argv[3], &options.server_public_key)) {
    std::fprintf(stderr, "bad port or server key\n");
    return 2;
  }
  options.port = static_cast<std::uint16_t>(port);

  std::mutex mu;
  std::condition_variable cv;
  bool exit_completed = false;

  // Runs on the SDK's event thread. Text is borrowed: printed, never kept.
  auto on_event = [&](const Event& e) {
    switch (e.type) {
      case EventType::kConversationChanged:
        Say("conversation: %s\n", e.state == ConversationState::kActive ? "active"
                                                                        : ToString(e.state));
        break;
      case EventType::kMessageReceived:
        Say("counsellor: %.*s\n", static_cast<int>(e.text.size()), e.text.data());
        break;
      case EventType::kMessageSent:
        Say("(sent)\n");
        break;
      case EventType::kRequestFailed:
        Say("request failed: %s\n", std::string(e.error_message).c_str());
        break;
      case EventType::kQuickExitCompleted: {
        std::lock_guard lock(mu);
        exit_completed = true;
        cv.notify_all();
        break;
      }
      default:
        break;
    }
  };

  std::unique_ptr<Client> client;
  if (Status s = Client::Create(options, on_event, &client); !s.ok()) {
    std::fprintf(stderr, "cannot start: %s\n", s.message().c_str());
    return 1;
  }
  ConversationId conversation = 0;
  if (Status s = client->OpenConversation({"en", 0}, "", &conversation); !s.ok()) {
    std::fprintf(stderr, "cannot open a conversation: %s\n", s.message().c_str());
    return 1;
  }
  Say("Waiting for a counsellor. Type a message and press Enter. Press Esc to leave at once.\n");

  RawTerminal terminal;
  std::string line;
  bool quick_exit = false;
  char c = 0;
  while (::read(STDIN_FILENO, &c, 1) == 1) {
    if (c == kQuickExitKey) {
      quick_exit = true;
      break;
    }
    if (c != '\n') {
      line.push_back(c);
      continue;
    }
    if (line.empty()) continue;
    MessageId id = 0;
    if (Status s = client->Send(conversation, line, &id); !s.ok()) {
      Say("not sent: %s\n", s.message().c_str());
    }
    // Our own copy of what was typed: zero it before reuse.
    std::fill(line.begin(), line.end(), '\0');
    line.clear();
  }
  std::fill(line.begin(), line.end(), '\0');

  if (!quick_exit) {
    // End of input: a normal goodbye, which the counsellor sees as such.
    client->CloseConversation(conversation);
    client.reset();
    return 0;
  }

  client->QuickExit();  // returns once the wipe is done; never waits on the network
  if (terminal.active()) Say("\x1b[2J\x1b[3J\x1b[H");  // clear screen and scrollback
  {
    // The final event is only a confirmation; never wait long for it.
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(2), [&] { return exit_completed; });
  }
  client.reset();
  // On a terminal, nothing is left on screen to say where this was.
  if (!terminal.active()) Say("quick exit done\n");
  return 0;
}
