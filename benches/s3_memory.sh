#!/usr/bin/env bash
# tusgate's peak RSS with N concurrent S3 uploads, with and without the --s3-max-buffer budget.
#
#   bash interop/s3/setup.sh          # once: interop/s3/.venv with SeaweedFS's `weed`
#   cargo build --release
#   bash benches/s3_memory.sh         # N = 8 64 256 500, 32 MiB each, the three CONFIGS below
#   NS="8 64" SIZE=16MiB CONFIGS="67108864:262144" bash benches/s3_memory.sh
#
# CONFIGS lists `--s3-max-buffer:--tcp-receive-buffer` pairs in bytes (default: a 64 MiB budget
# with 256 KiB receive buffers, the same budget with the kernel's receive-buffer autotuning,
# and no budget in effect: 1 TiB). Every run gets a fresh SeaweedFS (scripts/with-seaweedfs.sh;
# its data directory goes with it, so N × SIZE of disk is needed only for one run at a time)
# and a fresh tusgate (`-allow-uploads-without-token -verbose=false` and the pair, everything
# else default: 8 MiB parts). `tusgate bench -w parallel -n N -c N --size SIZE` then sends N
# uploads at once, one PATCH each, one connection each; it resets tusgate's VmHWM just before
# the clock and reads it when the last upload is answered (`server.peak_rss_mib`), then checks
# every upload (HEAD offset, and sha256 of every byte read back through GET).
#
# Guards, for a shared machine: a run that is not done after MAX_TIME (1800s) fails; tusgate is
# killed (SIGKILL, by pid) when the machine's MemAvailable falls under MIN_AVAILABLE_MIB (4096),
# and its RSS at that moment is recorded (`killed_at_rss_mib`): without a budget, N = 256
# uploads already need ~6 GiB.
#
# Output: one JSON line per run in $OUT (default: a temp file) and a markdown table on stdout:
# peak RSS, RSS before the run, what each upload adds (beyond the budget, with one),
# throughput, verification; `benches/s3_memory.sh --table FILE` prints it again. Stops what
# it started by pid. A run whose bench fails is reported as failed, not retried.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TUSGATE_BIN:-$root/target/release/tusgate}
SIZE=${SIZE:-32MiB}
MAX_TIME=${MAX_TIME:-1800s}
MIN_AVAILABLE_MIB=${MIN_AVAILABLE_MIB:-4096}

if [[ ${1:-} == --one ]]; then
    # One run, inside with-seaweedfs.sh (STORAGE_* point at it): $2 = N, $3 = budget,
    # $4 = receive buffer, $5 = out.
    n=$2 budget=$3 rcvbuf=$4 out=$5
    work=$(mktemp -d)
    tusgate_pid= guard_pid=
    stop() {
        [[ -n "$guard_pid" ]] && kill "$guard_pid" 2>/dev/null
        if [[ -n "$tusgate_pid" ]]; then
            kill "$tusgate_pid" 2>/dev/null || true
            wait "$tusgate_pid" 2>/dev/null || true
        fi
        rm -rf "$work"
    }
    trap stop EXIT
    "$bin" -host 127.0.0.1 -port 0 -upload-dir "$work/uploads" -allow-uploads-without-token \
        -verbose=false --s3-max-buffer "$budget" --tcp-receive-buffer "$rcvbuf" >"$work/log" 2>&1 &
    tusgate_pid=$!
    (
        while sleep 0.2; do
            available=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
            if ((available < MIN_AVAILABLE_MIB)); then
                awk '/^VmRSS:/ {print $2}' "/proc/$tusgate_pid/status" >"$work/killed" || true
                kill -9 "$tusgate_pid"
                exit
            fi
        done
    ) &
    guard_pid=$!
    url=
    for _ in $(seq 300); do
        url=$(sed -n 's/.*You can now upload files to: \(http[^ ]*\).*/\1/p' "$work/log" | head -1)
        [[ -n "$url" ]] && break
        kill -0 "$tusgate_pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$url" ]] || { echo "s3_memory: tusgate did not start" >&2; cat "$work/log" >&2; exit 1; }
    status=0
    "$bin" bench "$url" -w parallel -n "$n" -c "$n" --size "$SIZE" --pid "$tusgate_pid" \
        --json --quiet --timeout "$MAX_TIME" --max-time "$MAX_TIME" >"$work/bench.json" || status=$?
    hwm_total_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$tusgate_pid/status" 2>/dev/null || echo 0)
    killed_kib=$(cat "$work/killed" 2>/dev/null || echo 0)
    python3 - "$work/bench.json" "$n" "$budget" "$rcvbuf" "$SIZE" "$status" "$hwm_total_kib" \
        "$killed_kib" >>"$out" <<'EOF'
import json, sys
path, n, budget, rcvbuf, size, status, hwm_total_kib, killed_kib = sys.argv[1:]
try:
    report = json.load(open(path))
except (OSError, ValueError):
    report = {}
server = report.get("server") or {}
verify = report.get("verify") or {}
print(json.dumps({
    "n": int(n), "budget": int(budget), "rcvbuf": int(rcvbuf), "size": size,
    "exit": int(status), "killed_at_rss_mib": int(killed_kib) / 1024 or None,
    "ok": report.get("ok", False),
    "peak_rss_mib": server.get("peak_rss_mib"),
    "rss_before_mib": server.get("rss_before_mib"),
    "sampled_peak_rss_mib": server.get("sampled_peak_rss_mib"),
    "hwm_incl_verify_mib": int(hwm_total_kib) / 1024,
    "seconds": report.get("duration_s"), "mib_per_s": report.get("mib_per_s"),
    "uploads": report.get("uploads"), "errors": report.get("errors"),
    "verify": verify, "report": report,
}))
EOF
    [[ $status == 0 ]] || tail -20 "$work/log" >&2
    exit "$status"
fi

table() {
    python3 - "$1" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print("| N | --s3-max-buffer | --tcp-receive-buffer | peak RSS MiB | RSS before MiB "
      "| (peak − before) / N MiB | (peak − before − budget) / N MiB | MiB/s | s "
      "| uploads ok | sha256 ok | notes |")
print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
fmt = lambda x, spec: "—" if x is None else format(x, spec)
for r in rows:
    limited = r["budget"] < 1 << 40
    budget = f"{r['budget'] / (1 << 20):g} MiB" if limited else "none (1 TiB)"
    rcvbuf = "autotuned" if not r.get("rcvbuf") else f"{r['rcvbuf'] / 1024:g} KiB"
    peak, before, n = r["peak_rss_mib"] or None, r["rss_before_mib"], r["n"]
    per = beyond = None
    if peak is not None and before is not None:
        per = (peak - before) / n
        beyond = (peak - before - r["budget"] / (1 << 20)) / n if limited else None
    v, notes = r["verify"], []
    if r.get("killed_at_rss_mib"):
        notes.append(f"killed by the memory guard at {r['killed_at_rss_mib']:.0f} MiB RSS")
    if r.get("errors"):
        notes.append(f"{r['errors']} failed: " + "; ".join(
            f"{k} ×{c}" for k, c in (r["report"].get("error_kinds") or {}).items()))
    if not r["ok"] and not notes:
        notes.append(f"failed (exit {r['exit']})")
    print(f"| {n} | {budget} | {rcvbuf} | {fmt(peak, '.0f')} | {fmt(before, '.0f')} "
          f"| {fmt(per, '.2f')} | {fmt(beyond, '.2f')} | {fmt(r['mib_per_s'], '.0f')} "
          f"| {fmt(r['seconds'], '.0f')} | {v.get('head_ok', '—')}/{n} "
          f"| {v.get('sha256_ok', '—')}/{n} | {'; '.join(notes)} |")
EOF
}
if [[ ${1:-} == --table ]]; then
    table "$2"
    exit
fi

NS=${NS:-"8 64 256 500"}
CONFIGS=${CONFIGS:-"67108864:262144 67108864:0 1099511627776:0"}
OUT=${OUT:-$(mktemp -d)/s3_memory.jsonl}
[[ -x "$bin" ]] || { echo "s3_memory: no tusgate at $bin (cargo build --release)" >&2; exit 1; }
size_bytes=$(python3 -c "import re,sys; m=re.fullmatch(r'(\d+)(KiB|MiB|GiB)?', sys.argv[1]); \
print(int(m[1]) * {None: 1, 'KiB': 1 << 10, 'MiB': 1 << 20, 'GiB': 1 << 30}[m[2]])" "$SIZE")
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), tusgate $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src Cargo.toml || echo '+changes'), $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $("$root/interop/s3/.venv/bin/weed" version 2>/dev/null | head -1)" >&2
failed=0
for n in $NS; do
    for config in $CONFIGS; do
        budget=${config%%:*} rcvbuf=${config#*:}
        # SeaweedFS keeps every byte on disk until the run ends: refuse rather than fill it.
        need_kib=$((n * size_bytes / 1024 * 3 / 2))
        free_kib=$(df -Pk "${TMPDIR:-/tmp}" | awk 'NR == 2 {print $4}')
        if ((free_kib < need_kib)); then
            echo "s3_memory: N=$n needs ~$((need_kib / 1048576)) GiB free in ${TMPDIR:-/tmp}, $((free_kib / 1048576)) GiB left; skipped" >&2
            failed=1
            continue
        fi
        echo "s3_memory: N=$n, --s3-max-buffer=$budget --tcp-receive-buffer=$rcvbuf, $SIZE each" >&2
        bash "$root/scripts/with-seaweedfs.sh" bash "$0" --one "$n" "$budget" "$rcvbuf" "$OUT" || failed=1
    done
done
table "$OUT"
echo "s3_memory: runs in $OUT" >&2
exit "$failed"
