#!/usr/bin/env bash
# Run the tuspy end-to-end suite: set up the venv, then pytest. Exit code is pytest's.
# Needs TUS_SERVER_BIN (server binary); TUS_SERVER_ARGS is optional. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./setup.sh
exec .venv/bin/python -m pytest -q "$@"
