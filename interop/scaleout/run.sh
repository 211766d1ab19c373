#!/usr/bin/env bash
# The scale-out stage: three tusgate instances sharing one bucket, no sticky sessions, with
# faults (see README.md). Runs scaleout.py once on SeaweedFS and once on moto, even if the first
# fails, and exits non-zero if either failed. Needs TUSGATE_BIN (required: unset is a failure),
# interop/s3/.venv (python 3.12, boto3, requests, moto, weed; set up here) and tus-js-client in
# clients/js/node_modules (`npm ci` there). Everything listens on 127.0.0.1 only.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if [[ -z "${TUSGATE_BIN:-}" ]]; then
    echo "scaleout: TUSGATE_BIN is not set (point it at the tusgate binary)"
    exit 2
fi
if [[ "$TUSGATE_BIN" != /* ]]; then export TUSGATE_BIN="$PWD/$TUSGATE_BIN"; fi
[[ -x "$TUSGATE_BIN" ]] || { echo "scaleout: $TUSGATE_BIN is not an executable"; exit 2; }
[[ -d "$root/clients/js/node_modules/tus-js-client" ]] || {
    echo "scaleout: tus-js-client is not installed (run npm ci in clients/js)"; exit 2; }
bash "$root/interop/s3/setup.sh" || { echo "scaleout: interop/s3/.venv could not be set up"; exit 2; }
py="$root/interop/s3/.venv/bin/python"

status=0
results=()
for backend in ${SCALEOUT_BACKENDS:-seaweedfs moto}; do
    echo
    echo "--- scaleout on $backend"
    started=$SECONDS
    # A backstop: scaleout.py bounds itself (SCALEOUT_TIMEOUT), this bounds a hung interpreter.
    timeout -k 10 "${SCALEOUT_HARD_TIMEOUT:-300}" \
        bash "$root/scripts/with-$backend.sh" "$py" -u "$here/scaleout.py" "$backend"
    rc=$?
    results+=("$backend: $([[ $rc -eq 0 ]] && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - started)) s")
    [[ $rc -eq 0 ]] || status=1
done
echo
for line in "${results[@]}"; do echo "scaleout $line"; done
exit "$status"
