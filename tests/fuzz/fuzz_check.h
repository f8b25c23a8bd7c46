// Invariant checks for the fuzz targets. A violated invariant prints what
// broke and aborts, which libFuzzer reports as a crash (and saves the input);
// the replay driver reports it as a failed test.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace haven::fuzz {

[[noreturn]] inline void CheckFailed(const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: fuzz invariant violated: %s\n", file, line, what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace haven::fuzz

#define HAVEN_FUZZ_CHECK(cond)                                           \
  do {                                                                   \
    if (!(cond)) ::haven::fuzz::CheckFailed(#cond, __FILE__, __LINE__);  \
  } while (0)
