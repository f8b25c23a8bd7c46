// Test support for the SDK: a client whose events are recorded, and waits
// on them with deadlines (never a bare sleep).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "haven/client.h"
#include "support/havend_process.h"

namespace haven::testing {

// An event as recorded; `text` is copied only when record_text is set (the
// memory-scan test leaves it off, so that the text passes through the SDK only).
struct Recorded {
  sdk::EventType type{};
  sdk::ConnectionState connection{};
  sdk::ConversationId conversation = 0;
  sdk::ConversationState state{};
  sdk::MessageId message = 0;
  std::string text;
  sdk::Code error = sdk::Code::kOk;
  std::string error_message;
  bool accepted = false;
  sdk::AlertKind alert{};
  bool flagged_high_risk = false;
  bool flagged_minor = false;
  sdk::Role sender{};
};

class SdkClient {
 public:
  static sdk::ClientOptions Options(const HavendProcess& server, sdk::Role role) {
    sdk::ClientOptions o;
    o.role = role;
    o.port = server.port();
    std::copy(server.server_key().begin(), server.server_key().end(),
              o.server_public_key.begin());
    o.reconnect_min = std::chrono::milliseconds(50);
    o.reconnect_max = std::chrono::milliseconds(500);
    return o;
  }

  explicit SdkClient(const sdk::ClientOptions& options, bool record_text = true,
                     std::function<void(const sdk::Event&)> also = {})
      : record_text_(record_text), also_(std::move(also)) {
    status_ = sdk::Client::Create(
        options, [this](const sdk::Event& e) { OnEvent(e); }, &client_);
  }

  const sdk::Status& create_status() const { return status_; }
  sdk::Client& operator*() { return *client_; }
  sdk::Client* operator->() { return client_.get(); }
  sdk::Client* get() { return client_.get(); }
  void Destroy() { client_.reset(); }

  // The first recorded event (from index `from` on) satisfying `pred`.
  std::optional<Recorded> WaitFor(const std::function<bool(const Recorded&)>& pred,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5),
                                  std::size_t* index = nullptr) {
    std::unique_lock lock(mu_);
    std::size_t i = 0;
    const bool ok = cv_.wait_for(lock, timeout, [&] {
      for (i = 0; i < events_.size(); ++i) {
        if (pred(events_[i])) return true;
      }
      return false;
    });
    if (!ok) return std::nullopt;
    if (index) *index = i;
    return events_[i];
  }
  std::optional<Recorded> WaitType(sdk::EventType type,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return WaitFor([type](const Recorded& r) { return r.type == type; }, timeout);
  }
  std::optional<Recorded> WaitState(sdk::ConversationState state,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return WaitFor(
        [state](const Recorded& r) {
          return r.type == sdk::EventType::kConversationChanged && r.state == state;
        },
        timeout);
  }
  std::optional<Recorded> WaitText(const std::string& text,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return WaitFor(
        [&text](const Recorded& r) {
          return r.type == sdk::EventType::kMessageReceived && r.text == text;
        },
        timeout);
  }
  std::vector<Recorded> Events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::size_t Count(sdk::EventType type) {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& e : events_) n += e.type == type ? 1u : 0u;
    return n;
  }

 private:
  void OnEvent(const sdk::Event& e) {
    if (also_) also_(e);
    Recorded r;
    r.type = e.type;
    r.connection = e.connection;
    r.conversation = e.conversation;
    r.state = e.state;
    r.message = e.message;
    if (record_text_) r.text = std::string(e.text);
    r.error = e.error;
    r.error_message = std::string(e.error_message);
    r.accepted = e.accepted;
    r.alert = e.alert;
    r.flagged_high_risk = e.flagged_high_risk;
    r.flagged_minor = e.flagged_minor;
    r.sender = e.sender;
    std::lock_guard lock(mu_);
    events_.push_back(std::move(r));
    cv_.notify_all();
  }

  bool record_text_;
  std::function<void(const sdk::Event&)> also_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Recorded> events_;
  sdk::Status status_;
  std::unique_ptr<sdk::Client> client_;
};

// The first entry of `counsellor`'s queue, once there is one.
inline std::optional<sdk::QueueEntry> WaitQueueEntry(
    SdkClient& counsellor, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::vector<sdk::QueueEntry> q;
  auto seen = counsellor.WaitFor(
      [&](const Recorded&) { return counsellor->Queue(&q).ok() && !q.empty(); }, timeout);
  if (!seen) return std::nullopt;
  return q.front();
}

// Claims the first entry `counsellor` sees and waits until both ends have
// set up the secure session. The counsellor's id for it (0 on failure, with
// the failure recorded).
inline sdk::ConversationId ClaimAndSecure(SdkClient& counsellor, SdkClient& survivor) {
  auto e = WaitQueueEntry(counsellor);
  EXPECT_TRUE(e.has_value()) << "the counsellor never saw the queue entry";
  if (!e) return 0;
  EXPECT_TRUE(counsellor->Claim(e->conversation).ok());
  EXPECT_TRUE(counsellor.WaitFor([&](const Recorded& r) {
    return r.type == sdk::EventType::kSecureSessionReady && r.conversation == e->conversation;
  }).has_value());
  EXPECT_TRUE(survivor.WaitType(sdk::EventType::kSecureSessionReady).has_value());
  return e->conversation;
}

// A counsellor device enrolled on `server` and waiting for the queue.
inline std::unique_ptr<SdkClient> EnrolledCounsellor(
    HavendProcess& server, std::optional<sdk::ClientOptions> given = std::nullopt) {
  const sdk::ClientOptions options =
      given ? *given : SdkClient::Options(server, sdk::Role::kCounsellor);
  auto c = std::make_unique<SdkClient>(options);
  EXPECT_TRUE(c->create_status().ok()) << c->create_status().message();
  const std::string code = server.Enrol();
  EXPECT_TRUE((*c)->RedeemInvitation(code).ok());
  EXPECT_TRUE(c->WaitType(sdk::EventType::kEnrolled).has_value()) << "counsellor not enrolled";
  return c;
}

}  // namespace haven::testing
