#!/usr/bin/env bash
# An upload over cleartext HTTP/2 (prior knowledge) with curl: creation, PATCH, HEAD, GET.
set -euo pipefail
bin=$1
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$bin" -host 127.0.0.1 -port 0 -upload-dir "$dir/uploads" -allow-uploads-without-token >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do grep -q 'You can now upload files to' "$dir/out" && break; sleep 0.05; done
url=$(grep -o 'http://[^ ]*' "$dir/out")
h2=(curl -sS --http2-prior-knowledge -H 'Tus-Resumable: 1.0.0')
location=$("${h2[@]}" -D - -o /dev/null -X POST -H 'Upload-Length: 5' "$url" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
[[ -n "$location" ]] || { echo "no Location over h2c"; exit 1; }
"${h2[@]}" -X PATCH -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' --data-binary hello "$location" -o /dev/null -w '%{http_version} %{http_code}\n' | grep -qx '2 204'
"${h2[@]}" -I "$location" | tr -d '\r' | grep -qi '^upload-offset: 5$'
[[ $("${h2[@]}" "$location") == hello ]]
echo "h2c upload ok"
