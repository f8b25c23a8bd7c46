// A test client of the relay: a Connection with a fixed static key (so that
// reconnecting resumes the same identity) and one helper per request.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "support/havend_process.h"
#include "transport/connection.h"

namespace haven::testing {

using namespace std::chrono_literals;

inline std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }

class RelayClient {
 public:
  explicit RelayClient(const HavendProcess& server)
      : port_(server.port()), server_key_(server.server_key()), key_(noise::KeyPair::Generate()) {}

  // Connects (again) with the same key. False on failure.
  bool Connect(std::chrono::milliseconds timeout = 3s) {
    client::ConnectOptions o;
    o.port = port_;
    o.server_key = server_key_;
    o.client_key = key_.Clone();
    o.timeout = timeout;
    auto c = client::Connection::Connect(o);
    if (!c.ok()) {
      last_error_ = c.status();
      conn_.reset();
      return false;
    }
    conn_ = std::move(c).value();
    return true;
  }
  void Disconnect() { conn_.reset(); }
  bool connected() const { return conn_ != nullptr; }
  client::Connection& conn() { return *conn_; }
  const noise::PublicKey& key() const { return key_.public_key; }
  const Status& last_error() const { return last_error_; }

  Result<v1::Frame> Call(v1::Request request, std::chrono::milliseconds timeout = 5s) {
    v1::Frame f;
    *f.mutable_request() = std::move(request);
    return conn_->Call(std::move(f), timeout);
  }

  // The response, or a failed Result if the transport failed.
  Result<v1::Response> Ask(v1::Request request) {
    HAVEN_ASSIGN_OR_RETURN(v1::Frame f, Call(std::move(request)));
    return f.response();
  }

  static v1::ErrorCode ErrorOf(const Result<v1::Response>& r) {
    if (!r.ok() || !r->has_error()) return v1::ERROR_CODE_UNSPECIFIED;
    return r->error().code();
  }

  Result<v1::Response> Redeem(const std::string& code) {
    v1::Request r;
    r.mutable_redeem_invitation()->set_code(code);
    return Ask(std::move(r));
  }

  Result<v1::Response> Open(const std::string& language = "en", std::uint32_t priority = 0,
                            const std::string& intake = "sealed-intake") {
    v1::Request r;
    r.mutable_open_conversation()->set_language(language);
    r.mutable_open_conversation()->set_priority(priority);
    r.mutable_open_conversation()->set_sealed_intake(intake);
    return Ask(std::move(r));
  }

  // Opens and returns the new conversation's id ("" on failure).
  std::string OpenId(const std::string& language = "en", std::uint32_t priority = 0) {
    auto r = Open(language, priority);
    EXPECT_TRUE(r.ok() && r->has_conversation_opened()) << Describe(r);
    return r.ok() ? r->conversation_opened().conversation().conversation_id() : "";
  }

  Result<v1::Response> ListQueue() {
    v1::Request r;
    r.mutable_list_queue();
    return Ask(std::move(r));
  }

  Result<v1::Response> Claim(const std::string& id) {
    v1::Request r;
    r.mutable_claim_conversation()->set_conversation_id(id);
    return Ask(std::move(r));
  }

  Result<v1::Response> Send(const std::string& id, const std::string& ciphertext) {
    v1::Request r;
    r.mutable_send_envelope()->set_conversation_id(id);
    r.mutable_send_envelope()->set_ciphertext(ciphertext);
    return Ask(std::move(r));
  }

  Result<v1::Response> Ack(const std::string& id, std::uint64_t up_to) {
    v1::Request r;
    r.mutable_ack_envelopes()->set_conversation_id(id);
    r.mutable_ack_envelopes()->set_up_to_seq(up_to);
    return Ask(std::move(r));
  }

  Result<v1::Response> Close(const std::string& id) {
    v1::Request r;
    r.mutable_close_conversation()->set_conversation_id(id);
    return Ask(std::move(r));
  }

  Result<v1::Response> GetSession() {
    v1::Request r;
    r.mutable_get_session();
    return Ask(std::move(r));
  }

  // The next event satisfying `pred`, skipping others; nullopt on timeout.
  template <typename Pred>
  std::optional<v1::Event> WaitEvent(Pred pred, std::chrono::milliseconds timeout = 3s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto f = conn_->Receive(left);
      if (!f.ok()) return std::nullopt;
      if (f->has_event() && pred(f->event())) return f->event();
    }
  }

  std::optional<v1::EnvelopeDelivery> WaitEnvelope(std::chrono::milliseconds timeout = 3s) {
    auto e = WaitEvent([](const v1::Event& ev) { return ev.has_envelope(); }, timeout);
    if (!e) return std::nullopt;
    return e->envelope();
  }

  std::optional<v1::ConversationSummary> WaitConversationChange(
      v1::ConversationState state, std::chrono::milliseconds timeout = 3s) {
    auto e = WaitEvent(
        [state](const v1::Event& ev) {
          return ev.has_conversation_changed() &&
                 ev.conversation_changed().conversation().state() == state;
        },
        timeout);
    if (!e) return std::nullopt;
    return e->conversation_changed().conversation();
  }

  static std::string Describe(const Result<v1::Response>& r) {
    if (!r.ok()) return r.status().ToString();
    return r->DebugString();
  }

 private:
  std::uint16_t port_;
  noise::PublicKey server_key_;
  noise::KeyPair key_;
  std::unique_ptr<client::Connection> conn_;
  Status last_error_;
};

}  // namespace haven::testing
