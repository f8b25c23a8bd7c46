#!/usr/bin/env bash
# The server side has no code path that could open a sealed blob or decrypt
# an end-to-end message: none of the libsodium functions that do so is linked
# into havend or haven-admin, and no end-to-end code is either.
set -euo pipefail
status=0
for bin in "$@"; do
  for symbol in crypto_box_seal_open crypto_box_open crypto_box_open_easy \
                crypto_aead_xchacha20poly1305_ietf_decrypt crypto_secretbox_open_easy; do
    if nm -D --undefined-only "$bin" | grep -w "$symbol" >/dev/null; then
      echo "FAIL: $(basename "$bin") links $symbol"
      status=1
    fi
  done
  if nm -C "$bin" | grep "haven::e2e::" >/dev/null; then
    echo "FAIL: $(basename "$bin") contains end-to-end code (haven::e2e)"
    status=1
  fi
done
[[ $status -eq 0 ]] && echo "server binaries hold no code that opens sealed blobs or e2e messages"
exit $status
