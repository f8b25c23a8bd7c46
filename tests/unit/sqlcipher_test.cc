// A real SQLCipher file in a temporary directory.
#include "haven/sqlcipher/database.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "haven/common/secure_memory.h"
#include "support/fault_vfs.h"
#include "support/files.h"

namespace haven::sqlcipher {
namespace {

namespace fs = std::filesystem;

class SqlCipherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("haven-sqlcipher-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "haven.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string path_;
  SecureBuffer key_ = SecureBuffer::Random(kRawKeyLen);
};

TEST_F(SqlCipherTest, EncryptedAtRestAndReopensWithItsKey) {
  {
    auto db = Database::Open(path_, key_.view());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE((*db)->Exec("CREATE TABLE t(x TEXT); INSERT INTO t VALUES('needle-4242');").ok());
  }
  // Neither the SQLite magic nor the row text appear in the file.
  const std::string raw = testing::ReadFile(path_);
  EXPECT_EQ(raw.find("SQLite format 3"), std::string::npos);
  EXPECT_EQ(raw.find("needle-4242"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u) << "database file must not be group/world accessible";

  auto db = Database::Open(path_, key_.view());
  ASSERT_TRUE(db.ok());
  auto stmt = (*db)->Prepare("SELECT x FROM t");
  ASSERT_TRUE(stmt.ok());
  ASSERT_TRUE(*stmt->Step());
  EXPECT_EQ(stmt->ColumnText(0), "needle-4242");
}

TEST_F(SqlCipherTest, WrongKeyIsReportedAtOpenNamingTheFile) {
  { ASSERT_TRUE(Database::Open(path_, key_.view()).ok()); }
  { auto db = Database::Open(path_, key_.view()); ASSERT_TRUE((*db)->Exec("CREATE TABLE t(x)").ok()); }
  SecureBuffer other = SecureBuffer::Random(kRawKeyLen);
  auto db = Database::Open(path_, other.view());
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Status::Code::kDataLoss);
  EXPECT_NE(db.status().message().find(path_), std::string::npos);
}

// A disk that fails while the file is being opened is not a wrong key: the
// SDK tells the app "wrong passphrase" for kDataLoss, and havend tells the
// operator to look for another key. Found by havend_fault_test.
TEST_F(SqlCipherTest, AnIoErrorAtOpenIsNotReportedAsAWrongKey) {
  {
    auto db = Database::Open(path_, key_.view());
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("CREATE TABLE t(x); INSERT INTO t VALUES(1);").ok());
  }
  auto& vfs = testing::FaultVfs::Install();
  int failed = 0;
  for (int healthy = 0; healthy <= 8; ++healthy) {
    vfs.FailAfter(healthy);
    auto db = Database::Open(path_, key_.view());
    vfs.Clear();
    if (db.ok()) continue;  // the fault came after the open's last read
    ++failed;
    EXPECT_NE(db.status().code(), Status::Code::kDataLoss) << healthy << ": " << db.status().ToString();
    EXPECT_EQ(db.status().message().find("wrong key"), std::string::npos) << db.status().ToString();
  }
  EXPECT_GE(failed, 4) << "the first reads of an open must be among the failed ones";
  auto db = Database::Open(path_, key_.view());  // the disk is healthy again
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto stmt = (*db)->Prepare("SELECT count(*) FROM t");
  ASSERT_TRUE(stmt.ok() && *stmt->Step());
  EXPECT_EQ(stmt->ColumnInt(0), 1);
}

TEST_F(SqlCipherTest, RejectsKeyOfWrongLength) {
  SecureBuffer short_key(16);
  EXPECT_EQ(Database::Open(path_, short_key.view()).status().code(),
            Status::Code::kInvalidArgument);
}

TEST_F(SqlCipherTest, SecureDeleteAndWalAreOn) {
  auto db = Database::Open(path_, key_.view());
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*(*db)->QueryInt("PRAGMA secure_delete"), 1);
  auto stmt = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(*stmt->Step());
  EXPECT_EQ(stmt->ColumnText(0), "wal");
}

TEST_F(SqlCipherTest, MigrationsApplyOnceAndRefuseNewerFiles) {
  auto db = Database::Open(path_, key_.view());
  ASSERT_TRUE(db.ok());
  std::vector<std::string_view> migrations = {"CREATE TABLE a(x);", "CREATE TABLE b(y);"};
  ASSERT_TRUE((*db)->Migrate(migrations).ok());
  EXPECT_EQ(*(*db)->SchemaVersion(), 2);
  ASSERT_TRUE((*db)->Migrate(migrations).ok());  // idempotent
  migrations.pop_back();
  EXPECT_EQ((*db)->Migrate(migrations).code(), Status::Code::kFailedPrecondition);
}

TEST_F(SqlCipherTest, FailedMigrationRollsBack) {
  auto db = Database::Open(path_, key_.view());
  ASSERT_TRUE(db.ok());
  std::vector<std::string_view> migrations = {"CREATE TABLE a(x);",
                                              "CREATE TABLE b(y); SELECT * FROM missing;"};
  EXPECT_FALSE((*db)->Migrate(migrations).ok());
  EXPECT_EQ(*(*db)->SchemaVersion(), 1);
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(*) FROM sqlite_master WHERE name='b'"), 0);
}

TEST_F(SqlCipherTest, RekeyMakesOldKeyUseless) {
  SecureBuffer new_key = SecureBuffer::Random(kRawKeyLen);
  {
    auto db = Database::Open(path_, key_.view());
    ASSERT_TRUE((*db)->Exec("CREATE TABLE t(x); INSERT INTO t VALUES(1);").ok());
    ASSERT_TRUE((*db)->Rekey(new_key.view()).ok());
  }
  EXPECT_FALSE(Database::Open(path_, key_.view()).ok());
  auto db = Database::Open(path_, new_key.view());
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*(*db)->QueryInt("SELECT x FROM t"), 1);
}

TEST_F(SqlCipherTest, CachedStatementsAreReusedWithFreshBindings) {
  auto db = Database::Open(path_, key_.view());
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t(x, y)").ok());
  constexpr std::string_view kInsert = "INSERT INTO t VALUES (?, ?)";
  Statement* first = nullptr;
  for (int i = 0; i < 3; ++i) {
    auto stmt = (*db)->Cached(kInsert);
    ASSERT_TRUE(stmt.ok());
    if (first == nullptr) first = *stmt;
    EXPECT_EQ(*stmt, first) << "prepared once";
    ASSERT_TRUE((*stmt)->BindInt(1, i).ok());
    if (i == 0) {
      ASSERT_TRUE((*stmt)->BindInt(2, 99).ok());  // later rows leave y unbound
    }
    ASSERT_TRUE((*stmt)->Step().ok());
  }
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(*) FROM t"), 3);
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(*) FROM t WHERE y IS NULL"), 2);
}

TEST_F(SqlCipherTest, GarbageFileIsNotADatabase) {
  { std::ofstream(path_) << std::string(4096, 'x'); }
  auto db = Database::Open(path_, key_.view());
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Status::Code::kDataLoss);
}

}  // namespace
}  // namespace haven::sqlcipher
