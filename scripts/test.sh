#!/usr/bin/env bash
# The README's test command: install what is missing, build, run the whole suite:
#   1. every unit and integration test (g++, preset "default");
#   2. a short libFuzzer smoke run of each fuzz target (clang, preset "fuzz");
#   3. with HAVEN_SANITIZERS=1 (set by .ci/run), the whole suite again under
#      ASan+UBSan (preset "asan").
source "$(dirname "$0")/lib.sh"

cmake --build --preset default
ctest --preset default -j2

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz
ctest --preset fuzz -j2

if [[ "${HAVEN_SANITIZERS:-0}" == "1" ]]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan
  ctest --preset asan -j2
fi
