#include "load/net.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "load/bench_util.h"

namespace haven::bench {
namespace {

constexpr std::size_t kConnectionsPerSourceAddress = 20000;

int PollFor(int fd, short events, std::int64_t deadline_ns) {
  const std::int64_t left_ms = (deadline_ns - NowNs()) / 1'000'000;
  if (left_ms < 0) return 0;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 1000)) + 1);
}

std::int64_t DeadlineAfter(std::chrono::milliseconds timeout) {
  return NowNs() + timeout.count() * 1'000'000;
}

}  // namespace

int StartTcpConnect(std::uint16_t port, std::size_t index) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const auto source_host = static_cast<std::uint32_t>(1 + index / kConnectionsPerSourceAddress);
  if (source_host > 1) {
    // The port is chosen at connect(), per destination, not at bind().
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl((127u << 24) | std::min<std::uint32_t>(source_host, 250));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint64_t RaiseFileLimit(std::uint64_t want) {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur >= want) return r.rlim_cur;
  rlimit wanted = r;
  wanted.rlim_cur = want;
  if (wanted.rlim_max < want) wanted.rlim_max = want;
  if (::setrlimit(RLIMIT_NOFILE, &wanted) != 0) {
    wanted.rlim_cur = r.rlim_max;  // not root: as far as the hard limit allows
    wanted.rlim_max = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &wanted);
  }
  ::getrlimit(RLIMIT_NOFILE, &r);
  return r.rlim_cur;
}

void QueueMessage(Conn& c, ByteView message) {
  (void)framing::AppendLengthPrefixed(message, &c.out);
}

bool QueueFrame(Conn& c, const v1::Frame& frame) {
  auto sealed = c.channel->Seal(frame);
  if (!sealed.ok()) return false;
  QueueMessage(c, *sealed);
  return true;
}

bool FlushSome(Conn& c) {
  while (c.out_done < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_done, c.out.size() - c.out_done,
                             MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    c.out_done += static_cast<std::size_t>(n);
  }
  c.out.clear();
  c.out_done = 0;
  return true;
}

bool ReadSome(Conn& c, const std::function<void(ByteView)>& on_message) {
  std::uint8_t buf[65536];
  while (true) {
    const ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    ByteView data(buf, static_cast<std::size_t>(n));
    while (!data.empty()) {
      auto used = c.decoder.Feed(data);
      if (!used.ok()) return false;
      data = data.subspan(*used);
      if (c.decoder.HasMessage()) {
        on_message(c.decoder.message());
        c.decoder.Pop();
      }
    }
    if (static_cast<std::size_t>(n) < sizeof buf) return true;
  }
}

void CloseConn(Conn& c, bool reset) {
  if (c.fd < 0) return;
  if (reset) {
    // RST instead of FIN: no TIME_WAIT left behind by handshake churn.
    linger l{1, 0};
    ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  ::close(c.fd);
  c.fd = -1;
  c.phase = Phase::kClosed;
}

bool WaitConnected(Conn& c, std::chrono::milliseconds timeout) {
  const auto deadline = DeadlineAfter(timeout);
  while (NowNs() < deadline) {
    if (PollFor(c.fd, POLLOUT, deadline) > 0) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      return err == 0;
    }
  }
  return false;
}

bool FlushBlocking(Conn& c, std::chrono::milliseconds timeout) {
  const auto deadline = DeadlineAfter(timeout);
  while (!c.out.empty()) {
    if (!FlushSome(c)) return false;
    if (c.out.empty()) return true;
    if (NowNs() > deadline) return false;
    PollFor(c.fd, POLLOUT, deadline);
  }
  return true;
}

std::optional<Bytes> NextMessageBlocking(Conn& c, std::chrono::milliseconds timeout) {
  const auto deadline = DeadlineAfter(timeout);
  while (c.raw_inbox.empty()) {
    if (NowNs() > deadline) return std::nullopt;
    if (PollFor(c.fd, POLLIN, deadline) <= 0) continue;
    const bool open = ReadSome(c, [&](ByteView m) { c.raw_inbox.emplace_back(m.begin(), m.end()); });
    if (!open && c.raw_inbox.empty()) return std::nullopt;
  }
  Bytes m = std::move(c.raw_inbox.front());
  c.raw_inbox.pop_front();
  return m;
}

bool ConnectHavenBlocking(Conn& c, std::uint16_t port, const noise::PublicKey& server_key,
                          std::size_t index, std::chrono::milliseconds timeout) {
  c.wire = Wire::kHaven;
  c.decoder = framing::LengthPrefixDecoder(framing::kMaxFrameLen);
  c.raw_inbox.clear();
  c.out.clear();
  c.out_done = 0;
  c.fd = StartTcpConnect(port, index);
  if (c.fd < 0 || !WaitConnected(c, timeout)) return false;
  auto channel = client::ClientChannel::Create(server_key, c.key.Clone());
  if (!channel.ok()) return false;
  c.channel.emplace(std::move(channel).value());
  auto m1 = c.channel->Start();
  if (!m1.ok()) return false;
  QueueMessage(c, *m1);
  if (!FlushBlocking(c, timeout)) return false;
  auto m2 = NextMessageBlocking(c, timeout);
  if (!m2) return false;
  auto m3 = c.channel->Finish(*m2);
  if (!m3.ok()) return false;
  QueueMessage(c, *m3);
  if (!FlushBlocking(c, timeout)) return false;
  c.phase = Phase::kReady;
  return true;
}

std::optional<v1::Response> CallBlocking(Conn& c, v1::Request request,
                                         std::chrono::milliseconds timeout) {
  v1::Frame f;
  const std::uint64_t id = c.next_request_id++;
  f.set_request_id(id);
  *f.mutable_request() = std::move(request);
  if (!QueueFrame(c, f) || !FlushBlocking(c, timeout)) return std::nullopt;
  const auto deadline = DeadlineAfter(timeout);
  while (NowNs() < deadline) {
    auto m = NextMessageBlocking(c, timeout);
    if (!m) return std::nullopt;
    auto frame = c.channel->Open(*m);
    if (!frame.ok()) return std::nullopt;
    if (frame->has_request() && frame->request().has_ping()) {
      v1::Frame pong;
      pong.set_request_id(frame->request_id());
      pong.mutable_response()->mutable_pong()->set_opaque(frame->request().ping().opaque());
      if (!QueueFrame(c, pong) || !FlushBlocking(c, timeout)) return std::nullopt;
      continue;
    }
    if (frame->has_response() && frame->request_id() == id) return frame->response();
  }
  return std::nullopt;
}

Loop::Loop() : epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)) {}
Loop::~Loop() { ::close(epoll_fd_); }

void Loop::Add(Conn& c) {
  epoll_event ev{};
  ev.events = EPOLLIN | (c.phase == Phase::kConnecting || !c.out.empty() ? EPOLLOUT : 0u);
  c.watching_write = (ev.events & EPOLLOUT) != 0;
  ev.data.ptr = &c;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev);
}

void Loop::Remove(Conn& c) {
  if (c.fd >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
}

void Loop::Update(Conn& c) {
  const bool want = c.phase == Phase::kConnecting || !c.out.empty();
  if (want == c.watching_write || c.fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.watching_write = want;
}

void Loop::RunOnce(std::int64_t deadline_ns,
                   const std::function<void(Conn&, bool, bool, bool)>& on_event) {
  epoll_event events[512];
  std::int64_t left = deadline_ns - NowNs();
  if (left < 0) left = 0;
  // Nanosecond timeout: paced senders must wake on time, not on the next ms.
  timespec ts{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
  const int n = ::epoll_pwait2(epoll_fd_, events, 512, &ts, nullptr);
  for (int i = 0; i < n; ++i) {
    const epoll_event& ev = events[i];
    auto* c = static_cast<Conn*>(ev.data.ptr);
    on_event(*c, (ev.events & EPOLLIN) != 0, (ev.events & EPOLLOUT) != 0,
             (ev.events & (EPOLLERR | EPOLLHUP)) != 0);
  }
}

}  // namespace haven::bench
