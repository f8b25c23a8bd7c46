// havend's database file as a thief (without the key) and as an auditor (with
// it) sees it: unreadable without the key, and with the key exactly the schema
// of design.md section 5, with secure_delete, WAL, and time kept to the day.
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "haven/common/bytes.h"
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

constexpr char kSqlite3[] = "/usr/bin/sqlite3";  // plain SQLite, no SQLCipher

// Markers that must never appear in clear in the database files.
constexpr std::string_view kCiphertextMarker = "HAVEN-CIPHERTEXT-MARKER-9f2c71d4e8";
constexpr std::string_view kLanguageMarker = "x-havenlangmarker-q7z";  // a valid tag, <= 35
constexpr std::string_view kIntakeMarker = "HAVEN-SEALED-INTAKE-MARKER-52be1d";
constexpr int kEnvelopeTtlDays = 7;

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::int64_t Today() { return static_cast<std::int64_t>(std::time(nullptr)) / 86400; }

using Schema = std::map<std::string, std::set<std::string>>;

std::string Describe(const Schema& schema) {
  std::ostringstream out;
  for (const auto& [table, columns] : schema) {
    out << "  " << table << "(";
    bool first = true;
    for (const auto& c : columns) {
      out << (first ? "" : ", ") << c;
      first = false;
    }
    out << ")\n";
  }
  return out.str();
}

struct Column {
  std::string table;
  std::string name;
  std::string type;
};

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = HavendProcess::Start("[retention]\nenvelope_ttl_days = " +
                                   std::to_string(kEnvelopeTtlDays) + "\n");
    ASSERT_NE(server_, nullptr);
  }

  // Everything the schema can hold, with the markers: a counsellor, a pending
  // invitation, a claimed conversation (routing hints and sealed intake) whose
  // counsellor went away with three envelopes waiting, and a closed one.
  void Populate() {
    counsellor_ = std::make_unique<RelayClient>(*server_);
    ASSERT_TRUE(counsellor_->Connect());
    auto redeemed = counsellor_->Redeem(server_->Enrol());
    ASSERT_TRUE(redeemed.ok() && redeemed->has_invitation_redeemed())
        << RelayClient::Describe(redeemed);
    ASSERT_FALSE(server_->Enrol().empty());  // left pending

    survivor_ = std::make_unique<RelayClient>(*server_);
    ASSERT_TRUE(survivor_->Connect());
    auto opened = survivor_->Open(std::string(kLanguageMarker), 3, std::string(kIntakeMarker));
    ASSERT_TRUE(opened.ok() && opened->has_conversation_opened()) << RelayClient::Describe(opened);
    id_ = opened->conversation_opened().conversation().conversation_id();
    auto claimed = counsellor_->Claim(id_);
    ASSERT_TRUE(claimed.ok() && claimed->has_conversation_claimed())
        << RelayClient::Describe(claimed);
    // A second conversation, claimed and then closed by its survivor (one
    // closed while still queued is deleted at once and keeps no closed_day).
    auto other = std::make_unique<RelayClient>(*server_);
    ASSERT_TRUE(other->Connect());
    const std::string closed = other->OpenId();
    auto claimed_other = counsellor_->Claim(closed);
    ASSERT_TRUE(claimed_other.ok() && claimed_other->has_conversation_claimed())
        << RelayClient::Describe(claimed_other);
    counsellor_->Disconnect();
    for (int i = 0; i < 3; ++i) {
      // EnvelopeAccepted: committed to the database.
      auto sent = survivor_->Send(id_, std::string(kCiphertextMarker) + "-" + std::to_string(i));
      ASSERT_TRUE(sent.ok() && sent->has_envelope_accepted()) << RelayClient::Describe(sent);
    }
    auto done = other->Close(closed);
    ASSERT_TRUE(done.ok() && done->has_done()) << RelayClient::Describe(done);
  }

  Result<std::unique_ptr<server::ServerStore>> OpenDatabase() {
    return testing::OpenServerDatabase(*server_);
  }

  // Checks, with the key, that the markers really are stored (so that not
  // finding them in the raw bytes means something).
  void ExpectMarkersStored() {
    auto db = OpenDatabase();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto state = (*db)->Load();
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    bool conversation = false;
    for (const auto& c : state->conversations) {
      if (c.language == kLanguageMarker) {
        conversation = true;
        EXPECT_EQ(std::string(c.sealed_intake.begin(), c.sealed_intake.end()), kIntakeMarker);
      }
    }
    EXPECT_TRUE(conversation) << "the marked conversation is not in the database";
    int envelopes = 0;
    for (const auto& e : state->envelopes) {
      if (Contains(std::string(e.ciphertext.begin(), e.ciphertext.end()), kCiphertextMarker)) {
        ++envelopes;
      }
    }
    EXPECT_EQ(envelopes, 3);
  }

  // The raw bytes of the database, its WAL and shared-memory index.
  void ExpectNoMarkerInTheFiles() {
    std::size_t total = 0;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      const fs::path file = server_->DatabasePath() + suffix;
      const std::string bytes = testing::ReadFile(file);
      total += bytes.size();
      for (std::string_view marker : {kCiphertextMarker, kLanguageMarker, kIntakeMarker}) {
        EXPECT_FALSE(Contains(bytes, marker)) << marker << " is in clear in " << file;
      }
      // Not even a prefix long enough to be recognisable.
      EXPECT_FALSE(Contains(bytes, "HAVEN-")) << file;
    }
    EXPECT_GT(total, 4096u);
  }

  static Result<std::vector<std::string>> Strings(sqlcipher::Database& db, const std::string& sql,
                                                  int column) {
    HAVEN_ASSIGN_OR_RETURN(auto stmt, db.Prepare(sql));
    std::vector<std::string> out;
    while (true) {
      HAVEN_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      out.push_back(stmt.ColumnText(column));
    }
    return out;
  }

  // Every column of every table (internal sqlite_ tables excluded).
  static Result<std::vector<Column>> Columns(sqlcipher::Database& db) {
    HAVEN_ASSIGN_OR_RETURN(
        std::vector<std::string> tables,
        Strings(db,
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
                "ESCAPE '\\' ORDER BY name",
                0));
    std::vector<Column> out;
    for (const std::string& table : tables) {
      HAVEN_ASSIGN_OR_RETURN(auto stmt, db.Prepare("PRAGMA table_info(\"" + table + "\")"));
      while (true) {
        HAVEN_ASSIGN_OR_RETURN(bool row, stmt.Step());
        if (!row) break;
        out.push_back({table, stmt.ColumnText(1), stmt.ColumnText(2)});
      }
    }
    return out;
  }

  std::unique_ptr<HavendProcess> server_;
  std::unique_ptr<RelayClient> counsellor_;
  std::unique_ptr<RelayClient> survivor_;
  std::string id_;
};

// --- Without the key ----------------------------------------------------------

TEST_F(StorageTest, PlainSqliteCannotReadTheDatabase) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  const std::string query = "SELECT count(*) FROM sqlite_master;";

  // Control: the plain sqlite3 program reads a plain database.
  const fs::path scratch = MakeTempDir("plain-sqlite");
  const std::string plain = (scratch / "plain.db").string();
  HavendRun control = HavendProcess::RunToExit(
      {plain, "CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('" + std::string(kIntakeMarker) +
                  "'); " + query},
      10s, kSqlite3);
  ASSERT_EQ(control.exit_code, 0) << control.output;
  EXPECT_EQ(control.output, "1\n");
  // ...and a clear database shows its content in its bytes (the raw scans
  // below would catch a clear row).
  EXPECT_TRUE(Contains(testing::ReadFile(plain), kIntakeMarker));
  std::error_code ec;
  fs::remove_all(scratch, ec);

  auto expect_unreadable = [&](const char* when) {
    SCOPED_TRACE(when);
    // -readonly: the probe must not be able to change havend's file.
    const HavendRun run =
        HavendProcess::RunToExit({"-readonly", server_->DatabasePath(), query}, 10s, kSqlite3);
    EXPECT_NE(run.exit_code, 0) << run.output;
    EXPECT_TRUE(Contains(run.output, "not a database") || Contains(run.output, "encrypted"))
        << run.output;
  };
  expect_unreadable("while havend runs");
  survivor_->Disconnect();
  ASSERT_EQ(server_->Terminate(), 0);
  expect_unreadable("after havend stopped (everything checkpointed into haven.db)");
  // Also without -readonly, as an operator would type it.
  const HavendRun rw = HavendProcess::RunToExit({server_->DatabasePath(), query}, 10s, kSqlite3);
  EXPECT_NE(rw.exit_code, 0) << rw.output;
  EXPECT_TRUE(Contains(rw.output, "not a database") || Contains(rw.output, "encrypted"))
      << rw.output;
  // And the probes did no harm: the key still opens it, with everything in it.
  ExpectMarkersStored();
}

TEST_F(StorageTest, NoMarkerAppearsInClearInTheDatabaseFiles) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  ASSERT_NO_FATAL_FAILURE(ExpectMarkersStored());
  {
    SCOPED_TRACE("while havend runs (recent pages in the WAL)");
    EXPECT_TRUE(fs::exists(server_->DatabasePath() + "-wal"));
    ExpectNoMarkerInTheFiles();
  }
  survivor_->Disconnect();
  ASSERT_EQ(server_->Terminate(), 0);
  {
    SCOPED_TRACE("after a clean stop (WAL checkpointed into haven.db)");
    ExpectNoMarkerInTheFiles();
  }
}

// --- With the key --------------------------------------------------------------

TEST_F(StorageTest, SchemaIsExactlyDesignSectionFive) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  auto db = OpenDatabase();  // beside the running server
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto columns = Columns((*db)->db());
  ASSERT_TRUE(columns.ok()) << columns.status().ToString();

  Schema actual;
  for (const Column& c : *columns) actual[c.table].insert(c.name);
  const Schema expected = {
      {"deployment", {"id", "created_day", "boot_epoch"}},
      // design.md section 5: counsellor accounts: id, public keys, role, prekeys.
      {"counsellors", {"id", "device_key", "role", "identity_key"}},
      {"prekeys", {"counsellor_id", "kind", "key_id", "public_key", "signature"}},
      {"invitations", {"code_hash", "role", "expires_at"}},
      // Routing (state, assigned counsellor, hints, how often it was
      // transferred) and sealed blobs (intake, wrap-up: sealed to the helpline).
      {"conversations",
       {"id", "state", "survivor_key", "counsellor_id", "language", "priority", "queue_position",
        "sealed_intake", "closed_day", "counsellor_epoch", "sealed_wrapup", "supervisor_id"}},
      // Which participant (survivor, counsellor, supervisor) an envelope is
      // for and from: the recipient picks its end-to-end session by sender.
      {"envelopes",
       {"conversation_id", "seq", "recipient", "ciphertext", "expires_day", "sender"}},
      // A counsellor's time-bounded block of an abusive contact (design.md
      // section 8): the session key it applies to, until when (to the hour).
      {"blocks", {"survivor_key", "expires_at"}},
      // Audit events, each sealed to the helpline's audit key (section 5).
      {"audit", {"id", "day", "sealed"}},
  };
  EXPECT_EQ(actual, expected)
      << "The database schema differs from what the server may know. A new table or column "
         "must first be justified in design.md section 5 (What the server may know), then "
         "listed in server/store/server_store.h and here.\nExpected:\n"
      << Describe(expected) << "Actual:\n"
      << Describe(actual);

  // Nothing else holding data either: no views, and every table is one of the above.
  auto views = Strings((*db)->db(), "SELECT name FROM sqlite_master WHERE type = 'view'", 0);
  ASSERT_TRUE(views.ok());
  EXPECT_TRUE(views->empty()) << "a view must be justified in design.md section 5 first";
}

TEST_F(StorageTest, SecureDeleteIsOnAndTheJournalIsWal) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  // havend's own connection runs in WAL mode: the WAL and its index exist
  // beside the file while it has the database open.
  EXPECT_TRUE(fs::exists(server_->DatabasePath() + "-wal"));
  EXPECT_TRUE(fs::exists(server_->DatabasePath() + "-shm"));
  EXPECT_FALSE(fs::exists(server_->DatabasePath() + "-journal"));

  // Both settings as a connection opened the way havend opens it reports
  // them (secure_delete is per connection; journal_mode is also persisted).
  auto db = OpenDatabase();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto secure_delete = (*db)->db().QueryInt("PRAGMA secure_delete");
  ASSERT_TRUE(secure_delete.ok()) << secure_delete.status().ToString();
  EXPECT_EQ(*secure_delete, 1);
  auto journal = Strings((*db)->db(), "PRAGMA journal_mode", 0);
  ASSERT_TRUE(journal.ok()) << journal.status().ToString();
  ASSERT_EQ(journal->size(), 1u);
  EXPECT_EQ((*journal)[0], "wal");
}

TEST_F(StorageTest, NothingFinerThanADayIsStoredAboutTime) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  auto db = OpenDatabase();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto columns = Columns((*db)->db());
  ASSERT_TRUE(columns.ok()) << columns.status().ToString();
  const std::int64_t today = Today();
  const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));

  // Names: time is only ever a *_day, except an invitation's expiry.
  const std::regex time_like(R"((_at$|time|stamp|date|_ms$|_us$|_ns$|_sec$|_secs$|_seconds$))",
                             std::regex::icase);
  int day_columns = 0;
  for (const Column& c : *columns) {
    const std::string where = c.table + "." + c.name;
    // An invitation's expiry, and a block's (rounded to the hour), are the
    // only times finer than a day: each is needed to the hour to enforce it.
    if (where != "invitations.expires_at" && where != "blocks.expires_at") {
      EXPECT_FALSE(std::regex_search(c.name, time_like))
          << where << " looks like a time finer than a day; design.md section 5 allows none";
    }
    if (c.name.size() <= 4 || c.name.substr(c.name.size() - 4) != "_day") continue;
    ++day_columns;
    EXPECT_EQ(c.type, "INTEGER") << where;
    // *_day columns hold day numbers: today, give or take midnight; an
    // envelope's expiry is today + retention.envelope_ttl_days.
    const std::int64_t expected = where == "envelopes.expires_day" ? today + kEnvelopeTtlDays : today;
    auto values = (*db)->db().Prepare("SELECT \"" + c.name + "\" FROM \"" + c.table + "\"");
    ASSERT_TRUE(values.ok()) << where;
    int non_null = 0;
    while (true) {
      auto row = values->Step();
      ASSERT_TRUE(row.ok()) << row.status().ToString();
      if (!*row) break;
      if (values->ColumnIsNull(0)) continue;
      ++non_null;
      const std::int64_t v = values->ColumnInt(0);
      EXPECT_GE(v, expected - 1) << where << " = " << v;
      EXPECT_LE(v, expected + 1) << where << " = " << v;
    }
    EXPECT_GT(non_null, 0) << where << " has no value to check; Populate() should fill it";
  }
  EXPECT_EQ(day_columns, 3);  // created_day, closed_day, expires_day

  // Values: no INTEGER cell other than invitations.expires_at looks like a
  // Unix time (seconds or milliseconds within a year of now).
  constexpr std::int64_t kYear = 366 * 86400;
  for (const Column& c : *columns) {
    if (c.type != "INTEGER") continue;
    const std::string where = c.table + "." + c.name;
    auto values = (*db)->db().Prepare("SELECT \"" + c.name + "\" FROM \"" + c.table + "\"");
    ASSERT_TRUE(values.ok()) << where;
    while (true) {
      auto row = values->Step();
      ASSERT_TRUE(row.ok()) << row.status().ToString();
      if (!*row) break;
      if (values->ColumnIsNull(0)) continue;
      const std::int64_t v = values->ColumnInt(0);
      const bool seconds = v > now - kYear && v < now + kYear;
      const bool millis = v > (now - kYear) * 1000 && v < (now + kYear) * 1000;
      if (where == "invitations.expires_at") {
        // Seconds, as documented: now + --valid-hours (72 by default).
        EXPECT_TRUE(seconds) << where << " = " << v;
      } else {
        EXPECT_FALSE(seconds || millis) << where << " = " << v << " looks like a timestamp";
      }
    }
  }
}

}  // namespace
}  // namespace haven
