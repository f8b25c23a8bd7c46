#include "log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace haven::server {
namespace {
std::atomic<LogLevel> g_level{LogLevel::kInfo};

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "?";
}
}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(level); }

// One logfmt line: havend level=<level> msg="<message>". Quotes, backslashes
// and control characters in the message are escaped, so a line is always one
// line and always parses.
void Log(LogLevel level, std::string_view message) {
  if (level < g_level.load()) return;
  std::string line = "havend level=";
  line += LevelName(level);
  line += " msg=\"";
  for (char c : message) {
    if (c == '"' || c == '\\') {
      line += '\\';
      line += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      line += ' ';
    } else {
      line += c;
    }
  }
  line += "\"\n";
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace haven::server
