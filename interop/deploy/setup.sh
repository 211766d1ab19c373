#!/usr/bin/env bash
# Create (or reuse) interop/deploy/.venv and install requirements.txt into it (--no-deps: the
# file pins the complete set). Idempotent: reinstalls only when the venv is missing, its Python
# changed, or requirements.txt changed. Interpreter: $PYTHON, else python3 (3.10+).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || { echo "setup.sh: $PY not found (set PYTHON)" >&2; exit 1; }
want="$(sha256sum requirements.txt | cut -d' ' -f1) $("$PY" -c 'import sys; print(sys.version.split()[0])')"
stamp=.venv/.stamp
if [[ -x .venv/bin/python && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    exit 0
fi
rm -rf .venv
"$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
.venv/bin/python -c 'import yaml, compose_spec, dockerfile_parse, pydantic'
.venv/bin/hadolint --version >/dev/null
echo "$want" > "$stamp"
echo "setup.sh: .venv ready ($(.venv/bin/python --version), $(.venv/bin/hadolint --version))"
