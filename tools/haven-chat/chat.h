// haven-chat's conversation logic on the SDK's client object: what a survivor
// or a counsellor sees and types. main.cc parses the command line.
#pragma once

#include <string>

#include "haven/client.h"

namespace haven::chat {

struct ChatOptions {
  sdk::ClientOptions client;  // role, server, keys, storage directory
  std::string invite;         // counsellor: an invitation to redeem on start
  sdk::RoutingHints hints;    // survivor: language and priority
};

// The keys that leave at once, for --help and the banner.
inline constexpr const char* kQuickExitKeys = "Esc twice (or Ctrl-X)";

// Runs until the person leaves; returns the process exit code.
int RunChat(ChatOptions options);

}  // namespace haven::chat
