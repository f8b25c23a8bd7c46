// haven-bench support: child processes (havend, the floor relay, mosquitto),
// their CPU time and RSS read from /proc, latency percentiles, the
// loss/duplication/order check by sequence number, and a small JSON writer.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace haven::bench {

inline std::int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// CPU time (user + system, all threads) and resident memory of a process.
struct ProcSample {
  double cpu_seconds = 0;
  double rss_kib = 0;
};
ProcSample SampleProcess(pid_t pid);

// A child process with stdout and stderr captured through a pipe.
class Child {
 public:
  // Starts `argv[0]` with `argv`; nullopt if fork/exec fails.
  static std::optional<Child> Spawn(const std::vector<std::string>& argv);
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  // Reads output until `pattern` matches (returns the match) or the timeout
  // passes or the child exits (nullopt).
  std::optional<std::smatch> WaitFor(const std::regex& pattern, std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after `grace`; returns the exit code (-1: signal).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  pid_t pid() const { return pid_; }
  // The exit code once WaitFor() saw the child exit (-1 otherwise).
  int exit_code() const { return exit_code_; }
  const std::string& output() const { return output_; }

 private:
  Child() = default;
  void Drain(int timeout_ms);
  pid_t pid_ = -1;
  int fd_ = -1;
  int exit_code_ = -1;
  std::string output_;
};

// Runs a program to completion; returns its exit code and output.
int RunToExit(const std::vector<std::string>& argv, std::string* output,
              std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Latency distribution in nanoseconds.
struct Percentiles {
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  std::size_t count = 0;
};
Percentiles ComputePercentiles(std::vector<std::int64_t>& samples_ns);

// Per-stream sequence check: every message numbered 0, 1, 2, ... by its
// sender; the receiver records what arrived.
class SequenceCheck {
 public:
  void Received(std::uint64_t seq) {
    if (seq >= seen_.size()) seen_.resize(seq + 1024, false);
    if (seen_[seq]) {
      ++duplicates_;
      return;
    }
    seen_[seq] = true;
    ++received_;
    if (seq != next_) ++out_of_order_;
    if (seq + 1 > next_) next_ = seq + 1;
  }
  std::uint64_t received() const { return received_; }
  std::uint64_t duplicates() const { return duplicates_; }
  std::uint64_t out_of_order() const { return out_of_order_; }

 private:
  std::vector<bool> seen_;
  std::uint64_t next_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t duplicates_ = 0;
  std::uint64_t out_of_order_ = 0;
};

// One measured figure set: named numbers, in insertion order.
struct Metrics {
  std::vector<std::pair<std::string, double>> values;
  void Set(const std::string& name, double v) {
    for (auto& [n, old] : values) {
      if (n == name) {
        old = v;
        return;
      }
    }
    values.emplace_back(name, v);
  }
  std::optional<double> Get(const std::string& name) const {
    for (const auto& [n, v] : values) {
      if (n == name) return v;
    }
    return std::nullopt;
  }
};

std::string JsonEscape(const std::string& s);
std::string JsonNumber(double v);

// Bytes of a file, 0 if missing.
std::uint64_t FileSize(const std::filesystem::path& p);

}  // namespace haven::bench
