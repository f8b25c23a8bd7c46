// Structured, levelled logging to stderr for havend (logfmt: level=, msg=).
//
// Callers must never pass a key, plaintext, an IP address, a conversation id
// or any identifier of a person: log what happened and how many, never who.
// Lines are written with one write() so threads do not interleave.
#pragma once

#include <string_view>

namespace haven::server {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void SetLogLevel(LogLevel level);
void Log(LogLevel level, std::string_view message);

inline void LogInfo(std::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(std::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(std::string_view m) { Log(LogLevel::kError, m); }
inline void LogDebug(std::string_view m) { Log(LogLevel::kDebug, m); }

}  // namespace haven::server
