// haven::sdk::Client: the Engine (protocol logic, no I/O) driven by an I/O
// thread running Asio coroutines, and an event thread that calls the
// application. One mutex (state_mu) guards the engine, the Noise channel and
// the local store; the I/O thread holds it only while it computes, never
// across a network wait, so QuickExit() acquires it within one step.
#include "haven/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <sodium.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "client/engine.h"
#include "client/local_store.h"
#include "client/testing.h"
#include "client/wipe.h"
#include "haven/framing/length_prefix.h"
#include "transport/client_channel.h"

namespace haven::sdk {
namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using client::PendingEvent;
namespace fs = std::filesystem;
namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// Nothing from the server for this long means the path is dead (havend
// pings an idle client every 30 s by default).
constexpr std::chrono::seconds kSilenceLimit{75};

bool Cancelled(const asio::cancellation_state& cs) {
  return cs.cancelled() != asio::cancellation_type::none;
}

}  // namespace

struct Client::Impl {
  ClientOptions options;  // borrowed views cleared
  EventCallback callback;
  fs::path dir;
  tcp::endpoint endpoint;
  noise::PublicKey server_key{};  // pinned

  // --- guarded by state_mu ---
  mutable std::mutex state_mu;
  std::unique_ptr<client::LocalStore> store;
  std::unique_ptr<client::Engine> engine;
  std::optional<client::ClientChannel> channel;
  SecureBuffer resumption_secret;

  std::atomic<bool> exited{false};
  std::atomic<bool> shutting_down{false};
  std::atomic<int> connection{static_cast<int>(ConnectionState::kConnecting)};

  // --- events ---
  std::mutex ev_mu;
  std::condition_variable ev_cv;
  std::deque<PendingEvent> ev_queue;
  bool ev_stop = false;
  std::mutex deliver_mu;  // held while the callback runs
  std::thread ev_thread;

  std::mutex quick_exit_mu;
  bool wiped = false;
  // Set by the I/O thread once quick exit's notice is written and the
  // connection closed (or there was no connection): the destructor waits
  // for it, within the notice's deadline, so that an app which frees the
  // client right after QuickExit() still tells the counsellor.
  std::atomic<bool> notice_done{false};

  // --- the I/O thread (everything below is touched only there) ---
  asio::io_context io;
  std::thread io_thread;
  tcp::socket* socket = nullptr;
  asio::steady_timer* kick = nullptr;
  std::deque<Bytes> write_queue;
  bool close_after_write = false;

  // ---------------------------------------------------------------- events
  void Publish(std::deque<PendingEvent> events) {
    if (events.empty()) return;
    std::lock_guard lock(ev_mu);
    if (exited.load()) return;  // destroyed here: text zeroed
    for (auto& e : events) ev_queue.push_back(std::move(e));
    ev_cv.notify_one();
  }

  void SetConnection(ConnectionState s) {
    if (connection.exchange(static_cast<int>(s)) == static_cast<int>(s)) return;
    PendingEvent e;
    e.type = EventType::kConnectionChanged;
    e.connection = s;
    std::deque<PendingEvent> one;
    one.push_back(std::move(e));
    Publish(std::move(one));
  }

  void EventLoop() {
    while (true) {
      PendingEvent pe;
      {
        std::unique_lock lock(ev_mu);
        ev_cv.wait(lock, [&] { return ev_stop || !ev_queue.empty(); });
        if (ev_stop) return;
        pe = std::move(ev_queue.front());
        ev_queue.pop_front();
      }
      std::lock_guard deliver(deliver_mu);
      const bool final_event = pe.type == EventType::kQuickExitCompleted;
      if (exited.load() && !final_event) continue;
      Event e;
      e.type = pe.type;
      e.connection = pe.connection;
      e.conversation = pe.conversation;
      e.state = pe.state;
      e.message = pe.message;
      e.text = std::string_view(reinterpret_cast<const char*>(pe.text.data()), pe.text.size());
      e.error = pe.error;
      e.error_message = pe.error_message;
      e.card = pe.card ? &*pe.card : nullptr;
      e.accepted = pe.accepted;
      e.alert = pe.alert;
      e.flagged_high_risk = pe.flagged_high_risk;
      e.flagged_minor = pe.flagged_minor;
      e.sender = pe.sender;
      if (callback) {
        try {
          callback(e);
        } catch (...) {
          // An exception from the application must not end the SDK.
        }
      }
      if (final_event) return;
    }
  }

  // ---------------------------------------------------------------- I/O
  // Takes what the engine produced: frames to seal and queue, events to publish.
  // Called with state_mu held, on the I/O thread.
  void DrainEngineLocked(std::deque<PendingEvent>* events) {
    if (!engine) return;
    for (auto& f : engine->TakeOutgoing()) {
      if (!channel || !channel->established()) continue;
      auto sealed = channel->Seal(f);
      if (!sealed.ok()) continue;
      Bytes framed;
      if (framing::AppendLengthPrefixed(*sealed, &framed).ok()) write_queue.push_back(std::move(framed));
    }
    auto evs = engine->TakeEvents();
    for (auto& e : evs) events->push_back(std::move(e));
  }

  // From any thread: the engine has new frames (an application command).
  void Wake() {
    asio::post(io, [this] {
      std::deque<PendingEvent> events;
      {
        std::lock_guard lock(state_mu);
        DrainEngineLocked(&events);
      }
      Publish(std::move(events));
      if (kick) kick->cancel();
    });
  }

  awaitable<void> Run() {
    auto backoff = options.reconnect_min;
    std::mt19937 rng(std::random_device{}());
    bool first = true;
    while (!exited.load() && !shutting_down.load()) {
      SetConnection(first ? ConnectionState::kConnecting : ConnectionState::kOffline);
      first = false;
      const bool was_online = co_await Session();
      {
        std::deque<PendingEvent> events;
        std::lock_guard lock(state_mu);
        channel.reset();
        if (engine) {
          engine->OnDisconnected();
          if (engine->stopped()) {
            engine->TakeEvents().swap(events);
            Publish(std::move(events));
            SetConnection(ConnectionState::kStopped);
            co_return;
          }
        }
      }
      if (exited.load()) co_return;
      if (was_online) backoff = options.reconnect_min;
      // Full jitter, so that many clients do not return in step.
      std::uniform_int_distribution<long long> pick(backoff.count() / 2, backoff.count());
      asio::steady_timer wait(io, std::chrono::milliseconds(pick(rng)));
      co_await wait.async_wait(kUseTuple);
      backoff = std::min(backoff * 2, options.reconnect_max);
    }
  }

  // One connection: connect, handshake, then frames until it breaks.
  // Returns whether it got online.
  awaitable<bool> Session() {
    tcp::socket sock(io);
    asio::steady_timer deadline(io);
    deadline.expires_after(options.connect_timeout);
    deadline.async_wait([&sock](const boost::system::error_code& ec) {
      if (!ec) sock.close();
    });
    auto [cerr] = co_await sock.async_connect(endpoint, kUseTuple);
    if (cerr || exited.load()) co_return false;
    sock.set_option(tcp::no_delay(true));

    framing::LengthPrefixDecoder decoder(framing::kMaxFrameLen);
    std::array<std::uint8_t, 16384> buf{};
    Bytes out;
    {
      std::lock_guard lock(state_mu);
      if (!engine) co_return false;
      auto ch = client::ClientChannel::Create(server_key, engine->transport_key().Clone());
      if (!ch.ok()) co_return false;
      channel.emplace(std::move(ch).value());
      auto m1 = channel->Start();
      if (!m1.ok() || !framing::AppendLengthPrefixed(*m1, &out).ok()) co_return false;
    }
    auto [w1, n1] = co_await asio::async_write(sock, asio::buffer(out), kUseTuple);
    if (w1) co_return false;
    while (!decoder.HasMessage()) {
      auto [rerr, n] = co_await sock.async_read_some(asio::buffer(buf), kUseTuple);
      if (rerr) co_return false;
      ByteView in(buf.data(), n);
      while (!in.empty() && !decoder.HasMessage()) {
        auto used = decoder.Feed(in);
        if (!used.ok()) co_return false;
        in = in.subspan(*used);
      }
      if (!in.empty()) co_return false;  // the server speaks only after message 3
    }
    out.clear();
    {
      std::lock_guard lock(state_mu);
      if (!channel) co_return false;
      auto m3 = channel->Finish(decoder.message());
      if (!m3.ok() || !framing::AppendLengthPrefixed(*m3, &out).ok()) co_return false;
    }
    decoder.Pop();
    auto [w3, n3] = co_await asio::async_write(sock, asio::buffer(out), kUseTuple);
    if (w3) co_return false;
    deadline.cancel();

    // Online.
    asio::steady_timer kick_timer(io);
    socket = &sock;
    kick = &kick_timer;
    write_queue.clear();
    std::deque<PendingEvent> events;
    {
      std::lock_guard lock(state_mu);
      if (!engine) co_return false;
      engine->OnConnected();
      DrainEngineLocked(&events);
    }
    Publish(std::move(events));
    SetConnection(ConnectionState::kOnline);

    using namespace asio::experimental::awaitable_operators;
    co_await (ReadLoop(sock, decoder) || WriteLoop(sock) || TickLoop());
    socket = nullptr;
    kick = nullptr;
    boost::system::error_code ignored;
    sock.shutdown(tcp::socket::shutdown_both, ignored);
    sock.close(ignored);
    if (exited.load()) notice_done.store(true);
    co_return true;
  }

  std::chrono::steady_clock::time_point last_received;  // I/O thread only

  awaitable<void> ReadLoop(tcp::socket& sock, framing::LengthPrefixDecoder& decoder) {
    std::array<std::uint8_t, 16384> buf{};
    last_received = std::chrono::steady_clock::now();
    while (true) {
      auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), kUseTuple);
      if (ec) co_return;
      last_received = std::chrono::steady_clock::now();
      std::deque<PendingEvent> events;
      bool broken = false;
      {
        std::lock_guard lock(state_mu);
        // After quick exit: discard what still arrives until the notice is
        // written and the socket closes.
        if (!engine || !channel) continue;
        ByteView in(buf.data(), n);
        while (!in.empty() && !broken) {
          auto used = decoder.Feed(in);
          if (!used.ok()) {
            broken = true;
            break;
          }
          in = in.subspan(*used);
          if (!decoder.HasMessage()) continue;
          auto frame = channel->Open(decoder.message());
          decoder.Pop();
          if (!frame.ok()) {
            // A failed tag ends the connection; a frame we cannot parse is skipped.
            if (frame.status().code() == haven::Status::Code::kDataLoss) broken = true;
            continue;
          }
          if (!engine->OnFrame(*frame).ok()) broken = true;
        }
        engine->Flush();
        DrainEngineLocked(&events);
        broken = broken || engine->stopped();
      }
      Publish(std::move(events));
      if (kick) kick->cancel();
      if (broken) co_return;
    }
  }

  awaitable<void> WriteLoop(tcp::socket& sock) {
    auto cs = co_await asio::this_coro::cancellation_state;
    while (true) {
      while (!write_queue.empty()) {
        Bytes next = std::move(write_queue.front());
        write_queue.pop_front();
        auto [ec, n] = co_await asio::async_write(sock, asio::buffer(next), kUseTuple);
        if (ec) co_return;
      }
      if (close_after_write) {
        // FIN after the notice, then let the reader drain until the server
        // closes: closing with unread input would send a RST, and a RST
        // makes the server discard the notice it has not read yet.
        boost::system::error_code ignored;
        sock.shutdown(tcp::socket::shutdown_send, ignored);
        close_after_write = false;
      }
      kick->expires_at(asio::steady_timer::time_point::max());
      co_await kick->async_wait(kUseTuple);
      if (Cancelled(cs)) co_return;
    }
  }

  awaitable<void> TickLoop() {
    auto cs = co_await asio::this_coro::cancellation_state;
    asio::steady_timer t(io);
    while (true) {
      t.expires_after(std::chrono::seconds(1));
      co_await t.async_wait(kUseTuple);
      if (Cancelled(cs)) co_return;
      if (std::chrono::steady_clock::now() - last_received > kSilenceLimit) co_return;
      std::deque<PendingEvent> events;
      {
        std::lock_guard lock(state_mu);
        if (!engine) continue;
        engine->Tick();
        DrainEngineLocked(&events);
      }
      Publish(std::move(events));
      if (kick) kick->cancel();
    }
  }

  // On the I/O thread, after QuickExit wiped everything: write the sealed
  // QuickExit frame if there is a connection, close within the deadline.
  void SendQuickExitAndClose(Bytes framed) {
    // Frames already sealed stay in the queue, ahead of the notice: the
    // notice's Noise nonce follows theirs, and a gap would make the server
    // drop the connection unread. They hold only ciphertext.
    if (socket == nullptr) {
      write_queue.clear();
      notice_done.store(true);
      return;
    }
    if (!framed.empty()) write_queue.push_back(std::move(framed));
    close_after_write = true;
    if (kick) kick->cancel();
    auto closer = std::make_shared<asio::steady_timer>(io, options.quick_exit_notice_timeout);
    closer->async_wait([this, closer](const boost::system::error_code&) {
      if (socket != nullptr) {
        boost::system::error_code ignored;
        socket->close(ignored);
      }
    });
  }

  // ---------------------------------------------------------------- quick exit
  void QuickExit() noexcept {
    std::lock_guard once(quick_exit_mu);
    if (wiped) return;
    exited.store(true);

    // 1. No more events, except the final one.
    try {
      std::lock_guard lock(ev_mu);
      ev_queue.clear();  // PendingEvent texts are zeroed as they go
    } catch (...) {
    }
    if (ev_thread.joinable() && std::this_thread::get_id() != ev_thread.get_id()) {
      // Waits for a callback already running, so that nothing is delivered
      // after QuickExit returns.
      try {
        std::lock_guard wait_for_callback(deliver_mu);
      } catch (...) {
      }
    }

    // 2 + 3. Seal the notice, then zero every key and message the SDK holds.
    Bytes notice;
    try {
      std::lock_guard lock(state_mu);
      try {
        if (options.role == Role::kSurvivor && channel && channel->established()) {
          v1::Frame f;
          f.set_request_id(0xFFFFFFFFull);
          f.mutable_request()->mutable_quick_exit();
          auto sealed = channel->Seal(f);
          if (sealed.ok()) (void)framing::AppendLengthPrefixed(*sealed, &notice);
        }
      } catch (...) {
      }
      engine.reset();
      channel.reset();
      resumption_secret.Reset();
      // 4. Crypto-shredding: the store's key goes before its files.
      if (store) store->Destroy();
      store.reset();
    } catch (...) {
    }

    // 5. The notice and the close happen on the I/O thread; nobody waits.
    try {
      asio::post(io, [this, n = std::move(notice)]() mutable { SendQuickExitAndClose(std::move(n)); });
    } catch (...) {
    }

    // 4 (files). Marker first, removed last.
    try {
      (void)client::WipeStorageDir(dir);
    } catch (...) {
    }

    // The final event.
    try {
      PendingEvent done;
      done.type = EventType::kQuickExitCompleted;
      std::lock_guard lock(ev_mu);
      ev_queue.push_back(std::move(done));
      ev_cv.notify_one();
    } catch (...) {
    }
    SetConnectionQuiet(ConnectionState::kStopped);
    wiped = true;
  }

  void SetConnectionQuiet(ConnectionState s) { connection.store(static_cast<int>(s)); }

  Status Exited() const { return {Code::kExited, "quick exit ran: this client is inert"}; }

  // Reads engine state under the lock.
  template <typename F>
  Status Query(F&& f) {
    if (exited.load()) return Exited();
    std::lock_guard lock(state_mu);
    if (!engine) return Exited();
    return f(*engine);
  }

  // Runs an engine command under the lock, then wakes the I/O thread.
  template <typename F>
  Status Command(F&& f) {
    if (exited.load()) return Exited();
    Status st;
    std::deque<PendingEvent> events;
    {
      std::lock_guard lock(state_mu);
      if (!engine) return Exited();
      st = f(*engine);
      // Events a command produces itself (e.g. kOpening) go out in order.
      for (auto& e : engine->TakeEvents()) events.push_back(std::move(e));
    }
    Publish(std::move(events));
    Wake();
    return st;
  }
};

// ---------------------------------------------------------------- Client

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() {
  Impl& d = *impl_;
  if (d.exited.load()) {
    const auto deadline =
        std::chrono::steady_clock::now() + d.options.quick_exit_notice_timeout + std::chrono::milliseconds(50);
    while (!d.notice_done.load() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  d.shutting_down.store(true);
  d.io.stop();
  if (d.io_thread.joinable()) d.io_thread.join();
  {
    std::lock_guard lock(d.ev_mu);
    // After quick exit the event thread ends by itself, once the final
    // event is delivered; otherwise pending events are dropped (and zeroed).
    if (!d.exited.load()) {
      d.ev_stop = true;
      d.ev_queue.clear();
    }
    d.ev_cv.notify_one();
  }
  if (d.ev_thread.joinable()) d.ev_thread.join();
}

Status Client::Create(const ClientOptions& options, EventCallback on_event,
                      std::unique_ptr<Client>* out) {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  try {
    if (sodium_init() < 0) return {Code::kInternal, "libsodium could not be initialised"};
    auto d = std::make_unique<Impl>();
    d->options = options;
    d->options.store_passphrase = {};
    d->options.resumption_secret = {};
    d->options.store_key.reset();
    d->callback = std::move(on_event);

    // Before anything else: finish a wipe that a crash interrupted.
    if (!options.storage_dir.empty()) {
      d->dir = options.storage_dir;
      std::error_code fec;
      if (!fs::is_directory(d->dir, fec)) {
        return {Code::kInvalidArgument, "storage_dir must be an existing directory"};
      }
      if (client::WipePending(d->dir) && !client::WipeStorageDir(d->dir).ok()) {
        return {Code::kStorage, "an interrupted quick exit could not be completed in storage_dir"};
      }
    }

    if (options.role != Role::kSurvivor && options.role != Role::kCounsellor &&
        options.role != Role::kSupervisor) {
      return {Code::kInvalidArgument, "role must be survivor, counsellor or supervisor"};
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options.host, ec);
    if (ec) return {Code::kInvalidArgument, "host must be a numeric IP address (no DNS lookups)"};
    if (options.port == 0) return {Code::kInvalidArgument, "port must be 1..65535"};
    d->endpoint = tcp::endpoint(address, options.port);
    if (std::all_of(options.server_public_key.begin(), options.server_public_key.end(),
                    [](std::uint8_t b) { return b == 0; })) {
      return {Code::kInvalidArgument, "server_public_key must be the helpline server's key"};
    }
    std::copy(options.server_public_key.begin(), options.server_public_key.end(),
              d->server_key.begin());
    if (options.reconnect_min.count() <= 0 || options.reconnect_max < options.reconnect_min) {
      return {Code::kInvalidArgument, "reconnect_min must be > 0 and <= reconnect_max"};
    }
    if (options.role != Role::kSurvivor &&
        (options.resumable || !options.resumption_secret.empty())) {
      return {Code::kInvalidArgument, "resumption is for survivors; a counsellor device keeps its keys in the local store"};
    }

    if (options.local_store) {
      if (d->dir.empty()) return {Code::kInvalidArgument, "the local store needs storage_dir"};
      SecureBuffer key;
      if (options.store_key) {
        key = SecureBuffer::CopyOf(*options.store_key);
      } else if (!options.store_passphrase.empty()) {
        auto k = client::LocalStore::DeriveKey(d->dir, options.store_passphrase);
        if (!k.ok()) return {Code::kStorage, k.status().message()};
        key = std::move(k).value();
      } else {
        return {Code::kInvalidArgument, "the local store needs store_passphrase or store_key"};
      }
      auto store = client::LocalStore::Open(d->dir, std::move(key));
      if (!store.ok()) {
        if (store.status().code() == haven::Status::Code::kDataLoss) {
          return {Code::kWrongPassphrase, "the local store did not open with this passphrase or key"};
        }
        return {Code::kStorage, "the local store could not be opened"};
      }
      d->store = std::move(store).value();
    }

    // Who this client is.
    std::optional<client::DeviceKeys> keys;
    if (!options.resumption_secret.empty()) {
      auto secret = client::DecodeResumptionSecret(options.resumption_secret);
      if (!secret) {
        return {Code::kInvalidArgument, "the resumption secret is not valid (32 symbols, dashes optional)"};
      }
      auto k = client::DeviceKeys::FromResumptionSecret(secret->view());
      if (!k.ok()) return {Code::kInternal, "keys could not be derived"};
      keys.emplace(std::move(k).value());
      d->resumption_secret = std::move(*secret);
      if (d->store) {
        // A store holds one identity's conversations; it cannot take another's.
        auto stored = d->store->Get("device");
        if (!stored.ok()) return {Code::kStorage, "the local store could not be read"};
        if (*stored) {
          auto k2 = client::DeviceKeys::Deserialize((*stored)->view());
          if (!k2.ok() || k2->transport.public_key != keys->transport.public_key) {
            return {Code::kInvalidArgument,
                    "the local store in storage_dir belongs to another identity than this "
                    "resumption secret: use another storage_dir"};
          }
        }
      }
    } else if (d->store) {
      auto stored = d->store->Get("device");
      if (!stored.ok()) return {Code::kStorage, "the local store could not be read"};
      if (*stored) {
        auto k = client::DeviceKeys::Deserialize((*stored)->view());
        if (!k.ok()) return {Code::kStorage, "the local store's keys are damaged"};
        keys.emplace(std::move(k).value());
      }
    }
    if (!keys && options.resumable) {
      SecureBuffer secret = SecureBuffer::Random(client::kResumptionSecretLen);
      auto k = client::DeviceKeys::FromResumptionSecret(secret.view());
      if (!k.ok()) return {Code::kInternal, "keys could not be derived"};
      keys.emplace(std::move(k).value());
      d->resumption_secret = std::move(secret);
    }
    if (!keys) keys.emplace(client::DeviceKeys::Generate());
    if (d->store && !d->store->Put("device", keys->Serialize().view()).ok()) {
      return {Code::kStorage, "the local store could not be written"};
    }

    client::EngineOptions eo;
    eo.role = options.role;
    if (options.helpline_public_key) {
      crypto::X25519Public k{};
      std::copy(options.helpline_public_key->begin(), options.helpline_public_key->end(), k.begin());
      eo.helpline_public_key = k;
    }
    d->engine = std::make_unique<client::Engine>(eo, std::move(*keys), d->store.get());
    if (!d->engine->Restore().ok()) return {Code::kStorage, "the local store's conversations are damaged"};
    std::deque<PendingEvent> restored = d->engine->TakeEvents();

    Impl* raw = d.get();
    raw->Publish(std::move(restored));
    raw->ev_thread = std::thread([raw] { raw->EventLoop(); });
    asio::co_spawn(raw->io, raw->Run(), asio::detached);
    raw->io_thread = std::thread([raw] {
      try {
        raw->io.run();
      } catch (...) {
        raw->SetConnection(ConnectionState::kStopped);
      }
    });
    out->reset(new Client(std::move(d)));
    return {};
  } catch (const std::bad_alloc&) {
    return {Code::kInternal, "out of memory"};
  } catch (...) {
    return {Code::kInternal, "unexpected failure while starting the client"};
  }
}

Status Client::OpenConversation(const RoutingHints& hints, std::string_view intake,
                                ConversationId* out) {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  return impl_->Command([&](client::Engine& e) { return e.Open(hints, intake, out); });
}

Status Client::ResumptionSecret(std::string* out) const {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  if (impl_->exited.load()) return impl_->Exited();
  std::lock_guard lock(impl_->state_mu);
  if (impl_->resumption_secret.empty()) {
    return {Code::kWrongState, "this session is not resumable (set ClientOptions::resumable)"};
  }
  *out = client::EncodeResumptionSecret(impl_->resumption_secret.view());
  return {};
}

Status Client::RedeemInvitation(std::string_view code) {
  return impl_->Command([&](client::Engine& e) { return e.Redeem(code); });
}

Status Client::Queue(std::vector<QueueEntry>* out) const {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  return impl_->Query([&](client::Engine& e) -> Status {
    if (impl_->options.role == Role::kSurvivor) {
      return {Code::kWrongRole, "only counsellors see the queue"};
    }
    *out = e.Queue();
    return {};
  });
}

Status Client::Claim(ConversationId conversation) {
  return impl_->Command([&](client::Engine& e) { return e.Claim(conversation); });
}

Status Client::SetPresence(Presence presence, std::vector<std::string> languages) {
  return impl_->Command(
      [&](client::Engine& e) { return e.SetPresence(presence, std::move(languages)); });
}

Status Client::Helpline(HelplineInfo* out) const {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  return impl_->Query([&](client::Engine& e) { return e.Helpline(out); });
}

Status Client::Colleagues(std::vector<Colleague>* out) const {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  return impl_->Query([&](client::Engine& e) {
    *out = e.Colleagues();
    return Status();
  });
}

Status Client::RefreshColleagues() {
  return impl_->Command([&](client::Engine& e) { return e.RefreshColleagues(); });
}

Status Client::TransferToQueue(ConversationId conversation, std::string_view language) {
  return impl_->Command([&](client::Engine& e) { return e.TransferToQueue(conversation, language); });
}

Status Client::TransferToColleague(ConversationId conversation, std::string_view colleague_id,
                                   bool warm, std::string_view handoff_note) {
  return impl_->Command([&](client::Engine& e) {
    return e.TransferToColleague(conversation, colleague_id, warm, handoff_note);
  });
}

Status Client::AnswerTransfer(ConversationId conversation, bool accept) {
  return impl_->Command([&](client::Engine& e) { return e.AnswerTransfer(conversation, accept); });
}

Status Client::Block(ConversationId conversation, unsigned hours, std::string_view reason) {
  return impl_->Command([&](client::Engine& e) { return e.Block(conversation, hours, reason); });
}

Status Client::Flag(ConversationId conversation, bool high_risk, bool minor) {
  return impl_->Command([&](client::Engine& e) { return e.Flag(conversation, high_risk, minor); });
}

Status Client::CloseWithWrapUp(ConversationId conversation, const WrapUp& wrapup) {
  return impl_->Command([&](client::Engine& e) { return e.CloseWithWrapUp(conversation, wrapup); });
}

Status Client::SendResourceCard(ConversationId conversation, std::string_view referral_id,
                                MessageId* out) {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  return impl_->Command(
      [&](client::Engine& e) { return e.SendResourceCard(conversation, referral_id, out); });
}

Status Client::JoinConversation(ConversationId conversation) {
  return impl_->Command([&](client::Engine& e) { return e.Join(conversation); });
}

Status Client::LeaveConversation(ConversationId conversation) {
  return impl_->Command([&](client::Engine& e) { return e.Leave(conversation); });
}

Status Client::RefreshLoad() {
  return impl_->Command([&](client::Engine& e) { return e.RefreshLoad(); });
}

Status Client::Load(LoadSnapshot* out) const {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  return impl_->Query([&](client::Engine& e) { return e.Load(out); });
}

Status Client::Send(ConversationId conversation, std::string_view text, MessageId* out) {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  return impl_->Command([&](client::Engine& e) { return e.Send(conversation, text, out); });
}

Status Client::CloseConversation(ConversationId conversation) {
  return impl_->Command([&](client::Engine& e) { return e.Close(conversation); });
}

Status Client::Conversations(std::vector<ConversationInfo>* out) const {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  return impl_->Query([&](client::Engine& e) {
    *out = e.Conversations();
    return Status();
  });
}

Status Client::SafetyNumber(ConversationId conversation, std::string* out) const {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  return impl_->Query([&](client::Engine& e) { return e.SafetyNumber(conversation, out); });
}

Status Client::History(ConversationId conversation, std::vector<HistoryEntry>* out) const {
  if (out == nullptr) return {Code::kInvalidArgument, "out must not be null"};
  return impl_->Query([&](client::Engine& e) { return e.History(conversation, out); });
}

ConnectionState Client::connection_state() const {
  return static_cast<ConnectionState>(impl_->connection.load());
}

void Client::QuickExit() noexcept { impl_->QuickExit(); }

bool Client::exited() const noexcept { return impl_->exited.load(); }

std::vector<SecureBuffer> ClientInternals::SessionKeys(Client& client) {
  Client::Impl& d = *client.impl_;
  std::lock_guard lock(d.state_mu);
  std::vector<SecureBuffer> out;
  if (d.engine) out = d.engine->SessionKeysForTesting();
  if (d.channel) {
    for (ByteView k : d.channel->KeysForTesting()) {
      if (!k.empty()) out.push_back(SecureBuffer::CopyOf(k));
    }
  }
  return out;
}

}  // namespace haven::sdk
