#include "server.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <boost/asio.hpp>
#include <chrono>
#include <ctime>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <vector>

#include "connection_protocol.h"
#include "haven/framing/length_prefix.h"
#include "log.h"
#include "service/relay.h"
#include "store/storage_worker.h"

namespace haven::server {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto as_tuple = asio::as_tuple(use_awaitable);

struct Counters {
  std::atomic<std::uint64_t> active{0};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> handshakes_ok{0};
  std::atomic<std::uint64_t> handshakes_failed{0};
};

class Session;

// What every session shares: limits, the key, counters, the live set.
struct Shared {
  Relay* relay = nullptr;  // set before the first connection
  // Where handshake messages are processed (threads at a lower CPU priority);
  // none: on the session's own strand.
  std::optional<asio::io_context::executor_type> handshake_executor;
  Limits limits;
  noise::KeyPair server_key;
  Counters counters;
  std::mutex mu;
  std::list<std::weak_ptr<Session>> sessions;  // guarded by mu
  bool stopping = false;                       // guarded by mu
  std::atomic<std::uint64_t> refused_no_memory{0};

  // A connection refused for want of (secure) memory. Logged at the 1st,
  // 2nd, 4th, 8th... refusal: a flood must not flood the log.
  void NoteRefusedForMemory() {
    const std::uint64_t n = refused_no_memory.fetch_add(1) + 1;
    if ((n & (n - 1)) == 0) {
      LogWarning("connections refused for lack of secure memory (raise vm.max_map_count "
                 "or lower limits.max_connections): " + std::to_string(n));
    }
  }
};

// The relay's handle on a session: hops onto the session's strand.
class SessionPeer final : public Peer {
 public:
  explicit SessionPeer(std::weak_ptr<Session> session) : session_(std::move(session)) {}
  void Send(v1::Frame frame) override;
  void Disconnect(v1::ErrorCode reason) override;
  void Drop() override;

 private:
  std::weak_ptr<Session> session_;
};

// One connection. Every member is touched only on the socket's strand, but
// for protocol_ while a handshake message is away on a handshake thread
// (OnHandshakeThread) and the members that one reads.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Shared& shared)
      : socket_(std::move(socket)),
        shared_(shared),
        decoder_(shared.limits.max_frame_bytes),
        watchdog_(socket_.get_executor()),
        wake_writer_(socket_.get_executor()),
        queue_drained_(socket_.get_executor()),
        handshake_deadline_(Clock::now() +
                            std::chrono::milliseconds(shared.limits.handshake_timeout_ms)),
        last_receive_(Clock::now()) {
    shared_.counters.active.fetch_add(1);
  }

  ~Session() { shared_.counters.active.fetch_sub(1); }

  void Start(std::list<std::weak_ptr<Session>>::iterator self_entry) {
    self_entry_ = self_entry;
    auto self = shared_from_this();
    asio::co_spawn(socket_.get_executor(), [self]() { return self->WriteLoop(); }, asio::detached);
    asio::co_spawn(socket_.get_executor(), [self]() { return self->Watchdog(); }, asio::detached);
    asio::co_spawn(socket_.get_executor(), [self]() { return self->ReadLoop(); }, asio::detached);
  }

  // Thread-safe: asks the session to say goodbye and close.
  void Shutdown() {
    asio::post(socket_.get_executor(), [self = shared_from_this()]() {
      if (self->closing_) return;
      if (self->established_) {
        auto goodbye = self->protocol_->MakeClosing(v1::ERROR_CODE_SHUTTING_DOWN);
        if (goodbye.ok()) self->Enqueue(std::move(goodbye).value());
        self->BeginClose();
      } else {
        self->ForceClose();
      }
    });
  }

  void Unregister() {
    std::lock_guard lock(shared_.mu);
    shared_.sessions.erase(self_entry_);
  }

  // From the relay, via SessionPeer: on the strand.
  void SendFrame(const v1::Frame& frame) {
    if (closing_) return;
    auto sealed = protocol_->Seal(frame);
    if (!sealed.ok()) return;
    Enqueue(std::move(sealed).value());
  }

  void Goodbye(v1::ErrorCode reason) {
    if (closing_) return;
    auto goodbye = protocol_->MakeClosing(reason);
    if (goodbye.ok()) Enqueue(std::move(goodbye).value());
    BeginClose();
  }

  // Closes now: nothing queued is written.
  void Drop() { ForceClose(); }

  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  // Reads and handles messages until the peer closes. Once closing, input is
  // read and discarded, so that closing with unread input does not reset the
  // connection before the peer has read our last frames.
  //
  // The read buffer is the thread's, not the connection's: an idle
  // connection waits for readability without holding one (16 KiB each would
  // be most of an idle connection's memory). Input that must outlive a wait
  // (backpressure, below) is first copied into `held`.
  awaitable<void> ReadLoop() {
    thread_local std::array<std::uint8_t, 16 * 1024> t_buffer;
    Bytes held;
    ByteView input;
    // t_buffer is not ours across a wait: what is left of the input moves
    // to `held` first (once).
    auto keep_input = [&] {
      const bool in_held = !held.empty() && input.data() >= held.data() &&
                           input.data() <= held.data() + held.size();
      if (in_held) return;
      held.assign(input.begin(), input.end());
      input = ByteView(held.data(), held.size());
    };
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
    while (!closed_) {
      auto [wait_ec] = co_await socket_.async_wait(tcp::socket::wait_read, as_tuple);
      if (wait_ec) break;
      boost::system::error_code ec;
      const std::size_t n = socket_.read_some(asio::buffer(t_buffer), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
      if (ec) break;
      input = ByteView(t_buffer.data(), n);
      while (!input.empty() && !closing_) {
        auto used = decoder_.Feed(input);
        if (!used.ok()) {  // zero or oversize length: the stream is broken
          ForceClose();
          co_return;
        }
        input = input.subspan(*used);
        if (!decoder_.HasMessage()) break;
        // Backpressure: while the client leaves our answers unread, stop
        // reading its requests. Memory stays bounded by the queue limit and
        // a client that never reads ends at the idle timeout.
        if (queue_.size() >= shared_.limits.send_queue_frames && !closing_) keep_input();
        while (queue_.size() >= shared_.limits.send_queue_frames && !closing_) {
          throttled_ = true;
          queue_drained_.expires_at(Clock::time_point::max());
          co_await queue_drained_.async_wait(as_tuple);
        }
        throttled_ = false;
        if (closing_) break;
        const bool was_established = established_;
        const bool away = !established_ && shared_.handshake_executor.has_value();
        if (away) keep_input();  // we may resume on another thread
        ProtocolOutput out;
        try {
          if (away) {
            out = co_await OnHandshakeThread(decoder_.message());
          } else {
            out = OnMessage(decoder_.message());
          }
        } catch (const std::bad_alloc&) {  // no secure memory for this handshake
          shared_.NoteRefusedForMemory();
          ForceClose();
          co_return;
        }
        if (closing_) {  // the handshake deadline or a shutdown came first
          ForceClose();
          co_return;
        }
        Apply(std::move(out), was_established);
        decoder_.Pop();
      }
      if (!held.empty()) Bytes().swap(held);  // handled (or closing): not kept while idle
    }
    peer_done_ = true;
    BeginClose();
    if (flushed_) ForceClose();
  }

  // A handshake message costs X25519 work (three DH operations per
  // handshake). On the handshake threads, below the I/O threads' priority, a
  // flood of new connections cannot delay the messages of established ones.
  // While it is away, only this coroutine touches protocol_ (the strand reads
  // established_ instead). Under a flood the handshake queue can be long: a
  // session that closed (deadline, shutdown) while its message waited costs
  // no DH work, so that stale entries do not delay live ones. There the
  // handshake thread reads handshake_deadline_ (set at construction, never
  // changed) and abandoned_ (atomic).
  awaitable<ProtocolOutput> OnHandshakeThread(ByteView message) {
    co_return co_await asio::co_spawn(
        *shared_.handshake_executor,
        [this, message]() -> awaitable<ProtocolOutput> {
          if (abandoned_.load(std::memory_order_relaxed) || Clock::now() >= handshake_deadline_) {
            ProtocolOutput out;
            out.close = true;
            co_return out;
          }
          co_return OnMessage(message);
        },
        use_awaitable);
  }

  // The responder and its secure memory (a copy of the server key, the
  // chaining key, ...) come at the first message, not at accept: a connection that never speaks costs none, and
  // the work falls to the handshake threads. Throws std::bad_alloc when
  // secure memory runs out.
  ProtocolOutput OnMessage(ByteView message) {
    if (!protocol_) {
      auto created = ConnectionProtocol::Create(shared_.server_key);
      if (!created.ok()) {
        LogError("cannot create a Noise responder: " + created.status().ToString());
        ProtocolOutput out;
        out.close = true;
        return out;
      }
      protocol_.emplace(std::move(created).value());
    }
    return protocol_->OnMessage(message);
  }

  void Apply(ProtocolOutput out, bool was_established) {
    last_receive_ = Clock::now();
    for (Bytes& m : out.messages) Enqueue(std::move(m));
    if (out.established) {
      established_ = true;
      shared_.counters.handshakes_ok.fetch_add(1);
      watchdog_.cancel();  // re-arm for the idle deadline
      peer_ = std::make_shared<SessionPeer>(weak_from_this());
      shared_.relay->Connected(peer_, *protocol_->peer_static());
    }
    for (v1::Frame& f : out.requests) shared_.relay->Request(peer_, std::move(f));
    if (out.close) {
      if (!was_established) shared_.counters.handshakes_failed.fetch_add(1);
      BeginClose();
    }
  }

  // Frames and queues one Noise message. Replies cannot overflow (the reader
  // waits while the queue is at its limit); anything pushed on top of a full
  // queue means the client is not reading, and it is disconnected rather
  // than buffered without end.
  void Enqueue(Bytes message) {
    if (closed_) return;
    if (queue_.size() >= 2 * static_cast<std::size_t>(shared_.limits.send_queue_frames)) {
      LogDebug("connection closed: send queue full");
      Abort();
      return;
    }
    Bytes framed;
    framed.reserve(message.size() + framing::kHeaderLen);
    if (!framing::AppendLengthPrefixed(message, &framed).ok()) {
      ForceClose();
      return;
    }
    queue_.push_back(std::move(framed));
    wake_writer_.cancel();
  }

  awaitable<void> WriteLoop() {
    while (!closed_) {
      if (queue_.empty()) {
        if (closing_) break;
        wake_writer_.expires_at(Clock::time_point::max());
        co_await wake_writer_.async_wait(as_tuple);
        continue;
      }
      // Gather everything queued into one write.
      std::vector<Bytes> batch;
      std::vector<asio::const_buffer> buffers;
      while (!queue_.empty() && batch.size() < 64) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queue_drained_.cancel();  // wakes a throttled reader
      for (const Bytes& b : batch) buffers.emplace_back(b.data(), b.size());
      auto [ec, n] = co_await asio::async_write(socket_, buffers, as_tuple);
      if (ec) {
        ForceClose();
        co_return;
      }
    }
    // Everything queued is written: send FIN. The reader closes the socket
    // when the peer closes too, the watchdog at the close deadline.
    flushed_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    if (peer_done_) ForceClose();
  }

  // Enforces the handshake deadline, pings a silent client, closes an idle
  // one, and bounds how long a closing connection may linger.
  awaitable<void> Watchdog() {
    const auto ping_interval = std::chrono::seconds(shared_.limits.ping_interval_s);
    const auto idle_timeout = std::chrono::seconds(shared_.limits.idle_timeout_s);
    while (!closed_) {
      Clock::time_point next;
      if (closing_) {
        next = close_deadline_;
      } else if (!established_) {
        next = handshake_deadline_;
      } else {
        next = last_receive_ + idle_timeout;
        if (last_ping_ < last_receive_) next = std::min(next, last_receive_ + ping_interval);
      }
      const auto now = Clock::now();
      if (now >= next) {
        if (closing_ || !established_) {
          Abort();  // the grace period or the handshake deadline is over
          break;
        }
        if (now >= last_receive_ + idle_timeout) {
          // Silent because we stopped reading it (it never reads our
          // answers): overloaded, not idle.
          auto goodbye = protocol_->MakeClosing(throttled_ ? v1::ERROR_CODE_OVERLOADED
                                                          : v1::ERROR_CODE_IDLE_TIMEOUT);
          if (goodbye.ok()) Enqueue(std::move(goodbye).value());
          BeginClose();
        } else {
          auto ping = protocol_->MakePing();
          if (ping.ok()) Enqueue(std::move(ping).value());
          last_ping_ = now;
        }
        continue;
      }
      watchdog_.expires_at(next);
      co_await watchdog_.async_wait(as_tuple);
    }
  }

  // Stops reading; the writer flushes what is queued, then closes.
  void BeginClose() {
    if (closing_) return;
    closing_ = true;
    LeaveRelay();
    close_deadline_ = Clock::now() + std::chrono::milliseconds(shared_.limits.shutdown_grace_ms);
    wake_writer_.cancel();
    watchdog_.cancel();
    queue_drained_.cancel();
  }

  // Closes with a TCP reset. For a peer that reads nothing, a graceful close
  // leaves the kernel holding what was queued toward it (megabytes) in an
  // orphaned socket for minutes; a reset frees it at once.
  void Abort() {
    if (closed_) return;
    boost::system::error_code ignored;
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
    ForceClose();
  }

  void ForceClose() {
    if (closed_) return;
    closing_ = true;
    closed_ = true;
    abandoned_.store(true, std::memory_order_relaxed);
    LeaveRelay();
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    wake_writer_.cancel();
    watchdog_.cancel();
    queue_drained_.cancel();
    Unregister();
  }

  void LeaveRelay() {
    if (peer_) shared_.relay->Disconnected(std::move(peer_));
    peer_.reset();
  }

  tcp::socket socket_;
  Shared& shared_;
  std::shared_ptr<Peer> peer_;  // once established, until closing
  std::optional<ConnectionProtocol> protocol_;  // from the first message on
  framing::LengthPrefixDecoder decoder_;
  asio::steady_timer watchdog_;
  asio::steady_timer wake_writer_;    // cancelled to wake the writer
  asio::steady_timer queue_drained_;  // cancelled to wake a throttled reader
  std::deque<Bytes> queue_;
  Clock::time_point handshake_deadline_;
  Clock::time_point last_receive_;
  Clock::time_point last_ping_{};
  Clock::time_point close_deadline_{};
  bool established_ = false;  // protocol_.established(), as of the last Apply()
  bool throttled_ = false;  // the reader waits for the queue to drain
  bool closing_ = false;    // no more input is handled; the queue drains
  bool flushed_ = false;    // the queue drained and FIN was sent
  bool peer_done_ = false;  // the peer closed or the read failed
  bool closed_ = false;     // the socket is closed
  std::atomic<bool> abandoned_{false};  // closed_, for a handshake thread to read
  std::list<std::weak_ptr<Session>>::iterator self_entry_;
};

void SessionPeer::Send(v1::Frame frame) {
  auto session = session_.lock();
  if (!session) return;
  asio::post(session->executor(), [session, frame = std::move(frame)]() { session->SendFrame(frame); });
}

void SessionPeer::Drop() {
  auto session = session_.lock();
  if (!session) return;
  asio::post(session->executor(), [session]() { session->Drop(); });
}

void SessionPeer::Disconnect(v1::ErrorCode reason) {
  auto session = session_.lock();
  if (!session) return;
  asio::post(session->executor(), [session, reason]() { session->Goodbye(reason); });
}

// Linux applies nice per thread: setpriority() takes a thread id as a
// process id. Relative to havend's own priority, capped at 19.
void LowerThisThreadsPriority(std::uint32_t increment) {
  if (increment == 0) return;
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return;
  const int target = std::min(19, current + static_cast<int>(increment));
  if (::setpriority(PRIO_PROCESS, tid, target) != 0) {
    LogWarning("cannot lower the handshake threads' priority; they run at havend's own");
  }
}

// Runs `io` until it stops. An exception escaping a handler (none is
// expected: sessions catch theirs) is logged and serving goes on, rather than
// ending the thread and with it havend (std::terminate).
void RunLoggingEscapes(asio::io_context& io) {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      LogError(std::string("unexpected error in a network handler: ") + e.what());
    }
  }
}

}  // namespace

struct Server::Impl {
  Impl(const Config& c, const noise::KeyPair& key, std::unique_ptr<ServerStore> store,
       StoredState state, RelayOptions relay_options)
      : config(c),
        // With handshake threads, accepting a connection (and making its
        // session) is theirs too, at their lower priority: a flood of new
        // connections waits in the kernel's backlog, not in front of
        // established connections. The sockets themselves are io's.
        acceptor(asio::make_strand(c.handshake_threads > 0 ? handshake_io : io)),
        signals(io),
        relay_strand(asio::make_strand(io)),
        sweep_timer(relay_strand) {
    shared.limits = c.limits;
    shared.server_key = key.Clone();
    if (c.handshake_threads > 0) shared.handshake_executor = handshake_io.get_executor();
    const std::uint32_t epoch = store->boot_epoch();
    storage = std::make_unique<StorageWorker>(
        std::move(store), c.storage.group_commit_max_batch,
        std::chrono::microseconds(c.storage.group_commit_linger_us));
    relay = std::make_unique<Relay>(
        [strand = relay_strand](std::function<void()> fn) { asio::post(strand, std::move(fn)); },
        *storage, c, std::move(state), epoch,
        []() { return static_cast<std::int64_t>(std::time(nullptr)); }, std::move(relay_options));
    shared.relay = relay.get();
  }

  // Applies retention now and then every retention.sweep_interval_s.
  void ScheduleSweep() {
    relay->Sweep();
    sweep_timer.expires_after(std::chrono::seconds(config.retention.sweep_interval_s));
    sweep_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec && !sweeps_stopped) ScheduleSweep();  // a sweep due as Stop() came
    });
  }

  awaitable<void> AcceptLoop() {
    while (true) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io), as_tuple);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
      if (ec) {
        // Typically out of file descriptors: back off instead of spinning.
        LogWarning("accept failed: " + ec.message());
        asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
        co_await pause.async_wait(as_tuple);
        continue;
      }
      shared.counters.accepted.fetch_add(1);
      if (shared.counters.active.load() >= shared.limits.max_connections) {
        shared.counters.rejected.fetch_add(1);
        boost::system::error_code ignored;
        socket.close(ignored);  // nothing is ever sent in clear
        continue;
      }
      // Out of memory, this throws: refuse this one connection, as an
      // escaped exception would end the accept loop and with it every later
      // connection.
      try {
        StartSession(std::move(socket));
      } catch (const std::bad_alloc&) {
        shared.NoteRefusedForMemory();
      }
    }
  }

  // On the acceptor's strand. Throws std::bad_alloc when out of memory.
  void StartSession(tcp::socket socket) {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto session = std::make_shared<Session>(std::move(socket), shared);
    std::list<std::weak_ptr<Session>>::iterator entry;
    {
      std::lock_guard lock(shared.mu);
      if (shared.stopping) return;
      entry = shared.sessions.insert(shared.sessions.end(), session);
    }
    session->Start(entry);
  }

  void Stop() {
    // The acceptor on its strand, where the accept loop runs (with handshake
    // threads, behind their queue: accepts made meanwhile find `stopping`).
    asio::post(acceptor.get_executor(), [this]() {
      boost::system::error_code ignored;
      acceptor.close(ignored);
    });
    // The rest on io, so that established sessions get their goodbye at once.
    asio::post(relay_strand, [this]() {
      boost::system::error_code ignored;
      signals.cancel(ignored);
      io_work.reset();
      std::vector<std::shared_ptr<Session>> live;
      {
        std::lock_guard lock(shared.mu);
        shared.stopping = true;
        for (auto& weak : shared.sessions) {
          if (auto s = weak.lock()) live.push_back(std::move(s));
        }
      }
      for (auto& s : live) s->Shutdown();
      sweeps_stopped = true;
      sweep_timer.cancel();
    });
    // Backstop: whatever still runs after the grace period is cut. On its own
    // thread so that a pending timer does not keep io.run() alive.
    std::lock_guard lock(backstop_mu);
    if (backstop.joinable()) return;
    backstop = std::thread([this]() {
      std::unique_lock lk(backstop_mu);
      const auto limit = std::chrono::milliseconds(shared.limits.shutdown_grace_ms + 1000);
      if (!backstop_cv.wait_for(lk, limit, [this] { return run_finished; })) io.stop();
    });
  }

  ~Impl() { FinishBackstop(); }

  void FinishBackstop() {
    {
      std::lock_guard lock(backstop_mu);
      run_finished = true;
    }
    backstop_cv.notify_all();
    if (backstop.joinable()) backstop.join();
  }

  Config config;
  Shared shared;  // outlives io: sessions destroyed with io still use it
  asio::io_context io;
  // Keeps io.run() serving until Stop(), whatever else io has to do.
  asio::executor_work_guard<asio::io_context::executor_type> io_work{io.get_executor()};
  // Handshakes and accepts (with handshake threads). After io, so destroyed
  // before it: a handshake still queued here at the end holds a session of io.
  asio::io_context handshake_io;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::strand<asio::io_context::executor_type> relay_strand;
  asio::steady_timer sweep_timer;
  bool sweeps_stopped = false;  // on relay_strand
  std::unique_ptr<StorageWorker> storage;  // after io: its completions post into io
  std::unique_ptr<Relay> relay;
  std::mutex backstop_mu;
  std::condition_variable backstop_cv;
  bool run_finished = false;  // guarded by backstop_mu
  std::thread backstop;
};

Server::Server(const Config& config, const noise::KeyPair& server_key,
               std::unique_ptr<ServerStore> store, StoredState state, RelayOptions relay_options)
    : impl_(std::make_unique<Impl>(config, server_key, std::move(store), std::move(state),
                                   std::move(relay_options))) {}

Server::~Server() = default;

Result<std::uint16_t> Server::Listen() {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(impl_->config.listen_address, ec);
  if (ec) return Status::InvalidArgument("listen.address is not an IP address");
  const tcp::endpoint endpoint(address, impl_->config.listen_port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("cannot listen on " + impl_->config.listen_address + ":" +
                               std::to_string(impl_->config.listen_port) + ": " + ec.message() +
                               " (is another havend running? change listen.port)");
  }
  return acceptor.local_endpoint().port();
}

void Server::StopOnSignals() {
  Impl& impl = *impl_;
  impl.signals.add(SIGINT);
  impl.signals.add(SIGTERM);
  impl.signals.async_wait([this](boost::system::error_code ec, int) {
    if (!ec) {
      LogInfo("signal received: shutting down");
      Stop();
    }
  });
}

void Server::Run() {
  Impl& impl = *impl_;
  asio::co_spawn(impl.acceptor.get_executor(), impl.AcceptLoop(), asio::detached);
  asio::post(impl.relay_strand, [&impl]() { impl.ScheduleSweep(); });
  auto handshake_work = asio::make_work_guard(impl.handshake_io);
  std::vector<std::thread> handshake_threads;
  for (std::uint32_t i = 0; i < impl.config.handshake_threads; ++i) {
    handshake_threads.emplace_back([&impl]() {
      LowerThisThreadsPriority(impl.config.handshake_nice);
      RunLoggingEscapes(impl.handshake_io);
    });
  }
  std::vector<std::thread> threads;
  for (std::uint32_t i = 1; i < impl.config.threads; ++i) {
    threads.emplace_back([&impl]() { RunLoggingEscapes(impl.io); });
  }
  RunLoggingEscapes(impl.io);
  for (auto& t : threads) t.join();
  // Every session has ended (or the backstop stopped io): no handshake is
  // awaited any more.
  handshake_work.reset();
  impl.handshake_io.stop();
  for (auto& t : handshake_threads) t.join();
  impl.FinishBackstop();
  // Everything accepted is already committed; this finishes the deletes and
  // updates still queued.
  impl.storage->Stop();
}

void Server::Stop() { impl_->Stop(); }

ServerStats Server::stats() const {
  const Counters& c = impl_->shared.counters;
  return {c.active.load(), c.accepted.load(), c.rejected.load(), c.handshakes_ok.load(),
          c.handshakes_failed.load()};
}

}  // namespace haven::server
