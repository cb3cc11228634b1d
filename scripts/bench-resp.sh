#!/usr/bin/env bash
# bench-resp.sh - streamcache's RESP server beside redis-server, on loopback.
#
# Starts streamcache (release build) and redis-server (persistence off), then runs
#   redis-benchmark -t set,get,incr,lpush,hset,mset -n $N -c 50 -P {1,16}
# against each, alternating server per command, and prints rps, p50 and p99 for both and the
# ratio streamcache/redis per command. With ROUNDS=n (default 1) each command runs n paired
# rounds, redis-server going first in the even ones, and a line gives the median ratio. Then
# loads 1M keys with 100-byte values (and again with a TTL on each key) into fresh instances
# and prints RSS growth per key for both. Last, SET at
# P16 over a key space larger than `maxmemory` (EVICT_MB, default 64) under allkeys-lru, where
# every write of a new key evicts one, with the keys each server evicted.
#
# Needs redis-server and redis-benchmark/redis-cli (Debian packages `redis-server`, `redis-tools`).
# Environment: SC_BIN (streamcache binary, default target/release/streamcache), N (default 3000000), ROUNDS (1), KEYS_MEM (default 1000000), SC_PORT (16380), REDIS_PORT (16379),
# EVICT_MB (64), SKIP_MEM=1 / SKIP_RPS=1 / SKIP_EVICT=1 to leave a part out, DEPTHS (pipeline
# depths, default "1 16") and COMMANDS (default "set get incr lpush hset mset") to run fewer.
set -euo pipefail

N=${N:-3000000}
ROUNDS=${ROUNDS:-1}
KEYS_MEM=${KEYS_MEM:-1000000}
SC_PORT=${SC_PORT:-16380}
REDIS_PORT=${REDIS_PORT:-16379}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${SC_BIN:-$ROOT/target/release/streamcache}

for p in redis-server redis-benchmark redis-cli; do
    command -v "$p" >/dev/null || { echo "bench-resp: $p missing (apt-get install redis-server redis-tools)" >&2; exit 2; }
done
[ -x "$BIN" ] || (cd "$ROOT" && cargo build --release >&2)

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start_sc() {
    "$BIN" --ephemeral --http 127.0.0.1:0 --resp "127.0.0.1:$SC_PORT" --log-level warn >/dev/null 2>&1 &
    SC_PID=$!; PIDS+=("$SC_PID")
    wait_port "$SC_PORT"
}
start_redis() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --logfile /dev/null >/dev/null 2>&1 &
    REDIS_PID=$!; PIDS+=("$REDIS_PID")
    wait_port "$REDIS_PORT"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_port() {
    for _ in $(seq 1 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "bench-resp: nothing answers on port $1" >&2; exit 1
}
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

# One redis-benchmark run; prints "rps p50 p99".
bench() { # port test pipeline
    redis-benchmark -p "$1" -t "$2" -n "$N" -c 50 -P "$3" --csv 2>/dev/null \
        | awk -F'","' 'NR==2 { gsub(/"/, "", $0); split($0, f, ","); print f[2], f[5], f[7] }'
}

if [ "${SKIP_RPS:-0}" != 1 ]; then
    start_sc; start_redis
    printf '%-6s %3s | %12s %8s %8s | %12s %8s %8s | %6s\n' cmd P sc_rps sc_p50 sc_p99 redis_rps r_p50 r_p99 ratio
    for P in ${DEPTHS:-1 16}; do
        for t in ${COMMANDS:-set get incr lpush hset mset}; do
            ratios=()
            for round in $(seq 1 "$ROUNDS"); do
                # Even rounds run redis-server first, so neither server always goes first.
                if [ $((round % 2)) = 1 ]; then
                    read -r s_rps s_p50 s_p99 < <(bench "$SC_PORT" "$t" "$P")
                    read -r r_rps r_p50 r_p99 < <(bench "$REDIS_PORT" "$t" "$P")
                else
                    read -r r_rps r_p50 r_p99 < <(bench "$REDIS_PORT" "$t" "$P")
                    read -r s_rps s_p50 s_p99 < <(bench "$SC_PORT" "$t" "$P")
                fi
                ratio=$(awk -v a="$s_rps" -v b="$r_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
                ratios+=("$ratio")
                printf '%-6s %3s | %12s %8s %8s | %12s %8s %8s | %6s\n' "$t" "$P" "$s_rps" "$s_p50" "$s_p99" "$r_rps" "$r_p50" "$r_p99" "$ratio"
            done
            if [ "$ROUNDS" -gt 1 ]; then
                printf '%s\n' "${ratios[@]}" | sort -n | awk -v t="$t" -v P="$P" -v n="$ROUNDS" \
                    '{ r[NR] = $1 } END { m = (n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2);
                       printf "%-6s %3s | median of %d paired ratios: %.2f (%.2f-%.2f)\n", t, P, n, m, r[1], r[n] }'
            fi
        done
    done
    stop "$SC_PID"; stop "$REDIS_PID"
fi

if [ "${SKIP_MEM:-0}" != 1 ]; then
    gen() { # ttl-flag
        awk -v n="$KEYS_MEM" -v ttl="$1" 'BEGIN {
            v = sprintf("%0100d", 0);
            for (i = 0; i < n; i++) {
                k = sprintf("key:%012d", i);
                if (ttl) printf "*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n$2\r\nEX\r\n$5\r\n86400\r\n", length(k), k, v;
                else printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n", length(k), k, v;
            }
        }'
    }
    echo
    printf '%-22s | %14s %10s | %14s %10s | %6s\n' load sc_rss_kb sc_B/key redis_rss_kb r_B/key ratio
    for ttl in 0 1; do
        start_sc; start_redis
        sc0=$(rss_kb "$SC_PID"); r0=$(rss_kb "$REDIS_PID")
        gen "$ttl" | redis-cli -p "$SC_PORT" --pipe >/dev/null
        gen "$ttl" | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
        sc1=$(rss_kb "$SC_PID"); r1=$(rss_kb "$REDIS_PID")
        label="${KEYS_MEM} x 100B"
        if [ "$ttl" = 1 ]; then label="$label + TTL"; fi
        awk -v l="$label" -v s0="$sc0" -v s1="$sc1" -v r0="$r0" -v r1="$r1" -v n="$KEYS_MEM" 'BEGIN {
            sb = (s1 - s0) * 1024 / n; rb = (r1 - r0) * 1024 / n;
            printf "%-22s | %14d %10.0f | %14d %10.0f | %6.2f\n", l, s1, sb, r1, rb, (r1 > 0 ? s1 / r1 : 0) }'
        stop "$SC_PID"; stop "$REDIS_PID"
    done
fi

if [ "${SKIP_EVICT:-0}" != 1 ]; then
    EVICT_MB=${EVICT_MB:-64}
    # A key space of 5M random keys (-r) of 100-byte values: far more than fits under the
    # ceiling, so once full nearly every SET evicts.
    evict_bench() { # port
        redis-benchmark -p "$1" -t set -r 5000000 -d 100 -n "$N" -c 50 -P 16 --csv 2>/dev/null \
            | awk -F'","' 'NR==2 { gsub(/"/, "", $0); split($0, f, ","); print f[2], f[5], f[7] }'
    }
    evicted() { redis-cli -p "$1" info stats | tr -d '\r' | awk -F: '/^evicted_keys:/{print $2}'; }
    echo
    printf '%-22s | %12s %8s %8s %10s | %12s %8s %8s %10s | %6s\n' "SET at maxmemory" sc_rps sc_p50 sc_p99 sc_evicted redis_rps r_p50 r_p99 r_evicted ratio
    start_sc; start_redis
    for port in "$SC_PORT" "$REDIS_PORT"; do
        redis-cli -p "$port" config set maxmemory "$((EVICT_MB * 1024 * 1024))" >/dev/null
        redis-cli -p "$port" config set maxmemory-policy allkeys-lru >/dev/null
        evict_bench "$port" >/dev/null # fill to the ceiling
    done
    s0=$(evicted "$SC_PORT"); r0=$(evicted "$REDIS_PORT")
    read -r s_rps s_p50 s_p99 < <(evict_bench "$SC_PORT")
    read -r r_rps r_p50 r_p99 < <(evict_bench "$REDIS_PORT")
    s1=$(evicted "$SC_PORT"); r1=$(evicted "$REDIS_PORT")
    ratio=$(awk -v a="$s_rps" -v b="$r_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    printf '%-22s | %12s %8s %8s %10s | %12s %8s %8s %10s | %6s\n' "allkeys-lru ${EVICT_MB}MB" "$s_rps" "$s_p50" "$s_p99" "$((s1 - s0))" "$r_rps" "$r_p50" "$r_p99" "$((r1 - r0))" "$ratio"
    stop "$SC_PID"; stop "$REDIS_PID"
fi
