#!/usr/bin/env bash
# Creates (or reuses) DIR/.venv on CPython 3.12 and installs DIR/requirements.txt into it with
# --no-deps (every requirements.txt here pins its complete set, which keeps optional
# dependencies such as granite-assets' boto3 out). Idempotent: reinstalls only when the venv is
# missing, on another Python, or requirements.txt changed. An optional CHECK is Python code run
# in the new venv to prove the install is usable.
#
#   scripts/python-venv.sh DIR [CHECK]          (PYTHON312=/path/to/python3.12 overrides)
set -euo pipefail
dir=$(cd "$1" && pwd)
check=${2:-}
py="${PYTHON312:-/root/.pyenv/versions/3.12.1/bin/python3.12}"
version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }
if [[ ! -x "$py" || "$(version "$py")" != "3.12" ]]; then
    echo "python-venv: CPython 3.12 not found at '$py' (set PYTHON312 to a python3.12 binary)" >&2
    exit 1
fi
venv="$dir/.venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$dir/requirements.txt" | cut -d' ' -f1)
if [[ -x "$venv/bin/python" && "$(version "$venv/bin/python")" == "3.12" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    exit 0
fi
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$dir/requirements.txt"
[[ -z "$check" ]] || "$venv/bin/python" -c "$check"
echo "$want" > "$stamp"
echo "python-venv: ${dir#"$PWD"/}/.venv ready ($("$venv/bin/python" --version))"
