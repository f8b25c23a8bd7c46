// haven-chat: a terminal client on the Haven SDK, for a survivor or a
// counsellor. The command line is parsed here (CLI11 stays in this file);
// chat.cc holds the conversation logic, terminal.cc the keyboard and screen.
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "chat.h"
#include "terminal.h"

namespace {

std::optional<haven::sdk::Key32> DecodeKey(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  haven::sdk::Key32 key{};
  if (hex.size() != 2 * key.size()) return std::nullopt;
  for (std::size_t i = 0; i < key.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    key[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return key;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start])) != 0) ++start;
  return s.substr(start);
}

int Usage(const char* message) {
  std::fprintf(stderr, "haven-chat: %s\n", message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace haven;
  CLI::App app{
      "haven-chat: talk to a helpline counsellor (--survivor), answer as one (--counsellor), or "
      "watch the helpline's load and alerts as a supervisor (--supervisor)."};
  app.footer(std::string("Quick exit (survivor): press ") + chat::kQuickExitKeys +
             " at any moment. The conversation is wiped, the screen and its scrollback are "
             "cleared, and the program ends at once. Ctrl-C and closing the terminal do the same.\n"
             "haven-chat keeps no history and writes no message to any file.");

  bool survivor = false;
  bool counsellor = false;
  bool supervisor = false;
  std::string host = "127.0.0.1";
  int port = 7420;
  std::string server_key_hex;
  std::string server_key_file;
  std::string helpline_key_hex;
  std::string storage_dir;
  std::string invite;
  std::string language;
  unsigned priority = 0;

  auto* s = app.add_flag("--survivor", survivor, "Reach a counsellor (anonymous)");
  auto* c = app.add_flag("--counsellor", counsellor, "Answer conversations from the queue");
  auto* sv = app.add_flag("--supervisor", supervisor,
                          "Supervise: load, alerts, and everything a counsellor does (the device "
                          "is enrolled with a supervisor invitation)");
  s->excludes(c);
  s->excludes(sv);
  c->excludes(sv);
  app.add_option("--host", host, "Server address (numeric)")->capture_default_str();
  app.add_option("--port", port, "Server port")->check(CLI::Range(1, 65535))->capture_default_str();
  auto* key = app.add_option("--server-key", server_key_hex,
                             "Server public key, 64 hexadecimal characters (havend prints it)");
  auto* key_file = app.add_option("--server-key-file", server_key_file,
                                  "File holding the server public key in hexadecimal")
                       ->check(CLI::ExistingFile);
  key->excludes(key_file);
  app.add_option("--helpline-key", helpline_key_hex,
                 "Helpline public key, 64 hexadecimal characters (counsellors and supervisors: "
                 "wrap-ups and block reasons are sealed to it)");
  app.add_option("--storage-dir", storage_dir,
                 "A directory only the SDK writes to (optional; nothing about a conversation is "
                 "stored there by haven-chat)");
  app.add_option("--invite", invite,
                 "Counsellor or supervisor: an invitation code to redeem on start");
  app.add_option("--language", language, "Survivor: preferred language, e.g. en or pt-BR");
  app.add_option("--priority", priority, "Survivor: 0 (normal) to 9 (most urgent)")
      ->check(CLI::Range(0u, 9u));
  CLI11_PARSE(app, argc, argv);

  if (int{survivor} + int{counsellor} + int{supervisor} != 1) {
    return Usage("choose --survivor, --counsellor or --supervisor");
  }
  if (survivor && !invite.empty()) return Usage("--invite is for --counsellor and --supervisor");
  if (!survivor && (!language.empty() || priority != 0)) {
    return Usage("--language and --priority are for --survivor");
  }

  chat::ChatOptions options;
  options.client.role = survivor     ? sdk::Role::kSurvivor
                        : supervisor ? sdk::Role::kSupervisor
                                     : sdk::Role::kCounsellor;
  options.client.host = host;
  options.client.port = static_cast<std::uint16_t>(port);
  if (!server_key_file.empty()) {
    std::ifstream in(server_key_file);
    server_key_hex.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    server_key_hex = Trimmed(std::move(server_key_hex));
  }
  if (server_key_hex.empty()) return Usage("--server-key or --server-key-file is required");
  const auto server_key = DecodeKey(server_key_hex);
  if (!server_key) return Usage("the server key must be 64 hexadecimal characters");
  options.client.server_public_key = *server_key;
  if (!helpline_key_hex.empty()) {
    const auto helpline_key = DecodeKey(helpline_key_hex);
    if (!helpline_key) return Usage("--helpline-key must be 64 hexadecimal characters");
    options.client.helpline_public_key = *helpline_key;
  }
  options.client.storage_dir = storage_dir;
  options.invite = Trimmed(invite);
  chat::Wipe(&invite);
  options.hints.language = language;
  options.hints.priority = priority;
  return chat::RunChat(std::move(options));
}
