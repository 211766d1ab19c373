#!/usr/bin/env bash
# interop/deploy/.venv: CPython 3.12 with PyYAML, the compose spec validator, the Dockerfile
# parser and hadolint, pinned (see scripts/python-venv.sh).
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/../../scripts/python-venv.sh" "$here" 'import yaml, compose_spec, dockerfile_parse, pydantic'
"$here/.venv/bin/hadolint" --version >/dev/null
