// The relay: conversations, the counsellor queue and store-and-forward of
// opaque envelopes, as one object that does no I/O of its own. Connections
// call in through the thread-safe entry points below, which post to the
// relay's executor (a strand); the relay answers through Peer, and writes
// through the StorageWorker, whose completions come back the same way.
//
// Delivery: an envelope is pushed to its recipient at once if connected (at
// most relay.delivery_window unacknowledged at a time), and written to the
// database in the next group commit. The sender is told EnvelopeAccepted
// when it is durable, or earlier if the recipient acknowledged it first, in
// which case it is never written. Sequence numbers are
// (boot_epoch << 32) | counter: never reused, even across a crash.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "config/config.h"
#include "haven/v1/frame.pb.h"
#include "service/rate_limiter.h"
#include "store/storage_worker.h"

namespace haven::server {

// One connected, authenticated client, as the relay sees it.
// Implementations are thread-safe and never block.
class Peer {
 public:
  virtual ~Peer() = default;
  // Seals and queues a frame to the client; dropped if it is gone.
  virtual void Send(v1::Frame frame) = 0;
  // Says goodbye with `reason` and closes the connection.
  virtual void Disconnect(v1::ErrorCode reason) = 0;
  // Closes at once, dropping anything not yet written, and sends nothing.
  virtual void Drop() = 0;
};

// The helpline's side of the counsellor workflow (docs/protocol.md 25).
struct RelayOptions {
  // What counsellors receive with GetHelplineConfig (config/helpline.toml).
  v1::HelplineConfig helpline;
  std::uint32_t max_active_per_counsellor = 5;
  std::uint32_t max_block_hours = 72;
  // The helpline's audit public key: audit events are sealed to it. Without
  // one, no audit event is recorded (havend says so at start).
  std::optional<std::array<std::uint8_t, 32>> audit_public_key;
};

class Relay {
 public:
  using Post = std::function<void(std::function<void()>)>;
  using NowSeconds = std::function<std::int64_t()>;

  // `post` runs a function on the relay's executor, in order, one at a time.
  Relay(Post post, StorageWorker& storage, const Config& config, StoredState state,
        std::uint32_t boot_epoch, NowSeconds now_seconds, RelayOptions options = {});
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Thread-safe entry points.
  void Connected(std::shared_ptr<Peer> peer, const noise::PublicKey& static_key);
  void Request(std::shared_ptr<Peer> peer, v1::Frame frame);
  void Disconnected(std::shared_ptr<Peer> peer);
  // Applies retention in memory and in the database.
  void Sweep();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared: storage completions hold weak references
};

}  // namespace haven::server
