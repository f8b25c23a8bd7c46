// havend's SQLCipher database: opened with the deployment's raw key and
// migrated to the current schema. Later layers (conversations, queue) add
// migrations here; the list only ever grows.
#pragma once

#include <memory>
#include <string>

#include "haven/sqlcipher/database.h"

namespace haven::server {

Result<std::unique_ptr<sqlcipher::Database>> OpenServerStore(const std::string& path,
                                                             ByteView raw_key);

}  // namespace haven::server
