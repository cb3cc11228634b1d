#!/bin/bash
# Scripting throughput: EVAL, EVALSHA and FCALL of a one-INCR script, streamcache beside a
# redis-server (persistence off) on loopback, alternating per command, `redis-benchmark -c 50`
# at -P 1 and -P 16. Needs redis-server, redis-cli and redis-benchmark (Debian's redis-server
# and redis-tools) and a release build. Prints rps of both and the ratio.
# Usage: [SC_BIN=target/release/streamcache] [N=200000] scripts/bench-eval.sh
set -u
cd "$(dirname "$0")/.."
SC_BIN=${SC_BIN:-target/release/streamcache}
N=${N:-200000}
$SC_BIN --ephemeral --http 127.0.0.1:0 --resp 127.0.0.1:6391 > /dev/null 2>&1 &
SC=$!
redis-server --port 6392 --save "" --appendonly no > /dev/null 2>&1 &
RS=$!
# Both servers answer before the runs start (a previous run's server may still hold a port).
for port in 6391 6392; do
  for _ in $(seq 50); do redis-cli -p $port ping > /dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p $port ping > /dev/null 2>&1 || { echo "no server on port $port" >&2; kill $SC $RS; exit 1; }
done
SCRIPT="return redis.call('incr', KEYS[1])"
LIB=$'#!lua name=bench\nredis.register_function(\'incr\', function(keys, args) return redis.call(\'incr\', keys[1]) end)'
for port in 6391 6392; do
  redis-cli -p $port script load "$SCRIPT" > /dev/null
  redis-cli -p $port function load replace "$LIB" > /dev/null
done
SHA=$(redis-cli -p 6391 script load "$SCRIPT")
rps() { redis-benchmark -p $1 -n $N -c 50 -P $2 -q "${@:3}" 2>/dev/null | tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1; }
printf "%-8s %3s %12s %12s %6s\n" cmd P streamcache redis ratio
for P in 1 16; do
  for name in eval evalsha fcall; do
    case $name in
      eval) args=(EVAL "$SCRIPT" 1 counter);;
      evalsha) args=(EVALSHA $SHA 1 counter);;
      fcall) args=(FCALL incr 1 counter);;
    esac
    a=$(rps 6391 $P "${args[@]}"); b=$(rps 6392 $P "${args[@]}")
    printf "%-8s %3s %12s %12s %6.2f\n" $name $P $a $b $(echo "$a / $b" | bc -l)
  done
done
kill $SC $RS
wait $SC $RS 2> /dev/null
