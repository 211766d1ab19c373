#!/usr/bin/env bash
# tusgate terminating TLS (README "TLS"): curl over HTTP/1.1 and HTTP/2, tusd's -tls-mode
# settings, key formats, slow handshakes, tus-js-client in headless Chromium over https, SIGHUP
# reload during uploads, startup errors. Certificates are made by the tests (openssl CLI);
# everything listens on 127.0.0.1 and is stopped by the tests. Needs TUSGATE_BIN.
set -euo pipefail
if [[ -n "${TUSGATE_BIN:-}" && "$TUSGATE_BIN" != /* && "$TUSGATE_BIN" == */* ]]; then
    export TUSGATE_BIN="$PWD/$TUSGATE_BIN"
fi
: "${TUSGATE_BIN:?set TUSGATE_BIN to the tusgate binary}"
cd "$(dirname "${BASH_SOURCE[0]}")"
./setup.sh
# Each file is bounded: the node test runner stops a file after 3 minutes.
exec node --test --test-concurrency=1 --test-timeout=180000 test/*.test.mjs
