#!/usr/bin/env bash
# The whole test suite, as CI runs it (`.ci/run` calls this). Installs what it needs
# (scripts/deps.sh), builds tusgate once in release mode and runs every stage against it; the
# conformance and client suites also run against tusd itself, to prove they describe real tusd
# behaviour. Every server is started by the suites on 127.0.0.1 and stopped by them.
#
# Stages run even after one fails; the last line counts them, and the exit status is non-zero
# if any failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

passed=() failed=()
stage() {
    local name=$1; shift
    echo
    echo "=== $name"
    local started=$SECONDS
    if "$@"; then
        passed+=("$name")
        echo "=== $name: passed ($((SECONDS - started)) s)"
    else
        failed+=("$name")
        echo "=== $name: FAILED ($((SECONDS - started)) s)"
    fi
}

if ! bash scripts/deps.sh; then
    echo "dependencies could not be installed"
    echo "stages: 0 passed, 1 failed"
    exit 1
fi

tusgate="$root/target/release/tusgate"
tusd="$root/.tools/bin/tusd"

stage "format" cargo fmt --all --check
stage "build" cargo build --release --locked
stage "clippy" cargo clippy --release --locked --workspace --all-targets -- -D warnings
stage "configuration reference is current" env TUSGATE_BIN="$tusgate" bash scripts/config-reference.sh --check
stage "unit tests and conformance (tusgate, tusgate-bench)" cargo test --release --locked --workspace
stage "fuzz (cargo-fuzz, bounded)" bash scripts/fuzz.sh
stage "storage suite on S3 (moto)" bash scripts/with-moto.sh cargo test --release --locked --test store_s3
stage "storage suite on S3 (SeaweedFS)" bash scripts/with-seaweedfs.sh cargo test --release --locked --test store_s3
stage "conformance (tusd v2.10.1)" env CONFORMANCE_TARGET=tusd CONFORMANCE_SERVER="$tusd" \
    cargo test --release --locked --test conformance
stage "tus-js-client (tusgate)" env TUS_SERVER_BIN="$tusgate" TUS_SERVER_ARGS=-allow-uploads-without-token \
    npm --prefix clients/js test
stage "tus-js-client (tusd v2.10.1)" env TUS_SERVER_BIN="$tusd" npm --prefix clients/js test
# The same cases in tus-js-client's IETF draft modes (on by default in tusgate; tusd speaks
# interop 3-6 behind -enable-experimental-protocol); concatenation stays tus 1.0's.
stage "tus-js-client ietf-draft-05, interop 6 (tusgate)" env TUS_PROTOCOL=ietf-draft-05 \
    TUS_SERVER_BIN="$tusgate" TUS_SERVER_ARGS=-allow-uploads-without-token npm --prefix clients/js test
stage "tus-js-client ietf-draft-03, interop 5 (tusgate)" env TUS_PROTOCOL=ietf-draft-03 \
    TUS_SERVER_BIN="$tusgate" TUS_SERVER_ARGS=-allow-uploads-without-token npm --prefix clients/js test
stage "tus-js-client ietf-draft-05, interop 6 (tusd v2.10.1)" env TUS_PROTOCOL=ietf-draft-05 \
    TUS_SERVER_BIN="$tusd" TUS_SERVER_ARGS=-enable-experimental-protocol npm --prefix clients/js test
stage "tus-js-client ietf-draft-03, interop 5 (tusd v2.10.1)" env TUS_PROTOCOL=ietf-draft-03 \
    TUS_SERVER_BIN="$tusd" TUS_SERVER_ARGS=-enable-experimental-protocol npm --prefix clients/js test
stage "tuspy (tusgate)" env TUS_SERVER_BIN="$tusgate" TUS_SERVER_ARGS=-allow-uploads-without-token \
    bash clients/python/run.sh
stage "tuspy (tusd v2.10.1)" env TUS_SERVER_BIN="$tusd" bash clients/python/run.sh
stage "granite-assets 0.1.7 end to end (tus 1.0, and the IETF draft: interop 8/9 raw, tus-js-client draft modes)" env TUSGATE_BIN="$tusgate" bash interop/granite/run.sh
stage "nginx differential (secure_link downloads)" env TUSGATE_BIN="$tusgate" bash interop/nginx/run.sh
stage "S3 end to end on moto and SeaweedFS (tus-js-client, the IETF draft, SIGKILL, S3 outage, two instances, expiry, trust, newest wins)" env TUSGATE_BIN="$tusgate" bash interop/s3/run.sh
stage "scale-out (3 instances on one bucket, SeaweedFS and moto: hopping requests, SIGKILL, SIGSTOP mid-PATCH, S3 outage, completion race)" env TUSGATE_BIN="$tusgate" bash interop/scaleout/run.sh
stage "chaos (resets, SIGKILL, full disk)" env TUSGATE_BIN="$tusgate" bash interop/chaos/run.sh
stage "durability (syscall order: every completed upload fsynced before its response)" env TUSGATE_BIN="$tusgate" bash interop/durability/run.sh
stage "deployment (nginx/ proxy for real, Dockerfile and compose statically)" env TUSGATE_BIN="$tusgate" bash interop/deploy/run.sh
stage "hooks (differential vs tusd v2.10.1, reject/ChangeFileInfo/StopUpload/endpoint down, tokens + hooks, granite's FastAPI handler under uvicorn)" \
    env TUSGATE_BIN="$tusgate" bash interop/hooks/run.sh
stage "tusd's own e2e tests, TestStopUpload and 7 more (tusd v2.10.1)" bash interop/hooks/tusd-e2e.sh "$tusd"
stage "tusd's own e2e tests, TestStopUpload and 7 more (tusgate)" bash interop/hooks/tusd-e2e.sh "$tusgate" -allow-uploads-without-token
stage "README quick start (scripts/try.sh, also before the server is up; the curl example)" bash scripts/try-smoke.sh "$tusgate"
stage "h2c (HTTP/2 prior knowledge)" bash scripts/h2c-smoke.sh "$tusgate"
stage "TLS (curl h1/h2, tls modes, tus-js-client in Chromium over https, SIGHUP reload, startup errors)" env TUSGATE_BIN="$tusgate" bash interop/tls/run.sh

echo
for name in "${passed[@]}"; do echo "  ok      $name"; done
for name in "${failed[@]}"; do echo "  FAILED  $name"; done
echo "stages: ${#passed[@]} passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
