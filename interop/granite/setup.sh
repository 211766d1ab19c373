#!/usr/bin/env bash
# Create (or reuse) interop/granite/.venv on CPython 3.12 and install requirements.txt into it
# with --no-deps: the file pins the complete set, and granite-assets' declared dependency (boto3,
# only for its S3 backend) is deliberately left out. Idempotent: reinstalls only when the venv is
# missing, on the wrong Python, or requirements.txt changed.
# Override the interpreter with PYTHON312=/path/to/python3.12.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PY="${PYTHON312:-/root/.pyenv/versions/3.12.1/bin/python3.12}"
if [[ ! -x "$PY" ]]; then
    echo "setup.sh: CPython 3.12 not found at '$PY' (set PYTHON312 to a python3.12 binary;" \
         "granite-assets requires Python >= 3.12)" >&2
    exit 1
fi
if [[ "$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "3.12" ]]; then
    echo "setup.sh: '$PY' is not CPython 3.12" >&2
    exit 1
fi

stamp=.venv/.requirements.sha256
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [[ -x .venv/bin/python ]] \
    && [[ "$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" == "3.12" ]] \
    && [[ "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    exit 0
fi

rm -rf .venv
"$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
# The --no-deps install is usable: boto3 is absent and granite's local backend still imports.
.venv/bin/python -c 'import importlib.util as u; assert u.find_spec("boto3") is None
from granite_assets import LocalNginxAssetRepository, build_asset_repository'
echo "$want" > "$stamp"
echo "setup.sh: .venv ready ($(.venv/bin/python --version), granite-assets $(.venv/bin/python -c 'import granite_assets; print(granite_assets.__version__)'))"
