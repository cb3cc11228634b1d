#!/usr/bin/env bash
# fetch-redis-suite.sh - get Redis 7.0.15's own test suite (tests/ and runtest) from Debian's
# source package, without vendoring it.
#
# Usage: scripts/fetch-redis-suite.sh [DEST]   (DEST defaults to ${REDIS_SUITE_DIR:-$HOME/.cache/streamcache/redis-suite})
#
# Adds a deb-src entry for `bookworm main` (same URIs and Signed-By as the machine's Debian apt
# source) in its own sources file, runs `apt-get update`, downloads the source package with
# `apt-get source --download-only redis`, and unpacks `redis_7.0.15.orig.tar.gz` into DEST.
# Idempotent: a DEST that already holds tests/test_helper.tcl is reused. Needs root (or sudo)
# for the apt steps. Prints the extracted directory (usable as REDIS_TESTS_DIR) on stdout.
set -euo pipefail

VERSION=7.0.15
DEST=${1:-${REDIS_SUITE_DIR:-$HOME/.cache/streamcache/redis-suite}}
SOURCES_FILE=/etc/apt/sources.list.d/streamcache-redis-src.sources

if [ -f "$DEST/tests/test_helper.tcl" ]; then
    echo "$DEST"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

if [ ! -f "$SOURCES_FILE" ]; then
    # Reuse the URIs and Signed-By of the existing Debian source (deb822 or one-line format).
    uris=""; signed=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uris=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
        signed=$(awk '/^Signed-By:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    uris=${uris:-http://deb.debian.org/debian}
    signed=${signed:-/usr/share/keyrings/debian-archive-keyring.gpg}
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: %s\n' \
        "$uris" "$signed" | $SUDO tee "$SOURCES_FILE" >/dev/null
fi

$SUDO apt-get update -qq -o Dir::Etc::sourcelist="$SOURCES_FILE" -o Dir::Etc::sourceparts=- \
    -o APT::Get::List-Cleanup=0 >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
( cd "$work" && apt-get source --download-only "redis=5:$VERSION-1~deb12u*" >&2 2>&1 \
    || apt-get source --download-only redis >&2 )
orig=$(ls "$work"/redis_"$VERSION".orig.tar.gz 2>/dev/null | head -n1 || true)
[ -n "$orig" ] || { echo "fetch-redis-suite: redis_$VERSION.orig.tar.gz not found in $(ls "$work")" >&2; exit 1; }

mkdir -p "$DEST"
tar -xzf "$orig" -C "$DEST" --strip-components=1 --wildcards '*/tests' '*/runtest'
[ -f "$DEST/tests/test_helper.tcl" ] || { echo "fetch-redis-suite: no tests/ in $orig" >&2; exit 1; }
echo "$DEST"
