#!/usr/bin/env bash
# A/B of two portcullis binaries in one sitting: the shared referee
# (../shared/bench/ftpbench.py, --quick sizes) against each, repetitions
# interleaved (A, B, A, B, ...) so that the machine's drift spreads over
# both; each run a fresh server started by bench/portcullis.sh (the same
# launcher as the side-by-side runs) on a fresh tmpfs root.
#   OLD=path/to/a NEW=path/to/b [REPS=3] [ONLY=workloads] [OUT=dir] bench/ab.sh
# OLD_USER_EXTRA / NEW_USER_EXTRA: lines added to the bench user's entry
# of each side (one binary with and without a quota: OLD=NEW=binary,
# NEW_USER_EXTRA='quota_bytes = "100G"'). OLD_LIMITS_EXTRA / NEW_LIMITS_EXTRA:
# lines added to [limits] of each side (NEW_LIMITS_EXTRA='hash_on_upload = "sha256"').
# Writes OUT/results.jsonl (one ftpbench line per workload and run, with
# "rep") and OUT/table.txt; summarise with bench/ab_summary.py OUT.
set -u
OLD=${OLD:?binary A} NEW=${NEW:?binary B}
OUT=${OUT:-/tmp/ab}
here=$(cd "$(dirname "$0")" && pwd)
BENCH=${BENCH:-$here/../../shared/bench/ftpbench.py}
mkdir -p "$OUT"; : > "$OUT/results.jsonl"
for rep in $(seq 1 "${REPS:-3}"); do
  for which in old new; do
    bin=$OLD; [ "$which" = new ] && bin=$NEW
    extra=${OLD_USER_EXTRA:-}; [ "$which" = new ] && extra=${NEW_USER_EXTRA:-}
    limits=${OLD_LIMITS_EXTRA:-}; [ "$which" = new ] && limits=${NEW_LIMITS_EXTRA:-}
    d=$(mktemp -d /dev/shm/ab.XXXX)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if pid=$(USER_EXTRA=$extra LIMITS_EXTRA=$limits PORTCULLIS_BIN=$bin bash "$here/portcullis.sh" "$port" "$d/root" "$d/state/pid"); then
      python3 "$BENCH" --port "$port" --user bench --password bench \
        --root "$d/root" --pid "$pid" --label "$which" --quick \
        --only "${ONLY:-retr,stor,small_retr,small_stor,list,mlsd}" 2>>"$OUT/table.txt" |
        sed "s/^{/{\"rep\": $rep, /" >> "$OUT/results.jsonl"
      kill "$pid"; wait "$pid" 2>/dev/null
    fi
    rm -rf "$d"
  done
done
