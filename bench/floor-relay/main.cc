// floor-relay: a MEASURING STICK, not a server. It relays length-prefixed
// frames (the same 2-byte big-endian framing as haven/1) between the two
// connections of a pair, with no encryption, no storage, no authentication
// and no limits. haven-bench runs the same load through it and through havend
// so that havend's figures can be read as ratios against what this machine's
// loopback and one epoll thread can do at all.
//
// Protocol: the first frame on a connection is a hello of 9 bytes (pair id,
// 8 bytes, then side 0 or 1); every later frame is forwarded verbatim to the
// other side of the same pair once it has said hello (dropped before that).
// Listens on 127.0.0.1 only; prints "listening on 127.0.0.1:<port>".
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

namespace {

struct Client {
  int fd = -1;
  std::vector<std::uint8_t> in;    // bytes read, not yet a whole frame
  std::vector<std::uint8_t> out;   // bytes to write
  std::size_t out_done = 0;
  bool hello = false;
  std::uint64_t pair = 0;
  std::size_t side = 0;
  bool want_write = false;
};

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

class FloorRelay {
 public:
  explicit FloorRelay(int listen_fd) : listen_fd_(listen_fd), epoll_fd_(::epoll_create1(0)) {
    Watch(listen_fd_, EPOLLIN);
  }

  void Run() {
    std::vector<epoll_event> events(256);
    while (!g_stop) {
      const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 200);
      for (int i = 0; i < n; ++i) {
        const int fd = events[static_cast<std::size_t>(i)].data.fd;
        if (fd == listen_fd_) {
          AcceptAll();
          continue;
        }
        auto it = clients_.find(fd);
        if (it == clients_.end()) continue;
        Client& c = *it->second;
        if (events[static_cast<std::size_t>(i)].events & EPOLLOUT) Flush(c);
        if (events[static_cast<std::size_t>(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          if (!ReadFrom(c)) Drop(fd);
        }
      }
    }
  }

 private:
  void Watch(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
  void Modify(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  }

  void AcceptAll() {
    while (true) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<Client>();
      c->fd = fd;
      clients_[fd] = std::move(c);
      Watch(fd, EPOLLIN);
    }
  }

  // Reads what is there and forwards every whole frame; false on EOF/error.
  bool ReadFrom(Client& c) {
    std::uint8_t buf[65536];
    while (true) {
      const ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n == 0) return false;
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
      c.in.insert(c.in.end(), buf, buf + n);
      std::size_t at = 0;
      while (c.in.size() - at >= 2) {
        const std::size_t len = (std::size_t{c.in[at]} << 8) | c.in[at + 1];
        if (len == 0) return false;
        if (c.in.size() - at - 2 < len) break;
        OnFrame(c, c.in.data() + at, len + 2);
        at += len + 2;
      }
      c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(at));
    }
  }

  void OnFrame(Client& c, const std::uint8_t* framed, std::size_t framed_len) {
    if (!c.hello) {
      if (framed_len != 2 + 9) return;
      std::memcpy(&c.pair, framed + 2, 8);
      c.side = framed[10] & 1u;
      c.hello = true;
      pairs_[c.pair][c.side] = c.fd;
      return;
    }
    auto it = pairs_.find(c.pair);
    if (it == pairs_.end()) return;
    const int peer_fd = it->second[1u - c.side];
    auto pit = clients_.find(peer_fd);
    if (peer_fd < 0 || pit == clients_.end()) return;
    Client& peer = *pit->second;
    peer.out.insert(peer.out.end(), framed, framed + framed_len);
    Flush(peer);
  }

  void Flush(Client& c) {
    while (c.out_done < c.out.size()) {
      const ssize_t n = ::write(c.fd, c.out.data() + c.out_done, c.out.size() - c.out_done);
      if (n <= 0) break;
      c.out_done += static_cast<std::size_t>(n);
    }
    if (c.out_done == c.out.size()) {
      c.out.clear();
      c.out_done = 0;
    }
    const bool want = !c.out.empty();
    if (want != c.want_write) {
      c.want_write = want;
      Modify(c.fd, want ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
    }
  }

  void Drop(int fd) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    if (it->second->hello) {
      auto p = pairs_.find(it->second->pair);
      if (p != pairs_.end() && p->second[it->second->side] == fd) p->second[it->second->side] = -1;
    }
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    clients_.erase(it);
  }

  int listen_fd_;
  int epoll_fd_;
  std::unordered_map<int, std::unique_ptr<Client>> clients_;
  std::unordered_map<std::uint64_t, std::array<int, 2>> pairs_;
};

}  // namespace

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 0;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
    std::perror("floor-relay: bind/listen");
    return 1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("floor-relay (a measuring stick: no crypto, no storage) listening on 127.0.0.1:%u\n",
              ntohs(addr.sin_port));
  std::fflush(stdout);
  ::signal(SIGTERM, OnSignal);
  ::signal(SIGINT, OnSignal);
  ::signal(SIGPIPE, SIG_IGN);
  FloorRelay(fd).Run();
  return 0;
}
