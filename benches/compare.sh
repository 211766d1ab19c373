#!/usr/bin/env bash
# tusgate against its peers and against the machine's physical limit: builds tusgate, installs
# and starts each peer on 127.0.0.1, runs every workload against each in interleaved rounds
# (median of ROUNDS), and prints one table with ratios to tusd and to the limit. Everything it
# starts is stopped on exit, every loop is bounded, and all state lives under $SCRATCH.
#
#   benches/compare.sh                          # everything, 5 rounds (< 20 min on 2 cores)
#   ROUNDS=1 BIG=64MiB PAR_SIZE=16MiB SMALL_N=200 SLOW_N=20 DL_SIZE=64MiB benches/compare.sh   # smoke run
#   PEERS="limit tusgate tusd" WORKLOADS="small" benches/compare.sh
#   WITH_RUSTUS=1 benches/compare.sh            # also rustus (cargo install: ~10-20 min more)
#   UPDATE_README=1 benches/compare.sh          # also write the table and chart into benches/README.md
#   TUSD_BIN=/path/to/tusd RUSTUS_BIN=/path/to/rustus benches/compare.sh   # use these builds
#
# Peers (PEERS, in this order within a round; the starting peer rotates every round):
#   limit          examples/tus_sink.rs: blocking read + write into files, the least a tus
#                  server can do (physical-limit reference; no fsync)
#   tusgate        tusgate with its default durability (-fsync=completion)
#   tusgate_never  tusgate -fsync=never (tusd's durability)
#   tusd           tusd v2.10.1 (scripts/install-tusd.sh)
#   tusnode        @tus/server 2.4.5 + @tus/file-store 2.1.1 (npm)
#   rustus         rustus 0.5.10 (only with WITH_RUSTUS=1, or when RUSTUS_BIN points at one)
#   limit_fsync    the sink with fdatasync at completion (not in the default list)
# Downloads (DOWNLOADS) run against nginx (Debian, sendfile on) and tusgate serving the same
# files: dl_1g (one stream), dl_4k (a secure_link-signed 4 KiB file, 64 connections).
#
# Results: $SCRATCH/results.jsonl (one line per run: peer, workload, round and the
# `tusgate bench --json` object), $SCRATCH/results.md (the table), $SCRATCH/chart.svg (the
# upload ratios drawn by `tusgate bench chart` from results.jsonl), logs in $SCRATCH/logs.
set -euo pipefail

# As root, run at a higher priority so other jobs on a shared machine yield (PERF_NICE=0: off).
if [[ -z "${COMPARE_RENICED:-}" && $(id -u) == 0 && "${PERF_NICE:--10}" != 0 ]]; then
    exec env COMPARE_RENICED=1 nice -n "${PERF_NICE:--10}" "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCRATCH=${SCRATCH:-/tmp/tusgate-compare}
ROUNDS=${ROUNDS:-5}
PEERS=${PEERS-"limit tusgate tusgate_never tusd tusnode"}   # empty: none
[[ -n "${WITH_RUSTUS:-}" || -n "${RUSTUS_BIN:-}" ]] && [[ " $PEERS " != *" rustus "* ]] && PEERS="$PEERS rustus"
WORKLOADS=${WORKLOADS-"single chunked parallel small slow"}
DOWNLOADS=${DOWNLOADS-"dl_1g dl_4k"}           # empty: no downloads
BIG=${BIG:-1GiB}                 # single and chunked
CHUNK=${CHUNK:-8MiB}
PAR_N=${PAR_N:-8}
PAR_SIZE=${PAR_SIZE:-128MiB}
SMALL_N=${SMALL_N:-2000}
SMALL_C=${SMALL_C:-16}
SMALL_SIZE=${SMALL_SIZE:-10KiB}
SMALL_WARMUP=${SMALL_WARMUP:-200}
SLOW_N=${SLOW_N:-100}
SLOW_SIZE=${SLOW_SIZE:-512KiB}     # 2 s at SLOW_RATE
SLOW_RATE=${SLOW_RATE:-256KiB}
DL_SIZE=${DL_SIZE:-1GiB}
DL_COUNT=${DL_COUNT:-3}
DL4K_C=${DL4K_C:-64}
DL4K_SECONDS=${DL4K_SECONDS:-5}
BENCH_THREADS=${BENCH_THREADS:-1}     # load generator threads for uploads
DL4K_THREADS=${DL4K_THREADS:-2}       # and for the 4 KiB downloads (as wrk -t2)
BUDGET_S=${BUDGET_S:-1000}            # no peer run starts after this many seconds (the final purge needs ~1-2 min)
QUIET_MAX_WAIT_S=${QUIET_MAX_WAIT_S:-2}
QUIET_BUSY_CORES=${QUIET_BUSY_CORES:-0.3}
BASE_PORT=${BASE_PORT:-27480}     # 9 consecutive ports; moved up if any is taken
TUSD_VERSION=v2.10.1
TUS_SERVER_VER=2.4.5
TUS_FILESTORE_VER=2.1.1
RUSTUS_VER=0.5.10

START=$SECONDS
LOGS=$SCRATCH/logs
TRASH=$SCRATCH/trash
RESULTS=$SCRATCH/results.jsonl
mkdir -p "$SCRATCH" "$LOGS" "$TRASH"
log() { echo "[$(date +%H:%M:%S) +$((SECONDS - START))s] $*" >&2; }

# ---------------------------------------------------------------- cleanup
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]:-}"; do [[ -n "$p" ]] && kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers
port_of() {
    case $1 in
        limit) echo $((BASE_PORT + 0)) ;; tusgate) echo $((BASE_PORT + 1)) ;;
        tusgate_never) echo $((BASE_PORT + 2)) ;; tusd) echo $((BASE_PORT + 3)) ;;
        tusnode) echo $((BASE_PORT + 4)) ;; rustus) echo $((BASE_PORT + 5)) ;;
        limit_fsync) echo $((BASE_PORT + 6)) ;; tusgate_dl) echo $((BASE_PORT + 7)) ;;
        nginx) echo $((BASE_PORT + 8)) ;; *) return 1 ;;
    esac
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
bytes_of() { # 10KiB, 8MiB, 1GiB or plain bytes
    case $1 in
        *GiB) echo $((${1%GiB} << 30)) ;; *MiB) echo $((${1%MiB} << 20)) ;;
        *KiB) echo $((${1%KiB} << 10)) ;; *) echo "$1" ;;
    esac
}
wait_port() { # PORT PID: up to 15 s
    local i
    for i in $(seq 1 150); do
        listening "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
# Whole-machine "busy total" ticks.
ticks() { awk '/^cpu /{b=$2+$3+$4+$7+$8; print b, b+$5+$6+$9}' /proc/stat; }
# sync, then wait (bounded) for a quiet machine so runs do not overlap writeback or others' work.
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
# Deleting thousands of files makes file creation several times slower for minutes on this
# machine's ext4 (no journal): stores are moved aside and only deleted at the very end.
stash() { # DIR
    [[ -d "$1" ]] || return 0
    find "$1" -type f -size +1M -delete 2>/dev/null || true   # a few big files: fine to delete
    mv "$1" "$TRASH/$(basename "$1")-$(date +%s%N)"
}

# Nine ports from BASE_PORT; if one is taken (another user's server), try further up.
ports_free() { local i; for i in $(seq 0 8); do listening $((BASE_PORT + i)) && return 1; done; return 0; }
for _ in $(seq 1 20); do ports_free && break; BASE_PORT=$((BASE_PORT + 10)); done
ports_free || { log "no 9 free ports found from BASE_PORT; set BASE_PORT"; exit 1; }

# ---------------------------------------------------------------- build and install
log "building tusgate (release) and the limit sink"
(cd "$ROOT" && cargo build --release --locked --quiet && cargo build --release --locked --quiet --example tus_sink)
TUSGATE=$ROOT/target/release/tusgate
SINK=$ROOT/target/release/examples/tus_sink

want() { [[ " $PEERS " == *" $1 "* ]]; }
drop_peer() { log "WARNING: $1 is left out: $2"; PEERS=$(echo " $PEERS " | sed "s/ $1 / /; s/^ *//; s/ *$//"); }

TUSD=${TUSD_BIN:-$ROOT/.tools/bin/tusd}
if want tusd && [[ -z "${TUSD_BIN:-}" ]]; then
    log "installing tusd $TUSD_VERSION (scripts/install-tusd.sh)"
    bash "$ROOT/scripts/install-tusd.sh" >"$LOGS/install-tusd.log" 2>&1 || drop_peer tusd "install failed, see $LOGS/install-tusd.log"
fi
NODE_DIR=$SCRATCH/node
if want tusnode; then
    if [[ ! -f "$NODE_DIR/node_modules/@tus/server/package.json" ]]; then
        log "npm: @tus/server@$TUS_SERVER_VER @tus/file-store@$TUS_FILESTORE_VER"
        mkdir -p "$NODE_DIR"
        echo '{"name":"tusgate-compare","private":true,"type":"module"}' > "$NODE_DIR/package.json"
        (cd "$NODE_DIR" && timeout 300 npm install --no-audit --no-fund --loglevel=error \
            "@tus/server@$TUS_SERVER_VER" "@tus/file-store@$TUS_FILESTORE_VER") >"$LOGS/npm.log" 2>&1 \
            || drop_peer tusnode "npm install failed, see $LOGS/npm.log"
    fi
    cat > "$NODE_DIR/tus_node_server.mjs" <<'EOF'
// @tus/server with its file store, as in the package README.
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';
const server = new Server({ path: '/files', datastore: new FileStore({ directory: process.env.DATA_DIR }) });
server.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
EOF
fi
RUSTUS=${RUSTUS_BIN:-$SCRATCH/rustus/bin/rustus}
if want rustus && [[ ! -x "$RUSTUS" ]]; then
    log "cargo install rustus@$RUSTUS_VER (slow: ~10-20 min on 2 cores; log: $LOGS/rustus-build.log)"
    timeout 1800 cargo install rustus --version "$RUSTUS_VER" --locked --root "$SCRATCH/rustus" \
        >"$LOGS/rustus-build.log" 2>&1 || drop_peer rustus "build failed, see $LOGS/rustus-build.log"
    START=$SECONDS   # the time budget counts from here: the rustus build is not a measurement
fi
if [[ -n "$DOWNLOADS" ]] && ! command -v nginx >/dev/null; then
    if [[ $(id -u) == 0 ]]; then
        log "apt: nginx-light"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light; } \
            >"$LOGS/apt.log" 2>&1 || log "WARNING: nginx could not be installed; downloads are measured for tusgate only"
    else
        log "WARNING: nginx is not installed (apt-get install nginx-light); downloads are measured for tusgate only"
    fi
fi

# ---------------------------------------------------------------- download files
WWW=$SCRATCH/www
SECRET=compare-secure-link-secret-0123456789
if [[ -n "$DOWNLOADS" ]]; then
    mkdir -p "$WWW/public" "$WWW/private"
    want_bytes=$(bytes_of "$DL_SIZE")
    if [[ ! -f "$WWW/public/big.bin" || $(stat -c %s "$WWW/public/big.bin") != "$want_bytes" ]]; then
        log "creating the $DL_SIZE download file"
        head -c "$want_bytes" /dev/urandom > "$WWW/public/big.bin"
    fi
    [[ -f "$WWW/private/file4k" ]] || head -c 4096 /dev/urandom > "$WWW/private/file4k"
fi

# ---------------------------------------------------------------- servers
SPID=
start_peer() { # NAME STORE_DIR
    local name=$1 dir=$2 port
    port=$(port_of "$name")
    if listening "$port"; then log "port $port is taken (set BASE_PORT)"; return 1; fi
    mkdir -p "$dir"
    # Each branch execs, so $! is the server itself (its CPU and memory, nothing else).
    case $name in
        limit) exec "$SINK" --listen "127.0.0.1:$port" --dir "$dir" --max-seconds 1800 ;;
        limit_fsync) exec "$SINK" --listen "127.0.0.1:$port" --dir "$dir" --fsync completion --max-seconds 1800 ;;
        tusgate) exec "$TUSGATE" --host 127.0.0.1 --port "$port" --upload-dir "$dir" \
            --allow-uploads-without-token --verbose=false ;;
        tusgate_never) exec "$TUSGATE" --host 127.0.0.1 --port "$port" --upload-dir "$dir" \
            --allow-uploads-without-token --verbose=false --fsync never ;;
        tusd) exec "$TUSD" -host 127.0.0.1 -port "$port" -upload-dir "$dir" -verbose=false ;;
        tusnode) cd "$NODE_DIR" && PORT=$port DATA_DIR=$dir exec node tus_node_server.mjs ;;
        rustus) exec "$RUSTUS" --host 127.0.0.1 --port "$port" --data-dir "$dir" --info-dir "$dir" \
            --max-body-size 2147483648 --log-level WARN ;;
        tusgate_dl) exec "$TUSGATE" --host 127.0.0.1 --port "$port" --upload-dir "$dir" --assets-dir "$WWW" \
            --allow-uploads-without-token --secure-link-secret "$SECRET" --verbose=false ;;
        nginx) start_nginx "$port" "$dir" ;;
        esac >"$LOGS/$name.log" 2>&1 &
    SPID=$!
    PIDS+=("$SPID")
    if ! wait_port "$port" "$SPID"; then
        log "$name did not start:"; tail -5 "$LOGS/$name.log" >&2; return 1
    fi
    sleep 0.3
}
stop_peer() {
    kill "$SPID" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
}
start_nginx() { # PORT DIR (runs in the foreground: daemon off)
    local user=""
    [[ $(id -u) == 0 ]] && user="user root;"
    mkdir -p "$2/tmp" "$2/logs"
    cat > "$2/nginx.conf" <<EOF
$user
worker_processes auto;
daemon off;
pid $2/nginx.pid;
error_log $2/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path $2/tmp/body;
    proxy_temp_path $2/tmp/proxy;
    fastcgi_temp_path $2/tmp/fastcgi;
    uwsgi_temp_path $2/tmp/uwsgi;
    scgi_temp_path $2/tmp/scgi;
    server {
        listen 127.0.0.1:$1;
        location /assets/public/ { alias $WWW/public/; }
        location /assets/private/ {
            secure_link \$arg_md5,\$arg_expires;
            secure_link_md5 "\$secure_link_expires\$uri $SECRET";
            if (\$secure_link = "") { return 403; }
            if (\$secure_link = "0") { return 410; }
            alias $WWW/private/;
        }
    }
}
EOF
    exec nginx -c "$2/nginx.conf" -p "$2"
}

# ---------------------------------------------------------------- measuring
: > "$RESULTS"
# run_bench PEER WORKLOAD ROUND URL ARGS...: one `tusgate bench` run, appended to results.jsonl
run_bench() {
    local peer=$1 workload=$2 round=$3 url=$4 out rc=0
    shift 4
    settle
    out=$("$TUSGATE" bench "$url" --json --quiet --label "$peer" --pid "$SPID" --max-time 300s "$@" 2>"$LOGS/bench.err") || rc=$?
    if [[ "$out" == "{"* ]]; then
        printf '{"peer":"%s","workload":"%s","round":%d,"result":%s}\n' "$peer" "$workload" "$round" "$out" >> "$RESULTS"
        [[ $rc == 0 ]] || log "  $peer $workload: errors or failed verification (kept, marked)"
    else
        printf '{"peer":"%s","workload":"%s","round":%d,"result":null}\n' "$peer" "$workload" "$round" >> "$RESULTS"
        log "  $peer $workload FAILED: $(tr '\n' ' ' < "$LOGS/bench.err" | cut -c1-300)"
    fi
    if [[ "$out" == "{"* ]]; then
        python3 - "$out" "$workload" <<'PY' >&2 || true
import json, sys
r = json.loads(sys.argv[1]); s = r.get("server") or {}; l = r.get("latency_ms") or {}
print(f"  {r['label']:<14} {sys.argv[2]:<9} {r['mib_per_s']:9.1f} MiB/s  {r['operations_per_s']:9.1f} ops/s"
      f"  p99 {l.get('p99', 0):8.2f} ms  server {s.get('cpu_s', 0):5.2f} cpu-s, peak {s.get('peak_rss_mib', 0):6.1f} MiB"
      f"  {'ok' if r['ok'] else 'ERRORS'}")
PY
    fi
}

upload_round() { # PEER ROUND
    local peer=$1 round=$2 base sha=() dir
    dir=$SCRATCH/store/$peer-r$round
    start_peer "$peer" "$dir" || { stash "$dir"; return 0; }
    base="http://127.0.0.1:$(port_of "$peer")/files/"
    [[ $peer == tusnode ]] && base="http://127.0.0.1:$(port_of "$peer")/files"
    # sha256 read-back in the first round only (it costs a GET of every big upload).
    [[ $round == 1 ]] || sha=(--no-sha256)
    local w
    for w in $WORKLOADS; do
        case $w in
            single) run_bench "$peer" single "$round" "$base" -w single --size "$BIG" --threads "$BENCH_THREADS" "${sha[@]}" ;;
            chunked) run_bench "$peer" chunked "$round" "$base" -w chunked --size "$BIG" --chunk "$CHUNK" --threads "$BENCH_THREADS" "${sha[@]}" ;;
            parallel) run_bench "$peer" parallel "$round" "$base" -w parallel -n "$PAR_N" -c "$PAR_N" --size "$PAR_SIZE" --threads "$BENCH_THREADS" "${sha[@]}" ;;
            small) run_bench "$peer" small "$round" "$base" -w small -n "$SMALL_N" -c "$SMALL_C" --size "$SMALL_SIZE" --warmup "$SMALL_WARMUP" --threads "$BENCH_THREADS" ;;
            slow) run_bench "$peer" slow "$round" "$base" -w slow -n "$SLOW_N" -c "$SLOW_N" --size "$SLOW_SIZE" --rate "$SLOW_RATE" --threads "$BENCH_THREADS" ;;
            *) log "unknown workload $w" ;;
        esac
        # A big upload's file is deleted right away (few inodes) so the page cache stays warm
        # for the next peer; everything else waits in the trash.
        find "$dir" -type f -size +1M -delete 2>/dev/null || true
    done
    stop_peer
    stash "$dir"
}

download_round() { # PEER ROUND
    local peer=$1 round=$2 port dir signed
    dir=$SCRATCH/store/$peer-r$round
    if [[ $peer == nginx ]] && ! command -v nginx >/dev/null; then return 0; fi
    start_peer "$peer" "$dir" || { stash "$dir"; return 0; }
    port=$(port_of "$peer")
    signed=$(SECURE_LINK_SECRET=$SECRET "$TUSGATE" sign download --key file4k --visibility private \
        --base-url "http://127.0.0.1:$port/assets" --ttl 3h)
    local d
    for d in $DOWNLOADS; do
        case $d in
            dl_1g) run_bench "$peer" dl_1g "$round" "http://127.0.0.1:$port/assets/public/big.bin" -w download -n "$DL_COUNT" ;;
            dl_4k) run_bench "$peer" dl_4k "$round" "$signed" -w download -c "$DL4K_C" -d "${DL4K_SECONDS}s" --threads "$DL4K_THREADS" ;;
        esac
    done
    stop_peer
    stash "$dir"
}

read -r -a peer_list <<< "$PEERS"
dl_list=()
[[ -n "$DOWNLOADS" ]] && dl_list=(nginx tusgate_dl)
[[ -n "$DOWNLOADS" ]] && cat "$WWW/public/big.bin" > /dev/null   # into the page cache
log "peers: ${peer_list[*]}; workloads: $WORKLOADS; downloads: ${DOWNLOADS:-none}; rounds: $ROUNDS"
budget_hit=
for round in $(seq 1 "$ROUNDS"); do
    n=${#peer_list[@]}
    for ((k = 0; k < n; k++)); do
        peer=${peer_list[$(((k + round - 1) % n))]}
        if ((SECONDS - START > BUDGET_S)); then budget_hit=$round; break 2; fi
        log "round $round/$ROUNDS: $peer"
        upload_round "$peer" "$round"
    done
    for ((k = 0; k < ${#dl_list[@]}; k++)); do
        peer=${dl_list[$(((k + round - 1) % ${#dl_list[@]}))]}
        if ((SECONDS - START > BUDGET_S)); then budget_hit=$round; break 2; fi
        log "round $round/$ROUNDS: downloads from $peer"
        download_round "$peer" "$round"
    done
done
[[ -z "$budget_hit" ]] || log "WARNING: the time budget (BUDGET_S=$BUDGET_S) ran out in round $budget_hit; the table has fewer runs there"

# ---------------------------------------------------------------- the table
python3 - "$RESULTS" "$SCRATCH/results.md" "$ROUNDS" "$PEERS" <<'PY'
import json, statistics, sys
results, out_path, rounds, peers = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
runs = [json.loads(line) for line in open(results) if line.strip()]
names = {"limit": "limit", "limit_fsync": "limit fsync", "tusgate": "**tusgate**",
         "tusgate_never": "tusgate never", "tusd": "tusd 2.10", "tusnode": "@tus/server",
         "rustus": "rustus", "nginx": "nginx", "tusgate_dl": "**tusgate**"}
up_cols = [p for p in ["limit", "limit_fsync", "tusgate", "tusgate_never", "tusd", "tusnode", "rustus"] if p in peers]

def values(peer, workload, metric):
    out = []
    for r in runs:
        if r["peer"] == peer and r["workload"] == workload and r["result"]:
            v = metric(r["result"])
            if v is not None:
                out.append(v)
    return out

def errors(peer, workload):
    n = sum(1 for r in runs if r["peer"] == peer and r["workload"] == workload
            and (r["result"] is None or not r["result"]["ok"]))
    return n

def med(peer, workload, metric):
    v = values(peer, workload, metric)
    return statistics.median(v) if v else None

def srv(key):
    return lambda r: (r.get("server") or {}).get(key)

def lat(key):
    return lambda r: (r.get("latency_ms") or {}).get(key)

# (workload, metric label, extractor, higher is better, download?)
rows = [
    ("single", "MiB/s", lambda r: r["mib_per_s"], True, False),
    ("single", "server CPU s/GiB", srv("cpu_s_per_gib"), False, False),
    ("single", "server peak RSS MiB", srv("peak_rss_mib"), False, False),
    ("chunked", "MiB/s", lambda r: r["mib_per_s"], True, False),
    ("parallel", "MiB/s", lambda r: r["mib_per_s"], True, False),
    ("small", "uploads/s", lambda r: r["uploads_per_s"], True, False),
    ("small", "p50 ms", lat("p50"), False, False),
    ("small", "p99 ms", lat("p99"), False, False),
    ("small", "server CPU ms/upload", srv("cpu_ms_per_upload"), False, False),
    ("slow", "server peak RSS MiB", srv("peak_rss_mib"), False, False),
    ("dl_1g", "MiB/s", lambda r: r["mib_per_s"], True, True),
    ("dl_4k", "requests/s", lambda r: r["operations_per_s"], True, True),
    ("dl_4k", "p99 ms", lat("p99"), False, True),
]
labels = {"single": "1 upload, one PATCH", "chunked": "1 upload, chunked PATCHes",
          "parallel": "concurrent uploads", "small": "small uploads", "slow": "slow uploads, all open at once",
          "dl_1g": "download, 1 stream", "dl_4k": "signed 4 KiB downloads"}

def size_of(workload):
    for r in runs:
        if r["workload"] == workload and r["result"]:
            x = r["result"]
            if x.get("size"):
                n = x.get("count") or 1
                c = x.get("chunk")
                shape = f"{n} × {fmt_bytes(x['size'])}"
                if c and c < x["size"]:
                    shape += f" in {fmt_bytes(c)} PATCHes"
                return shape + f", c={x['concurrency']}"
            return f"c={x['concurrency']}"
    return ""

def fmt_bytes(b):
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if b >= unit:
            return f"{b / unit:g} {name}"
    return f"{b} B"

def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"

def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "—"

# Goals from the issue: (text, "✓/✗ for tusgate / for tusgate -fsync=never").
def goal(workload, label):
    g = lambda p, m: med(p, workload, m)
    mib = lambda r: r["mib_per_s"]
    ups = lambda r: r["uploads_per_s"]
    if workload in ("dl_1g", "dl_4k"):
        if label not in ("MiB/s", "requests/s"):
            return "", ""
        m = mib if workload == "dl_1g" else (lambda r: r["operations_per_s"])
        v, n = g("tusgate_dl", m), g("nginx", m)
        return "≥ 0.9 × nginx", (("✓" if v >= 0.9 * n else "✗") if v and n else "—")
    others = [p for p in ("tusd", "tusnode", "rustus") if p in peers and g(p, mib if workload != "small" else ups)]
    def best(m):
        vals = [g(p, m) for p in others if g(p, m) is not None]
        return max(vals) if vals else None
    def check(v):
        lim = g("limit", mib)
        if v is None:
            return None
        if workload == "single" and label == "MiB/s":
            return bool(lim) and v >= 0.9 * lim and (best(mib) is None or v > best(mib))
        if workload == "chunked" and label == "MiB/s":
            return bool(lim) and v >= 0.85 * lim
        if workload == "parallel" and label == "MiB/s":
            return best(mib) is None or v > best(mib)
        if workload == "small" and label == "uploads/s":
            return best(ups) is not None and v >= 2 * best(ups)
        if workload == "small" and label == "p99 ms":
            if not others:
                return None
            top = max(others, key=lambda p: g(p, ups))
            theirs = g(top, lat("p99"))
            return theirs is not None and v <= 0.5 * theirs
        if workload == "slow" and label == "server peak RSS MiB":
            t = g("tusd", srv("peak_rss_mib"))
            return t is not None and v <= 0.5 * t
        return None
    texts = {("single", "MiB/s"): "≥ 90 % of limit, ahead of every peer",
             ("chunked", "MiB/s"): "≥ 85 % of limit",
             ("parallel", "MiB/s"): "ahead of every peer",
             ("small", "uploads/s"): "≥ 2 × the best peer",
             ("small", "p99 ms"): "≤ ½ the best peer's p99",
             ("slow", "server peak RSS MiB"): "≤ ½ tusd's"}
    text = texts.get((workload, label))
    if not text:
        return "", ""
    metric = {"MiB/s": mib, "uploads/s": ups, "p99 ms": lat("p99"),
              "server peak RSS MiB": srv("peak_rss_mib")}[label]
    marks = []
    for me in ("tusgate", "tusgate_never"):
        ok = check(g(me, metric)) if me in peers else None
        marks.append("—" if ok is None else ("✓" if ok else "✗"))
    return text, " / ".join(marks)

cols = up_cols + [c for c in ("nginx",) if any(r["peer"] == "nginx" for r in runs)]
header = ["workload", "metric"] + [names[c] for c in up_cols] + (["nginx"] if "nginx" in cols else []) + \
         ["tusgate ÷ tusd", "never ÷ tusd", "tusgate ÷ limit", "never ÷ limit", "goal", "met (default / never)"]
lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
spread = ["| workload | metric | " + " | ".join(names[c] for c in cols) + " |", "|---|---|" + "---|" * len(cols)]
for workload, label, metric, higher, download in rows:
    if not any(r["workload"] == workload for r in runs):
        continue
    cells, ranges = [], []
    for c in up_cols:
        peer = "tusgate_dl" if (download and c == "tusgate") else c
        v = med(peer, workload, metric) if (not download or c == "tusgate") else None
        e = errors(peer, workload)
        n = len(values(peer, workload, metric))
        cell = fmt(v)
        if v is not None and n < rounds:
            cell += f" (n={n})"
        if e:
            cell += f" ⚠{e} err"
        cells.append(cell)
        vs = values(peer, workload, metric) if (not download or c == "tusgate") else []
        ranges.append(f"{fmt(min(vs))}–{fmt(max(vs))}" if vs else "—")
    if "nginx" in cols:
        v = med("nginx", workload, metric) if download else None
        cells.append(fmt(v))
        vs = values("nginx", workload, metric) if download else []
        ranges.append(f"{fmt(min(vs))}–{fmt(max(vs))}" if vs else "—")
    mine = "tusgate_dl" if download else "tusgate"
    a = med(mine, workload, metric)
    b = None if download else med("tusgate_never", workload, metric)
    tusd = None if download else med("tusd", workload, metric)
    limit = med("nginx" if download else "limit", workload, metric)
    text, met = goal(workload, label)
    lines.append("| " + " | ".join([f"{labels[workload]} ({size_of(workload)})", label] + cells +
                 [ratio(a, tusd), ratio(b, tusd), ratio(a, limit), ratio(b, limit), text, met]) + " |")
    spread.append("| " + " | ".join([labels[workload], label] + ranges) + " |")
note = (f"Median of {rounds} interleaved rounds (n= marks fewer). Ratios are tusgate's value over "
        "the other's: above 1 is better for rates, below 1 for times, CPU and memory. "
        "'limit' is examples/tus_sink.rs (read + write into files, no fsync) for uploads and nginx "
        "(sendfile) for downloads. tusgate = default -fsync=completion, never = -fsync=never "
        "(tusd, @tus/server and the limit do not fsync).")
text = "\n".join(lines) + "\n\n" + note + "\n\nRange (min–max) per cell:\n\n" + "\n".join(spread) + "\n"
open(out_path, "w").write(text)
print(text)
PY

# ---------------------------------------------------------------- the chart
# The same runs as the table: each peer's upload throughput over tusd's and over the limit's.
rm -f "$SCRATCH/chart.svg"
if "$TUSGATE" bench chart "$RESULTS" -o "$SCRATCH/chart.svg" 2>"$LOGS/chart.err"; then
    log "chart: $SCRATCH/chart.svg"
else
    log "WARNING: no chart: $(tr '\n' ' ' < "$LOGS/chart.err")"
fi

if [[ -n "${UPDATE_README:-}" ]]; then
    chart=
    if [[ -f "$SCRATCH/chart.svg" ]]; then
        cp "$SCRATCH/chart.svg" "$ROOT/benches/compare.svg"
        chart=compare.svg
    fi
    python3 - "$ROOT/benches/README.md" "$SCRATCH/results.md" "$chart" <<'PY'
import datetime, subprocess, sys
readme, table, chart = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
text = open(readme).read()
begin, end = "<!-- compare.sh results: begin -->", "<!-- compare.sh results: end -->"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rev = subprocess.run(["git", "-C", sys.argv[1].rsplit("/", 2)[0], "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    cores = sum(1 for l in open("/proc/cpuinfo") if l.startswith("processor"))
    mem_gib = round(int(open("/proc/meminfo").readline().split()[1]) / 2**20)
    kernel = open("/proc/sys/kernel/osrelease").read().strip()
    machine = f"{cores} vCPU {cpu}, {mem_gib} GiB, Linux {kernel}, all traffic on 127.0.0.1"
    image = (f"![Upload throughput of each peer relative to tusd and to the limit, median and "
             f"min–max of the rounds]({chart})\n\n") if chart else ""
    open(readme, "w").write(f"{head}{begin}\nMeasured {stamp} at {rev} on {machine}:\n\n{image}{table}{end}{tail}")
    print(f"updated {readme}", file=sys.stderr)
PY
fi

log "purging $TRASH"
rm -rf "$TRASH"
log "done in $((SECONDS - START)) s; results: $SCRATCH/results.md"
