#!/usr/bin/env bash
# interop/hooks/.venv: CPython 3.12 with the pinned set (pytest, requests, fastapi, uvicorn,
# granite-assets without boto3), see scripts/python-venv.sh. The check imports what the tests
# and the hook handlers under uvicorn need.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/python-venv.sh" "$(dirname "${BASH_SOURCE[0]}")" '
import fastapi, uvicorn, pytest, requests
from granite_assets import LocalNginxAssetRepository, build_asset_repository'
