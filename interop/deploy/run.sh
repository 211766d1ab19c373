#!/usr/bin/env bash
# Deployment checks: Dockerfile, .dockerignore, docker-compose.yml, .env.example and nginx/,
# statically and, where this machine allows (no container engine here), for real: nginx with the
# shipped configs in front of tusgate, tus-js-client uploads and signed downloads through it, the
# image's ENTRYPOINT/CMD/HEALTHCHECK run as in the container. See README.md.
#
#   TUSGATE_BIN=target/release/tusgate bash interop/deploy/run.sh [CHECK-NAME-SUBSTRING...]
#
# Needs: TUSGATE_BIN (required), /usr/sbin/nginx (or NGINX_BIN), openssl, curl, node and
# clients/js/node_modules (`npm ci` in clients/js), python3 + PyPI for .venv. A missing one is a
# failure, not a skip. DEPLOY_EMULATE_BUILD=1 also runs the Dockerfile's build stage here
# (a full release build in a scratch copy). Every server listens on 127.0.0.1 only and is
# stopped at the end. Last line: "deploy: N passed, M failed"; exit status 1 if any failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

give_up() {
    echo "deploy: $1" >&2
    echo "deploy: 0 passed, 1 failed"
    exit 1
}

[[ -n "${TUSGATE_BIN:-}" ]] || give_up "TUSGATE_BIN is not set (path of the tusgate binary to test)"
[[ "$TUSGATE_BIN" == /* ]] || TUSGATE_BIN="$PWD/$TUSGATE_BIN"
[[ -f "$TUSGATE_BIN" && -x "$TUSGATE_BIN" ]] || give_up "TUSGATE_BIN=$TUSGATE_BIN is not an executable file"
export TUSGATE_BIN

bash "$here/setup.sh" || give_up "could not prepare interop/deploy/.venv from PyPI (see above)"

# The driver bounds itself (watchdog) and stops what it started; the outer timeout is a last
# resort, after which this script prints the closing line itself.
timeout --kill-after=20 1800 "$here/.venv/bin/python" -u "$here/deploy_test.py" "$@"
rc=$?
if ((rc == 124 || rc == 137)); then
    give_up "the driver did not finish within 30 minutes and was killed"
fi
exit "$rc"
