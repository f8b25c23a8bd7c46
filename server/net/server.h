// havend's network front: a TCP listener and one coroutine-driven session per
// connection, each on its own strand. Asio stays inside server.cc.
//
// Thread-safety: Listen() and Run() are called from one thread; Stop() and
// stats() from any thread.
#pragma once

#include <cstdint>
#include <memory>

#include "config/config.h"
#include "haven/noise/primitives.h"
#include "service/relay.h"
#include "store/server_store.h"

namespace haven::server {

struct ServerStats {
  std::uint64_t active_connections = 0;
  std::uint64_t accepted_total = 0;
  std::uint64_t rejected_over_limit = 0;
  std::uint64_t handshakes_completed = 0;
  std::uint64_t handshakes_failed = 0;
};

class Server {
 public:
  // Copies the key pair; `config` must have passed ValidateConfig. `store`
  // moves to the storage thread; `state` is what it held at start.
  Server(const Config& config, const noise::KeyPair& server_key,
         std::unique_ptr<ServerStore> store, StoredState state, RelayOptions relay_options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; returns the bound port (meaningful with port 0).
  Result<std::uint16_t> Listen();
  // From now on SIGINT and SIGTERM call Stop() (a signal that arrives before
  // Run() is held until it starts).
  void StopOnSignals();
  // Serves until Stop(); then closes every connection within
  // limits.shutdown_grace_ms and returns.
  void Run();
  void Stop();
  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace haven::server
