#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "config/deployment.h"
#include "support/havend_process.h"

namespace haven::server {
namespace {

namespace fs = std::filesystem;

TEST(Config, ShippedFileParsesToTheBuiltInDefaults) {
  // config/havend.toml documents the defaults: it must agree with the code.
  auto c = LoadConfigFile(HAVEN_SOURCE_DIR "/config/havend.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const Config d;
  EXPECT_EQ(c->listen_address, d.listen_address);
  EXPECT_EQ(c->listen_port, d.listen_port);
  EXPECT_EQ(c->threads, d.threads);
  EXPECT_EQ(c->handshake_threads, d.handshake_threads);
  EXPECT_EQ(c->handshake_nice, d.handshake_nice);
  EXPECT_EQ(c->data_dir, d.data_dir);
  EXPECT_EQ(c->server_key_file, d.server_key_file);
  EXPECT_EQ(c->database_key_file, d.database_key_file);
  EXPECT_EQ(c->database_file, d.database_file);
  EXPECT_EQ(c->limits.max_connections, d.limits.max_connections);
  EXPECT_EQ(c->limits.max_frame_bytes, d.limits.max_frame_bytes);
  EXPECT_EQ(c->limits.send_queue_frames, d.limits.send_queue_frames);
  EXPECT_EQ(c->limits.handshake_timeout_ms, d.limits.handshake_timeout_ms);
  EXPECT_EQ(c->limits.ping_interval_s, d.limits.ping_interval_s);
  EXPECT_EQ(c->limits.idle_timeout_s, d.limits.idle_timeout_s);
  EXPECT_EQ(c->limits.shutdown_grace_ms, d.limits.shutdown_grace_ms);
  EXPECT_EQ(c->relay.max_envelope_bytes, d.relay.max_envelope_bytes);
  EXPECT_EQ(c->relay.max_queued_envelopes, d.relay.max_queued_envelopes);
  EXPECT_EQ(c->relay.max_open_conversations_per_survivor,
            d.relay.max_open_conversations_per_survivor);
  EXPECT_EQ(c->relay.delivery_window, d.relay.delivery_window);
  EXPECT_EQ(c->relay.survivor_requests_per_second, d.relay.survivor_requests_per_second);
  EXPECT_EQ(c->relay.survivor_request_burst, d.relay.survivor_request_burst);
  EXPECT_EQ(c->relay.conversations_opened_per_minute, d.relay.conversations_opened_per_minute);
  EXPECT_EQ(c->relay.invitation_attempts_per_minute, d.relay.invitation_attempts_per_minute);
  EXPECT_EQ(c->retention.envelope_ttl_days, d.retention.envelope_ttl_days);
  EXPECT_EQ(c->retention.closed_conversation_days, d.retention.closed_conversation_days);
  EXPECT_EQ(c->retention.sweep_interval_s, d.retention.sweep_interval_s);
  EXPECT_EQ(c->storage.group_commit_max_batch, d.storage.group_commit_max_batch);
}

TEST(Config, EmptyFileGivesDefaults) {
  auto c = ParseConfig("", "test.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->listen_address, "127.0.0.1");
}

struct BadCase {
  const char* toml;
  const char* expected_in_message;
};

TEST(Config, BadInputNamesTheFileTheKeyAndTheFix) {
  const BadCase cases[] = {
      {"[limits]\nmax_frame_bytes = 70000\n", "limits.max_frame_bytes: must be between 1024 and 65535"},
      {"[limits]\nmax_connections = 0\n", "limits.max_connections"},
      {"[limits]\nping_interval_s = 60\nidle_timeout_s = 30\n", "greater than limits.ping_interval_s"},
      {"[listen]\naddress = \"localhost\"\n", "numeric IPv4 or IPv6"},
      {"[listen]\nport = \"7420\"\n", "listen.port: must be an integer"},
      {"[listen]\nprot = 1\n", "listen.prot: unknown setting"},
      {"[secrets]\nkey = 1\n", "secrets: unknown section"},
      {"[server]\nthreads = 0\n", "server.threads"},
      {"[server]\nhandshake_threads = 65\n", "server.handshake_threads: must be between 0 and 64"},
      {"[server]\nhandshake_nice = 20\n", "server.handshake_nice: must be between 0 and 19"},
      {"[server]\nhandshake_nice = -5\n", "server.handshake_nice: must be between 0 and 19"},
      {"[files]\nserver_key = \"\"\n", "files.server_key: must not be empty"},
      {"[limits\n", "test.toml:1"},
      {"[relay]\ndelivery_window = 300\n", "smaller than limits.send_queue_frames"},
      {"[retention]\nenvelope_ttl_days = 0\n", "retention.envelope_ttl_days"},
  };
  for (const BadCase& bad : cases) {
    auto c = ParseConfig(bad.toml, "test.toml");
    ASSERT_FALSE(c.ok()) << bad.toml;
    EXPECT_NE(c.status().message().find("test.toml"), std::string::npos) << c.status().message();
    EXPECT_NE(c.status().message().find(bad.expected_in_message), std::string::npos)
        << c.status().message();
  }
}

TEST(Config, Ipv6LoopbackIsAccepted) {
  EXPECT_TRUE(ParseConfig("[listen]\naddress = \"::1\"\n", "t").ok());
}

class DeploymentTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = haven::testing::MakeTempDir("deployment"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string data() const { return (dir_ / "data").string(); }
  fs::path dir_;
  Config config_;
};

TEST_F(DeploymentTest, InitCreatesStrictPermissionsAndIsStable) {
  auto first = LoadDeployment(config_, data(), {.create_if_missing = true});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  struct stat st {};
  ASSERT_EQ(::stat(data().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const char* f : {"server.key", "db.key"}) {
    ASSERT_EQ(::stat((dir_ / "data" / f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
    EXPECT_EQ(st.st_size, 32) << f;
  }
  // A second start reads the same keys; it never regenerates them.
  auto second = LoadDeployment(config_, data(), {.create_if_missing = true});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->server_key.public_key, second->server_key.public_key);
  EXPECT_TRUE(ConstantTimeEquals(first->database_key.view(), second->database_key.view()));
}

TEST_F(DeploymentTest, MissingDeploymentWithoutInitSaysHowToCreateOne) {
  auto d = LoadDeployment(config_, data(), {});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("--init"), std::string::npos);
}

TEST_F(DeploymentTest, GroupReadableKeyIsRefusedWithTheFix) {
  ASSERT_TRUE(LoadDeployment(config_, data(), {.create_if_missing = true}).ok());
  const std::string key = (dir_ / "data" / "server.key").string();
  ::chmod(key.c_str(), 0640);
  auto d = LoadDeployment(config_, data(), {});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Status::Code::kPermissionDenied);
  EXPECT_NE(d.status().message().find("chmod 600 " + key), std::string::npos);
}

TEST_F(DeploymentTest, OpenDataDirectoryIsRefused) {
  ASSERT_TRUE(LoadDeployment(config_, data(), {.create_if_missing = true}).ok());
  ::chmod(data().c_str(), 0755);
  auto d = LoadDeployment(config_, data(), {});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("chmod 700"), std::string::npos);
}

TEST_F(DeploymentTest, TruncatedKeyFileIsRefused) {
  ASSERT_TRUE(LoadDeployment(config_, data(), {.create_if_missing = true}).ok());
  fs::resize_file(dir_ / "data" / "db.key", 16);
  auto d = LoadDeployment(config_, data(), {});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("exactly 32 bytes"), std::string::npos);
}

TEST_F(DeploymentTest, MissingDatabaseKeyIsNotRegeneratedWhenADatabaseExists) {
  ASSERT_TRUE(LoadDeployment(config_, data(), {.create_if_missing = true}).ok());
  std::ofstream(dir_ / "data" / "haven.db") << "x";
  fs::remove(dir_ / "data" / "db.key");
  auto d = LoadDeployment(config_, data(), {.create_if_missing = true});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("restore the key file"), std::string::npos);
}

TEST_F(DeploymentTest, DatabaseKeyFromEnvironmentReplacesTheFile) {
  const std::string hex(64, 'a');
  auto d = LoadDeployment(config_, data(),
                          {.create_if_missing = true, .database_key_hex = hex.c_str()});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->database_key.data()[0], 0xaa);
  EXPECT_FALSE(fs::exists(dir_ / "data" / "db.key"));
  const std::string bad = "abcd";
  EXPECT_FALSE(LoadDeployment(config_, data(), {.database_key_hex = bad.c_str()}).ok());
}

}  // namespace
}  // namespace haven::server
