// Runs an example or test program as a child process for the SDK's
// packaging tests: its stdin is a pipe, its stdout and stderr are captured
// together, and every wait has a deadline (a stuck child is killed, never
// waited on forever).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace haven::testing {

class ChildProcess {
 public:
  // Starts `argv[0]` with `argv` and `env` added to this process's
  // environment. started() is false if fork or exec failed.
  ChildProcess(const std::vector<std::string>& argv,
               const std::map<std::string, std::string>& env) {
    int in[2];
    int out[2];
    if (::pipe2(in, O_CLOEXEC) != 0) return;
    if (::pipe2(out, O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      // The child dies with the test, so a failed test leaves no client behind.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(out[1], STDERR_FILENO);
      for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
      std::vector<std::string> copy = argv;
      std::vector<char*> args;
      for (auto& a : copy) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    in_fd_ = in[1];
    out_fd_ = out[0];
    if (pid_ < 0) {
      CloseFds();
      return;
    }
    ::fcntl(out_fd_, F_SETFL, ::fcntl(out_fd_, F_GETFL) | O_NONBLOCK);
  }

  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    CloseFds();
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  const std::string& output() const { return output_; }

  bool Write(std::string_view data) {
    if (in_fd_ < 0) return false;
    return ::write(in_fd_, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  }
  void CloseStdin() {
    if (in_fd_ >= 0) ::close(in_fd_);
    in_fd_ = -1;
  }

  // Reads output until it contains `needle` (true) or the deadline passes.
  bool WaitForOutput(std::string_view needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(needle) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (!Drain(50) && exit_code_ != kRunning) return output_.find(needle) != std::string::npos;
    }
    return true;
  }

  // Waits for the exit: the exit code, or -1 (killed by a signal, or killed
  // here at the deadline).
  int Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (exit_code_ == kRunning && std::chrono::steady_clock::now() < deadline) Drain(50);
    if (exit_code_ == kRunning) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      exit_code_ = -1;
      output_ += "\n[killed: no exit before the deadline]\n";
    }
    while (Drain(0)) {
    }
    return exit_code_;
  }

 private:
  static constexpr int kRunning = -2;

  // Reads what is available (waiting up to timeout_ms) and reaps the child
  // if it exited. True if anything was read.
  bool Drain(int timeout_ms) {
    bool read_any = false;
    if (out_fd_ >= 0) {
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) > 0) {
        char buf[4096];
        ssize_t n;
        while ((n = ::read(out_fd_, buf, sizeof buf)) > 0) {
          output_.append(buf, static_cast<std::size_t>(n));
          read_any = true;
        }
      }
    }
    if (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (WIFSIGNALED(status)) {
          output_ += "\n[killed by signal " + std::to_string(WTERMSIG(status)) + "]\n";
        }
      }
    }
    return read_any;
  }

  void CloseFds() {
    if (in_fd_ >= 0) ::close(in_fd_);
    if (out_fd_ >= 0) ::close(out_fd_);
    in_fd_ = out_fd_ = -1;
  }

  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int exit_code_ = kRunning;
  std::string output_;
};

}  // namespace haven::testing
