#include "support/havend_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <thread>

namespace haven::testing {
namespace {

struct Spawned {
  pid_t pid = -1;
  int fd = -1;
};

Spawned Spawn(const std::vector<std::string>& args, const std::string& binary = HAVEN_HAVEND_PATH) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    // If the test process dies (a crash, a timeout), havend goes with it
    // instead of lingering as an orphan holding a port.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    std::vector<char*> argv;
    std::string bin = binary;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

}  // namespace

std::filesystem::path MakeTempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path() /
             ("haven-" + tag + "-" + std::to_string(::getpid()) + "-" +
              std::to_string(counter.fetch_add(1)));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void HavendProcess::Drain(int timeout_ms) {
  pollfd p{output_fd_, POLLIN, 0};
  while (::poll(&p, 1, timeout_ms) > 0) {
    char buf[4096];
    const ssize_t n = ::read(output_fd_, buf, sizeof buf);
    if (n <= 0) break;
    output_.append(buf, static_cast<std::size_t>(n));
    timeout_ms = 0;
  }
}

std::unique_ptr<HavendProcess> HavendProcess::Start(const std::string& extra_toml,
                                                    const std::string& binary) {
  std::unique_ptr<HavendProcess> p(new HavendProcess());
  p->binary_ = binary;
  p->dir_ = MakeTempDir("havend");
  p->data_dir_ = p->dir_ / "data";
  p->config_ = p->dir_ / "havend.toml";
  std::ofstream(p->config_) << extra_toml;
  if (!p->Launch({"--config", p->config_.string(), "--data-dir", p->data_dir_.string(), "--init",
                  "--port", "0"})) {
    return nullptr;
  }
  return p;
}

bool HavendProcess::LaunchOnce(const std::vector<std::string>& args) {
  if (output_fd_ >= 0) ::close(output_fd_);
  output_.clear();
  Spawned s = Spawn(args, binary_);
  pid_ = s.pid;
  output_fd_ = s.fd;
  const std::regex listening(R"(listening on 127\.0\.0\.1:(\d+))");
  const std::regex key(R"(server public key ([0-9a-f]{64}))");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::smatch m_port, m_key;
  while (std::chrono::steady_clock::now() < deadline) {
    Drain(50);
    if (std::regex_search(output_, m_port, listening) && std::regex_search(output_, m_key, key)) {
      port_ = static_cast<std::uint16_t>(std::stoi(m_port[1]));
      DecodeHexInto(m_key[1].str(), server_key_);
      return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      Drain(100);  // what it said last
      break;
    }
  }
  return false;
}

bool HavendProcess::Launch(const std::vector<std::string>& args) {
  // A restart asks for the port it had; between the old process's death and
  // the new one's bind, another test's outgoing connection may hold it for a
  // moment. Try again then; any other failure is reported at once.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (LaunchOnce(args)) return true;
    if (output_.find("cannot listen on") == std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200 * (attempt + 1)));
  }
  ADD_FAILURE() << "havend did not start; output:\n" << output_;
  return false;
}

void HavendProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

bool HavendProcess::Restart(const std::string& binary) {
  if (pid_ > 0) Terminate();
  if (!binary.empty()) binary_ = binary;
  // The port was free a moment ago; SO_REUSEADDR lets havend take it back.
  return Launch({"--config", config_.string(), "--data-dir", data_dir_.string(), "--port",
                 std::to_string(port_)});
}

HavendRun HavendProcess::Admin(const std::vector<std::string>& args) {
  std::vector<std::string> full = args;
  full.push_back("--data-dir");
  full.push_back(data_dir_.string());
  return RunToExit(full, std::chrono::seconds(10), HAVEN_ADMIN_PATH);
}

std::string HavendProcess::Enrol(const std::string& role) {
  HavendRun run = Admin({"enrol", "--role", role});
  std::smatch m;
  const std::regex code(R"(([0-9A-Z]{4}(-[0-9A-Z]{4}){7}))");
  if (run.exit_code != 0 || !std::regex_search(run.output, m, code)) {
    ADD_FAILURE() << "haven-admin enrol failed: " << run.output;
    return "";
  }
  return m[1].str();
}

HavendRun HavendProcess::RunToExit(const std::vector<std::string>& args,
                                   std::chrono::milliseconds timeout, const std::string& binary) {
  Spawned s = Spawn(args, binary);
  HavendRun run;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{s.fd, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      char buf[4096];
      const ssize_t n = ::read(s.fd, buf, sizeof buf);
      if (n > 0) run.output.append(buf, static_cast<std::size_t>(n));
    }
    if (::waitpid(s.pid, &status, WNOHANG) == s.pid) {
      exited = true;
      break;
    }
  }
  if (!exited) {
    ::kill(s.pid, SIGKILL);
    ::waitpid(s.pid, &status, 0);
  }
  char buf[4096];
  ssize_t n;
  while ((n = ::read(s.fd, buf, sizeof buf)) > 0) run.output.append(buf, static_cast<std::size_t>(n));
  ::close(s.fd);
  run.exit_code = exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

int HavendProcess::Terminate(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    Drain(20);
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      Drain(0);
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

std::string HavendProcess::Output() {
  Drain(0);
  return output_;
}

HavendProcess::~HavendProcess() {
  // Every test also checks a clean shutdown: exit status 0 means no
  // sanitizer report and no leak in havend either.
  if (pid_ > 0) {
    const int code = Terminate();
    EXPECT_EQ(code, 0) << "havend did not shut down cleanly; output:\n" << output_;
  }
  if (output_fd_ >= 0) ::close(output_fd_);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace haven::testing
