// A haven/1 client built by hand from the Noise primitives, for tests that
// play a hostile client: every record it writes is kept (to replay it), each
// handshake step is a separate call (to stall between them), and anything can
// be written raw. Blocking, with a deadline on every read.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "haven/common/protocol.h"
#include "haven/noise/handshake_state.h"
#include "haven/v1/frame.pb.h"

namespace haven::testing {

// Two-byte big-endian length, then the message.
inline Bytes Record(ByteView message) {
  Bytes out{static_cast<std::uint8_t>(message.size() >> 8),
            static_cast<std::uint8_t>(message.size() & 0xff)};
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

class NoiseClient {
 public:
  using Ms = std::chrono::milliseconds;

  // TCP only; no byte is sent. `receive_buffer` > 0 shrinks SO_RCVBUF before
  // connecting (a client that reads nothing then fills up sooner).
  NoiseClient(std::uint16_t port, const noise::PublicKey& server_key,
              std::optional<noise::KeyPair> key = std::nullopt, int receive_buffer = 0)
      : key_(key ? std::move(*key) : noise::KeyPair::Generate()) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    noise::HandshakeConfig config;
    config.protocol_name = std::string(kHavenNoiseProtocol);
    config.role = noise::Role::kInitiator;
    config.prologue.assign(kHavenPrologue.begin(), kHavenPrologue.end());
    config.s = key_.Clone();
    config.rs = server_key;
    auto hs = noise::HandshakeState::Create(std::move(config));
    if (hs.ok()) handshake_.emplace(std::move(hs).value());
  }
  ~NoiseClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  NoiseClient(const NoiseClient&) = delete;
  NoiseClient& operator=(const NoiseClient&) = delete;

  bool connected() const { return connected_; }
  const noise::PublicKey& public_key() const { return key_.public_key; }
  // Every record written so far, length prefix included, in order.
  const std::vector<Bytes>& sent_records() const { return sent_; }

  // --- The handshake, one step at a time --------------------------------
  bool WriteMessage1() { return WriteHandshake(); }
  bool ReadMessage2(Ms timeout = Ms(3000)) {
    auto m = ReadRecord(timeout);
    Bytes payload;
    return m && handshake_->ReadMessage(*m, &payload).ok();
  }
  bool WriteMessage3() {
    if (!WriteHandshake()) return false;
    auto t = handshake_->Split();
    if (!t.ok()) return false;
    transport_.emplace(std::move(t).value());
    return true;
  }
  bool Handshake(Ms timeout = Ms(3000)) {
    return WriteMessage1() && ReadMessage2(timeout) && WriteMessage3();
  }

  // --- Transport ----------------------------------------------------------
  bool SendPlaintext(ByteView plaintext) {
    Bytes sealed;
    if (!transport_ || !transport_->Encrypt(plaintext, &sealed).ok()) return false;
    return SendRecord(sealed);
  }
  // Seals `frame` into a whole record without sending it (the send counter
  // moves on, as if it had been sent).
  std::optional<Bytes> SealedRecord(const v1::Frame& frame) {
    const std::string s = frame.SerializeAsString();
    Bytes sealed;
    if (!transport_ || !transport_->Encrypt(AsBytes(s), &sealed).ok()) return std::nullopt;
    return Record(sealed);
  }
  bool SendFrame(const v1::Frame& frame) {
    const std::string s = frame.SerializeAsString();
    return SendPlaintext(AsBytes(s));
  }
  // A request with the given id.
  bool SendRequest(std::uint64_t request_id, const v1::Request& request) {
    v1::Frame f;
    f.set_request_id(request_id);
    *f.mutable_request() = request;
    return SendFrame(f);
  }
  bool SendRecord(ByteView message) { return SendRaw(Record(message), /*keep=*/true); }
  bool SendRaw(ByteView bytes, bool keep = false) {
    if (keep) sent_.emplace_back(bytes.begin(), bytes.end());
    std::size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  // The next frame; pings from the server are answered unless told not to.
  // nullopt on timeout, close, or a record that does not decrypt.
  std::optional<v1::Frame> Receive(Ms timeout = Ms(3000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto m = ReadRecord(Left(deadline));
      if (!m || !transport_) return std::nullopt;
      Bytes plain;
      if (!transport_->Decrypt(*m, &plain).ok()) return std::nullopt;
      last_plaintext_ = plain;
      v1::Frame f;
      if (!f.ParseFromArray(plain.data(), static_cast<int>(plain.size()))) return std::nullopt;
      if (auto_pong_ && f.has_request() && f.request().has_ping()) {
        v1::Frame pong;
        pong.set_request_id(f.request_id());
        pong.mutable_response()->mutable_pong()->set_opaque(f.request().ping().opaque());
        SendFrame(pong);
        continue;
      }
      return f;
    }
  }
  // The response to `request_id`, skipping events; nullopt on timeout.
  std::optional<v1::Frame> ReceiveResponse(std::uint64_t request_id, Ms timeout = Ms(3000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto f = Receive(Left(deadline));
      if (!f) return std::nullopt;
      if (f->has_response() && f->request_id() == request_id) return f;
      others_.push_back(std::move(*f));
    }
  }
  // Frames skipped while waiting for a response.
  const std::vector<v1::Frame>& others() const { return others_; }
  const Bytes& last_plaintext() const { return last_plaintext_; }

  // Waits for the server to close; collects whatever frames came before.
  // Returns how long it took, or nullopt if still open at the timeout.
  std::optional<Ms> WaitClosed(Ms timeout, std::vector<v1::Frame>* frames = nullptr) {
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::uint8_t buf[4096];
      if (!Poll(Left(deadline))) continue;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        return std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - start);
      }
      received_raw_ += static_cast<std::size_t>(n);
      pending_.insert(pending_.end(), buf, buf + n);
      DrainPendingFrames(frames);
    }
    return std::nullopt;
  }
  // Raw bytes read by WaitClosed (before decryption).
  std::size_t received_raw() const { return received_raw_; }

  // Waits, without reading anything, until the server has closed or reset
  // the connection (the kernel's TCP state says so). For clients that must
  // not read: reading would un-throttle the server.
  bool WaitClosedUnread(Ms timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      tcp_info info{};
      socklen_t len = sizeof info;
      if (::getsockopt(fd_, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return false;
      if (info.tcpi_state == TCP_CLOSE || info.tcpi_state == TCP_CLOSE_WAIT) return true;
      ::poll(nullptr, 0, 20);
    }
    return false;
  }

  void set_auto_pong(bool on) { auto_pong_ = on; }
  // Closes with a TCP reset instead of a FIN.
  void Reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }

 private:
  static Ms Left(std::chrono::steady_clock::time_point deadline) {
    return std::max(Ms(0),
                    std::chrono::duration_cast<Ms>(deadline - std::chrono::steady_clock::now()));
  }
  bool Poll(Ms timeout) {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
  }
  bool WriteHandshake() {
    Bytes m;
    return handshake_ && handshake_->WriteMessage({}, &m).ok() && SendRecord(m);
  }
  // One whole record's body from the stream.
  std::optional<Bytes> ReadRecord(Ms timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (pending_.size() >= 2) {
        const std::size_t len = (std::size_t{pending_[0]} << 8) | pending_[1];
        if (pending_.size() >= 2 + len) {
          Bytes body(pending_.begin() + 2, pending_.begin() + static_cast<std::ptrdiff_t>(2 + len));
          pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(2 + len));
          return body;
        }
      }
      const Ms left = Left(deadline);
      if (left.count() <= 0 || !Poll(left)) return std::nullopt;
      std::uint8_t buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      pending_.insert(pending_.end(), buf, buf + n);
    }
  }
  void DrainPendingFrames(std::vector<v1::Frame>* frames) {
    while (pending_.size() >= 2) {
      const std::size_t len = (std::size_t{pending_[0]} << 8) | pending_[1];
      if (pending_.size() < 2 + len) return;
      Bytes body(pending_.begin() + 2, pending_.begin() + static_cast<std::ptrdiff_t>(2 + len));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(2 + len));
      Bytes plain;
      if (!transport_ || !transport_->Decrypt(body, &plain).ok()) continue;
      v1::Frame f;
      if (frames && f.ParseFromArray(plain.data(), static_cast<int>(plain.size()))) {
        frames->push_back(std::move(f));
      }
    }
  }

  int fd_ = -1;
  bool connected_ = false;
  bool auto_pong_ = true;
  noise::KeyPair key_;
  std::optional<noise::HandshakeState> handshake_;
  std::optional<noise::TransportState> transport_;
  std::vector<Bytes> sent_;
  Bytes pending_;
  Bytes last_plaintext_;
  std::vector<v1::Frame> others_;
  std::size_t received_raw_ = 0;
};

}  // namespace haven::testing
