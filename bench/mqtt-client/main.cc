// haven-bench-mqtt: the load of haven-bench through a mosquitto broker (a
// baseline, in bench/): N publisher/subscriber pairs, each on its own topic,
// payloads of the same size as haven-bench's envelopes, QoS 0 or 1,
// TCP_NODELAY on. Every payload carries (seq, intended send time); the
// subscriber checks loss, duplication and order. Flood (--messages: per pair,
// at most --window unreceived at once) or paced (--rate for --seconds, all
// pairs together, latency from the intended send time).
// Prints one line: RESULT key=value ...
#include <mosquitto.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

std::int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Pair {
  std::string topic;
  mosquitto* pub = nullptr;
  mosquitto* sub = nullptr;
  std::atomic<std::uint64_t> received{0};
  std::atomic<bool> subscribed{false};
  std::uint64_t sent = 0;
  // Touched by the subscriber's network thread only, read at the end.
  std::vector<bool> seen;
  std::uint64_t next = 0, duplicates = 0, out_of_order = 0;
  std::vector<std::int64_t> latencies;
  std::int64_t record_from = 0;
};

void OnMessage(mosquitto*, void* user, const mosquitto_message* msg) {
  const std::int64_t now = NowNs();
  auto* p = static_cast<Pair*>(user);
  if (msg->payloadlen < 16) return;
  std::uint64_t seq = 0;
  std::int64_t intended = 0;
  std::memcpy(&seq, msg->payload, 8);
  std::memcpy(&intended, static_cast<const char*>(msg->payload) + 8, 8);
  if (seq >= p->seen.size()) p->seen.resize(seq + 4096, false);
  if (p->seen[seq]) {
    ++p->duplicates;
    return;
  }
  p->seen[seq] = true;
  if (seq != p->next) ++p->out_of_order;
  p->next = std::max(p->next, seq + 1);
  if (intended >= p->record_from) p->latencies.push_back(now - intended);
  p->received.fetch_add(1, std::memory_order_release);
}

void OnSubscribe(mosquitto*, void* user, int, int, const int*) {
  static_cast<Pair*>(user)->subscribed = true;
}

double Percentile(std::vector<std::int64_t>& v, double q) {
  if (v.empty()) return 0;
  auto idx = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  idx = idx == 0 ? 0 : idx - 1;
  return static_cast<double>(v[std::min(idx, v.size() - 1)]) / 1000.0;
}

const char* Arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

mosquitto* Connect(int port, Pair* user) {
  mosquitto* m = mosquitto_new(nullptr, true, user);
  if (!m) return nullptr;
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, 1000);
  mosquitto_max_inflight_messages_set(m, 1000);
  if (mosquitto_connect(m, "127.0.0.1", port, 600) != MOSQ_ERR_SUCCESS) return nullptr;
  if (mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS) return nullptr;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const int port = std::atoi(Arg(argc, argv, "--port", "1883"));
  const int qos = std::atoi(Arg(argc, argv, "--qos", "0"));
  const int pairs = std::atoi(Arg(argc, argv, "--pairs", "2"));
  const auto payload_size = static_cast<std::size_t>(std::atoi(Arg(argc, argv, "--payload", "256")));
  const auto window = static_cast<std::uint64_t>(std::atoll(Arg(argc, argv, "--window", "64")));
  const auto per_pair = static_cast<std::uint64_t>(std::atoll(Arg(argc, argv, "--messages", "0")));
  const double rate = std::atof(Arg(argc, argv, "--rate", "0"));
  const double seconds = std::atof(Arg(argc, argv, "--seconds", "1"));
  const bool paced = per_pair == 0;

  mosquitto_lib_init();
  std::vector<std::unique_ptr<Pair>> ps;
  for (int i = 0; i < pairs; ++i) {
    auto p = std::make_unique<Pair>();
    p->topic = "bench/" + std::to_string(::getpid()) + "/" + std::to_string(i);
    p->sub = Connect(port, p.get());
    p->pub = Connect(port, p.get());
    if (!p->sub || !p->pub) {
      std::fprintf(stderr, "haven-bench-mqtt: cannot connect to 127.0.0.1:%d\n", port);
      return 1;
    }
    mosquitto_message_callback_set(p->sub, OnMessage);
    mosquitto_subscribe_callback_set(p->sub, OnSubscribe);
    mosquitto_subscribe(p->sub, nullptr, p->topic.c_str(), qos);
    ps.push_back(std::move(p));
  }
  const std::int64_t wait_until = NowNs() + 5'000'000'000LL;
  for (auto& p : ps) {
    while (!p->subscribed && NowNs() < wait_until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  std::vector<unsigned char> payload(payload_size, 0x5a);
  auto publish = [&](Pair& p, std::int64_t intended) {
    std::memcpy(payload.data(), &p.sent, 8);
    std::memcpy(payload.data() + 8, &intended, 8);
    ++p.sent;
    return mosquitto_publish(p.pub, nullptr, p.topic.c_str(), static_cast<int>(payload.size()),
                             payload.data(), qos, false);
  };
  const std::int64_t t0 = NowNs();
  std::uint64_t total = 0;
  if (!paced) {
    total = per_pair * static_cast<std::uint64_t>(pairs);
    bool progress = true;
    while (progress) {
      progress = false;
      bool waiting = false;
      for (auto& p : ps) {
        if (p->sent >= per_pair) continue;
        waiting = true;
        if (p->sent - p->received.load(std::memory_order_acquire) < window) {
          publish(*p, NowNs());
          progress = true;
        }
      }
      if (!waiting) break;
      if (!progress) {
        std::this_thread::yield();
        progress = true;
      }
    }
  } else {
    total = static_cast<std::uint64_t>(rate * seconds);
    const double interval = 1e9 / rate;
    for (auto& p : ps) p->record_from = t0 + static_cast<std::int64_t>(seconds * 0.1 * 1e9);
    for (std::uint64_t k = 0; k < total; ++k) {
      const std::int64_t due = t0 + static_cast<std::int64_t>(static_cast<double>(k) * interval);
      const timespec ts{static_cast<time_t>(due / 1'000'000'000), static_cast<long>(due % 1'000'000'000)};
      if (NowNs() < due) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
      publish(*ps[k % ps.size()], due);
    }
  }
  auto received = [&] {
    std::uint64_t n = 0;
    for (auto& p : ps) n += p->received.load(std::memory_order_acquire);
    return n;
  };
  std::int64_t last_change = NowNs();
  std::uint64_t last = received();
  while (received() < total && NowNs() - last_change < 5'000'000'000LL) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    if (received() != last) {
      last = received();
      last_change = NowNs();
    }
  }
  const double elapsed = static_cast<double>(NowNs() - t0) / 1e9;
  for (auto& p : ps) {
    mosquitto_disconnect(p->pub);
    mosquitto_disconnect(p->sub);
    mosquitto_loop_stop(p->pub, false);
    mosquitto_loop_stop(p->sub, false);
  }
  std::vector<std::int64_t> all;
  std::uint64_t sent = 0, got = 0, dup = 0, ooo = 0;
  for (auto& p : ps) {
    all.insert(all.end(), p->latencies.begin(), p->latencies.end());
    sent += p->sent;
    got += p->received;
    dup += p->duplicates;
    ooo += p->out_of_order;
    mosquitto_destroy(p->pub);
    mosquitto_destroy(p->sub);
  }
  mosquitto_lib_cleanup();
  std::sort(all.begin(), all.end());
  std::printf("RESULT throughput_msgs_per_s=%.6g p50_us=%.6g p99_us=%.6g p999_us=%.6g max_us=%.6g "
              "sent=%llu received=%llu lost=%llu duplicates=%llu out_of_order=%llu\n",
              static_cast<double>(got) / elapsed, Percentile(all, 0.5), Percentile(all, 0.99),
              Percentile(all, 0.999), Percentile(all, 1.0), static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(got),
              static_cast<unsigned long long>(sent > got ? sent - got : 0),
              static_cast<unsigned long long>(dup), static_cast<unsigned long long>(ooo));
  return 0;
}
