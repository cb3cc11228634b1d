#!/usr/bin/env bash
# The pusher-client peers test (tests/peers_pusher.rs) installs the shared harness with npm;
# Debian's own nodejs package ships without it.
set -euo pipefail
if ! command -v npm >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
fi
