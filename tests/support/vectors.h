// Locates ../shared/vectors. HAVEN_VECTORS_DIR overrides the default; when the
// directory is missing the calling test is skipped, unless
// HAVEN_REQUIRE_VECTORS=1 (set by .ci/run), in which case it fails.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "support/files.h"

namespace haven::testing {

inline std::filesystem::path VectorsDir() {
  if (const char* env = std::getenv("HAVEN_VECTORS_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return HAVEN_DEFAULT_VECTORS_DIR;
}

inline bool VectorsRequired() {
  const char* env = std::getenv("HAVEN_REQUIRE_VECTORS");
  return env != nullptr && std::string(env) == "1";
}

}  // namespace haven::testing

// Use at the top of a test body: resolves `relative` under the vectors
// directory into `var`, or skips/fails the test with a message saying why.
#define HAVEN_REQUIRE_VECTOR_FILE(var, relative)                                          \
  const std::filesystem::path var = ::haven::testing::VectorsDir() / (relative);          \
  if (!std::filesystem::exists(var)) {                                                    \
    if (::haven::testing::VectorsRequired()) {                                            \
      FAIL() << "test vectors required (HAVEN_REQUIRE_VECTORS=1) but " << var             \
             << " is missing; set HAVEN_VECTORS_DIR";                                     \
    }                                                                                     \
    GTEST_SKIP() << "test vectors not found at " << var                                   \
                 << "; set HAVEN_VECTORS_DIR to the shared/vectors directory to run this"; \
  }
