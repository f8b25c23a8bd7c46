// haven-bench's client side: non-blocking sockets on one epoll loop, each a
// haven/1 connection (the SDK's sans-I/O ClientChannel: Noise_XK with the
// server key pinned, then sealed frames) or a floor-relay connection (the
// same length-prefixed framing, plaintext). The blocking helpers used while
// setting up (enrol, open, claim) poll the same non-blocking sockets.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "haven/framing/length_prefix.h"
#include "haven/noise/primitives.h"
#include "transport/client_channel.h"

namespace haven::bench {

enum class Wire { kHaven, kFloor };

// Where the connection is in its life (haven/1 only has the middle phases).
enum class Phase { kConnecting, kWaitMessage2, kWaitPong, kReady, kClosed };

struct Conn {
  Wire wire = Wire::kHaven;
  int fd = -1;
  Phase phase = Phase::kConnecting;
  noise::KeyPair key;  // haven/1 static key, kept to reconnect as the same identity
  std::optional<client::ClientChannel> channel;
  framing::LengthPrefixDecoder decoder{framing::kMaxFrameLen};
  Bytes out;
  std::size_t out_done = 0;
  bool watching_write = false;
  std::uint64_t next_request_id = 1;
  std::deque<Bytes> raw_inbox;        // whole messages not yet consumed (blocking helpers)
  std::uint64_t accepted = 0;         // EnvelopeAccepted responses seen
  std::uint64_t errors = 0;           // Error responses seen
  std::map<std::string, std::uint64_t> ack_due;  // conversation -> highest seq to acknowledge
  std::int64_t connect_started_ns = 0;
  void* user = nullptr;               // the scenario's per-connection state
};

// A TCP socket connecting (non-blocking) to 127.0.0.1:port. Connections are
// spread over source addresses 127.0.0.1, .2, ... so that many thousands do
// not run out of ephemeral ports. -1 on failure.
int StartTcpConnect(std::uint16_t port, std::size_t index);

// Raises RLIMIT_NOFILE (soft and, as root, hard) to at least `want`;
// returns the soft limit in force afterwards.
std::uint64_t RaiseFileLimit(std::uint64_t want);

// Appends a length-prefixed message to `c.out` (not yet written).
void QueueMessage(Conn& c, ByteView message);
// Seals a frame (haven/1) and queues it; false if sealing fails.
bool QueueFrame(Conn& c, const v1::Frame& frame);
// Writes what it can; false on a broken connection.
bool FlushSome(Conn& c);
// Reads what is available and calls `on_message` for each whole message;
// false on end of stream, an error, or a malformed length.
bool ReadSome(Conn& c, const std::function<void(ByteView)>& on_message);
void CloseConn(Conn& c, bool reset = false);

// Blocking helpers for setup (poll on the non-blocking socket).
bool WaitConnected(Conn& c, std::chrono::milliseconds timeout);
bool FlushBlocking(Conn& c, std::chrono::milliseconds timeout);
std::optional<Bytes> NextMessageBlocking(Conn& c, std::chrono::milliseconds timeout);
// TCP connect + Noise_XK handshake with `c.key`; the channel is then ready.
bool ConnectHavenBlocking(Conn& c, std::uint16_t port, const noise::PublicKey& server_key,
                          std::size_t index, std::chrono::milliseconds timeout);
// Sends `request` and waits for its response, answering server pings and
// dropping events meanwhile (nothing is in flight during setup).
std::optional<v1::Response> CallBlocking(Conn& c, v1::Request request,
                                         std::chrono::milliseconds timeout);

// One epoll loop over many connections. Handlers see every readable,
// writable or failed connection; the loop itself only flushes.
class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  void Add(Conn& c);
  void Remove(Conn& c);
  // Re-arms write interest when `c.out` has bytes waiting.
  void Update(Conn& c);
  // Waits until `deadline_ns` (steady clock) or the first event; for each
  // event calls on_event(conn, readable, writable, failed).
  void RunOnce(std::int64_t deadline_ns,
               const std::function<void(Conn&, bool, bool, bool)>& on_event);

 private:
  int epoll_fd_;
};

}  // namespace haven::bench
