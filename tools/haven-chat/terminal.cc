#include "terminal.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace haven::chat {
namespace {

constexpr unsigned char kEsc = 0x1b;
constexpr unsigned char kCtrlC = 0x03;
constexpr unsigned char kCtrlD = 0x04;
constexpr unsigned char kCtrlH = 0x08;
constexpr unsigned char kCtrlU = 0x15;
constexpr unsigned char kCtrlW = 0x17;
constexpr unsigned char kCtrlX = 0x18;
constexpr unsigned char kDel = 0x7f;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool IsContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Signals reach the input loop through a pipe (the handler only writes a byte).
int g_signal_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  const int saved = errno;
  const auto b = static_cast<unsigned char>(sig);
  if (::write(g_signal_pipe[1], &b, 1) < 0) {
    // Nothing to do: the pipe is full, so a wake-up is already pending.
  }
  errno = saved;
}

void InstallSignals() {
  if (g_signal_pipe[0] < 0 && ::pipe2(g_signal_pipe, O_NONBLOCK | O_CLOEXEC) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGWINCH}) ::sigaction(sig, &sa, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

}  // namespace

// ---------------------------------------------------------------- KeyDecoder

std::optional<Key> KeyDecoder::Feed(unsigned char byte) {
  const bool after_cr = after_cr_;
  after_cr_ = false;
  switch (state_) {
    case State::kEscape:
      state_ = State::kNormal;
      if (byte == kEsc) return Key{KeyKind::kQuickExit, 0};
      if (byte == '[') state_ = State::kCsi;
      if (byte == 'O') state_ = State::kSs3;
      return std::nullopt;  // Alt+key, or the start of a sequence: ignored
    case State::kCsi:
      if (byte == kEsc) {
        state_ = State::kEscape;
      } else if (byte >= 0x40 && byte <= 0x7e) {
        state_ = State::kNormal;  // final byte: the whole sequence is ignored
      } else if (byte < 0x20 || byte > 0x7e) {
        state_ = State::kNormal;  // malformed: drop it and start afresh
      }
      return std::nullopt;
    case State::kSs3:
      state_ = byte == kEsc ? State::kEscape : State::kNormal;
      return std::nullopt;
    case State::kNormal:
      break;
  }
  switch (byte) {
    case kEsc: state_ = State::kEscape; return std::nullopt;
    case kCtrlX: return Key{KeyKind::kQuickExit, 0};
    case kCtrlC: return Key{KeyKind::kInterrupt, 0};
    case kCtrlD: return Key{KeyKind::kEndOfInput, 0};
    case kCtrlU: return Key{KeyKind::kClearLine, 0};
    case kCtrlW: return Key{KeyKind::kDeleteWord, 0};
    case kCtrlH:
    case kDel: return Key{KeyKind::kBackspace, 0};
    case '\r': after_cr_ = true; return Key{KeyKind::kEnter, 0};
    case '\n':
      if (after_cr) return std::nullopt;  // the second half of "\r\n"
      return Key{KeyKind::kEnter, 0};
    case '\t': return Key{KeyKind::kChar, ' '};
    default: break;
  }
  if (byte < 0x20) return std::nullopt;  // other control keys do nothing
  return Key{KeyKind::kChar, static_cast<char>(byte)};
}

// ---------------------------------------------------------------- LineEditor

LineEditor::LineEditor() { text_.reserve(kMaxBytes); }

LineEditor::~LineEditor() { Clear(); }

bool LineEditor::Insert(char byte) {
  if (text_.size() >= kMaxBytes) return false;
  text_.push_back(byte);
  return true;
}

namespace {
void TruncateZeroed(std::string* s, std::size_t new_size) {
  if (new_size >= s->size()) return;
  ::explicit_bzero(s->data() + new_size, s->size() - new_size);
  s->resize(new_size);
}
}  // namespace

void LineEditor::Backspace() {
  std::size_t n = text_.size();
  while (n > 0 && IsContinuation(static_cast<unsigned char>(text_[n - 1]))) --n;
  if (n > 0) --n;
  TruncateZeroed(&text_, n);
}

void LineEditor::DeleteWord() {
  std::size_t n = text_.size();
  while (n > 0 && text_[n - 1] == ' ') --n;
  while (n > 0 && text_[n - 1] != ' ') --n;
  TruncateZeroed(&text_, n);
}

void LineEditor::Clear() { TruncateZeroed(&text_, 0); }

void LineEditor::Take(std::string* out) {
  out->assign(text_);
  Clear();
}

std::string_view LineEditor::VisibleTail(std::size_t columns) const {
  std::size_t chars = 0;
  for (char c : text_) chars += IsContinuation(static_cast<unsigned char>(c)) ? 0u : 1u;
  std::string_view view = text_;
  while (chars > columns && !view.empty()) {
    view.remove_prefix(1);
    while (!view.empty() && IsContinuation(static_cast<unsigned char>(view.front()))) {
      view.remove_prefix(1);
    }
    --chars;
  }
  return view;
}

// ---------------------------------------------------------------- text

void SanitizeForTerminal(std::string_view in, std::size_t indent, std::string* out) {
  std::size_t i = 0;
  while (i < in.size()) {
    const auto b = static_cast<unsigned char>(in[i]);
    if (b < 0x80) {
      ++i;
      if (b == '\n') {
        out->append("\r\n");
        out->append(indent, ' ');
      } else if (b == '\t') {
        out->push_back(' ');
      } else if (b == '\r') {
        // dropped: "\r\n" is one line break, a lone "\r" would overwrite
      } else if (b < 0x20 || b == kDel) {
        out->append(kReplacement);
      } else {
        out->push_back(static_cast<char>(b));
      }
      continue;
    }
    // A multi-byte UTF-8 sequence: validated strictly (no overlong forms, no
    // surrogates, nothing above U+10FFFF).
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    }
    bool valid = len != 0 && i + len <= in.size();
    for (std::size_t k = 1; valid && k < len; ++k) {
      const auto c = static_cast<unsigned char>(in[i + k]);
      const unsigned char min = k == 1 ? lo : 0x80;
      const unsigned char max = k == 1 ? hi : 0xBF;
      valid = c >= min && c <= max;
    }
    if (!valid) {
      out->append(kReplacement);
      ++i;
      continue;
    }
    std::uint32_t cp = b & (len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u);
    for (std::size_t k = 1; k < len; ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(in[i + k]) & 0x3Fu);
    }
    const bool c1 = cp >= 0x80 && cp <= 0x9F;
    const bool bidi = (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
    if (c1 || bidi) {
      out->append(kReplacement);
    } else {
      out->append(in.substr(i, len));
    }
    i += len;
  }
}

void Wipe(std::string* s) {
  ::explicit_bzero(s->data(), s->size());
  s->resize(s->capacity());  // zero-fills what lies beyond the old size
  ::explicit_bzero(s->data(), s->size());
  s->clear();
}

// ---------------------------------------------------------------- Terminal

Terminal::Terminal() {
  InstallSignals();
  out_tty_ = ::isatty(STDOUT_FILENO) == 1;
  if (::isatty(STDIN_FILENO) == 1 && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
    termios raw = saved_;
    // No line buffering, no echo (we draw the line), no signal keys (Ctrl-C,
    // Ctrl-Z and Ctrl-\ are ours to handle), no Ctrl-S/Ctrl-Q flow control (a
    // frozen screen would look like a crash), no CR/LF translation on input.
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_iflag &= ~static_cast<tcflag_t>(IXON | ICRNL | INLCR | IGNCR | ISTRIP);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    raw_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  display_ = raw_ && out_tty_;
  pending_.reserve(512);
  std::lock_guard lock(mu_);
  UpdateWidthLocked();
}

Terminal::~Terminal() {
  Finish();
  Wipe(&pending_);
}

void Terminal::RestoreMode() {
  if (raw_) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    raw_ = false;
  }
}

void Terminal::Finish() {
  std::lock_guard lock(mu_);
  if (display_) {
    WriteAll("\r\x1b[K");
    display_ = false;
  }
  editor_.Clear();
  RestoreMode();
}

void Terminal::SetPrompt(std::string prompt) {
  std::lock_guard lock(mu_);
  prompt_ = std::move(prompt);
  if (!wiped_) RedrawLocked();
}

void Terminal::UpdateWidthLocked() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) width_ = ws.ws_col;
}

void Terminal::WriteAll(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return;  // the terminal is gone; nothing sensible to do
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void Terminal::RedrawLocked() {
  if (!display_) return;
  const std::size_t room = width_ > prompt_.size() + 11 ? width_ - prompt_.size() - 1 : 10;
  std::string frame;
  frame.reserve(LineEditor::kMaxBytes + prompt_.size() + 16);
  frame.append("\r\x1b[K");
  frame.append(prompt_);
  frame.append(editor_.VisibleTail(room));
  WriteAll(frame);
  Wipe(&frame);
}

void Terminal::Print(std::string_view line, Style style) {
  std::lock_guard lock(mu_);
  if (wiped_) return;
  std::string frame;
  frame.reserve(line.size() + LineEditor::kMaxBytes + prompt_.size() + 64);
  if (display_) frame.append("\r\x1b[K");
  if (out_tty_ && style == Style::kAlert) frame.append("\x1b[1;7m");
  if (out_tty_ && style == Style::kNotice) frame.append("\x1b[1m");
  frame.append(line);
  if (out_tty_ && style != Style::kPlain) frame.append("\x1b[0m");
  frame.append(display_ || out_tty_ ? "\r\n" : "\n");
  WriteAll(frame);
  Wipe(&frame);
  RedrawLocked();
}

void Terminal::WipeScreen() {
  {
    std::lock_guard lock(mu_);
    if (!wiped_) {
      wiped_ = true;
      // Scrollback first, then the screen, then the scrollback again: some
      // terminals (tmux with scroll-on-clear, VTE) push a cleared screen into
      // the scrollback. Attributes reset, cursor shown, top-left.
      if (out_tty_) WriteAll("\x1b[0m\x1b[?25h\x1b[3J\x1b[H\x1b[2J\x1b[3J\x1b[H");
      display_ = false;
    }
    editor_.Clear();
    // Keys typed after the quick-exit key must not land in the shell.
    if (raw_) ::tcflush(STDIN_FILENO, TCIFLUSH);
    RestoreMode();
  }
  Wipe(&pending_);
  pending_pos_ = 0;
}

InputEvent Terminal::Next() {
  InputEvent ev;
  for (;;) {
    while (pending_pos_ < pending_.size()) {
      const auto byte = static_cast<unsigned char>(pending_[pending_pos_++]);
      const std::optional<Key> key = decoder_.Feed(byte);
      if (!key) continue;
      std::lock_guard lock(mu_);
      switch (key->kind) {
        case KeyKind::kChar:
          if (editor_.Insert(key->byte)) RedrawLocked();
          continue;
        case KeyKind::kBackspace: editor_.Backspace(); RedrawLocked(); continue;
        case KeyKind::kClearLine: editor_.Clear(); RedrawLocked(); continue;
        case KeyKind::kDeleteWord: editor_.DeleteWord(); RedrawLocked(); continue;
        case KeyKind::kEnter:
          editor_.Take(&ev.line);
          ev.type = InputEvent::Type::kLine;
          RedrawLocked();
          return ev;
        case KeyKind::kQuickExit: ev.type = InputEvent::Type::kQuickExit; return ev;
        case KeyKind::kInterrupt: ev.type = InputEvent::Type::kInterrupt; return ev;
        case KeyKind::kEndOfInput:
          if (!editor_.text().empty()) continue;  // Ctrl-D ends only an empty line
          ev.type = InputEvent::Type::kEndOfInput;
          return ev;
      }
    }
    Wipe(&pending_);  // what was read is in the editor now, or was a key
    pending_pos_ = 0;
    if (eof_) {
      ev.type = InputEvent::Type::kEndOfInput;
      return ev;
    }

    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_signal_pipe[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;  // EINTR: a signal byte is waiting
    if ((fds[1].revents & POLLIN) != 0) {
      unsigned char sigs[16];
      const ssize_t n = ::read(g_signal_pipe[0], sigs, sizeof sigs);
      for (ssize_t k = 0; k < n; ++k) {
        const int sig = sigs[k];
        if (sig == SIGWINCH) {
          std::lock_guard lock(mu_);
          UpdateWidthLocked();
          RedrawLocked();
        } else if (sig == SIGINT) {
          ev.type = InputEvent::Type::kInterrupt;
          return ev;
        } else {
          ev.type = InputEvent::Type::kHangUp;  // SIGHUP, SIGTERM, SIGQUIT
          return ev;
        }
      }
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[256];
      const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n > 0) {
        pending_.assign(buf, static_cast<std::size_t>(n));
        ::explicit_bzero(buf, sizeof buf);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (raw_) {
          ev.type = InputEvent::Type::kHangUp;  // the terminal went away
          return ev;
        }
        eof_ = true;
      }
    }
  }
}

}  // namespace haven::chat
