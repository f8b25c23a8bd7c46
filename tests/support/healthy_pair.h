// A survivor and a counsellor in a claimed conversation who keep talking in
// the background while a test attacks the same havend: the survivor sends an
// envelope, the counsellor acknowledges it and answers, the survivor
// acknowledges the answer. Each round trip is timed and filed under the phase
// it started in (quiet, attack, after), so that a test can report the p99
// under attack beside the p99 of a quiet run on the same server.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/relay_client.h"

namespace haven::testing {

class HealthyPair {
 public:
  enum Phase { kQuiet = 0, kAttack = 1, kAfter = 2 };

  // `pace`: pause between round trips (keeps the pair within a survivor's
  // request budget: two requests per round).
  HealthyPair(std::unique_ptr<RelayClient> survivor, std::unique_ptr<RelayClient> counsellor,
              std::string conversation_id, std::chrono::milliseconds pace)
      : survivor_(std::move(survivor)),
        counsellor_(std::move(counsellor)),
        id_(std::move(conversation_id)),
        pace_(pace) {}

  ~HealthyPair() { Stop(); }

  void Start() {
    counsellor_thread_ = std::thread([this] { CounsellorLoop(); });
    survivor_thread_ = std::thread([this] { SurvivorLoop(); });
  }

  void Stop() {
    stop_ = true;
    if (survivor_thread_.joinable()) survivor_thread_.join();
    if (counsellor_thread_.joinable()) counsellor_thread_.join();
  }

  void SetPhase(Phase p) { phase_ = p; }

  // Waits until `n` more round trips complete; false at the timeout.
  bool WaitRounds(std::size_t n, std::chrono::milliseconds timeout) {
    const std::size_t target = rounds_.load() + n;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (rounds_.load() < target) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  std::vector<double> Samples(Phase p) {
    std::lock_guard lock(mu_);
    return samples_[p];
  }
  std::vector<std::string> Errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }
  const std::string& conversation_id() const { return id_; }

  // The 99th percentile (nearest rank) in milliseconds; 0 without samples.
  static double P99(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(v.size())));
    return v[std::max<std::size_t>(rank, 1) - 1];
  }

  static constexpr char kMarker[] = "healthy-pair-ciphertext-";

 private:
  void Fail(const std::string& what) {
    std::lock_guard lock(mu_);
    if (errors_.size() < 20) errors_.push_back(what);
  }

  void SurvivorLoop() {
    std::uint64_t i = 0;
    while (!stop_) {
      const Phase phase = phase_.load();
      const auto t0 = std::chrono::steady_clock::now();
      const std::string text = kMarker + std::to_string(i++) + std::string(400, '.');
      auto sent = survivor_->Send(id_, text);
      if (stop_) break;
      if (!sent.ok() || !sent->has_envelope_accepted()) {
        Fail("survivor send: " + RelayClient::Describe(sent));
        std::this_thread::sleep_for(pace_);
        continue;
      }
      auto reply = survivor_->WaitEnvelope(std::chrono::seconds(5));
      if (stop_) break;
      if (!reply || reply->ciphertext() != "re:" + text) {
        Fail(reply ? "wrong reply" : "no reply within 5 s");
        continue;
      }
      auto acked = survivor_->Ack(id_, reply->seq());
      if (!acked.ok() || !acked->has_done()) Fail("survivor ack: " + RelayClient::Describe(acked));
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      {
        std::lock_guard lock(mu_);
        samples_[phase].push_back(ms);
      }
      ++rounds_;
      std::this_thread::sleep_for(pace_);
    }
  }

  void CounsellorLoop() {
    while (!stop_) {
      auto e = counsellor_->WaitEnvelope(std::chrono::milliseconds(100));
      if (!e) continue;
      auto acked = counsellor_->Ack(id_, e->seq());
      if (stop_) break;
      if (!acked.ok() || !acked->has_done())
        Fail("counsellor ack: " + RelayClient::Describe(acked));
      auto sent = counsellor_->Send(id_, "re:" + e->ciphertext());
      if (stop_) break;
      if (!sent.ok() || !sent->has_envelope_accepted()) {
        Fail("counsellor send: " + RelayClient::Describe(sent));
      }
    }
  }

  std::unique_ptr<RelayClient> survivor_;
  std::unique_ptr<RelayClient> counsellor_;
  std::string id_;
  std::chrono::milliseconds pace_;
  std::atomic<bool> stop_{false};
  std::atomic<Phase> phase_{kQuiet};
  std::atomic<std::size_t> rounds_{0};
  std::mutex mu_;
  std::vector<double> samples_[3];
  std::vector<std::string> errors_;
  std::thread survivor_thread_;
  std::thread counsellor_thread_;
};

}  // namespace haven::testing
