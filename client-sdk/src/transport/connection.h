// A blocking haven/1 connection to havend with deadlines on every call: TCP
// connect, the pinned Noise_XK handshake, then frames. Used by tools and
// integration tests; the SDK's asynchronous client builds on ClientChannel.
// Asio stays inside connection.cc.
//
// Thread-safety: none; use a Connection from one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "transport/client_channel.h"

namespace haven::client {

struct ConnectOptions {
  std::string host = "127.0.0.1";  // a numeric address: no DNS lookups
  std::uint16_t port = 0;
  noise::PublicKey server_key{};  // pinned
  std::optional<noise::KeyPair> client_key;  // default: a fresh key pair
  std::chrono::milliseconds timeout{5000};   // TCP connect + handshake
};

class Connection {
 public:
  // Connects and completes the handshake. Unavailable when the server cannot
  // be reached or closes during the handshake (which is what a server does
  // when the pinned key is not its key); DataLoss when a peer answers but
  // fails to prove it holds the pinned key; DeadlineExceeded on timeout.
  static Result<std::unique_ptr<Connection>> Connect(const ConnectOptions& options);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends `request` (its request_id is assigned) and waits for the response
  // with the same id. Server pings are answered meanwhile; other frames that
  // arrive meanwhile are kept for Receive().
  Result<v1::Frame> Call(v1::Frame request, std::chrono::milliseconds timeout);
  Result<v1::Frame> Ping(std::string opaque, std::chrono::milliseconds timeout);

  Status Send(const v1::Frame& frame);
  // The next frame from the server; answers server pings first when
  // auto_pong is set. Unavailable once the server has closed.
  Result<v1::Frame> Receive(std::chrono::milliseconds timeout);

  // Waits until the server closes the connection; returns the frames that
  // arrived before it did. DeadlineExceeded if it is still open.
  Result<std::vector<v1::Frame>> WaitForClose(std::chrono::milliseconds timeout);

  // For tests that play a misbehaving client.
  Status SendRawBytes(ByteView bytes);
  Status SendRawPlaintext(ByteView plaintext);

  void set_auto_pong(bool on) { auto_pong_ = on; }
  void Close();

 private:
  struct Impl;
  explicit Connection(std::unique_ptr<Impl> impl);

  Result<v1::Frame> ReadFrame(std::chrono::steady_clock::time_point deadline);

  std::unique_ptr<Impl> impl_;
  std::deque<v1::Frame> inbox_;
  std::uint64_t next_request_id_ = 1;
  bool auto_pong_ = true;
};

}  // namespace haven::client
