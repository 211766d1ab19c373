#!/usr/bin/env bash
# Throughput and peak memory of tusgate's S3 backend vs tusd's s3store, both against moto.
#
#   TUSGATE_BIN=target/release/tusgate bash interop/s3/compare.sh
#
# Two scenarios per server, each on a fresh moto and a fresh server process (so VmHWM, the peak
# RSS the kernel records for a process, belongs to that scenario alone):
#   single   one COMPARE_BIG_MIB (1024) MiB upload: POST, then one PATCH with `curl -T`
#   parallel COMPARE_PARALLEL (8) concurrent COMPARE_SMALL_MIB (128) MiB uploads, same way
# MB/s = bytes uploaded / wall time from the first POST to the last PATCH's answer (that
# answer comes after the server completed the multipart upload). Every upload is checked: HEAD
# offset = length, and the bucket holds an object of that size.
# Both servers run with their defaults (tusgate: 8 MiB parts, 2 in flight per PATCH; tusd:
# 50 MiB parts, buffered in temp files, 10 concurrent part uploads), tokenless.
# moto holds objects in its RAM (beyond ~5 MiB they spill to its TMPDIR), so its peak RSS is
# reported too. Everything runs on 127.0.0.1 under a temp dir that is removed at exit; every
# process started here is killed at exit; every curl has --max-time.
# TUSD_BIN defaults to .tools/bin/tusd.
set -euo pipefail

if [[ -z "${TUSGATE_BIN:-}" ]]; then
    echo "compare.sh: set TUSGATE_BIN to the tusgate binary" >&2
    exit 2
fi
[[ "$TUSGATE_BIN" == /* ]] || TUSGATE_BIN="$PWD/$TUSGATE_BIN"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TUSD_BIN="${TUSD_BIN:-$REPO/.tools/bin/tusd}"
BIG_MIB="${COMPARE_BIG_MIB:-1024}"
SMALL_MIB="${COMPARE_SMALL_MIB:-128}"
PARALLEL="${COMPARE_PARALLEL:-8}"
MAX_TIME="${COMPARE_MAX_TIME:-600}"   # seconds, per curl request
READY_S=15
for bin in "$TUSGATE_BIN" "$TUSD_BIN"; do
    [[ -x "$bin" ]] || { echo "compare.sh: $bin is not executable" >&2; exit 2; }
done

"$HERE/setup.sh"
VENV="$HERE/.venv"
WORK="$(mktemp -d /tmp/tusgate-s3-compare.XXXXXX)"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do  # only processes started here and not yet reaped
        kill -CONT "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "compare.sh: $*" >&2; exit 1; }

# wait_line FILE REGEX: prints the first match of REGEX in FILE, waiting at most READY_S.
wait_line() {
    local match
    for _ in $(seq $((READY_S * 10))); do
        match="$(grep -o -m1 -E "$2" "$1" 2>/dev/null || true)"
        [[ -n "$match" ]] && { echo "$match"; return 0; }
        sleep 0.1
    done
    die "no '$2' in $1 after ${READY_S}s: $(tail -5 "$1")"
}

peak_mib() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# stop PID: TERM, KILL after 5 s, reap, and forget it (so cleanup never signals a reused pid).
stop() {
    local pid kept=()
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do [[ "$pid" == "$1" ]] || kept+=("$pid"); done
    PIDS=("${kept[@]}")
}

# start_moto DIR: starts moto, creates bucket "bench"; sets MOTO_PID and MOTO_URL.
start_moto() {
    mkdir -p "$1/tmp"
    TMPDIR="$1/tmp" "$VENV/bin/moto_server" -H 127.0.0.1 -p 0 >"$1/moto.log" 2>&1 &
    MOTO_PID=$!
    PIDS+=("$MOTO_PID")
    MOTO_URL="$(wait_line "$1/moto.log" 'http://127\.0\.0\.1:[0-9]+')"
    curl -sS --max-time 30 -o /dev/null -f -X PUT "$MOTO_URL/bench" || die "cannot create the bucket"
}

# start_server NAME DIR: starts tusgate or tusd on the bucket; sets SERVER_PID and FILES_URL.
start_server() {
    mkdir -p "$2/uploads" "$2/tmp"
    case "$1" in
        tusgate)
            TMPDIR="$2/tmp" "$TUSGATE_BIN" -host 127.0.0.1 -port 0 -upload-dir "$2/uploads" \
                -allow-uploads-without-token -verbose=false --s3-bucket bench \
                --s3-endpoint "$MOTO_URL" --s3-access-key test --s3-secret-key testtesttest \
                >"$2/server.log" 2>&1 &
            ;;
        tusd)
            TMPDIR="$2/tmp" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=testtesttest \
                AWS_REGION=us-east-1 "$TUSD_BIN" -host 127.0.0.1 -port 0 \
                -upload-dir "$2/uploads" -verbose=false -s3-bucket bench \
                -s3-endpoint "$MOTO_URL" >"$2/server.log" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    FILES_URL="$(wait_line "$2/server.log" 'http://127\.0\.0\.1:[0-9]+/files/')"
}

# upload FILE OUT: POST + one PATCH of FILE; writes the upload URL to OUT on success.
upload() {
    local size location code
    size="$(stat -c %s "$1")"
    location="$(curl -sS --max-time 30 -X POST -H 'Tus-Resumable: 1.0.0' \
        -H "Upload-Length: $size" -D - -o /dev/null "$FILES_URL" \
        | tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')"
    [[ -n "$location" ]] || { echo "POST failed" >"$2.err"; return 1; }
    # -H 'Expect:': no 100-continue round trip, for either server.
    code="$(curl -sS --max-time "$MAX_TIME" -X PATCH -H 'Tus-Resumable: 1.0.0' \
        -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' -H 'Expect:' \
        -T "$1" -o /dev/null -w '%{http_code}' "$location")" || true
    [[ "$code" == 204 ]] || { echo "PATCH $location: HTTP $code" >"$2.err"; return 1; }
    echo "$location" >"$2"
}

# check_uploads SIZE URL_FILES...: HEAD offsets and the bucket's object sizes.
check_uploads() {
    local size="$1" url offset
    shift
    for file in "$@"; do
        url="$(cat "$file")"
        offset="$(curl -sS --max-time 30 -I -H 'Tus-Resumable: 1.0.0' "$url" \
            | tr -d '\r' | awk -F': ' 'tolower($1) == "upload-offset" { print $2 }')"
        [[ "$offset" == "$size" ]] || die "HEAD $url: offset '$offset', expected $size"
    done
    "$VENV/bin/python" - "$MOTO_URL" "$size" "$#" <<'EOF'
import sys, boto3
endpoint, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="testtesttest")
sizes = [o["Size"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench")
         for o in page.get("Contents", [])]
found = sizes.count(size)
if found != count:
    sys.exit(f"compare.sh: bucket holds {found} objects of {size} bytes, expected {count}")
EOF
}

now() { date +%s.%N; }

echo "compare.sh: writing test data to $WORK" >&2
head -c "$((BIG_MIB << 20))" /dev/urandom >"$WORK/big.bin"
head -c "$((SMALL_MIB << 20))" "$WORK/big.bin" >"$WORK/small.bin"

ROWS=()
for server in tusgate tusd; do
    for scenario in single parallel; do
        dir="$WORK/$server-$scenario"
        mkdir -p "$dir"
        start_moto "$dir"
        start_server "$server" "$dir"
        echo "compare.sh: $server $scenario ..." >&2
        start="$(now)"
        if [[ "$scenario" == single ]]; then
            upload "$WORK/big.bin" "$dir/url.0" || die "$server: $(cat "$dir/url.0.err")"
            bytes=$((BIG_MIB << 20)); size=$bytes; urls=("$dir/url.0")
        else
            workers=()
            for i in $(seq "$PARALLEL"); do
                upload "$WORK/small.bin" "$dir/url.$i" &
                workers+=($!)
            done
            for i in "${!workers[@]}"; do
                wait "${workers[$i]}" || die "$server: $(cat "$dir/url.$((i + 1)).err")"
            done
            size=$((SMALL_MIB << 20)); bytes=$((size * PARALLEL))
            urls=(); for i in $(seq "$PARALLEL"); do urls+=("$dir/url.$i"); done
        fi
        elapsed="$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')"
        check_uploads "$size" "${urls[@]}"
        server_peak="$(peak_mib "$SERVER_PID")"
        moto_peak="$(peak_mib "$MOTO_PID")"
        stop "$SERVER_PID"
        stop "$MOTO_PID"
        rm -rf "$dir/tmp"
        if [[ "$scenario" == single ]]; then
            label="1 x ${BIG_MIB} MiB"
        else
            label="${PARALLEL} x ${SMALL_MIB} MiB"
        fi
        rate="$(awk -v n="$bytes" -v t="$elapsed" 'BEGIN { printf "%.1f", n / 1e6 / t }')"
        ROWS+=("$(printf '%-8s %-14s %8s %8s %14s %12s' "$server" "$label" "$elapsed" "$rate" \
            "$server_peak" "$moto_peak")")
    done
done

printf '%-8s %-14s %8s %8s %14s %12s\n' server upload seconds MB/s "peak RSS MiB" "moto MiB"
printf '%s\n' "${ROWS[@]}"
