// haven-chat's terminal layer: raw keyboard input (a single key must work for
// quick exit), a one-line editor, and output that never tears the line being
// typed. Nothing here knows about the SDK, and nothing here writes a file.
//
// Pure pieces (KeyDecoder, LineEditor, SanitizeForTerminal) are separate so
// that tests can drive them without a terminal.
#pragma once

#include <termios.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace haven::chat {

// What a key (or key sequence) means to haven-chat.
enum class KeyKind {
  kChar,        // `byte` is part of the text (UTF-8 bytes come one by one)
  kEnter,
  kBackspace,
  kClearLine,   // Ctrl-U
  kDeleteWord,  // Ctrl-W
  kQuickExit,   // Esc pressed twice in a row, or Ctrl-X
  kInterrupt,   // Ctrl-C
  kEndOfInput,  // Ctrl-D
};

struct Key {
  KeyKind kind = KeyKind::kChar;
  char byte = 0;
};

// Turns the raw byte stream of a terminal into keys. Escape sequences (arrow
// and function keys) are swallowed; two Esc bytes in a row are quick exit.
class KeyDecoder {
 public:
  std::optional<Key> Feed(unsigned char byte);

 private:
  enum class State { kNormal, kEscape, kCsi, kSs3 };
  State state_ = State::kNormal;
  bool after_cr_ = false;
};

// The line being typed. Its buffer is reserved once and never reallocated,
// and it is zeroed whenever text leaves it, so typed text is not scattered
// over freed heap memory.
class LineEditor {
 public:
  static constexpr std::size_t kMaxBytes = 4000;

  LineEditor();
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // False when the line is full (the byte is dropped).
  bool Insert(char byte);
  void Backspace();   // removes the last UTF-8 character
  void DeleteWord();  // removes the last word and the spaces after it
  void Clear();       // zeroes the text
  // Moves the line into `out` (which the caller zeroes after use) and clears.
  void Take(std::string* out);
  const std::string& text() const { return text_; }
  // The tail of the line that fits in `columns` (one column per character).
  std::string_view VisibleTail(std::size_t columns) const;

 private:
  std::string text_;
};

// Makes untrusted text (a message from the other side) safe to print:
// invalid UTF-8 becomes U+FFFD; control characters (C0 except newline and tab,
// DEL, C1) and bidirectional overrides are replaced, so a message can never
// move the cursor, retitle the window, clear the counsellor's screen or
// reorder what is displayed. A newline becomes "\r\n" plus `indent` spaces;
// a tab becomes a space. Appends to `out`.
void SanitizeForTerminal(std::string_view in, std::size_t indent, std::string* out);

// Zeroes a string's bytes in a way the compiler cannot drop, then clears it.
void Wipe(std::string* s);

// What Terminal::Next() returns.
struct InputEvent {
  enum class Type { kLine, kQuickExit, kInterrupt, kEndOfInput, kHangUp } type = Type::kLine;
  std::string line;  // kLine only; the caller wipes it after use
};

// The terminal itself. One instance per process. Output from any thread goes
// through Print(); input is read by one thread through Next().
class Terminal {
 public:
  enum class Style { kPlain, kNotice, kAlert };

  Terminal();
  ~Terminal();  // restores the terminal mode
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  bool interactive() const { return display_; }
  void SetPrompt(std::string prompt);

  // Prints `line` (already safe: see SanitizeForTerminal) above the line
  // being typed, and redraws that line. `line` may hold "\r\n" breaks.
  // Does nothing once Wipe() ran.
  void Print(std::string_view line, Style style = Style::kPlain);
  // Quick exit's visible half: from now on nothing is printed; the screen and
  // the scrollback are cleared; the line being typed and unread input are
  // discarded; the terminal mode is restored. Call it from the thread that
  // calls Next(); more than once is harmless.
  void WipeScreen();
  // Restores the terminal mode and stops the line display (a normal end).
  void Finish();

  // Blocks until a line is entered or a key or signal ends the session.
  InputEvent Next();

 private:
  void RedrawLocked();
  void WriteAll(std::string_view bytes);
  void UpdateWidthLocked();
  void RestoreMode();

  std::mutex mu_;
  LineEditor editor_;
  KeyDecoder decoder_;
  std::string prompt_ = "> ";
  std::size_t width_ = 80;
  bool wiped_ = false;
  bool raw_ = false;      // stdin is a terminal, now in raw mode
  bool display_ = false;  // raw_ and stdout is a terminal: we draw the input line
  bool out_tty_ = false;  // stdout is a terminal: escape sequences allowed
  termios saved_{};
  // Bytes read but not yet decoded (a line ended in the middle of a read).
  std::string pending_;
  std::size_t pending_pos_ = 0;
  bool eof_ = false;
};

}  // namespace haven::chat
