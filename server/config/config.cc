#include "config.h"

#include <arpa/inet.h>

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
        return Error(name, "unknown section; expected one of [listen], [server], [files], [limits]");
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
      {"server", {"threads", "data_dir"}},
      {"files", {"server_key", "database_key", "database"}},
      {"limits",
       {"max_connections", "max_frame_bytes", "send_queue_frames", "handshake_timeout_ms",
        "ping_interval_s", "idle_timeout_s", "shutdown_grace_ms"}},
  }));
  Config c;
  HAVEN_RETURN_IF_ERROR(r.String("listen", "address", &c.listen_address));
  HAVEN_RETURN_IF_ERROR(r.Integer("listen", "port", 0, 65535, &c.listen_port));
  HAVEN_RETURN_IF_ERROR(r.Integer("server", "threads", 1, 64, &c.threads));
  HAVEN_RETURN_IF_ERROR(r.String("server", "data_dir", &c.data_dir));
  HAVEN_RETURN_IF_ERROR(r.String("files", "server_key", &c.server_key_file));
  HAVEN_RETURN_IF_ERROR(r.String("files", "database_key", &c.database_key_file));
  HAVEN_RETURN_IF_ERROR(r.String("files", "database", &c.database_file));
  Limits& l = c.limits;
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "max_connections", 1, 1000000, &l.max_connections));
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "max_frame_bytes", 1024, 65535, &l.max_frame_bytes));
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "send_queue_frames", 8, 65536, &l.send_queue_frames));
  HAVEN_RETURN_IF_ERROR(
      r.Integer("limits", "handshake_timeout_ms", 100, 60000, &l.handshake_timeout_ms));
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "ping_interval_s", 1, 3600, &l.ping_interval_s));
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "idle_timeout_s", 2, 86400, &l.idle_timeout_s));
  HAVEN_RETURN_IF_ERROR(r.Integer("limits", "shutdown_grace_ms", 0, 60000, &l.shutdown_grace_ms));
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

}  // namespace haven::server
