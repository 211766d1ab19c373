#!/usr/bin/env bash
# Run the granite-assets interop suite: set up the venv, then pytest. Exit code is pytest's.
# Needs TUSGATE_BIN (tusgate binary) and tus-js-client in clients/js/node_modules (`npm ci`).
# GRANITE_DOWNLOAD_VIA_NGINX=1 serves downloads with nginx instead of tusgate. Extra args go to
# pytest.
set -euo pipefail
# Binary paths given relative to the caller's directory stay valid after the cd below.
for var in TUSGATE_BIN NGINX_BIN; do
    if [[ -n "${!var:-}" && "${!var}" != /* && "${!var}" == */* ]]; then
        export "$var=$PWD/${!var}"
    fi
done
cd "$(dirname "${BASH_SOURCE[0]}")"
./setup.sh
exec .venv/bin/python -m pytest -q "$@"
