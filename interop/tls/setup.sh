#!/usr/bin/env bash
# interop/tls/node_modules: tus-js-client 4.3.1 (its browser bundle is loaded into the page) and
# playwright-core, pinned by package-lock.json. Chromium itself is Debian's `chromium` package
# (scripts/deps.sh installs it): `npx playwright install` would download a browser build, which
# this project never does.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
npm ci --silent --no-audit --no-fund
[[ -x /usr/bin/chromium ]] || { echo "interop/tls: /usr/bin/chromium is missing (apt-get install chromium)" >&2; exit 1; }
