#!/usr/bin/env bash
# Upload throughput over TLS, HTTP/1.1 against HTTP/2, for tusgate and tusd: one PATCH of a whole
# file per round with curl, medians over the rounds, optionally through a relay on 127.0.0.1 that
# delays every chunk by DELAY_MS each way (benches/delay_proxy.mjs; the kernel here has no
# netem) so HTTP/2 flow-control windows meet a round trip. See benches/README.md,
# "HTTP/2 flow control (TLS uploads)".
#
#   benches/tls_uploads.sh [SIZE_MIB=1024] [ROUNDS=3] [DELAY_MS=0]
# Env: TUSGATE_BIN (default target/release/tusgate), TUSD_BIN (default .tools/bin/tusd; empty
# skips tusd). Uploads go to a tmpfs (/dev/shm) with -fsync=never, so the disk is not measured.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-1024} rounds=${2:-3} delay=${3:-0}
tusgate=${TUSGATE_BIN:-$root/target/release/tusgate}
tusd=${TUSD_BIN-$root/.tools/bin/tusd}  # scripts/install-tusd.sh puts it there
work=$(mktemp -d /dev/shm/tusgate-tls-bench.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
file=$work/payload
head -c $((size_mib << 20)) /dev/urandom >"$file"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# start NAME CMD...: starts a server whose stdout names its https URL; sets $port.
start() {
    local name=$1; shift
    "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    for _ in $(seq 200); do grep -q 'You can now upload files to' "$work/$name.out" && break; sleep 0.05; done
    port=$(grep -o 'https://[^/]*' "$work/$name.out" | sed 's/.*://' || true)
    [[ -n $port ]] || { echo "$name did not start" >&2; cat "$work/$name.err" >&2; exit 1; }
    if ((delay > 0)); then
        node "$root/benches/delay_proxy.mjs" 0 "$port" "$delay" >"$work/$name.proxy" &
        pids+=($!)
        for _ in $(seq 200); do grep -q 'ready' "$work/$name.proxy" && break; sleep 0.05; done
        port=$(sed -n 's/proxy ready on //p' "$work/$name.proxy")
    fi
}

run() {
    local name=$1 uploads=$2
    for round in $(seq "$rounds"); do
        for proto in --http1.1 --http2; do
            local location
            location=$(curl -sS $proto --cacert "$work/cert.pem" -D - -o /dev/null -X POST \
                -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $((size_mib << 20))" \
                "https://127.0.0.1:$port/files/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
            curl -sS $proto --cacert "$work/cert.pem" -o /dev/null -w "$name $proto %{http_code} %{time_total}\n" \
                -X PATCH -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
                -H 'Content-Type: application/offset+octet-stream' -T "$file" "$location" >>"$work/results"
            rm -rf "${uploads:?}"/*
        done
    done
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
start tusgate "$tusgate" -host 127.0.0.1 -port 0 -upload-dir "$work/tusgate" -allow-uploads-without-token \
    -fsync=never -verbose=false -tls-certificate "$work/cert.pem" -tls-key "$work/key.pem"
run tusgate "$work/tusgate"
if [[ -n $tusd ]]; then
    start tusd "$tusd" -host 127.0.0.1 -port 0 -upload-dir "$work/tusd" -verbose=false \
        -tls-certificate "$work/cert.pem" -tls-key "$work/key.pem"
    run tusd "$work/tusd"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/results" "$size_mib" "$delay" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, proto, status, seconds = line.split()
    assert status == "204", line
    runs[(name, proto)].append(int(sys.argv[2]) / float(seconds))
print(f"{sys.argv[2]} MiB per PATCH, one-way delay {sys.argv[3]} ms")
for (name, proto), rates in runs.items():
    print(f"{name:8} {proto:10} median {statistics.median(rates):7.1f} MiB/s  ({', '.join(f'{r:.0f}' for r in sorted(rates))})")
PY
