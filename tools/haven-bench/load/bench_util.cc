#include "load/bench_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace haven::bench {

ProcSample SampleProcess(pid_t pid) {
  ProcSample s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // Fields after the command name (which may hold spaces) start at ')'.
    const auto close = line.rfind(')');
    std::istringstream rest(line.substr(close + 2));
    std::vector<std::string> f;
    std::string tok;
    while (rest >> tok) f.push_back(tok);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    if (f.size() > 13) {
      const double ticks = std::stod(f[11]) + std::stod(f[12]);
      s.cpu_seconds = ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::stod(line.substr(6));
  }
  return s;
}

std::optional<Child> Child::Spawn(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  const pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the bench
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    std::vector<std::string> copy = argv;
    std::vector<char*> args;
    for (auto& a : copy) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  Child c;
  c.pid_ = pid;
  c.fd_ = fds[0];
  return c;
}

Child::Child(Child&& o) noexcept : pid_(o.pid_), fd_(o.fd_), output_(std::move(o.output_)) {
  o.pid_ = -1;
  o.fd_ = -1;
}
Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    Stop();
    if (fd_ >= 0) ::close(fd_);
    pid_ = o.pid_;
    fd_ = o.fd_;
    output_ = std::move(o.output_);
    o.pid_ = -1;
    o.fd_ = -1;
  }
  return *this;
}
Child::~Child() {
  Stop();
  if (fd_ >= 0) ::close(fd_);
}

void Child::Drain(int timeout_ms) {
  if (fd_ < 0) return;
  pollfd p{fd_, POLLIN, 0};
  while (::poll(&p, 1, timeout_ms) > 0) {
    char buf[4096];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) break;
    output_.append(buf, static_cast<std::size_t>(n));
    timeout_ms = 0;
  }
}

std::optional<std::smatch> Child::WaitFor(const std::regex& pattern,
                                          std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    Drain(20);
    std::smatch m;
    if (std::regex_search(output_, m, pattern)) return m;
    int status = 0;
    if (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      Drain(0);
      if (std::regex_search(output_, m, pattern)) return m;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

int Child::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    Drain(10);
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

int RunToExit(const std::vector<std::string>& argv, std::string* output,
              std::chrono::milliseconds timeout) {
  auto child = Child::Spawn(argv);
  if (!child) return -1;
  // A pattern that never matches: read until the child exits or time is up.
  (void)child->WaitFor(std::regex("a^"), timeout);
  *output = child->output();
  if (child->pid() > 0) {
    child->Stop(std::chrono::milliseconds(100));
    return -1;
  }
  return child->exit_code();
}

Percentiles ComputePercentiles(std::vector<std::int64_t>& ns) {
  Percentiles p;
  p.count = ns.size();
  if (ns.empty()) return p;
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    const auto n = static_cast<double>(ns.size());
    auto idx = static_cast<std::size_t>(std::ceil(q * n));
    idx = idx == 0 ? 0 : idx - 1;
    return static_cast<double>(ns[std::min(idx, ns.size() - 1)]) / 1000.0;
  };
  p.p50_us = at(0.50);
  p.p99_us = at(0.99);
  p.p999_us = at(0.999);
  p.max_us = static_cast<double>(ns.back()) / 1000.0;
  return p;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::uint64_t FileSize(const std::filesystem::path& p) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(p, ec);
  return ec ? 0 : n;
}

}  // namespace haven::bench
