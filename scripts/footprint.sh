#!/usr/bin/env bash
# Footprint of the release binary: stripped size, time from exec to the ready line, and RSS once
# idle after it. Usage: scripts/footprint.sh [runs]   (builds with `cargo build --release` first
# unless NO_BUILD=1)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
[ -n "${NO_BUILD:-}" ] || cargo build --release --locked -q
bin=target/release/streamcache
size=$(stat -c %s "$bin")
awk -v s="$size" 'BEGIN {printf "binary: %d bytes (%.1f MB)\n", s, s / 1e6}'
ready_ms=(); rss_kb=()
for _ in $(seq "$runs"); do
    fifo=$(mktemp -u); mkfifo "$fifo"
    start=$(date +%s%N)
    "$bin" --ephemeral --http 127.0.0.1:0 --resp 127.0.0.1:0 --log-level warn >"$fifo" 2>/dev/null &
    pid=$!
    read -r line <"$fifo"
    end=$(date +%s%N)
    case $line in "streamcache ready "*) ;; *) echo "unexpected first line: $line" >&2; exit 1 ;; esac
    ready_ms+=("$(( (end - start) / 1000 ))")
    sleep 2   # let start-up allocations settle before reading the idle RSS
    rss_kb+=("$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")")
    kill -TERM "$pid"; wait "$pid" || true
    rm -f "$fifo"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max() { printf '%s\n' "$@" | sort -n | tail -1; }
echo "ready: median $(median "${ready_ms[@]}") us, max $(max "${ready_ms[@]}") us over $runs runs"
echo "idle RSS: median $(median "${rss_kb[@]}") KiB, max $(max "${rss_kb[@]}") KiB"
