#!/usr/bin/env bash
# The README's run command: install what is missing, build havend, and start it
# on 127.0.0.1 with an embedded default deployment in ./.haven (created on first
# start: server key pair, database key, SQLCipher database; 0700/0600).
# Extra arguments are passed to havend (try --help).
source "$(dirname "$0")/lib.sh"
cmake --build --preset default --target havend haven-ping
exec build/default/server/havend --config config/havend.toml --data-dir "$ROOT/.haven" --init "$@"
