#!/usr/bin/env bash
# What [cluster] costs: the shared referee's login and concurrent (200
# clients) workloads against one portcullis release binary without and
# with `[cluster] redis = ...` (and server.node_name), in one sitting,
# repetitions interleaved (off, on, then on, off, ...) so that the
# machine's drift spreads over both; each run a fresh server started by
# bench/portcullis.sh on a fresh tmpfs root. One redis-server on
# 127.0.0.1 (a free port, no persistence) serves every "on" run and is
# emptied before each; its command count before and after each run is
# recorded, so that the Redis calls per session can be read off, and its
# INFO commandstats after each "on" run (OUT/commandstats-REP.txt).
#   [REPS=3] [AUTH=fast] [CLIENTS=200] [DURATION=10] [LOGINS=50] [OUT=dir]
#   [PORTCULLIS_BIN=path] bash bench/cluster.sh
# Writes OUT/results.jsonl (one referee line per workload and run, with
# "rep" and "redis_commands") and OUT/summary.md (bench/cluster_summary.py:
# medians, on/off). Needs redis-server and redis-cli (Debian redis-server).
set -u
here=$(cd "$(dirname "$0")" && pwd)
BIN=${PORTCULLIS_BIN:-$here/../target/release/portcullis}
BENCH=${BENCH:-$here/../../shared/bench/ftpbench.py}
OUT=${OUT:-$here/results/cluster-$(date -u +%Y-%m-%d-%H%M)}
for tool in redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "SKIP $tool"; exit 2; }
done
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build --release --locked -p portcullis)" >&2; exit 2; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d /dev/shm/cluster-bench.XXXX)
rpid="" spid=""
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
rport=$(free_port)
redis-server --bind 127.0.0.1 --port "$rport" --save "" --appendonly no \
  --dir "$work" > "$work/redis.log" 2>&1 &
rpid=$!
for _ in $(seq 100); do
  [ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] && break
  sleep 0.1
done
[ "$(redis-cli -p "$rport" ping 2>/dev/null)" = PONG ] || { echo "redis-server did not answer; see $work/redis.log" >&2; exit 1; }
redis_commands() { redis-cli -p "$rport" info stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p'; }
mkdir -p "$OUT"; : > "$OUT/results.jsonl"; : > "$OUT/table.txt"
REPS=${REPS:-3}
for rep in $(seq 1 "$REPS"); do
  order="off on"; [ $((rep % 2)) = 0 ] && order="on off"
  for which in $order; do
    server_extra="" config_extra=""
    if [ "$which" = on ]; then
      server_extra='node_name = "bench1"'
      config_extra=$(printf '[cluster]\nredis = "redis://127.0.0.1:%s/0"\n' "$rport")
    fi
    redis-cli -p "$rport" flushall >/dev/null
    redis-cli -p "$rport" config resetstat >/dev/null
    d=$(mktemp -d "$work/run.XXXX")
    port=$(free_port)
    if spid=$(SERVER_EXTRA=$server_extra CONFIG_EXTRA=$config_extra PORTCULLIS_BIN=$BIN \
        bash "$here/portcullis.sh" "$port" "$d/root" "$d/state/pid"); then
      if [ "$which" = on ]; then
        # The node says it is alive at start: without its key, the run
        # would measure nothing shared.
        for _ in $(seq 50); do
          [ -n "$(redis-cli -p "$rport" --scan --pattern 'portcullis:node:*')" ] && break
          sleep 0.1
        done
        [ -n "$(redis-cli -p "$rport" --scan --pattern 'portcullis:node:*')" ] ||
          { echo "the node never reached Redis; see $d/state/stderr" >&2; exit 1; }
      fi
      before=$(redis_commands)
      python3 "$BENCH" --port "$port" --user bench --password bench \
        --root "$d/root" --pid "$spid" --label "$which" --only login,concurrent \
        --clients "${CLIENTS:-200}" --seconds "${DURATION:-10}" --logins "${LOGINS:-50}" \
        2>>"$OUT/table.txt" > "$d/lines.jsonl"
      after=$(redis_commands)
      [ "$which" = on ] && redis-cli -p "$rport" info commandstats > "$OUT/commandstats-$rep.txt"
      sed "s/^{/{\"rep\": $rep, \"redis_commands\": $((after - before)), /" "$d/lines.jsonl" >> "$OUT/results.jsonl"
      kill "$spid"; wait "$spid" 2>/dev/null; spid=""
    else
      echo "portcullis did not start ($which, rep $rep)" >&2
    fi
    rm -rf "$d"
  done
done
python3 "$here/cluster_summary.py" "$OUT" | tee "$OUT/summary.md"
