// Test doubles for driving the relay without sockets: an executor that runs
// posted functions one at a time (as a strand does), and a peer that records
// what the relay sends to one client.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "service/relay.h"

namespace haven::testing {

// Runs posted functions one at a time on its own thread, like a strand.
class SerialExecutor {
 public:
  SerialExecutor() : thread_([this] { Loop(); }) {}
  ~SerialExecutor() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    while (true) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

// Collects what the relay sends to one client (called from any thread).
class FakePeer final : public server::Peer {
 public:
  void Send(v1::Frame frame) override {
    std::lock_guard lock(mu_);
    frames_.push_back(std::move(frame));
    cv_.notify_all();
  }
  void Disconnect(v1::ErrorCode) override { disconnected_ = true; }
  void Drop() override { dropped = true; }
  std::atomic<bool> dropped{false};

  // Whether the relay ended this client's connection (Disconnect or Drop).
  bool closed() const { return dropped || disconnected_; }

  // Everything received and not yet taken, in order.
  std::vector<v1::Frame> Take() {
    std::lock_guard lock(mu_);
    std::vector<v1::Frame> out(std::make_move_iterator(frames_.begin()),
                               std::make_move_iterator(frames_.end()));
    frames_.clear();
    return out;
  }

  // The first frame received (and removed) that matches, or nullopt.
  template <typename Pred>
  std::optional<v1::Frame> Wait(Pred pred,
                                std::chrono::milliseconds timeout = std::chrono::seconds(3)) {
    std::unique_lock lock(mu_);
    std::optional<v1::Frame> found;
    cv_.wait_for(lock, timeout, [&] {
      for (auto it = frames_.begin(); it != frames_.end(); ++it) {
        if (pred(*it)) {
          found = std::move(*it);
          frames_.erase(it);
          return true;
        }
      }
      return false;
    });
    return found;
  }

  // The response to `request_id`, or nullopt after `timeout`.
  std::optional<v1::Frame> Response(std::uint64_t request_id,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return Wait([request_id](const v1::Frame& f) {
      return f.has_response() && f.request_id() == request_id;
    }, timeout);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<v1::Frame> frames_;
  std::atomic<bool> disconnected_{false};
};

}  // namespace haven::testing
