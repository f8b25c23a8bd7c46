// haven-admin against real deployments: init, enrol, stats, rotate-db-key,
// purge and the command line itself, with havend running beside it where the
// command must cope with (or refuse) a live server.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "config/deployment.h"
#include "haven/common/bytes.h"
#include "haven/common/secure_memory.h"
#include "haven/noise/primitives.h"
#include "service/invitation.h"
#include "store/server_store.h"
#include "support/files.h"
#include "support/havend_process.h"
#include "support/relay_client.h"
#include "support/relay_fixture.h"

namespace haven {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::HavendProcess;
using testing::HavendRun;
using testing::MakeTempDir;
using testing::RelayClient;

// --- Helpers ----------------------------------------------------------------

HavendRun RunAdmin(const std::vector<std::string>& args) {
  return HavendProcess::RunToExit(args, 10s, HAVEN_ADMIN_PATH);
}

// The whole file as bytes ("" if it does not exist).
// Permission bits, or -1 if the path does not exist.
int Mode(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string WithoutDashes(std::string s) {
  std::erase(s, '-');
  return s;
}

Result<std::unique_ptr<server::ServerStore>> OpenStore(const fs::path& db, const std::string& key) {
  return server::ServerStore::Open(db.string(), AsBytes(key), /*start_boot=*/false);
}

// The public key derived from a 32-byte private key file, as hex ("" on failure).
std::string PublicKeyHexOf(const fs::path& private_key_file) {
  const std::string priv = testing::ReadFile(private_key_file);
  auto kp = noise::KeyPair::FromPrivateKey(AsBytes(priv));
  return kp.ok() ? ToHex(kp->public_key) : "";
}

std::string CountsText(const server::RowCounts& c) {
  return "counsellors " + std::to_string(c.counsellors) + "\ninvitations " +
         std::to_string(c.invitations) + "\nconversations_open " +
         std::to_string(c.conversations_open) + "\nconversations_closed " +
         std::to_string(c.conversations_closed) + "\nenvelopes_waiting " +
         std::to_string(c.envelopes) + "\n";
}

// A process started by a test that is not a HavendProcess (havend on a
// deployment made by `haven-admin init`). Killed on destruction if still up.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Reads output until `re` matches it (true) or the timeout passes or the
  // process exits (false).
  bool WaitFor(const std::regex& re, std::smatch* match, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (std::regex_search(output_, *match, re)) return true;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        char buf[4096];
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) return std::regex_search(output_, *match, re);
        output_.append(buf, static_cast<std::size_t>(n));
      }
    }
    return std::regex_search(output_, *match, re);
  }

  // SIGTERM, then the exit code (-1 if it had to be killed or died by a signal).
  int Terminate(std::chrono::milliseconds timeout = 10s) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(20ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }

  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string output_;
};

// --- init -------------------------------------------------------------------

class AdminInitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("admin-init");
    data_ = root_ / "data";
    keys_ = root_ / "helpline-keys";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  HavendRun Init(const fs::path& data, const fs::path& keys) {
    return RunAdmin({"init", "--data-dir", data.string(), "--helpline-keys-out", keys.string()});
  }

  fs::path root_, data_, keys_;
};

TEST_F(AdminInitTest, CreatesDeploymentWithPrivateModesAndHelplineKeysOnlyOutside) {
  const HavendRun run = Init(data_, keys_);
  ASSERT_EQ(run.exit_code, 0) << run.output;

  EXPECT_EQ(Mode(data_), 0700);
  for (const char* secret : {"server.key", "db.key"}) {
    SCOPED_TRACE(secret);
    EXPECT_EQ(Mode(data_ / secret), 0600);
    EXPECT_EQ(testing::ReadFile(data_ / secret).size(), 32u);
  }
  EXPECT_TRUE(fs::is_regular_file(data_ / "haven.db"));
  EXPECT_EQ(Mode(data_ / "haven.db"), 0600);
  EXPECT_TRUE(fs::is_regular_file(data_ / "havend.toml"));
  // The server key and the database key are different secrets.
  EXPECT_NE(testing::ReadFile(data_ / "server.key"), testing::ReadFile(data_ / "db.key"));

  const std::regex public_key_line("^[0-9a-f]{64}\n$");
  for (const char* name : {"intake", "audit"}) {
    SCOPED_TRACE(name);
    const fs::path pub = data_ / (std::string(name) + ".pub");
    const fs::path priv = keys_ / (std::string(name) + ".key");
    const std::string pub_text = testing::ReadFile(pub);
    EXPECT_TRUE(std::regex_match(pub_text, public_key_line)) << "'" << pub_text << "'";
    // The private half is outside the data directory, private, 32 bytes...
    EXPECT_EQ(Mode(priv), 0600);
    EXPECT_EQ(testing::ReadFile(priv).size(), 32u);
    // ...and it is the private half of the public key the server keeps.
    EXPECT_EQ(PublicKeyHexOf(priv) + "\n", pub_text);
    // Not in the data directory, under any name.
    EXPECT_FALSE(fs::exists(data_ / (std::string(name) + ".key")));
    const std::string priv_bytes = testing::ReadFile(priv);
    ASSERT_EQ(priv_bytes.size(), 32u);
    for (const auto& entry : fs::recursive_directory_iterator(data_)) {
      if (!entry.is_regular_file()) continue;
      EXPECT_FALSE(Contains(testing::ReadFile(entry.path()), priv_bytes))
          << "the helpline's " << name << " private key is in " << entry.path();
    }
  }
  // Each deployment gets its own intake and audit keys.
  EXPECT_NE(testing::ReadFile(data_ / "intake.pub"), testing::ReadFile(data_ / "audit.pub"));

  // The database opens with db.key and is empty.
  auto store = OpenStore(data_ / "haven.db", testing::ReadFile(data_ / "db.key"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto counts = (*store)->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(CountsText(*counts), CountsText(server::RowCounts{}));
}

TEST_F(AdminInitTest, PrintsTheServerPublicKeyDerivedFromServerKey) {
  const HavendRun run = Init(data_, keys_);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(run.output, m, std::regex("server public key ([0-9a-f]{64})\n")))
      << run.output;
  const std::string derived = PublicKeyHexOf(data_ / "server.key");
  ASSERT_EQ(derived.size(), 64u);
  EXPECT_EQ(m[1].str(), derived);
  // It prints no secret: neither the private keys nor the database key.
  for (const fs::path& secret :
       {data_ / "server.key", data_ / "db.key", keys_ / "intake.key", keys_ / "audit.key"}) {
    EXPECT_FALSE(Contains(run.output, ToHex(AsBytes(testing::ReadFile(secret))))) << secret;
  }
}

TEST_F(AdminInitTest, HavendServesTheNewDeploymentUnderThePrintedKey) {
  const HavendRun init = Init(data_, keys_);
  ASSERT_EQ(init.exit_code, 0) << init.output;
  std::smatch printed;
  ASSERT_TRUE(std::regex_search(init.output, printed, std::regex("server public key ([0-9a-f]{64})")));
  const std::string printed_key = printed[1].str();

  // The config file init wrote is enough to start havend (no --data-dir, no --init).
  Child havend({HAVEN_HAVEND_PATH, "--config", (data_ / "havend.toml").string(), "--port", "0"});
  std::smatch m;
  ASSERT_TRUE(havend.WaitFor(std::regex(R"(server public key ([0-9a-f]{64}))"), &m, 10s))
      << havend.output();
  EXPECT_EQ(m[1].str(), printed_key);
  ASSERT_TRUE(havend.WaitFor(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), &m, 1s))
      << havend.output();
  const auto port = static_cast<std::uint16_t>(std::stoi(m[1].str()));

  // A client pinning the key init printed completes the handshake...
  client::ConnectOptions o;
  o.port = port;
  ASSERT_TRUE(DecodeHexInto(printed_key, o.server_key));
  auto conn = client::Connection::Connect(o);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  v1::Frame get;
  get.mutable_request()->mutable_get_session();
  auto session = (*conn)->Call(std::move(get), 5s);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_TRUE(session->response().has_session()) << session->DebugString();
  (*conn)->Close();
  // ...and one pinning another key does not.
  client::ConnectOptions wrong;
  wrong.port = port;
  wrong.server_key = noise::KeyPair::Generate().public_key;
  EXPECT_FALSE(client::Connection::Connect(wrong).ok());

  // stats works beside the running server.
  const HavendRun stats = RunAdmin({"stats", "--data-dir", data_.string()});
  EXPECT_EQ(stats.exit_code, 0) << stats.output;
  EXPECT_EQ(stats.output, CountsText(server::RowCounts{}));

  EXPECT_EQ(havend.Terminate(), 0) << havend.output();
}

TEST_F(AdminInitTest, RefusesAnExistingDeploymentAndNeverOverwritesItsKeys) {
  ASSERT_EQ(Init(data_, keys_).exit_code, 0);
  std::vector<std::pair<std::string, std::string>> before;
  for (const char* f : {"server.key", "db.key", "intake.pub", "audit.pub", "havend.toml"}) {
    before.emplace_back(f, testing::ReadFile(data_ / f));
  }
  const fs::path other_keys = root_ / "other-keys";
  const HavendRun again = Init(data_, other_keys);
  EXPECT_NE(again.exit_code, 0) << again.output;
  EXPECT_TRUE(Contains(again.output, "already holds a deployment")) << again.output;
  for (const auto& [name, bytes] : before) {
    EXPECT_EQ(testing::ReadFile(data_ / name), bytes) << name << " changed";
  }
  EXPECT_FALSE(fs::exists(other_keys / "intake.key"));
  EXPECT_FALSE(fs::exists(other_keys / "audit.key"));
  // The database still opens with the original key.
  EXPECT_TRUE(OpenStore(data_ / "haven.db", before[1].second).ok());
}

TEST_F(AdminInitTest, RefusesADataDirectoryCreatedByHavendInit) {
  auto server = HavendProcess::Start();
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(server->Terminate(), 0);
  const fs::path data = server->data_dir();
  const std::string server_key = testing::ReadFile(data / "server.key");
  const std::string db_key = testing::ReadFile(data / "db.key");
  const HavendRun run = Init(data, keys_);
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_TRUE(Contains(run.output, "already holds a deployment")) << run.output;
  EXPECT_EQ(testing::ReadFile(data / "server.key"), server_key);
  EXPECT_EQ(testing::ReadFile(data / "db.key"), db_key);
  EXPECT_FALSE(fs::exists(keys_ / "intake.key"));
  EXPECT_FALSE(fs::exists(data / "intake.pub"));
}

TEST_F(AdminInitTest, RefusesHelplineKeysOutInsideTheDataDirectory) {
  const std::vector<fs::path> inside = {
      data_ / "keys",
      data_,
      data_ / "a" / "b",
      root_ / "elsewhere" / ".." / "data" / "keys",  // the same place, spelled differently
  };
  for (const fs::path& out : inside) {
    SCOPED_TRACE(out.string());
    const HavendRun run = Init(data_, out);
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_TRUE(Contains(run.output, "--helpline-keys-out must be outside the data directory"))
        << run.output;
    // Refused before anything was created.
    EXPECT_FALSE(fs::exists(data_ / "server.key"));
    EXPECT_FALSE(fs::exists(data_ / "intake.pub"));
    EXPECT_FALSE(fs::exists(out / "intake.key"));
  }
}

TEST_F(AdminInitTest, RequiresHelplineKeysOut) {
  const HavendRun run = RunAdmin({"init", "--data-dir", data_.string()});
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_TRUE(Contains(run.output, "--helpline-keys-out")) << run.output;
  EXPECT_TRUE(Contains(run.output, "required")) << run.output;
  EXPECT_FALSE(fs::exists(data_));
}

// The data directory and the keys directory compared as places, not strings
// (earlier versions of Init compared string prefixes and got all of these wrong).

TEST_F(AdminInitTest, RefusesHelplineKeysOutEqualToDataDirSpelledWithTrailingSlash) {
  const HavendRun run = RunAdmin({"init", "--data-dir", data_.string() + "/",
                                  "--helpline-keys-out", data_.string()});
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_TRUE(Contains(run.output, "--helpline-keys-out must be outside the data directory"))
      << run.output;
  EXPECT_FALSE(fs::exists(data_ / "intake.key"));
  EXPECT_FALSE(fs::exists(data_ / "audit.key"));
}

TEST_F(AdminInitTest, RefusesHelplineKeysOutReachedThroughASymlink) {
  fs::create_directories(data_);
  fs::permissions(data_, fs::perms::owner_all);
  fs::create_directory_symlink(data_, root_ / "link");
  const HavendRun run = Init(data_, root_ / "link" / "keys");
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_TRUE(Contains(run.output, "--helpline-keys-out must be outside the data directory"))
      << run.output;
  EXPECT_FALSE(fs::exists(data_ / "keys" / "intake.key"));
}

TEST_F(AdminInitTest, AcceptsASiblingDirectoryWhoseNameExtendsTheDataDirName) {
  const HavendRun run = Init(data_, root_ / "data-keys");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(Mode(root_ / "data-keys" / "intake.key"), 0600);
  EXPECT_FALSE(fs::exists(data_ / "intake.key"));
}

// A deployment that lost server.key is still a deployment: init must not
// replace the helpline's intake and audit public keys that enrolled devices
// rely on, nor write new helpline private keys.
TEST_F(AdminInitTest, NeverReplacesHelplinePublicKeysOfADeploymentMissingServerKey) {
  ASSERT_EQ(Init(data_, keys_).exit_code, 0);
  const std::string intake = testing::ReadFile(data_ / "intake.pub");
  const std::string audit = testing::ReadFile(data_ / "audit.pub");
  const std::string db_key = testing::ReadFile(data_ / "db.key");
  fs::remove(data_ / "server.key");
  const HavendRun run = Init(data_, root_ / "keys2");
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_TRUE(Contains(run.output, "already holds a deployment")) << run.output;
  EXPECT_EQ(testing::ReadFile(data_ / "intake.pub"), intake);
  EXPECT_EQ(testing::ReadFile(data_ / "audit.pub"), audit);
  EXPECT_EQ(testing::ReadFile(data_ / "db.key"), db_key);
  EXPECT_FALSE(fs::exists(data_ / "server.key"));
  EXPECT_FALSE(fs::exists(root_ / "keys2" / "intake.key"));
}

// Product bugs still open (see the report); enable once fixed.

// tools/haven-admin/main.cc Init(): with --config naming server.data_dir and no
// --data-dir, the "outside the data directory" and "already a deployment"
// checks look at ./.haven while the deployment is created in server.data_dir,
// so the helpline's private keys can be written inside the real data directory.
TEST_F(AdminInitTest, ChecksTheDataDirectoryNamedByTheConfigFile) {
  const fs::path config = root_ / "havend.toml";
  std::ofstream(config) << "[server]\ndata_dir = \"" << data_.string() << "\"\n";
  // Run from the scratch directory: while the bug exists, init writes to ./.haven.
  const fs::path cwd = fs::current_path();
  fs::current_path(root_);
  const HavendRun run =
      RunAdmin({"init", "--config", config.string(), "--helpline-keys-out", (data_ / "keys").string()});
  fs::current_path(cwd);
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_TRUE(Contains(run.output, "--helpline-keys-out must be outside the data directory"))
      << run.output;
  EXPECT_FALSE(fs::exists(data_ / "keys" / "intake.key"));
  EXPECT_FALSE(fs::exists(data_ / "server.key"));
}

// tools/haven-admin/main.cc Init(): [files] names from --config are ignored by
// the existence checks and by the final ReadKeyFile(data / "server.key"), so
// init builds the whole deployment and then fails.
TEST_F(AdminInitTest, HonoursTheKeyFileNamesOfTheConfigFile) {
  const fs::path config = root_ / "havend.toml";
  std::ofstream(config) << "[files]\nserver_key = \"srv.key\"\n";
  const HavendRun run = RunAdmin({"init", "--data-dir", data_.string(), "--config", config.string(),
                                  "--helpline-keys-out", keys_.string()});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(run.output, m, std::regex("server public key ([0-9a-f]{64})")));
  EXPECT_EQ(m[1].str(), PublicKeyHexOf(data_ / "srv.key"));
  EXPECT_FALSE(fs::exists(data_ / "server.key"));
}

// --- Commands on a running (or stopped) server --------------------------------

class AdminServerTest : public testing::RelayServerTest {
 protected:
  // A claimed conversation whose counsellor went away, with `n` envelopes
  // from the survivor waiting for it (each committed: EnvelopeAccepted).
  Pair WithWaitingEnvelopes(int n, const std::string& prefix) {
    Pair p{Survivor(), Counsellor(), ""};
    p.id = p.survivor->OpenId();
    auto claim = p.counsellor->Claim(p.id);
    EXPECT_TRUE(claim.ok() && claim->has_conversation_claimed()) << RelayClient::Describe(claim);
    p.counsellor->Disconnect();
    for (int i = 0; i < n; ++i) {
      auto r = p.survivor->Send(p.id, prefix + std::to_string(i));
      EXPECT_TRUE(r.ok() && r->has_envelope_accepted()) << RelayClient::Describe(r);
    }
    return p;
  }

  std::string DbKey() const { return testing::ReadFile(server_->DatabaseKeyPath()); }
  fs::path DbPath() const { return server_->DatabasePath(); }

  server::RowCounts CountsNow() {
    auto db = OpenDatabase();
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    if (!db.ok()) return {};
    auto c = (*db)->Counts();
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : server::RowCounts{};
  }
};

// --- enrol ------------------------------------------------------------------

using AdminEnrolTest = AdminServerTest;

TEST_F(AdminEnrolTest, PrintsOneCodeOfEightCrockfordGroupsOfFour) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // Crockford base32: digits and capitals without I, L, O, U.
  const std::regex code_line(R"(^([0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){7})$)");
  std::vector<std::string> codes;
  for (int i = 0; i < 2; ++i) {
    const HavendRun run = server_->Admin({"enrol"});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::vector<std::string> found;
    std::istringstream lines(run.output);
    for (std::string line; std::getline(lines, line);) {
      if (std::regex_match(line, code_line)) found.push_back(line);
    }
    ASSERT_EQ(found.size(), 1u) << "exactly one line must be the code:\n" << run.output;
    EXPECT_EQ(found[0].size(), 39u);
    EXPECT_TRUE(server::HashInvitationCode(found[0]).has_value());
    codes.push_back(found[0]);
  }
  EXPECT_NE(codes[0], codes[1]);
  EXPECT_EQ(CountsNow().invitations, 2);
}

TEST_F(AdminEnrolTest, SupervisorRoleIsWhatTheSessionReports) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string code = server_->Enrol("supervisor");
  ASSERT_FALSE(code.empty());
  auto device = Survivor();
  auto redeemed = device->Redeem(code);
  ASSERT_TRUE(redeemed.ok() && redeemed->has_invitation_redeemed()) << RelayClient::Describe(redeemed);
  EXPECT_EQ(redeemed->invitation_redeemed().role(), v1::ROLE_SUPERVISOR);
  // And on the next connection, from the database.
  device->Disconnect();
  ASSERT_TRUE(device->Connect());
  auto session = device->GetSession();
  ASSERT_TRUE(session.ok() && session->has_session()) << RelayClient::Describe(session);
  EXPECT_EQ(session->session().role(), v1::ROLE_SUPERVISOR);
  // The default role is counsellor.
  auto other = Survivor();
  auto r = other->Redeem(server_->Enrol());
  ASSERT_TRUE(r.ok() && r->has_invitation_redeemed()) << RelayClient::Describe(r);
  EXPECT_EQ(r->invitation_redeemed().role(), v1::ROLE_COUNSELLOR);
}

TEST_F(AdminEnrolTest, RejectsAnUnknownRole) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  for (const char* role : {"admin", "Supervisor", ""}) {
    SCOPED_TRACE(role);
    const HavendRun run = server_->Admin({"enrol", "--role", role});
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_TRUE(Contains(run.output, "--role must be counsellor or supervisor")) << run.output;
    EXPECT_FALSE(std::regex_search(run.output, std::regex("[0-9A-Z]{4}-[0-9A-Z]{4}-")))
        << "no code may be printed: " << run.output;
  }
  EXPECT_EQ(CountsNow().invitations, 0);
}

TEST_F(AdminEnrolTest, CodeIsNotStoredInTheDatabaseFiles) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string code = server_->Enrol();
  ASSERT_FALSE(code.empty());
  const std::string compact = WithoutDashes(code);
  // The raw files, as a thief would copy them (havend keeps the WAL open).
  std::size_t bytes_read = 0;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const fs::path file = DbPath().string() + suffix;
    const std::string bytes = testing::ReadFile(file);
    bytes_read += bytes.size();
    EXPECT_FALSE(Contains(bytes, code)) << file;
    EXPECT_FALSE(Contains(bytes, compact)) << file;
  }
  EXPECT_GT(bytes_read, 0u);
  // With the key: only the hash is there, and no cell holds the code.
  auto db = OpenDatabase();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto stmt = (*db)->db().Prepare("SELECT code_hash, CAST(role AS BLOB), CAST(expires_at AS BLOB) "
                                  "FROM invitations");
  ASSERT_TRUE(stmt.ok());
  int rows = 0;
  const auto hash = server::HashInvitationCode(code);
  ASSERT_TRUE(hash.has_value());
  while (true) {
    auto row = stmt->Step();
    ASSERT_TRUE(row.ok()) << row.status().ToString();
    if (!*row) break;
    ++rows;
    EXPECT_EQ(stmt->ColumnBlob(0), Bytes(hash->begin(), hash->end()));
    for (int col = 0; col < 3; ++col) {
      const Bytes cell = stmt->ColumnBlob(col);
      const std::string text(cell.begin(), cell.end());
      EXPECT_FALSE(Contains(text, code) || Contains(text, compact)) << "column " << col;
    }
  }
  EXPECT_EQ(rows, 1);
}

// --- stats ------------------------------------------------------------------

using AdminStatsTest = AdminServerTest;

TEST_F(AdminStatsTest, PrintsOnlyCountsThatMatchTheDatabase) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string marker = "stats-ciphertext-marker-";
  Pair p = WithWaitingEnvelopes(3, marker);
  ASSERT_FALSE(p.id.empty());
  // A second conversation, claimed by a second counsellor, then closed (one
  // closed while still queued would be deleted at once).
  auto other = Survivor();
  const std::string closed_id = other->OpenId();
  auto second = Counsellor();
  ASSERT_TRUE(second->Claim(closed_id)->has_conversation_claimed());
  ASSERT_TRUE(other->Close(closed_id)->has_done());
  // An invitation not yet used.
  ASSERT_FALSE(server_->Enrol().empty());

  const HavendRun run = server_->Admin({"stats"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output,
            "counsellors 2\ninvitations 1\nconversations_open 1\nconversations_closed 1\n"
            "envelopes_waiting 3\n");
  // What the database says, whatever the code above did.
  EXPECT_EQ(run.output, CountsText(CountsNow()));

  // Never an identifier or content.
  for (const std::string& id : {p.id, closed_id}) {
    EXPECT_FALSE(Contains(run.output, ToHex(AsBytes(id))));
    EXPECT_FALSE(Contains(run.output, id));
  }
  EXPECT_FALSE(Contains(run.output, marker));
  EXPECT_FALSE(std::regex_search(run.output, std::regex("[0-9a-fA-F]{8,}"))) << run.output;
}

// --- rotate-db-key -------------------------------------------------------------

using AdminRotateDbKeyTest = AdminServerTest;

TEST_F(AdminRotateDbKeyTest, RefusesWhileHavendRuns) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string key = DbKey();
  const HavendRun run = server_->Admin({"rotate-db-key"});
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_TRUE(Contains(run.output, "running havend")) << run.output;
  EXPECT_TRUE(Contains(run.output, "stop it")) << run.output;
  EXPECT_EQ(DbKey(), key);
  EXPECT_FALSE(fs::exists(server_->DatabaseKeyPath() + ".new"));
  // The server is unaffected.
  auto s = Survivor();
  EXPECT_TRUE(s->GetSession()->has_session());
}

TEST_F(AdminRotateDbKeyTest, ReEncryptsUnderANewKeyAndHavendResumesOnIt) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = WithWaitingEnvelopes(3, "before-rotation-");
  p.survivor->Disconnect();
  ASSERT_EQ(server_->Terminate(), 0);

  const std::string old_key = DbKey();
  ASSERT_EQ(old_key.size(), 32u);
  const server::RowCounts before = CountsNow();
  ASSERT_EQ(before.envelopes, 3);

  const HavendRun run = server_->Admin({"rotate-db-key"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(Contains(run.output, "re-encrypted")) << run.output;

  const std::string new_key = DbKey();
  EXPECT_EQ(new_key.size(), 32u);
  EXPECT_NE(new_key, old_key);
  EXPECT_EQ(Mode(server_->DatabaseKeyPath()), 0600);
  EXPECT_FALSE(fs::exists(server_->DatabaseKeyPath() + ".new"));
  // Neither key is printed.
  EXPECT_FALSE(Contains(run.output, ToHex(AsBytes(new_key))));
  EXPECT_FALSE(Contains(run.output, ToHex(AsBytes(old_key))));

  EXPECT_FALSE(OpenStore(DbPath(), old_key).ok()) << "the old key still opens the database";
  {
    auto with_new = OpenStore(DbPath(), new_key);
    ASSERT_TRUE(with_new.ok()) << with_new.status().ToString();
    auto after = (*with_new)->Counts();
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(CountsText(*after), CountsText(before));
  }  // closed before havend starts

  // havend starts on the re-keyed database and delivers what was waiting.
  ASSERT_TRUE(server_->Restart());
  ASSERT_TRUE(p.counsellor->Connect());
  for (int i = 0; i < 3; ++i) {
    auto e = p.counsellor->WaitEnvelope();
    ASSERT_TRUE(e.has_value()) << i;
    EXPECT_EQ(e->ciphertext(), "before-rotation-" + std::to_string(i));
  }
}

TEST_F(AdminRotateDbKeyTest, RotatesAfterAHavendCrashWithoutLosingCommittedData) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = WithWaitingEnvelopes(3, "before-crash-");
  p.survivor->Disconnect();
  server_->Kill();  // no checkpoint: the committed pages are still in the WAL
  const std::string old_key = DbKey();

  const HavendRun run = server_->Admin({"rotate-db-key"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string new_key = DbKey();
  EXPECT_NE(new_key, old_key);
  EXPECT_FALSE(OpenStore(DbPath(), old_key).ok());
  EXPECT_EQ(CountsNow().envelopes, 3);

  ASSERT_TRUE(server_->Restart());
  ASSERT_TRUE(p.counsellor->Connect());
  for (int i = 0; i < 3; ++i) {
    auto e = p.counsellor->WaitEnvelope();
    ASSERT_TRUE(e.has_value()) << i;
    EXPECT_EQ(e->ciphertext(), "before-crash-" + std::to_string(i));
  }
}

TEST_F(AdminRotateDbKeyTest, FinishesARotationInterruptedAfterTheReKey) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = WithWaitingEnvelopes(2, "interrupted-");
  p.survivor->Disconnect();
  ASSERT_EQ(server_->Terminate(), 0);
  const std::string old_key = DbKey();
  const server::RowCounts before = CountsNow();
  ASSERT_EQ(before.envelopes, 2);

  // What rotate-db-key leaves when it dies between the re-key and the rename.
  SecureBuffer new_key = SecureBuffer::Random(32);
  {
    auto store = OpenStore(DbPath(), old_key);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->db().Rekey(new_key.view()).ok());
  }
  ASSERT_TRUE(server::WriteKeyFile(server_->DatabaseKeyPath() + ".new", new_key.view()).ok());
  ASSERT_FALSE(OpenStore(DbPath(), old_key).ok()) << "the manual re-key did not take";

  const HavendRun run = server_->Admin({"rotate-db-key"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_TRUE(Contains(run.output, "finished an interrupted rotation")) << run.output;
  const std::string key_now = DbKey();
  EXPECT_EQ(key_now, std::string(new_key.view().begin(), new_key.view().end()));
  EXPECT_EQ(Mode(server_->DatabaseKeyPath()), 0600);
  EXPECT_FALSE(fs::exists(server_->DatabaseKeyPath() + ".new"));
  EXPECT_EQ(CountsText(CountsNow()), CountsText(before));

  ASSERT_TRUE(server_->Restart());
  ASSERT_TRUE(p.counsellor->Connect());
  for (int i = 0; i < 2; ++i) {
    auto e = p.counsellor->WaitEnvelope();
    ASSERT_TRUE(e.has_value()) << i;
    EXPECT_EQ(e->ciphertext(), "interrupted-" + std::to_string(i));
  }
}

TEST_F(AdminRotateDbKeyTest, DiscardsANewKeyLeftBeforeTheReKeyAndRotates) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = WithWaitingEnvelopes(1, "stale-");
  p.survivor->Disconnect();
  ASSERT_EQ(server_->Terminate(), 0);
  const std::string old_key = DbKey();
  const server::RowCounts before = CountsNow();

  // Interrupted after writing db.key.new but before the re-key.
  SecureBuffer stale = SecureBuffer::Random(32);
  ASSERT_TRUE(server::WriteKeyFile(server_->DatabaseKeyPath() + ".new", stale.view()).ok());

  const HavendRun run = server_->Admin({"rotate-db-key"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_FALSE(Contains(run.output, "interrupted")) << run.output;
  EXPECT_TRUE(Contains(run.output, "re-encrypted")) << run.output;
  const std::string key_now = DbKey();
  EXPECT_NE(key_now, old_key);
  EXPECT_NE(key_now, std::string(stale.view().begin(), stale.view().end()));
  EXPECT_FALSE(fs::exists(server_->DatabaseKeyPath() + ".new"));
  EXPECT_FALSE(OpenStore(DbPath(), old_key).ok());
  EXPECT_EQ(CountsText(CountsNow()), CountsText(before));
  ASSERT_TRUE(server_->Restart());
}

// --- purge ------------------------------------------------------------------

using AdminPurgeTest = AdminServerTest;

TEST_F(AdminPurgeTest, RefusesWhileHavendRuns) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  Pair p = WithWaitingEnvelopes(0, "");
  ASSERT_TRUE(p.survivor->Close(p.id)->has_done());
  const std::string config = (server_->data_dir().parent_path() / "purge-now.toml").string();
  std::ofstream(config) << "[retention]\nclosed_conversation_days = 0\n";

  const HavendRun run = server_->Admin({"purge", "--config", config});
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_TRUE(Contains(run.output, "running havend")) << run.output;
  EXPECT_TRUE(Contains(run.output, "stop it")) << run.output;
  EXPECT_FALSE(Contains(run.output, "purged")) << run.output;
  EXPECT_EQ(CountsNow().conversations_closed, 1);
}

TEST_F(AdminPurgeTest, AppliesRetentionFromTheConfigFileOnceHavendIsStopped) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  // A closed conversation (with envelopes still waiting in it), an open one,
  // an expired invitation and a valid one.
  Pair closed = WithWaitingEnvelopes(2, "purge-me-");
  ASSERT_TRUE(closed.survivor->Close(closed.id)->has_done());
  auto open = Survivor();
  ASSERT_FALSE(open->OpenId().empty());
  ASSERT_FALSE(server_->Enrol().empty());
  {
    auto db = OpenDatabase();
    ASSERT_TRUE(db.ok());
    const auto hash = server::HashInvitationCode(server::NewInvitationCode());
    ASSERT_TRUE(
        (*db)->CreateInvitation(*hash, 2, static_cast<std::int64_t>(std::time(nullptr)) - 60).ok());
  }
  closed.survivor->Disconnect();
  open->Disconnect();
  ASSERT_EQ(server_->Terminate(), 0);
  const server::RowCounts start = CountsNow();
  ASSERT_EQ(start.conversations_closed, 1);
  ASSERT_EQ(start.conversations_open, 1);
  ASSERT_EQ(start.invitations, 2);
  ASSERT_EQ(start.envelopes, 2);

  // Default retention (30 days): today's closed conversation stays; the
  // expired invitation goes.
  HavendRun run = server_->Admin({"purge"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output,
            "purged 0 closed conversations, 0 expired envelopes, 1 expired invitations\n");
  server::RowCounts now = CountsNow();
  EXPECT_EQ(now.conversations_closed, 1);
  EXPECT_EQ(now.invitations, 1);

  // With closed_conversation_days = 0 the closed conversation goes, with its envelopes.
  const std::string config = (server_->data_dir().parent_path() / "purge-now.toml").string();
  std::ofstream(config) << "[retention]\nclosed_conversation_days = 0\n";
  run = server_->Admin({"purge", "--config", config});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(run.output,
            "purged 1 closed conversations, 0 expired envelopes, 0 expired invitations\n");
  now = CountsNow();
  EXPECT_EQ(now.conversations_closed, 0);
  EXPECT_EQ(now.conversations_open, 1);
  EXPECT_EQ(now.invitations, 1);
  EXPECT_EQ(now.counsellors, start.counsellors);
  EXPECT_EQ(now.envelopes, 0);

  // havend starts on the purged database.
  ASSERT_TRUE(server_->Restart());
}

// --- The command line ---------------------------------------------------------

const std::vector<std::string> kSubcommands = {"init", "enrol", "rotate-db-key", "purge", "stats"};

TEST(AdminCliTest, EverySubcommandHasHelp) {
  for (const std::string& cmd : kSubcommands) {
    SCOPED_TRACE(cmd);
    const HavendRun run = RunAdmin({cmd, "--help"});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(Contains(run.output, "--data-dir")) << run.output;
    EXPECT_TRUE(Contains(run.output, cmd)) << run.output;
  }
  const HavendRun top = RunAdmin({"--help"});
  EXPECT_EQ(top.exit_code, 0) << top.output;
  for (const std::string& cmd : kSubcommands) EXPECT_TRUE(Contains(top.output, cmd)) << cmd;
  // No subcommand is an error, not a silent success.
  EXPECT_NE(RunAdmin({}).exit_code, 0);
}

TEST(AdminCliTest, MissingDataDirectoryIsNamedAndNotCreated) {
  const fs::path root = MakeTempDir("admin-missing");
  const fs::path missing = root / "no-such-deployment";
  for (const char* cmd : {"enrol", "rotate-db-key", "purge", "stats"}) {
    SCOPED_TRACE(cmd);
    const HavendRun run = RunAdmin({cmd, "--data-dir", missing.string()});
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_TRUE(Contains(run.output, missing.string())) << run.output;
    EXPECT_TRUE(Contains(run.output, "haven-admin: ")) << run.output;
    EXPECT_FALSE(fs::exists(missing)) << cmd << " created the data directory";
  }
  std::error_code ec;
  fs::remove_all(root, ec);
}

}  // namespace
}  // namespace haven
