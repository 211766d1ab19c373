#!/usr/bin/env bash
# The durability stage: tusgate under strace, a few uploads (tokenless and tokened, 10 KiB and
# 5 MiB, PATCH and creation-with-upload), then durability.py checks for each upload that its
# bytes, its state and every directory entry were synced, in the right order, before the
# response was written to its socket; and that a server with -fsync=never fails those checks.
# See README.md. Needs TUSGATE_BIN, strace (scripts/deps.sh) and python3 (standard library).
# Loopback only; DURABILITY_KEEP=DIR keeps the traces of a failed run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${TUSGATE_BIN:?set TUSGATE_BIN to the tusgate binary}"
if [[ "$TUSGATE_BIN" != /* ]]; then TUSGATE_BIN="$PWD/$TUSGATE_BIN"; fi
[[ -x "$TUSGATE_BIN" ]] || { echo "durability: $TUSGATE_BIN is not an executable"; exit 2; }
command -v strace >/dev/null || { echo "durability: strace is not installed (scripts/deps.sh installs it)"; exit 2; }

work=$(mktemp -d /tmp/tusgate-durability.XXXXXX)
py=""

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$py" ]] && kill -0 "$py" 2>/dev/null; then
        kill -TERM "$py" 2>/dev/null || true
        wait "$py" 2>/dev/null || true
    fi
    # Servers durability.py started and did not stop (it was interrupted): "strace-pid tusgate-pid"
    # per line. tusgate first (strace exits with it); each checked to be ours by its cmdline.
    if [[ -f "$work/pids" ]]; then
        local strace_pid tusgate_pid
        while read -r strace_pid tusgate_pid; do
            for pid in $tusgate_pid $strace_pid; do
                if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$work/"; then
                    kill -KILL "$pid" 2>/dev/null || true
                fi
            done
        done <"$work/pids"
    fi
    if [[ $status -ne 0 && -n "${DURABILITY_KEEP:-}" ]]; then
        mkdir -p "$DURABILITY_KEEP" && cp -a "$work/." "$DURABILITY_KEEP/" && echo "durability: traces kept in $DURABILITY_KEEP"
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# In the background, so that INT and TERM reach the traps at once; bounded by timeout.
TUSGATE_BIN="$TUSGATE_BIN" DURABILITY_WORK="$work" DURABILITY_PID_FILE="$work/pids" \
    timeout --signal=TERM 120 python3 -u "$here/durability.py" &
py=$!
wait "$py"
