// haven-chat's terminal layer without a terminal: which bytes are the
// quick-exit key, what the line editor keeps, and that text from the other
// side can never drive the terminal.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "terminal.h"

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

}  // namespace
}  // namespace haven::chat
