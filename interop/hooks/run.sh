#!/usr/bin/env bash
# The hooks interop suite: set up the venv, then pytest. Exit code is pytest's.
# Needs TUSGATE_BIN (tusgate), tusd v2.10.1 (TUSD_BIN, default .tools/bin/tusd, built by
# scripts/install-tusd.sh) and moto (interop/s3/.venv, by interop/s3/setup.sh); this script runs
# both installers. Extra args go to pytest; the hook differential's counts are printed in the
# terminal summary.
set -euo pipefail
for var in TUSGATE_BIN TUSD_BIN; do
    if [[ -n "${!var:-}" && "${!var}" != /* && "${!var}" == */* ]]; then
        export "$var=$PWD/${!var}"
    fi
done
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$here/../../scripts/install-tusd.sh"
bash "$here/../s3/setup.sh"   # moto, for the S3 differential
cd "$here"
./setup.sh
exec .venv/bin/python -m pytest -q "$@"
