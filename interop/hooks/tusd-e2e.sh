#!/usr/bin/env bash
# Runs tusd v2.10.1's own end-to-end tests (TestStopUpload and the 7 others of internal/e2e)
# against a server binary:
#
#   interop/hooks/tusd-e2e.sh BINARY [SERVER ARGS...]     (TUSD_E2E_TESTS="TestStopUpload ..."
#                                                          picks tests; default: all 8)
#
# The tests are tusd's, unchanged (github.com/tus/tusd/v2@v2.10.1/internal/e2e/e2e_test.go, MIT
# licence, © Transloadit): it is run in place from the Go module cache, where
# scripts/install-tusd.sh put the module, with its own go.mod and go.sum (the module proxy
# supplies its test dependencies: toxiproxy, zerolog). It starts BINARY with `-port=0
# $TUSD_EXTRA_ARGS …` and reads the `You can now upload files to:` line from stdout.
# TestStopUpload adds `-hooks-http <its hook server> -hooks-enabled-events=post-receive
# -progress-hooks-interval=3s`, PATCHes 50 KB through a toxiproxy limited to 5 KB/s and expects
# the hook's StopUpload to answer that PATCH with 400 ERR_UPLOAD_STOPPED after 3 s (±30 %), and
# the upload to be gone (HEAD 404). The others: a plain upload, -network-timeout, a client that
# closes or resets mid-body, lock release to a second request, a body beyond Upload-Length,
# shutdown. SERVER ARGS go into TUSD_EXTRA_ARGS, with an -upload-dir in a temporary directory
# so nothing is written into the module cache. Each test runs alone, with its own upload dir:
# tusd's tests run in parallel on one TUSD_EXTRA_ARGS, and tusgate refuses a second process on
# an upload dir (README, differences from tusd, 9).
#
# The test's toxiproxy API listens on localhost:8474 (fixed in tusd's TestMain): two runs at
# once on one machine collide.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 BINARY [SERVER ARGS...]" >&2; exit 2; }
bin=$1; shift
[[ "$bin" == /* ]] || bin="$PWD/$bin"
[[ -x "$bin" ]] || { echo "tusd-e2e: $bin is not an executable" >&2; exit 1; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bash "$root/scripts/install-tusd.sh"
work=$(mktemp -d)
# Some of tusd's tests leave the server they started running (they end without stopping it):
# every server of this run has an upload dir under $work, which names it for pkill.
reap() { pkill -f -- "-upload-dir=$work/" 2>/dev/null || true; }
trap 'reap; rm -rf "$work"' EXIT
# Outside any module, `go mod download` names the directory of the exact version.
module=$(cd "$work" && go mod download -json github.com/tus/tusd/v2@v2.10.1 \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -f "$module/internal/e2e/e2e_test.go" ]] || { echo "tusd-e2e: no tusd source at '$module'" >&2; exit 1; }
tests=${TUSD_E2E_TESTS:-TestStopUpload TestSuccessfulUpload TestNetworkReadTimeout TestUnexpectedNetworkClose TestUnexpectedNetworkReset TestLockRelease TestUploadLengthExceeded TestShutdown}
cd "$module"
passed=0 failed=()
for test in $tests; do
    mkdir "$work/$test"
    # -host: loopback only (tusd's tests dial localhost; both servers default to all interfaces).
    if TUSD_BINARY="$bin" TUSD_EXTRA_ARGS="-host=127.0.0.1 -upload-dir=$work/$test $*" \
        timeout 300 go test -count=1 -run "^$test\$" -v ./internal/e2e/; then
        passed=$((passed + 1))
    else
        failed+=("$test")
    fi
    reap
done
((${#failed[@]} == 0)) || echo "tusd e2e against $bin failed: ${failed[*]}"
echo "$passed passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
