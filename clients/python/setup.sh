#!/usr/bin/env bash
# clients/python/.venv: CPython 3.12 with the pinned tuspy, pytest and requests (see scripts/python-venv.sh).
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/python-venv.sh" "$(dirname "${BASH_SOURCE[0]}")"
