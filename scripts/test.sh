#!/usr/bin/env bash
# The README's test command: install what is missing, build, run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

scripts/install-deps.sh

# ccache hits across build directories and clones.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1

cmake --preset default >/dev/null
cmake --build --preset default
ctest --preset default -j2
