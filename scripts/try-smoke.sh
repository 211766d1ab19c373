#!/usr/bin/env bash
# CI check of the README's quick start: a server started as the README says (dev secrets in the
# environment), then scripts/try.sh against it; then try.sh started before the server (pasted
# right after the start command), which must wait for it; then try.sh with no server at all,
# which must give up within its bound and say why; then the README's curl example, as written
# (only the port differs), against a tokenless server.
set -euo pipefail
bin=$1
here=$(dirname "$0")
dir=$(mktemp -d)
export UPLOAD_SECRET=dev-upload-secret SECURE_LINK_SECRET=dev-link-secret
pid=
stop() { [[ -z "$pid" ]] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }; pid=; }
trap 'stop; rm -rf "$dir"' EXIT
started_url=
start() { # start PORT LOG: the server on 127.0.0.1:PORT; sets started_url once it is up
    "$bin" -host 127.0.0.1 -port "$1" -upload-dir "$dir/data" >"$dir/$2" 2>"$dir/$2.err" &
    pid=$!
    for _ in $(seq 200); do grep -q 'You can now upload files to' "$dir/$2" && break; sleep 0.05; done
    started_url=$(grep -o 'http://[0-9.:]*' "$dir/$2") || {
        echo "try-smoke: the server did not start" >&2; cat "$dir/$2.err" >&2; exit 1; }
}

echo "--- 1. the server first, then try.sh"
start 0 out1
url=$started_url
bash "$here/try.sh" "$url"
stop

echo "--- 2. try.sh first; the server starts 3 s later on the same port"
port=${url##*:}
bash "$here/try.sh" "$url" > "$dir/try2" 2>&1 &
try_pid=$!
sleep 3
kill -0 "$try_pid" 2>/dev/null || { echo "try-smoke: try.sh did not wait for the server" >&2; cat "$dir/try2" >&2; exit 1; }
start "$port" out2
status=0
wait "$try_pid" || status=$?
cat "$dir/try2"
((status == 0)) || { echo "try-smoke: try.sh failed ($status) when started before the server" >&2; exit 1; }
grep -q '^0. waiting for tusgate' "$dir/try2" || { echo "try-smoke: try.sh did not say it was waiting" >&2; exit 1; }
stop

echo "--- 3. no server: try.sh gives up after TRY_WAIT=2 s and says why"
started=$SECONDS
status=0
TRY_WAIT=2 bash "$here/try.sh" "$url" > "$dir/try3" 2>&1 || status=$?
cat "$dir/try3"
((status != 0)) || { echo "try-smoke: try.sh succeeded without a server" >&2; exit 1; }
((SECONDS - started <= 15)) || { echo "try-smoke: try.sh took $((SECONDS - started)) s to give up" >&2; exit 1; }
grep -q "no server answers at $url after 2 s" "$dir/try3" || { echo "try-smoke: unclear message" >&2; exit 1; }
stop

echo "--- 4. the README's curl example against a tokenless server"
root=$(cd "$here/.." && pwd)
awk '/<!-- curl-example/ {found=1; next} found && /^```sh/ {on=1; next} on && /^```/ {exit} on' \
    "$root/README.md" > "$dir/example.sh"
[[ -s "$dir/example.sh" ]] || { echo "try-smoke: no curl example in README.md" >&2; exit 1; }
unset UPLOAD_SECRET SECURE_LINK_SECRET
"$bin" -host 127.0.0.1 -port 0 -upload-dir "$dir/data4" -allow-uploads-without-token >"$dir/out4" 2>"$dir/err4" &
pid=$!
for _ in $(seq 200); do grep -q 'You can now upload files to' "$dir/out4" && break; sleep 0.05; done
url=$(grep -m1 -o 'http://[0-9.:]*' "$dir/out4")
sed -i "s|http://127.0.0.1:8080|$url|g" "$dir/example.sh"
(cd "$dir" && bash -euo pipefail example.sh) > "$dir/example.out"
cat "$dir/example.out"
tr -d '\r' < "$dir/example.out" > "$dir/example.txt"
[[ $(grep -c '^204$' "$dir/example.txt") == 2 ]] || { echo "try-smoke: the PATCHes did not both answer 204" >&2; exit 1; }
grep -qi '^upload-offset: 5$' "$dir/example.txt" || { echo "try-smoke: HEAD did not say offset 5" >&2; exit 1; }
[[ $(tail -1 "$dir/example.txt") == "hello world" ]] || { echo "try-smoke: the download is not 'hello world'" >&2; exit 1; }
echo "try-smoke: all four passed"
