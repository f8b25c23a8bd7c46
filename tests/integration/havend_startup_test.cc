// havend refuses to start on bad secrets or configuration, with a message
// that names the file and what to do, and a non-zero exit status.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "support/files.h"
#include "support/havend_process.h"

namespace haven {
namespace {

namespace fs = std::filesystem;
using testing::HavendProcess;

class HavendStartupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("startup");
    data_ = (dir_ / "data").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Creates a deployment the way the README's run command does, then stops.
  void Init() {
    auto server = HavendProcess::Start();
    ASSERT_NE(server, nullptr);
    ASSERT_EQ(server->Terminate(), 0);
    fs::copy(server->data_dir(), data_, fs::copy_options::recursive);
    fs::permissions(data_, fs::perms::owner_all, fs::perm_options::replace);
  }

  testing::HavendRun Run(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--data-dir", data_, "--port", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return HavendProcess::RunToExit(args, std::chrono::seconds(5));
  }

  fs::path dir_;
  std::string data_;
};

TEST_F(HavendStartupTest, MissingDeploymentWithoutInit) {
  auto run = Run();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find(data_), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("--init"), std::string::npos) << run.output;
}

TEST_F(HavendStartupTest, MissingServerKey) {
  Init();
  fs::remove(fs::path(data_) / "server.key");
  auto run = Run();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("server.key is missing"), std::string::npos) << run.output;
}

TEST_F(HavendStartupTest, WorldReadableKey) {
  Init();
  const std::string key = (fs::path(data_) / "db.key").string();
  ::chmod(key.c_str(), 0644);
  auto run = Run();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("chmod 600 " + key), std::string::npos) << run.output;
}

TEST_F(HavendStartupTest, UnreadableKeyFile) {
  Init();
  const fs::path key = fs::path(data_) / "server.key";
  fs::remove(key);
  fs::create_directory(key);  // exists, but cannot be read as a key
  ::chmod(key.c_str(), 0700);
  auto run = Run();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find(key.string()), std::string::npos) << run.output;
}

TEST_F(HavendStartupTest, BadlyFormedKeyFile) {
  Init();
  const fs::path key = fs::path(data_) / "server.key";
  fs::remove(key);
  { std::ofstream(key) << "not a key"; }
  ::chmod(key.c_str(), 0600);
  auto run = Run();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("must hold exactly 32 bytes"), std::string::npos) << run.output;
}

TEST_F(HavendStartupTest, WrongDatabaseKey) {
  Init();
  const fs::path key = fs::path(data_) / "db.key";
  fs::remove(key);
  {
    std::ofstream out(key, std::ios::binary);
    out << std::string(32, 'k');
  }
  ::chmod(key.c_str(), 0600);
  auto run = Run();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("cannot be decrypted"), std::string::npos) << run.output;
}

TEST_F(HavendStartupTest, InvalidSetting) {
  Init();
  const std::string config = (dir_ / "havend.toml").string();
  std::ofstream(config) << "[limits]\nidle_timeout_s = 0\n";
  auto run = Run({"--config", config});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find(config + ": limits.idle_timeout_s"), std::string::npos) << run.output;
}

TEST_F(HavendStartupTest, MissingConfigFile) {
  auto run = Run({"--config", (dir_ / "nope.toml").string()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("nope.toml"), std::string::npos) << run.output;
}

TEST_F(HavendStartupTest, PortInUse) {
  auto first = HavendProcess::Start();
  ASSERT_NE(first, nullptr);
  Init();
  auto run = HavendProcess::RunToExit(
      {"--data-dir", data_, "--port", std::to_string(first->port())}, std::chrono::seconds(5));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("cannot listen"), std::string::npos) << run.output;
}

TEST_F(HavendStartupTest, SecretsNeverAppearInOutput) {
  auto server = HavendProcess::Start();
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(server->Terminate(), 0);
  const std::string output = server->Output();
  for (const char* name : {"server.key", "db.key"}) {
    const std::string raw = testing::ReadFile(server->data_dir() / name);
    ASSERT_EQ(raw.size(), 32u);
    EXPECT_EQ(output.find(ToHex(AsBytes(raw))), std::string::npos) << name << " leaked";
  }
}

}  // namespace
}  // namespace haven
