#!/usr/bin/env bash
# Differential test of tusgate's downloads against Debian's nginx with the granite-assets
# operator template (see README.md). Needs TUSGATE_BIN (the tusgate binary) and
# /usr/sbin/nginx (package nginx-light); a missing nginx is a failure, never a skip.
# NGINX_DIFF_SELFTEST=1 compares nginx with a second nginx instead (harness check).
# Extra arguments go to nginx_diff.py: -v (one line per case), --only REGEX, --list.
set -euo pipefail
if [[ -n "${TUSGATE_BIN:-}" ]]; then
    TUSGATE_BIN="$(realpath "$TUSGATE_BIN")"
    export TUSGATE_BIN
fi
cd "$(dirname "${BASH_SOURCE[0]}")"
export PYTHONDONTWRITEBYTECODE=1
# Everything is on 127.0.0.1 and every socket operation has its own timeout; this bounds
# the whole run. On SIGTERM the harness stops its servers (they also die with it).
exec timeout --kill-after=10 300 python3 nginx_diff.py "$@"
