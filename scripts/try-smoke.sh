#!/usr/bin/env bash
# CI check of the README's quick start: a server started as the README says (dev secrets in the
# environment), then scripts/try.sh against it.
set -euo pipefail
bin=$1
dir=$(mktemp -d)
export UPLOAD_SECRET=dev-upload-secret SECURE_LINK_SECRET=dev-link-secret
"$bin" -host 127.0.0.1 -port 0 -upload-dir "$dir/data" >"$dir/out" 2>"$dir/err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do grep -q 'You can now upload files to' "$dir/out" && break; sleep 0.05; done
url=$(grep -o 'http://[0-9.:]*' "$dir/out")
bash "$(dirname "$0")/try.sh" "$url"
