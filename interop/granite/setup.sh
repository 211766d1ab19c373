#!/usr/bin/env bash
# interop/granite/.venv: CPython 3.12 (granite-assets needs it) with the pinned set, installed
# --no-deps so boto3 (only for granite's S3 backend) stays out; the check proves the local
# backend still imports without it (see scripts/python-venv.sh).
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/python-venv.sh" "$(dirname "${BASH_SOURCE[0]}")" '
import importlib.util as u
assert u.find_spec("boto3") is None
from granite_assets import LocalNginxAssetRepository, build_asset_repository'
