// Quick exit's proofs (quick-exit.md, "How it is proven"), against a real
// havend and a real SQLCipher store:
//   - a file-system diff of the storage directory: nothing of the SDK left;
//   - a scan of this process's memory for a plaintext that only passed
//     through the SDK and for the session keys: not found;
//   - a child killed in the middle of the wipe: the next start completes it;
//   - quick exit while connecting, while sending, offline, twice, and from
//     another thread: prompt, no crash, no event after the final one.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "client/testing.h"
#include "client/wipe.h"
#include "support/sdk_harness.h"

namespace haven::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using sdk::Code;
using sdk::ConversationState;
using sdk::EventType;

std::set<std::string> Listing(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    out.insert(fs::relative(e.path(), dir).string());
  }
  return out;
}

// Needles are kept XOR-masked, so that the harness never holds a copy of
// what it looks for; the scan unmasks byte by byte.
constexpr std::uint8_t kMask = 0xA5;
struct Needle {
  std::string what;
  std::vector<std::uint8_t> masked;
};

Needle Masked(std::string what, ByteView secret) {
  Needle n{std::move(what), {}};
  for (std::uint8_t b : secret) n.masked.push_back(b ^ kMask);
  return n;
}

// Every readable mapping of this process, read through /proc/self/mem.
// Returns the needles found, with the mapping they were found in.
std::vector<std::string> ScanOwnMemory(const std::vector<Needle>& needles) {
  std::vector<std::string> found;
  const std::size_t chunk = 1 << 20;
  void* scratch = mmap(nullptr, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (scratch == MAP_FAILED) {
    ADD_FAILURE() << "mmap failed";
    return found;
  }
  auto* buf = static_cast<std::uint8_t*>(scratch);
  const auto scratch_begin = reinterpret_cast<std::uintptr_t>(scratch);
  const int mem = ::open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::size_t scanned = 0;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode;
    std::getline(in, path);
    if (perms.empty() || perms[0] != 'r') continue;
    if (path.find("[vvar]") != std::string::npos || path.find("[vsyscall]") != std::string::npos) {
      continue;
    }
    const std::size_t dash = range.find('-');
    std::uintptr_t begin = std::stoull(range.substr(0, dash), nullptr, 16);
    const std::uintptr_t end = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (begin == scratch_begin) continue;  // our own read buffer
    // Reservations of terabytes (AddressSanitizer's shadow) hold nothing the
    // SDK allocated.
    if (end - begin > (std::uintptr_t{1} << 34)) continue;
    const std::size_t overlap = 64;  // needles are at most this long
    for (std::uintptr_t at = begin; at < end;) {
      const std::size_t want = std::min<std::size_t>(chunk, end - at);
      const ssize_t got = ::pread(mem, buf, want, static_cast<off_t>(at));
      if (got <= 0) break;
      const auto n = static_cast<std::size_t>(got);
      scanned += n;
      for (const Needle& needle : needles) {
        const std::size_t len = needle.masked.size();
        const std::uint8_t first = needle.masked[0] ^ kMask;
        for (std::size_t i = 0; i + len <= n; ++i) {
          const void* hit = std::memchr(buf + i, first, n - len + 1 - i);
          if (hit == nullptr) break;
          i = static_cast<std::size_t>(static_cast<std::uint8_t*>(const_cast<void*>(hit)) - buf);
          std::size_t j = 1;
          while (j < len && (buf[i + j] ^ kMask) == needle.masked[j]) ++j;
          if (j == len) found.push_back(needle.what + " in" + (path.empty() ? " [anon]" : path));
        }
      }
      at += n > overlap && n == want && at + n < end ? n - overlap : n;
    }
  }
  sodium_memzero(buf, chunk);
  munmap(scratch, chunk);
  ::close(mem);
  EXPECT_GT(scanned, 1u << 20) << "the scan read almost nothing: is /proc/self/mem readable?";
  return found;
}

class SdkQuickExitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = HavendProcess::Start();
    ASSERT_NE(server_, nullptr);
    dir_ = MakeTempDir("sdk-store");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  sdk::ClientOptions SurvivorOptions() {
    return SdkClient::Options(*server_, sdk::Role::kSurvivor);
  }

  std::unique_ptr<HavendProcess> server_;
  fs::path dir_;
};

// Runs a conversation to the point where the survivor has received `text`
// and the session is set up. `record_text` off: the text reaches the
// survivor's application only as a borrowed view.
struct Conversation {
  std::unique_ptr<SdkClient> counsellor, survivor;
  sdk::ConversationId at_survivor = 0, at_counsellor = 0;
};

Conversation Talk(HavendProcess& server, const sdk::ClientOptions& survivor_options,
                  bool record_text, std::function<void(const sdk::Event&)> survivor_hook = {}) {
  Conversation c;
  c.counsellor = EnrolledCounsellor(server);
  c.survivor = std::make_unique<SdkClient>(survivor_options, record_text, std::move(survivor_hook));
  EXPECT_TRUE(c.survivor->create_status().ok()) << c.survivor->create_status().message();
  EXPECT_TRUE((*c.survivor)->OpenConversation({"en", 0}, "", &c.at_survivor).ok());
  c.at_counsellor = ClaimAndSecure(*c.counsellor, *c.survivor);
  return c;
}

TEST_F(SdkQuickExitTest, StorageDirectoryHoldsNothingOfTheSdkAfterwards) {
  // Something of the integrator's lives beside the SDK's files and stays.
  { std::ofstream(dir_ / "integrator-settings.json") << "{}"; }
  const auto before = Listing(dir_);

  auto o = SurvivorOptions();
  o.storage_dir = dir_.string();
  o.local_store = true;
  o.store_passphrase = "correct horse battery staple";
  Conversation c = Talk(*server_, o, true);
  sdk::MessageId m = 0;
  ASSERT_TRUE((*c.survivor)->Send(c.at_survivor, "stored history line", &m).ok());
  ASSERT_TRUE(c.counsellor->WaitText("stored history line").has_value());
  ASSERT_TRUE((*c.counsellor)->Send(c.at_counsellor, "a reply kept in the store", &m).ok());
  ASSERT_TRUE(c.survivor->WaitText("a reply kept in the store").has_value());
  std::vector<sdk::HistoryEntry> history;
  ASSERT_TRUE((*c.survivor)->History(c.at_survivor, &history).ok());
  ASSERT_EQ(history.size(), 2u);
  EXPECT_TRUE(history[0].outgoing);
  EXPECT_EQ(history[1].text, "a reply kept in the store");
  const auto during = Listing(dir_);
  EXPECT_GT(during.size(), before.size()) << "the store wrote nothing to disk";
  EXPECT_TRUE(during.count("haven-store.db"));

  c.survivor->get()->QuickExit();
  EXPECT_EQ(Listing(dir_), before);
  EXPECT_TRUE(c.survivor->WaitType(EventType::kQuickExitCompleted).has_value());

  // A fresh start finds nothing: no conversation, no history, no resume.
  SdkClient again(o);
  ASSERT_TRUE(again.create_status().ok()) << again.create_status().message();
  std::vector<sdk::ConversationInfo> convs;
  ASSERT_TRUE(again->Conversations(&convs).ok());
  EXPECT_TRUE(convs.empty());
}

TEST_F(SdkQuickExitTest, TheStoreIsUselessWithoutItsKeyAndKeepsAConversationAcrossRestarts) {
  auto o = SurvivorOptions();
  o.storage_dir = dir_.string();
  o.local_store = true;
  o.store_passphrase = "a passphrase only they know";
  sdk::ConversationId id = 0;
  {
    Conversation c = Talk(*server_, o, true);
    id = c.at_survivor;
    sdk::MessageId m = 0;
    ASSERT_TRUE((*c.counsellor)->Send(c.at_counsellor, "first reply", &m).ok());
    ASSERT_TRUE(c.survivor->WaitText("first reply").has_value());
    c.survivor->Destroy();  // the app closes; not a quick exit

    // A wrong passphrase opens nothing.
    auto wrong = o;
    wrong.store_passphrase = "a guess";
    std::unique_ptr<sdk::Client> w;
    EXPECT_EQ(sdk::Client::Create(wrong, {}, &w).code(), Code::kWrongPassphrase);

    SdkClient back(o);
    ASSERT_TRUE(back.create_status().ok()) << back.create_status().message();
    ASSERT_TRUE(back.WaitState(ConversationState::kActive).has_value());
    std::vector<sdk::HistoryEntry> h;
    ASSERT_TRUE(back->History(id, &h).ok());
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0].text, "first reply");
    // The stored ratchet carries on: no new session start.
    ASSERT_TRUE((*c.counsellor)->Send(c.at_counsellor, "second reply", &m).ok());
    EXPECT_TRUE(back.WaitText("second reply").has_value());
    ASSERT_TRUE(back->Send(id, "still me", &m).ok());
    EXPECT_TRUE(c.counsellor->WaitText("still me").has_value());
  }
  // The file itself: no plaintext, no SQLite header.
  std::ifstream f(dir_ / "haven-store.db", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GT(raw.size(), 1000u);
  EXPECT_EQ(raw.find("SQLite format 3"), std::string::npos);
  EXPECT_EQ(raw.find("first reply"), std::string::npos);
}

TEST_F(SdkQuickExitTest, NoPlaintextAndNoSessionKeyRemainInMemory) {
  // A marker made at run time, held masked by the harness; the counsellor's
  // Send copies it into the SDK and the harness then zeroes its own copy.
  std::array<std::uint8_t, 16> raw{};
  randombytes_buf(raw.data(), raw.size());
  std::string marker = "marker-" + ToHex(raw);
  sodium_memzero(raw.data(), raw.size());
  const Needle marker_needle = Masked("the plaintext marker", AsBytes(marker));

  std::atomic<bool> received{false};
  Conversation c = Talk(*server_, SurvivorOptions(), /*record_text=*/false,
                        [&](const sdk::Event& e) {
                          if (e.type != EventType::kMessageReceived) return;
                          bool same = e.text.size() == marker_needle.masked.size();
                          for (std::size_t i = 0; same && i < e.text.size(); ++i) {
                            same = (static_cast<std::uint8_t>(e.text[i]) ^ kMask) ==
                                   marker_needle.masked[i];
                          }
                          if (same) received = true;
                        });
  sdk::MessageId m = 0;
  ASSERT_TRUE((*c.counsellor)->Send(c.at_counsellor, marker, &m).ok());
  sodium_memzero(marker.data(), marker.size());
  marker.clear();
  marker.shrink_to_fit();
  ASSERT_TRUE(c.survivor->WaitFor([&](const Recorded&) { return received.load(); }).has_value());
  // The counsellor's device is not what is under test; it goes first, so
  // that whatever is found below belongs to the survivor's SDK.
  c.counsellor->Destroy();

  std::vector<Needle> needles{marker_needle};
  {
    auto keys = sdk::ClientInternals::SessionKeys(*c.survivor->get());
    ASSERT_GE(keys.size(), 4u);  // root key, transport private, identity, two transport keys
    int i = 0;
    for (const auto& k : keys) needles.push_back(Masked("session key " + std::to_string(i++), k.view()));
  }  // the copies are zeroed here (SecureBuffer)

  // The scan works: before quick exit it finds what the survivor holds.
  const auto before = ScanOwnMemory(needles);
  EXPECT_FALSE(before.empty()) << "the scan cannot see the keys even before quick exit";

  c.survivor->get()->QuickExit();
  const auto after = ScanOwnMemory(needles);
  for (const auto& f : after) ADD_FAILURE() << "after quick exit: " << f;
}

// Child side of the kill test: a store with history, then quick exit with
// a hook that kills the process after `step`.
int g_kill_at_step = 0;
void KillAtStep(int step) {
  if (step == g_kill_at_step) ::kill(::getpid(), SIGKILL);
}

TEST_F(SdkQuickExitTest, AWipeInterruptedByAKillIsCompletedByTheNextStart) {
  auto o = SurvivorOptions();
  o.port = 1;  // offline: nothing listens there; the store still fills
  o.storage_dir = dir_.string();
  o.local_store = true;
  o.store_key.emplace();
  o.store_key->fill(0x42);
  // Step 1 writes the marker, each later step removes a file, the last
  // removes the marker: kill the child after each of them in turn.
  int interrupted = 0;
  for (int step = 1; step < 20; ++step) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::unique_ptr<sdk::Client> c;
      if (!sdk::Client::Create(o, {}, &c).ok()) _exit(2);
      sdk::ConversationId id = 0;
      sdk::MessageId m = 0;
      if (!c->OpenConversation({"en", 0}, "", &id).ok()) _exit(3);
      for (int i = 0; i < 20; ++i) (void)c->Send(id, "kept until the wipe", &m);
      g_kill_at_step = step;
      client::SetWipeStepHookForTesting(&KillAtStep);
      c->QuickExit();
      _exit(4);  // past the last step
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status)) {
      ASSERT_EQ(WEXITSTATUS(status), 4) << "the child failed before its wipe";
      break;
    }
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    if (!client::WipePending(dir_)) {
      // Killed after the last step: the wipe was already complete.
      EXPECT_TRUE(Listing(dir_).empty());
      continue;
    }
    ++interrupted;
    EXPECT_TRUE(Listing(dir_).size() > 1 || step > 1) << "step " << step;

    // The next start finishes the wipe before anything else: memory-only
    // here, so afterwards the directory is empty.
    auto memory_only = o;
    memory_only.local_store = false;
    memory_only.store_key.reset();
    {
      SdkClient next(memory_only);
      ASSERT_TRUE(next.create_status().ok()) << next.create_status().message();
    }
    EXPECT_TRUE(Listing(dir_).empty()) << "step " << step << ": files left after the next start";
  }
  EXPECT_GE(interrupted, 2) << "the wipe was interrupted at fewer points than it has";
}

class QuickExitUnderWay : public SdkQuickExitTest {
 protected:
  // Quick exit returns promptly and nothing but the final event follows it.
  void ExpectCleanExit(SdkClient& c, const std::function<void()>& quick_exit) {
    const auto t0 = std::chrono::steady_clock::now();
    quick_exit();
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_LT(took, 1s) << "quick exit waited on something";
    ASSERT_TRUE(c.WaitType(EventType::kQuickExitCompleted, 2s).has_value());
    std::this_thread::sleep_for(200ms);  // anything late would show up now
    const auto events = c.Events();
    EXPECT_EQ(events.back().type, EventType::kQuickExitCompleted);
    EXPECT_EQ(c.Count(EventType::kQuickExitCompleted), 1u);
    sdk::ConversationId id = 0;
    sdk::MessageId m = 0;
    EXPECT_EQ(c->OpenConversation({"en", 0}, "", &id).code(), Code::kExited);
    EXPECT_EQ(c->Send(1, "x", &m).code(), Code::kExited);
    EXPECT_TRUE(c->exited());
  }
};

TEST_F(QuickExitUnderWay, WhileConnectingToAServerThatNeverAnswers) {
  // A listener that accepts and never speaks: the handshake hangs.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto o = SurvivorOptions();
  o.port = ntohs(addr.sin_port);
  SdkClient c(o);
  ASSERT_TRUE(c.create_status().ok());
  sdk::ConversationId id = 0;
  ASSERT_TRUE(c->OpenConversation({"en", 0}, "", &id).ok());
  std::this_thread::sleep_for(100ms);
  EXPECT_NE(c->connection_state(), sdk::ConnectionState::kOnline);
  ExpectCleanExit(c, [&] { c->QuickExit(); });
  ::close(fd);
}

TEST_F(QuickExitUnderWay, WhileOffline) {
  auto o = SurvivorOptions();
  o.port = 1;
  SdkClient c(o);
  ASSERT_TRUE(c.create_status().ok());
  sdk::ConversationId id = 0;
  sdk::MessageId m = 0;
  ASSERT_TRUE(c->OpenConversation({"en", 0}, "", &id).ok());
  ASSERT_TRUE(c->Send(id, "never sent", &m).ok());
  ExpectCleanExit(c, [&] { c->QuickExit(); });
}

TEST_F(QuickExitUnderWay, TwiceAndFromAnotherThreadWhileSending) {
  Conversation conv = Talk(*server_, SurvivorOptions(), true);
  SdkClient& c = *conv.survivor;
  std::atomic<bool> stop{false};
  std::atomic<int> exited_results{0};
  std::thread sender([&] {
    sdk::MessageId m = 0;
    while (!stop.load()) {
      const auto st = c->Send(conv.at_survivor, "typing fast", &m);
      if (st.code() == Code::kExited) ++exited_results;
    }
  });
  std::this_thread::sleep_for(100ms);
  ExpectCleanExit(c, [&] {
    std::thread other([&] { c->QuickExit(); });
    c->QuickExit();
    other.join();
    c->QuickExit();  // and once more: idempotent
  });
  stop = true;
  sender.join();
  EXPECT_GT(exited_results.load(), 0);
  const bool told = conv.counsellor->WaitState(ConversationState::kSurvivorLeftQuickly, 1s).has_value();
  std::string seen;
  for (const auto& e : conv.counsellor->Events()) {
    if (e.type == EventType::kConversationChanged) seen += sdk::ToString(e.state) + std::string("; ");
  }
  EXPECT_TRUE(told) << "the counsellor saw: " << seen << " server: " << server_->Output();
}

TEST_F(QuickExitUnderWay, FromInsideTheEventCallback) {
  std::atomic<sdk::Client*> self{nullptr};
  auto o = SurvivorOptions();
  SdkClient c(o, true, [&](const sdk::Event& e) {
    if (e.type == EventType::kConversationChanged && e.state == ConversationState::kWaiting) {
      if (sdk::Client* s = self.load()) s->QuickExit();
    }
  });
  ASSERT_TRUE(c.create_status().ok());
  self = c.get();
  sdk::ConversationId id = 0;
  ASSERT_TRUE(c->OpenConversation({"en", 0}, "", &id).ok());
  ASSERT_TRUE(c.WaitType(EventType::kQuickExitCompleted, 3s).has_value());
  EXPECT_TRUE(c->exited());
}

}  // namespace
}  // namespace haven::testing
