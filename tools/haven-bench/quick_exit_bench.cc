// Google Benchmark of quick exit (quick-exit.md item 2): the time QuickExit()
// takes to return, with nothing on disk (memory only, N messages written
// while offline and still held in memory) and with an encrypted local store
// holding N messages of history (written, then the app restarted). Each iteration sets up a fresh
// client (untimed), then times only the QuickExit() call (manual time).
// Baseline in the same run: the crash-safe wipe's floor on this disk, one
// file created + fsync, the directory fsynced, the file removed + directory
// fsynced (what a marker written first and removed last costs at least).
//
//   build/default/tools/haven-quick-exit-bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
// The client is offline (port 1 on 127.0.0.1: nothing listens), as a
// survivor's phone may be; quick exit never waits on the network anyway.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "haven/client.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

fs::path FreshDir() {
  char tmpl[] = "/tmp/haven-qe-bench-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  return d ? fs::path(d) : fs::path();
}

haven::sdk::ClientOptions Offline() {
  haven::sdk::ClientOptions o;
  o.port = 1;
  o.server_public_key.fill(7);
  o.reconnect_min = std::chrono::milliseconds(1000);
  return o;
}

void RunQuickExit(benchmark::State& state, bool with_store, int messages) {
  for (auto _ : state) {
    state.PauseTiming();
    const fs::path dir = FreshDir();
    auto o = Offline();
    o.storage_dir = dir.string();
    if (with_store) {
      o.local_store = true;
      o.store_key.emplace();
      o.store_key->fill(0x5c);
    }
    std::unique_ptr<haven::sdk::Client> c;
    if (!haven::sdk::Client::Create(o, {}, &c).ok()) {
      state.SkipWithError("client could not start");
      return;
    }
    haven::sdk::ConversationId id = 0;
    haven::sdk::MessageId m = 0;
    (void)c->OpenConversation({"en", 0}, "", &id);
    const std::string text(200, 'h');
    for (int i = 0; i < messages; ++i) (void)c->Send(id, text, &m);
    if (with_store) {
      // The history is on disk, not in memory: the app was closed and
      // opened again, as when a survivor comes back to a stored conversation.
      c.reset();
      if (!haven::sdk::Client::Create(o, {}, &c).ok()) {
        state.SkipWithError("client could not reopen its store");
        return;
      }
    }
    state.ResumeTiming();

    const auto t0 = Clock::now();
    c->QuickExit();
    const auto t1 = Clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());

    state.PauseTiming();
    c.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
    state.ResumeTiming();
  }
}

void BM_QuickExitMemoryOnly(benchmark::State& state) {
  RunQuickExit(state, false, static_cast<int>(state.range(0)));
}
BENCHMARK(BM_QuickExitMemoryOnly)->Arg(100)->UseManualTime()->Unit(benchmark::kMicrosecond)
    ->Iterations(20);

void BM_QuickExitStoredHistory(benchmark::State& state) {
  RunQuickExit(state, true, static_cast<int>(state.range(0)));
}
BENCHMARK(BM_QuickExitStoredHistory)->Arg(100)->Arg(10000)->UseManualTime()
    ->Unit(benchmark::kMicrosecond)->Iterations(5);

// The floor of any crash-safe wipe on this disk.
void BM_MarkerFsyncFloor(benchmark::State& state) {
  const fs::path dir = FreshDir();
  const fs::path marker = dir / "marker";
  for (auto _ : state) {
    const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    (void)::fsync(fd);
    ::close(fd);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    (void)::fsync(dfd);
    ::unlink(marker.c_str());
    (void)::fsync(dfd);
    ::close(dfd);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}
BENCHMARK(BM_MarkerFsyncFloor)->Unit(benchmark::kMicrosecond)->Iterations(50);

}  // namespace

BENCHMARK_MAIN();
