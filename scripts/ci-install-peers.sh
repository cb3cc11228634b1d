#!/usr/bin/env bash
# Installs the real programs the `peers` tests drive, from Debian's packages and the npm registry.
# Idempotent: safe to run again on a machine that already has them.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pair in "tclsh:tcl" "redis-server:redis-server" "redis-benchmark:redis-tools" "node:nodejs" "chromium:chromium"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

# Peer-specific fetch steps live beside the tests that need them.
for extra in scripts/ci-peers.d/*.sh; do
    [ -e "$extra" ] || continue
    echo "running $extra"
    bash "$extra"
done
