#!/usr/bin/env bash
# Installs Haven's build and test dependencies from Debian 12 packages.
# Idempotent: when everything is present it only runs dpkg-query (well under a second).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config lld
  libsodium-dev libboost1.81-dev libsqlcipher-dev sqlcipher sqlite3
  libprotobuf-dev protobuf-compiler
  libtomlplusplus-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
  clang libclang-rt-14-dev
  tmux python3
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -o DPkg::Lock::Timeout=300 -qq
# libboost1.81-dev conflicts with libboost1.74-dev; apt replaces it.
$SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
