#!/usr/bin/env bash
# Runs a command with a moto S3 server (PyPI, in interop/s3/.venv) on 127.0.0.1 and a bucket in
# it, exported as the STORAGE_* variables tusgate reads; stops moto afterwards. Also exports
# MOTO_PID (to freeze it in fault tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/interop/s3/.venv"
[[ -x "$venv/bin/moto_server" ]] || { echo "with-moto: moto is not installed (run scripts/deps.sh)" >&2; exit 1; }
log=$(mktemp)
"$venv/bin/moto_server" -H 127.0.0.1 -p 0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT
port=
for _ in $(seq 100); do
    port=$(grep -o '127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2) && [[ -n "$port" ]] && break
    sleep 0.1
done
[[ -n "$port" ]] || { echo "with-moto: moto did not start" >&2; cat "$log" >&2; exit 1; }
export STORAGE_ENDPOINT_URL="http://127.0.0.1:$port" STORAGE_BUCKET=tusgate-test \
       STORAGE_ACCESS_KEY=test STORAGE_SECRET_KEY=testtesttest STORAGE_REGION=us-east-1 \
       MOTO_PID=$pid
curl -fsS -X PUT "$STORAGE_ENDPOINT_URL/$STORAGE_BUCKET" >/dev/null
"$@"
