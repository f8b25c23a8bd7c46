// Fuzz target: opening the SDK's local store (client-sdk/src/client/
// local_store.*) from a file the fuzzer wrote, then reading everything a
// client reads at start (keys, conversation states, history).
//
// The low bit of the first byte picks the mode; the rest is the body.
//   0  the body is the encrypted file itself (what a thief or a damaged disk
//      could leave): it is written as haven-store.db and opened with the
//      fixed key. SQLCipher's page HMAC stands in front of all the rest.
//   1  the body is a plaintext SQLite database image; the harness encrypts
//      it with the fixed key (sqlcipher_export, user_version included), so
//      the fuzzer reaches the schema checks, the migrations and the reads
//      behind the HMAC: a store damaged by a bug, or written by another
//      version. The seeds hold plaintext images of real stores.
// Checked: Open, every read and the first writes either succeed or fail with
// a Status, and never crash, hang or leak.
#include <sqlite3.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "client/local_store.h"
#include "client/wipe.h"
#include "fuzz_check.h"
#include "fuzz_reader.h"
#include "local_store_fuzz_setup.h"

namespace {

using haven::ByteView;
namespace fs = std::filesystem;
namespace fz = haven::fuzz;

const fs::path& WorkDir() {
  static const fs::path dir = fz::FuzzScratchDir("haven-store-fuzz");
  static const bool cleanup_registered = [] {
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(dir, ec);
    });
    return true;
  }();
  (void)cleanup_registered;
  return dir;
}

void WriteFile(const fs::path& path, ByteView bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  HAVEN_FUZZ_CHECK(out.good());
}

void Clear(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) fs::remove(entry.path(), ec);
}

// Encrypts the plaintext image at `plain` into `encrypted`; false if SQLite
// cannot read the image (nothing for the store to open then).
bool Encrypt(const fs::path& plain, const fs::path& encrypted) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(plain.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return false;
  }
  const std::string sql = "ATTACH DATABASE '" + encrypted.string() + "' AS encrypted KEY \"x'" +
                          fz::LocalStoreFuzzKeyHex() +
                          "'\"; PRAGMA encrypted.cipher_page_size = 4096;"
                          " SELECT sqlcipher_export('encrypted');";
  bool ok = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
  if (ok) {
    sqlite3_stmt* stmt = nullptr;
    std::int64_t version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA main.user_version", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      version = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    const std::string set = "PRAGMA encrypted.user_version = " + std::to_string(version);
    ok = sqlite3_exec(db, set.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  sqlite3_close(db);
  return ok;
}

void OpenAndRead(const fs::path& dir) {
  auto store = haven::client::LocalStore::Open(dir, fz::LocalStoreFuzzKey());
  if (!store.ok()) return;
  haven::client::LocalStore& s = **store;
  (void)s.Get("identity");
  (void)s.LastMessageId();
  auto conversations = s.LoadConversations();
  if (conversations.ok()) {
    for (const auto& [id, state] : *conversations) (void)s.LoadHistory(id);
  }
  (void)s.LoadHistory(1);
  // And the writes a client makes next (whose results a hostile schema may
  // legitimately turn into errors).
  const std::uint8_t value[3] = {1, 2, 3};
  (void)s.Put("fuzz-probe", value);
  (void)s.Get("fuzz-probe");
  (void)s.AppendMessage(1, 1, true, value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const fs::path& dir = WorkDir();
  Clear(dir);
  const ByteView body(data + 1, size - 1);
  const fs::path store = dir / haven::client::kStoreFileName;
  if ((data[0] & 1u) == 0) {
    WriteFile(store, body);
  } else {
    const fs::path plain = dir / "plain.db";
    WriteFile(plain, body);
    const bool encrypted = Encrypt(plain, store);
    fs::remove(plain);
    if (!encrypted) return 0;
  }
  OpenAndRead(dir);
  return 0;
}
