// Starts the real havend binary on 127.0.0.1 with a fresh data directory and
// an ephemeral port, for integration tests.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "haven/noise/primitives.h"

namespace haven::testing {

struct HavendRun {
  int exit_code = -1;      // -1 if killed by a signal
  std::string output;      // stdout and stderr
};

class HavendProcess {
 public:
  // Writes `extra_toml` (for example "[limits]\nhandshake_timeout_ms = 300\n")
  // to a config file and starts havend --init on port 0. Returns nullptr and
  // records a gtest failure if it does not come up within 10 s. `binary` is
  // the program to run (the test-only havend_fault takes havend's arguments).
  static std::unique_ptr<HavendProcess> Start(const std::string& extra_toml = "",
                                              const std::string& binary = HAVEN_HAVEND_PATH);

  // Runs havend to completion with `args` (for startup-failure tests).
  static HavendRun RunToExit(const std::vector<std::string>& args,
                             std::chrono::milliseconds timeout = std::chrono::seconds(10),
                             const std::string& binary = HAVEN_HAVEND_PATH);

  ~HavendProcess();

  std::uint16_t port() const { return port_; }
  const noise::PublicKey& server_key() const { return server_key_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  pid_t pid() const { return pid_; }

  // Sends SIGTERM and waits; returns the exit code (-1 if it had to be killed).
  // The destructor does this too and expects 0.
  int Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Output captured so far (stdout and stderr).
  std::string Output();

  // SIGKILL, as a crash would: no shutdown, no flush.
  void Kill();
  // Starts havend again on the same data directory, configuration and port
  // (with `binary` instead from now on, if given). Returns false (and
  // records a failure) if it does not come up.
  bool Restart(const std::string& binary = "");

  // Runs haven-admin with --data-dir set to this server's data directory.
  HavendRun Admin(const std::vector<std::string>& args);
  // `haven-admin enrol`; returns the invitation code ("" on failure).
  std::string Enrol(const std::string& role = "counsellor");
  // The database key, read from the key file (for tests that inspect the
  // database beside the running server).
  std::string DatabasePath() const { return (data_dir_ / "haven.db").string(); }
  std::string DatabaseKeyPath() const { return (data_dir_ / "db.key").string(); }

 private:
  HavendProcess() = default;
  void Drain(int timeout_ms);
  bool Launch(const std::vector<std::string>& args);      // retries a port in use
  bool LaunchOnce(const std::vector<std::string>& args);  // no gtest failure

  pid_t pid_ = -1;
  std::string binary_;
  int output_fd_ = -1;
  std::string output_;
  std::uint16_t port_ = 0;
  noise::PublicKey server_key_{};
  std::filesystem::path dir_;
  std::filesystem::path data_dir_;
  std::filesystem::path config_;
};

std::filesystem::path MakeTempDir(const std::string& tag);

}  // namespace haven::testing
