// havend's whole program (see havend_main.h).
#include "app/havend_main.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "config/config.h"
#include "config/deployment.h"
#include "config/helpline.h"
#include "haven/common/bytes.h"
#include "haven/common/secure_memory.h"
#include "log.h"
#include "net/server.h"
#include "store/server_store.h"

namespace {

int Fail(const haven::Status& status) {
  std::fprintf(stderr, "havend: %s\n", status.message().c_str());
  return 1;
}

// Errors from deep in the storage layer say only "database: disk I/O error";
// the operator also needs to know which file, and where to look.
int FailOnDatabase(const haven::Status& status, const std::string& path) {
  using Code = haven::Status::Code;
  const bool io = status.code() == Code::kUnavailable || status.code() == Code::kInternal;
  if (!io || status.message().find(path) != std::string::npos) return Fail(status);
  std::string_view what = status.message();
  if (what.substr(0, 10) == "database: ") what.remove_prefix(10);
  std::fprintf(stderr, "havend: database file %s: %.*s (check the disk and the file)\n",
               path.c_str(), static_cast<int>(what.size()), what.data());
  return 1;
}

// What counsellors receive with GetHelplineConfig.
haven::server::RelayOptions ToRelayOptions(const haven::server::HelplineConfig& h) {
  haven::server::RelayOptions o;
  o.max_active_per_counsellor = h.max_active_per_counsellor;
  o.max_block_hours = h.max_block_hours;
  haven::v1::HelplineConfig& p = o.helpline;
  p.set_name(h.name);
  for (const auto& l : h.languages) p.add_languages(l);
  for (const auto& pr : h.priorities) {
    auto* out = p.add_priorities();
    out->set_level(pr.level);
    out->set_label(pr.label);
  }
  for (const auto& c : h.categories) {
    auto* out = p.add_categories();
    out->set_id(c.id);
    out->set_label(c.label);
  }
  for (const auto& c : h.canned_responses) {
    auto* out = p.add_canned_responses();
    out->set_id(c.id);
    out->set_text(c.text);
  }
  for (const auto& r : h.referrals) {
    auto* out = p.add_referrals();
    out->set_id(r.id);
    out->set_service(r.service);
    out->set_name(r.name);
    out->set_offers(r.offers);
    out->set_contact(r.contact);
    out->set_region(r.region);
    for (const auto& l : r.languages) out->add_languages(l);
  }
  return o;
}

// The helpline's audit public key (<data_dir>/audit.pub, hex, as haven-admin
// init writes it). With --init and none yet, a pair is made: the public half
// stays, the private half goes beside the data directory, to be taken away.
haven::Result<std::optional<std::array<std::uint8_t, 32>>> LoadAuditKey(const std::string& data_dir,
                                                                         bool init) {
  namespace fs = std::filesystem;
  using Key = std::array<std::uint8_t, 32>;
  const fs::path pub = fs::path(data_dir) / "audit.pub";
  if (!fs::exists(pub)) {
    if (!init) return std::optional<Key>();
    const haven::noise::KeyPair kp = haven::noise::KeyPair::Generate();
    // Beside the data directory, never inside it ("/srv/haven/" and "."
    // included): /srv/haven-helpline-keys.
    fs::path dir = fs::absolute(data_dir).lexically_normal();
    if (dir.filename().empty()) dir = dir.parent_path();
    const fs::path away = dir.parent_path() / (dir.filename().string() + "-helpline-keys");
    std::error_code ec;
    fs::create_directories(away, ec);
    fs::permissions(away, fs::perms::owner_all, ec);
    HAVEN_RETURN_IF_ERROR(haven::server::WriteKeyFile((away / "audit.key").string(), kp.private_key.view()));
    HAVEN_RETURN_IF_ERROR(haven::server::WritePublicKeyFile(pub.string(), kp.public_key));
    std::fprintf(stderr,
                 "havend: created the helpline's audit key pair; the private key is in %s: move "
                 "it off this machine (haven-audit reads the log with it)\n",
                 (away / "audit.key").c_str());
  }
  HAVEN_ASSIGN_OR_RETURN(Key key, haven::server::ReadPublicKeyFile(pub.string()));
  return std::optional<Key>(key);
}

}  // namespace

namespace haven::server {

int HavendMain(int argc, char** argv) {

  CLI::App app{"havend: relays end-to-end-encrypted messages between survivors and counsellors"};
  std::string config_path;
  std::string data_dir;
  bool init = false;
  int port = -1;
  bool verbose = false;
  app.add_option("--config", config_path,
                 "Path to havend.toml (default: built-in defaults, see config/havend.toml)");
  app.add_option("--data-dir", data_dir, "Data directory; overrides server.data_dir");
  app.add_flag("--init", init,
               "Create the data directory, server key and database key if missing "
               "(never overwrites an existing key)");
  app.add_option("--port", port, "TCP port; overrides listen.port (0 picks a free port)")
      ->check(CLI::Range(0, 65535));
  app.add_flag("--verbose", verbose, "Log debug messages");
  CLI11_PARSE(app, argc, argv);
  if (verbose) SetLogLevel(LogLevel::kDebug);

  Config config;
  if (!config_path.empty()) {
    auto loaded = LoadConfigFile(config_path);
    if (!loaded.ok()) return Fail(loaded.status());
    config = std::move(loaded).value();
  }
  if (!data_dir.empty()) config.data_dir = data_dir;
  if (port >= 0) config.listen_port = static_cast<std::uint16_t>(port);
  // The helpline's configuration is checked before anything is opened.
  RelayOptions relay_options;
  if (!config.helpline_file.empty()) {
    auto helpline = LoadHelplineConfigFile(ResolveHelplinePath(config, config_path));
    if (!helpline.ok()) return Fail(helpline.status());
    relay_options = ToRelayOptions(*helpline);
  }

  DeploymentOptions options;
  options.create_if_missing = init;
  options.database_key_hex = std::getenv("HAVEN_DB_KEY");
  auto deployment = LoadDeployment(config, config.data_dir, options);
  // The key must not linger in the environment, where child processes and
  // /proc/<pid>/environ would see it.
  if (options.database_key_hex != nullptr) {
    // unsetenv() drops the entry but leaves its bytes in memory: wipe them.
    char* hex = std::getenv("HAVEN_DB_KEY");
    SecureZero({reinterpret_cast<std::uint8_t*>(hex), std::strlen(hex)});
    ::unsetenv("HAVEN_DB_KEY");
  }
  if (!deployment.ok()) return Fail(deployment.status());
  auto lock = DataDirLock::Acquire(deployment->data_dir, /*holder=*/"");  // Fail() says "havend: "
  if (!lock.ok()) return Fail(lock.status());

  auto store = ServerStore::Open(deployment->database_path, deployment->database_key.view(),
                                 /*start_boot=*/true);
  if (!store.ok()) return FailOnDatabase(store.status(), deployment->database_path);
  deployment->database_key.Reset();  // the open connection holds what it needs
  auto state = (*store)->Load();
  if (!state.ok()) return FailOnDatabase(state.status(), deployment->database_path);

  auto audit_key = LoadAuditKey(deployment->data_dir, init);
  if (!audit_key.ok()) return Fail(audit_key.status());
  relay_options.audit_public_key = *audit_key;
  if (!*audit_key) {
    LogWarning("audit log off: the data directory has no audit.pub (haven-admin init creates it)");
  }

  Server server(config, deployment->server_key, std::move(store).value(), std::move(state).value(),
                std::move(relay_options));
  server.StopOnSignals();  // before anyone can learn our address
  auto bound = server.Listen();
  if (!bound.ok()) return Fail(bound.status());

  // What a client needs: the address and the key to pin.
  std::printf("havend: listening on %s:%u\n", config.listen_address.c_str(),
              static_cast<unsigned>(*bound));
  std::printf("havend: server public key %s\n",
              ToHex(deployment->server_key.public_key).c_str());
  std::printf("havend: data directory %s\n", deployment->data_dir.c_str());
  std::fflush(stdout);

  server.Run();
  const ServerStats stats = server.stats();
  LogInfo("stopped after " + std::to_string(stats.accepted_total) + " connections");
  return 0;
}

}  // namespace haven::server
