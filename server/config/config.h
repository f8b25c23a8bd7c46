// havend configuration: the TOML file of config/havend.toml, validated.
//
// Every setting has a safe default; unknown keys and out-of-range values are
// errors whose message names the file, the key and the accepted range.
// Thread-safety: a loaded Config is an immutable value.
#pragma once

#include <cstdint>
#include <string>

#include "haven/common/status.h"

namespace haven::server {

struct Limits {
  std::uint32_t max_connections = 1024;
  std::uint32_t max_frame_bytes = 65535;
  std::uint32_t send_queue_frames = 256;
  std::uint32_t handshake_timeout_ms = 5000;
  std::uint32_t ping_interval_s = 30;
  std::uint32_t idle_timeout_s = 90;
  std::uint32_t shutdown_grace_ms = 3000;
};

struct RelayLimits {
  std::uint32_t max_envelope_bytes = 16384;
  std::uint32_t max_queued_envelopes = 1000;  // per conversation and direction
  std::uint32_t max_open_conversations_per_survivor = 2;
  std::uint32_t delivery_window = 64;
  std::uint32_t survivor_requests_per_second = 20;
  std::uint32_t survivor_request_burst = 60;
  std::uint32_t conversations_opened_per_minute = 120;  // all survivors together
  std::uint32_t invitation_attempts_per_minute = 10;    // all clients together
};

struct RetentionSettings {
  std::uint32_t envelope_ttl_days = 7;
  std::uint32_t closed_conversation_days = 30;
  std::uint32_t sweep_interval_s = 3600;
};

struct StorageSettings {
  std::uint32_t group_commit_max_batch = 1024;
  // How long a write may wait for its batch (microseconds). An envelope its
  // online recipient acknowledges within this time is never written at all.
  std::uint32_t group_commit_linger_us = 2000;
};

struct Config {
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 7420;
  std::uint32_t threads = 2;
  // Threads that run Noise handshakes, at `handshake_nice` below the I/O
  // threads' CPU priority (0: the I/O threads run them).
  std::uint32_t handshake_threads = 1;
  std::uint32_t handshake_nice = 10;
  std::string data_dir = ".haven";
  std::string server_key_file = "server.key";
  std::string database_key_file = "db.key";
  std::string database_file = "haven.db";
  // config/helpline.toml of this helpline; empty: the neutral configuration
  // (no categories, canned responses or referrals). A relative path is
  // relative to the directory of havend.toml, not the data directory.
  std::string helpline_file;
  Limits limits;
  RelayLimits relay;
  RetentionSettings retention;
  StorageSettings storage;
};

// Parses and validates TOML text; `origin` names the source in messages.
Result<Config> ParseConfig(std::string_view toml_text, std::string_view origin);
// Reads and parses a file.
Result<Config> LoadConfigFile(const std::string& path);
// Checks cross-field rules (also run by the parsers).
Status ValidateConfig(const Config& config, std::string_view origin);

// The helpline configuration file to load: "" when files.helpline is empty
// (use the neutral configuration), helpline_file itself when absolute,
// otherwise helpline_file next to `config_path` (the havend.toml it came
// from; "" for the built-in defaults: the current directory).
std::string ResolveHelplinePath(const Config& config, const std::string& config_path);

}  // namespace haven::server
