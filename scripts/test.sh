#!/usr/bin/env bash
# The README's test command: install what is missing, build, run the whole suite.
source "$(dirname "$0")/lib.sh"
cmake --build --preset default
ctest --preset default -j2
