// havend: the Haven relay server.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "config/config.h"
#include "config/deployment.h"
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

}  // namespace

int main(int argc, char** argv) {
  using namespace haven;
  using namespace haven::server;

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
  auto lock = DataDirLock::Acquire(deployment->data_dir, "havend");
  if (!lock.ok()) return Fail(lock.status());

  auto store = ServerStore::Open(deployment->database_path, deployment->database_key.view(),
                                 /*start_boot=*/true);
  if (!store.ok()) return Fail(store.status());
  deployment->database_key.Reset();  // the open connection holds what it needs
  auto state = (*store)->Load();
  if (!state.ok()) return Fail(state.status());

  Server server(config, deployment->server_key, std::move(store).value(), std::move(state).value());
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
