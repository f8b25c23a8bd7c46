#include "config.h"

#include <arpa/inet.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

namespace haven::server {
namespace {

// Reads tables and keys, rejecting anything not in the schema.
class Reader {
 public:
  Reader(const toml::table& root, std::string_view origin) : root_(root), origin_(origin) {}

  Status CheckKnown(const std::map<std::string, std::set<std::string>>& schema) {
    for (const auto& [table_name, node] : root_) {
      const std::string name(table_name.str());
      auto it = schema.find(name);
      if (it == schema.end() || !node.is_table()) {
        return Error(name, "unknown section; expected one of [listen], [server], [files], "
                           "[limits], [relay], [retention], [storage]");
      }
      for (const auto& [key, value] : *node.as_table()) {
        if (it->second.count(std::string(key.str())) == 0) {
          return Error(name + "." + std::string(key.str()), "unknown setting");
        }
      }
    }
    return Status::Ok();
  }

  Status String(const char* table, const char* key, std::string* out) {
    const toml::node* n = root_.at_path(std::string(table) + "." + key).node();
    if (n == nullptr) return Status::Ok();
    if (!n->is_string()) return Error(Path(table, key), "must be a string");
    *out = n->as_string()->get();
    return Status::Ok();
  }

  template <typename T>
  Status Integer(const char* table, const char* key, std::int64_t min, std::int64_t max, T* out) {
    const toml::node* n = root_.at_path(std::string(table) + "." + key).node();
    if (n == nullptr) return Status::Ok();
    if (!n->is_integer()) return Error(Path(table, key), "must be an integer");
    const std::int64_t v = n->as_integer()->get();
    if (v < min || v > max) {
      return Error(Path(table, key), "must be between " + std::to_string(min) + " and " +
                                         std::to_string(max) + ", got " + std::to_string(v));
    }
    *out = static_cast<T>(v);
    return Status::Ok();
  }

  Status Error(const std::string& key, const std::string& what) const {
    return Status::InvalidArgument(std::string(origin_) + ": " + key + ": " + what);
  }

 private:
  static std::string Path(const char* table, const char* key) {
    return std::string(table) + "." + key;
  }
  const toml::table& root_;
  std::string_view origin_;
};

}  // namespace

Status ValidateConfig(const Config& c, std::string_view origin) {
  auto error = [origin](const std::string& key, const std::string& what) {
    return Status::InvalidArgument(std::string(origin) + ": " + key + ": " + what);
  };
  in6_addr addr6{};
  in_addr addr4{};
  if (inet_pton(AF_INET, c.listen_address.c_str(), &addr4) != 1 &&
      inet_pton(AF_INET6, c.listen_address.c_str(), &addr6) != 1) {
    return error("listen.address", "must be a numeric IPv4 or IPv6 address such as 127.0.0.1");
  }
  if (c.limits.idle_timeout_s <= c.limits.ping_interval_s) {
    return error("limits.idle_timeout_s", "must be greater than limits.ping_interval_s");
  }
  for (const auto& [key, value] : {std::pair{"files.server_key", &c.server_key_file},
                                   std::pair{"files.database_key", &c.database_key_file},
                                   std::pair{"files.database", &c.database_file}}) {
    if (value->empty()) return error(key, "must not be empty");
  }
  if (c.data_dir.empty()) return error("server.data_dir", "must not be empty");
  if (c.relay.delivery_window >= c.limits.send_queue_frames) {
    return error("relay.delivery_window", "must be smaller than limits.send_queue_frames");
  }
  if (c.relay.max_envelope_bytes + 256 > c.limits.max_frame_bytes) {
    return error("relay.max_envelope_bytes",
                 "must leave 256 bytes of room below limits.max_frame_bytes");
  }
  return Status::Ok();
}

Result<Config> ParseConfig(std::string_view toml_text, std::string_view origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << origin << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return Status::InvalidArgument(msg.str());
  }
  Reader r(root, origin);
  HAVEN_RETURN_IF_ERROR(r.CheckKnown({
      {"listen", {"address", "port"}},
      {"server", {"threads", "handshake_threads", "handshake_nice", "data_dir"}},
      {"files", {"server_key", "database_key", "database", "helpline"}},
      {"limits",
       {"max_connections", "max_frame_bytes", "send_queue_frames", "handshake_timeout_ms",
        "ping_interval_s", "idle_timeout_s", "shutdown_grace_ms"}},
      {"relay",
       {"max_envelope_bytes", "max_queued_envelopes", "max_open_conversations_per_survivor",
        "delivery_window", "survivor_requests_per_second", "survivor_request_burst",
        "conversations_opened_per_minute", "invitation_attempts_per_minute"}},
      {"retention", {"envelope_ttl_days", "closed_conversation_days", "sweep_interval_s"}},
      {"storage", {"group_commit_max_batch", "group_commit_linger_us"}},
  }));
  Config c;
  HAVEN_RETURN_IF_ERROR(r.String("listen", "address", &c.listen_address));
  HAVEN_RETURN_IF_ERROR(r.Integer("listen", "port", 0, 65535, &c.listen_port));
  HAVEN_RETURN_IF_ERROR(r.Integer("server", "threads", 1, 64, &c.threads));
  HAVEN_RETURN_IF_ERROR(r.Integer("server", "handshake_threads", 0, 64, &c.handshake_threads));
  HAVEN_RETURN_IF_ERROR(r.Integer("server", "handshake_nice", 0, 19, &c.handshake_nice));
  HAVEN_RETURN_IF_ERROR(r.String("server", "data_dir", &c.data_dir));
  HAVEN_RETURN_IF_ERROR(r.String("files", "server_key", &c.server_key_file));
  HAVEN_RETURN_IF_ERROR(r.String("files", "database_key", &c.database_key_file));
  HAVEN_RETURN_IF_ERROR(r.String("files", "database", &c.database_file));
  HAVEN_RETURN_IF_ERROR(r.String("files", "helpline", &c.helpline_file));
  Limits& l = c.limits;
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "max_connections", 1, 1000000, &l.max_connections));
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "max_frame_bytes", 1024, 65535, &l.max_frame_bytes));
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "send_queue_frames", 8, 65536, &l.send_queue_frames));
  HAVEN_RETURN_IF_ERROR(
      r.Integer("limits", "handshake_timeout_ms", 100, 60000, &l.handshake_timeout_ms));
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "ping_interval_s", 1, 3600, &l.ping_interval_s));
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "idle_timeout_s", 2, 86400, &l.idle_timeout_s));
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "shutdown_grace_ms", 0, 60000, &l.shutdown_grace_ms));
  RelayLimits& rl = c.relay;
  HAVEN_RETURN_IF_ERROR(r.Integer("relay", "max_envelope_bytes", 1024, 60000, &rl.max_envelope_bytes));
  HAVEN_RETURN_IF_ERROR(
      r.Integer("relay", "max_queued_envelopes", 1, 100000, &rl.max_queued_envelopes));
  HAVEN_RETURN_IF_ERROR(r.Integer("relay", "max_open_conversations_per_survivor", 1, 100,
                                  &rl.max_open_conversations_per_survivor));
  HAVEN_RETURN_IF_ERROR(r.Integer("relay", "delivery_window", 1, 4096, &rl.delivery_window));
  HAVEN_RETURN_IF_ERROR(r.Integer("relay", "survivor_requests_per_second", 1, 100000,
                                  &rl.survivor_requests_per_second));
  HAVEN_RETURN_IF_ERROR(
      r.Integer("relay", "survivor_request_burst", 1, 100000, &rl.survivor_request_burst));
  HAVEN_RETURN_IF_ERROR(r.Integer("relay", "conversations_opened_per_minute", 1, 1000000,
                                  &rl.conversations_opened_per_minute));
  HAVEN_RETURN_IF_ERROR(r.Integer("relay", "invitation_attempts_per_minute", 1, 10000,
                                  &rl.invitation_attempts_per_minute));
  HAVEN_RETURN_IF_ERROR(
      r.Integer("retention", "envelope_ttl_days", 1, 365, &c.retention.envelope_ttl_days));
  HAVEN_RETURN_IF_ERROR(r.Integer("retention", "closed_conversation_days", 0, 3650,
                                  &c.retention.closed_conversation_days));
  HAVEN_RETURN_IF_ERROR(
      r.Integer("retention", "sweep_interval_s", 1, 86400, &c.retention.sweep_interval_s));
  HAVEN_RETURN_IF_ERROR(r.Integer("storage", "group_commit_max_batch", 1, 100000,
                                  &c.storage.group_commit_max_batch));
  HAVEN_RETURN_IF_ERROR(r.Integer("storage", "group_commit_linger_us", 0, 100000,
                                  &c.storage.group_commit_linger_us));
  HAVEN_RETURN_IF_ERROR(ValidateConfig(c, origin));
  return c;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::NotFound("cannot read configuration file " + path +
                            "; pass --config with the path to havend.toml");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

std::string ResolveHelplinePath(const Config& config, const std::string& config_path) {
  if (config.helpline_file.empty()) return {};
  const std::filesystem::path helpline(config.helpline_file);
  if (helpline.is_absolute()) return helpline.string();
  return (std::filesystem::path(config_path).parent_path() / helpline).string();
}

}  // namespace haven::server
