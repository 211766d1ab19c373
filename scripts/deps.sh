#!/usr/bin/env bash
# Installs everything the test suite needs that a fresh machine lacks: Debian packages, tusd
# (built from the Go module proxy), the npm and PyPI packages of the client suites. Idempotent;
# fails loudly when something cannot be installed (a missing dependency is a failure).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need() { command -v "$1" >/dev/null || { echo "deps: $1 is required but not installed" >&2; exit 1; }; }
need cargo
need go
need node
need npm

# chromium: interop/tls drives Debian's build with playwright-core (no browser download).
# strace: interop/durability checks the order of tusgate's syncs in a trace.
apt_packages=(nginx-light curl openssl chromium strace)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash scripts/install-tusd.sh
(cd clients/js && npm ci --silent --no-audit --no-fund)
bash clients/python/setup.sh
bash interop/granite/setup.sh
bash interop/deploy/setup.sh
bash interop/s3/setup.sh
bash interop/hooks/setup.sh
bash interop/tls/setup.sh
