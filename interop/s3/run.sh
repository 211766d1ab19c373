#!/usr/bin/env bash
# Run the S3 interop suite: set up the venv, then pytest. Exit code is pytest's.
# Needs TUSGATE_BIN (a tusgate binary with the S3 backend) and tus-js-client in
# clients/js/node_modules (`npm ci` there). Extra args go to pytest.
set -euo pipefail
# A binary path given relative to the caller's directory stays valid after the cd below.
if [[ -n "${TUSGATE_BIN:-}" && "$TUSGATE_BIN" != /* && "$TUSGATE_BIN" == */* ]]; then
    export TUSGATE_BIN="$PWD/$TUSGATE_BIN"
fi
cd "$(dirname "${BASH_SOURCE[0]}")"
./setup.sh
exec .venv/bin/python -m pytest -q "$@"
