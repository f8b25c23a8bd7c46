#include "server_store.h"

#include <string_view>
#include <vector>

namespace haven::server {
namespace {

// Schema history. Never edit an entry that has shipped; append a new one.
const std::vector<std::string_view>& Migrations() {
  static const std::vector<std::string_view> migrations = {
      // 1: deployment facts. Time is kept to the day: nothing finer is needed.
      "CREATE TABLE deployment ("
      "  id INTEGER PRIMARY KEY CHECK (id = 1),"
      "  created_day INTEGER NOT NULL"
      ");"
      "INSERT INTO deployment (id, created_day) VALUES (1, CAST(strftime('%s','now') AS INTEGER) / 86400);",
  };
  return migrations;
}

}  // namespace

Result<std::unique_ptr<sqlcipher::Database>> OpenServerStore(const std::string& path,
                                                             ByteView raw_key) {
  HAVEN_ASSIGN_OR_RETURN(std::unique_ptr<sqlcipher::Database> db,
                         sqlcipher::Database::Open(path, raw_key));
  HAVEN_RETURN_IF_ERROR(db->Migrate(Migrations()));
  return db;
}

}  // namespace haven::server
