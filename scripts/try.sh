#!/usr/bin/env bash
# Tries a running tusgate end to end, as granite-assets would use it: signs an upload token,
# uploads a file with the tus protocol (curl), checks the file was published, signs a download
# URL and fetches the file back, comparing checksums. Works against `cargo run` and against
# `docker compose up` alike: it needs only curl and openssl, not the tusgate binary.
#
#   bash scripts/try.sh [BASE_URL]     (default http://127.0.0.1:8080)
#
# The secrets come from UPLOAD_SECRET / SECURE_LINK_SECRET in the environment, else from ./.env.
# It first waits for the server's GET /health (at most TRY_WAIT seconds, default 1800), so it can
# be pasted right after `cargo run --release &`, whose first build takes minutes.
set -euo pipefail
base=${1:-http://127.0.0.1:8080}
base=${base%/}
if [[ -z "${UPLOAD_SECRET:-}" || -z "${SECURE_LINK_SECRET:-}" ]] && [[ -f .env ]]; then
    # shellcheck disable=SC1091
    set -a && . ./.env && set +a
fi
: "${UPLOAD_SECRET:?set UPLOAD_SECRET (or run from a directory with a .env)}"
: "${SECURE_LINK_SECRET:?set SECURE_LINK_SECRET (or run from a directory with a .env)}"

wait_for_server() {
    local limit=${TRY_WAIT:-1800} started=$SECONDS said=0 next=30 status
    while :; do
        status=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$base/health" || true)
        [[ $status == 200 ]] && break
        if (( SECONDS - started >= limit )); then
            if [[ $status == 000 ]]; then
                echo "no server answers at $base after ${limit} s. Start it first (README: Try it with tokens), or pass its URL: bash scripts/try.sh http://HOST:PORT" >&2
            else
                echo "$base/health answered $status, not 200, for ${limit} s: is that tusgate?" >&2
            fi
            exit 1
        fi
        if (( said == 0 )); then
            echo "0. waiting for tusgate at $base (up to ${limit} s; a first cargo build takes minutes)"
            said=1
        elif (( SECONDS - started >= next )); then
            echo "   still waiting ($((SECONDS - started)) s)"
            next=$((next + 30))
        fi
        sleep 1
    done
    (( said == 0 )) || echo "   up after $((SECONDS - started)) s"
}
wait_for_server

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 3000000 /dev/urandom > "$work/sample.bin"
key="try/sample-$(date +%s).bin"
content_type=application/octet-stream
visibility=private
expires=$(( $(date +%s) + 3600 ))

b64() { printf '%s' "$1" | base64 -w0; }
# granite-assets' upload token: lowercase hex HMAC-SHA256 of expires:key:visibility:content_type.
token=$(printf '%s' "$expires:$key:$visibility:$content_type" | openssl dgst -sha256 -hmac "$UPLOAD_SECRET" -r | cut -d' ' -f1)
metadata="asset-key $(b64 "$key"), content-type $(b64 "$content_type"), visibility $(b64 "$visibility"), upload-expires $(b64 "$expires"), upload-token $(b64 "$token")"

echo "1. creating the upload and sending $(stat -c %s "$work/sample.bin") bytes (creation-with-upload)"
status=$(curl -sS -o "$work/post.out" -D "$work/post.headers" -w '%{http_code}' -X POST "$base/files/" \
    -H 'Tus-Resumable: 1.0.0' -H "Upload-Metadata: $metadata" \
    -H "Upload-Length: $(stat -c %s "$work/sample.bin")" \
    -H 'Content-Type: application/offset+octet-stream' --data-binary @"$work/sample.bin")
[[ $status == 201 ]] || { echo "   POST answered $status: $(cat "$work/post.out")"; exit 1; }
location=$(tr -d '\r' < "$work/post.headers" | awk 'tolower($1)=="location:"{print $2}')
echo "   201, upload at $location"

# nginx secure_link: base64url(MD5(expires + path + " " + secret)) without padding.
path="/assets/$visibility/$key"
md5=$(printf '%s' "$expires$path $SECURE_LINK_SECRET" | openssl dgst -md5 -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
url="$base$path?md5=$md5&expires=$expires"
echo "2. downloading it through the signed URL $url"
curl -sS -f -o "$work/download.bin" "$url"
if cmp -s "$work/sample.bin" "$work/download.bin"; then
    echo "   the downloaded bytes are identical ($(sha256sum < "$work/download.bin" | cut -c1-16)…)"
else
    echo "   the downloaded bytes differ"; exit 1
fi
status=$(curl -s -o /dev/null -w '%{http_code}' "$base$path")
echo "3. without the token the same path answers $status (expected 403)"
[[ $status == 403 ]]
