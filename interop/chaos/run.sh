#!/usr/bin/env bash
# The chaos stage: many concurrent tus clients with random resets, SIGKILLs of the server and a
# small tmpfs that fills up, for a bounded time; then the checks of chaos.py (see README.md).
# Needs TUSGATE_BIN, python3 (standard library only) and root (it mounts a tmpfs). Loopback only.
# CHAOS_SEED repeats a run's plan; CHAOS_DURATION, CHAOS_CLIENTS, CHAOS_KILLS… tune it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${TUSGATE_BIN:?set TUSGATE_BIN to the tusgate binary}"
if [[ "$TUSGATE_BIN" != /* ]]; then TUSGATE_BIN="$PWD/$TUSGATE_BIN"; fi
[[ -x "$TUSGATE_BIN" ]] || { echo "chaos: $TUSGATE_BIN is not an executable"; exit 2; }

work=$(mktemp -d /tmp/tusgate-chaos.XXXXXX)
uploads="$work/uploads"
mkdir -p "$uploads" "$work/logs"
mounted=false
py=""

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # Interrupted: stop the script first (it would otherwise go on restarting the server).
    if [[ -n "$py" ]] && kill -0 "$py" 2>/dev/null; then
        kill -TERM "$py" 2>/dev/null || true
        wait "$py" 2>/dev/null || true
    fi
    # The server started by chaos.py, if it is still there (chaos.py stops it itself unless
    # it was killed): it keeps files open on the tmpfs.
    if [[ -f "$work/server.pid" ]]; then
        local pid
        pid=$(cat "$work/server.pid")
        if [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] &&
            tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-upload-dir=$uploads"; then
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    if $mounted; then
        umount "$uploads" 2>/dev/null || umount -l "$uploads" || echo "chaos: could not unmount $uploads"
    fi
    if [[ $status -ne 0 && -d "$work/logs" ]]; then
        keep="${CHAOS_KEEP_LOGS:-}"
        if [[ -n "$keep" ]]; then
            mkdir -p "$keep" && cp -a "$work/logs/." "$keep/" && echo "chaos: server logs kept in $keep"
        fi
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! mount -t tmpfs -o "size=${CHAOS_TMPFS_SIZE:-48m}" tmpfs "$uploads"; then
    echo "chaos: cannot mount a tmpfs on $uploads (needs root); the stage cannot run"
    exit 2
fi
mounted=true

# In the background, so that INT and TERM reach the traps at once instead of after the run.
TUSGATE_BIN="$TUSGATE_BIN" CHAOS_UPLOAD_DIR="$uploads" CHAOS_LOG_DIR="$work/logs" \
    CHAOS_PID_FILE="$work/server.pid" python3 -u "$here/chaos.py" &
py=$!
wait "$py"
