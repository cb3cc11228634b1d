#!/usr/bin/env bash
# Wake-ups of an idle server: context switches per second (voluntary + involuntary, summed over
# every thread, by thread name) of the release binary with the default configuration, and of a
# `redis-server` (persistence off, default `hz 10`) measured the same way when one is installed.
# Usage: scripts/idle-wakeups.sh [seconds] [binary]   (builds with `cargo build --release`
# first unless a binary is given)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
bin=${2:-}
if [ -z "$bin" ]; then
    cargo build --release --locked -q
    bin=target/release/streamcache
fi

# switches PID: "tid name voluntary nonvoluntary" per thread
switches() {
    for task in /proc/"$1"/task/*; do
        printf '%s %s %s %s\n' "${task##*/}" "$(tr ' ' '_' <"$task/comm")" \
            "$(awk '/^voluntary_ctxt/ {print $2}' "$task/status")" \
            "$(awk '/^nonvoluntary_ctxt/ {print $2}' "$task/status")"
    done | sort
}

# measure LABEL PID: switches per second over $seconds, per thread name and in total
measure() {
    local before after
    before=$(switches "$2"); sleep "$seconds"; after=$(switches "$2")
    echo "$1:"
    join <(echo "$before") <(echo "$after") | awk -v s="$seconds" '
        { d = ($6 - $3) + ($7 - $4); total += d; by[$2] += d }
        END { for (k in by) if (by[k] > 0) printf "  %-18s %6.1f/s\n", k, by[k] / s
              printf "  %-18s %6.1f/s\n", "total", total / s }'
}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" --data-dir "$dir/data" --http 127.0.0.1:0 --resp 127.0.0.1:0 --log-level warn \
    >"$dir/out" 2>&1 &
pid=$!
sleep 3   # start-up work (cache rebuild, first flushes) is not idle time
measure "streamcache (idle, default configuration)" "$pid"
kill -TERM "$pid"; wait "$pid" || true

if command -v redis-server >/dev/null; then
    redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no \
        --daemonize no >/dev/null 2>&1 &
    rpid=$!
    sleep 3
    measure "redis-server (idle, hz 10)" "$rpid"
    kill -TERM "$rpid"; wait "$rpid" || true
fi
