# Shared by scripts/run.sh and scripts/test.sh: install dependencies and
# configure the default build, from the repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
scripts/install-deps.sh
# ccache hits across build directories and clones.
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1
cmake --preset default >/dev/null
