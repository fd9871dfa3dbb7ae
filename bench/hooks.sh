#!/usr/bin/env bash
# What event hooks cost the session in one sitting: one release binary
# with no hook, with an upload hook to a black-hole HTTP receiver
# (bench/blackhole.py: accepts, answers 200, discards), to a receiver
# that answers 500 to everything (`error`: every event retried with
# backoff, then dropped) and to one that takes each request and never
# answers (`silent`: every attempt runs into the hook's timeout), and the
# 200 receiver with [events] spool_dir on tmpfs and on disk (each event
# and each upload's intent journalled, synced as server.fsync_uploads
# says), repetitions interleaved (none, hook, error, ..., none, ...) so
# that the machine's drift spreads over all of them; each run a fresh
# server (bench/portcullis.sh) on a fresh tmpfs root, the shared
# referee's --quick workloads (default: stor, one 256 MiB STOR, and
# small_stor, 300 x 4 KiB STOR in one session).
#   [BIN=target/release/portcullis] [REPS=3] [ONLY=stor,small_stor] [OUT=/tmp/hooks]
#   [DISK=/var/tmp] [VARIANTS="none hook error silent spool-tmpfs"] bash bench/hooks.sh
# VARIANTS may also name `filtered`: the hook with a paths filter that
# matches no upload (the session's cost of offering events, no delivery),
# and `spool-disk`.
#   python3 bench/hooks_summary.py OUT
# Writes OUT/results.jsonl (ftpbench lines with "rep" and "variant") and
# OUT/table.txt (the referee's tables) and OUT/receiver.txt (requests the
# receiver got per run: with `hook`, every upload delivered). `error` and
# `silent` runs stop with server.shutdown_grace = "3s": what their hooks
# still hold then is dropped (their stderr.REP.VARIANT says how many).
set -u
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../target/release/portcullis}
OUT=${OUT:-/tmp/hooks}
BENCH=${BENCH:-$here/../../shared/bench/ftpbench.py}
mkdir -p "$OUT"; : > "$OUT/results.jsonl"; : > "$OUT/receiver.txt"
# A free port outside the passive range (bench/portcullis.sh's 40000-40999).
free_port() {
  python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    if not 40000 <= p <= 40999: print(p); break'
}
for rep in $(seq 1 "${REPS:-3}"); do
  for variant in ${VARIANTS:-none hook error silent spool-tmpfs}; do
    d=$(mktemp -d /dev/shm/hooks.XXXX)
    hook_port=$(free_port)
    extra=""
    spool=""
    server_extra=""
    mode=200
    case $variant in
      error) mode=500; server_extra='shutdown_grace = "3s"' ;;
      silent) mode=silent; server_extra='shutdown_grace = "3s"' ;;
    esac
    case $variant in
      # The server's user (bench/portcullis.sh: bench, when root runs it)
      # reaches the spool it is given.
      spool-tmpfs) chmod 755 "$d"; spool=$d/spool ;;
      spool-disk) base=$(mktemp -d "${DISK:-/var/tmp}/hooks-spool.XXXX"); chmod 755 "$base"; spool=$base/spool ;;
    esac
    [ -n "$spool" ] && extra=$(printf '[events]\nspool_dir = "%s"\n' "$spool")
    if [ "$variant" != none ]; then
      extra=$(printf '%s\n[[events.hooks]]\nname = "bench"\non = ["upload"]\naction = "http"\nurl = "http://127.0.0.1:%s/hook"\nsecret = "bench"\n' "$extra" "$hook_port")
      # filtered: the hook hears uploads but its filter matches none (what
      # offering an event costs the session, without any delivery).
      [ "$variant" = filtered ] && extra=$(printf '%s\npaths = ["/never/**"]\n' "$extra")
      python3 "$here/blackhole.py" "$hook_port" "$mode" 2>> "$OUT/receiver.txt" &
      receiver=$!
    fi
    port=$(free_port)
    if pid=$(SERVER_EXTRA=$server_extra CONFIG_EXTRA=$extra PORTCULLIS_BIN=$BIN bash "$here/portcullis.sh" "$port" "$d/root" "$d/state/pid"); then
      python3 "$BENCH" --port "$port" --user bench --password bench \
        --root "$d/root" --pid "$pid" --label "$variant" --quick \
        --only "${ONLY:-stor,small_stor}" 2>>"$OUT/table.txt" |
        sed "s/^{/{\"rep\": $rep, \"variant\": \"$variant\", /" >> "$OUT/results.jsonl"
      # SIGTERM drains: the queue is delivered within the grace. The
      # server is not this shell's child (`wait` cannot): wait for its
      # exit, at most a minute, before the receiver goes.
      kill "$pid"
      for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    else
      tail -5 "$d/state/stderr" >&2
    fi
    if [ "$variant" != none ]; then
      kill "$receiver"; wait "$receiver" 2>/dev/null
      echo "rep $rep $variant" >> "$OUT/receiver.txt"
    fi
    cp "$d/state/stderr" "$OUT/stderr.$rep.$variant" 2>/dev/null
    rm -rf "$d"
    [ "$variant" = spool-disk ] && rm -rf "$base"
  done
done
