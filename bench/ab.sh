#!/usr/bin/env bash
# A/B of two portcullis binaries in one sitting: the shared referee
# (../shared/bench/ftpbench.py, --quick sizes) against each, repetitions
# interleaved (A, B, A, B, ...) so that the machine's drift spreads over
# both; a fresh server and tmpfs root for every run.
#   OLD=path/to/a NEW=path/to/b [REPS=3] [ONLY=workloads] [OUT=dir] bench/ab.sh
# Writes OUT/results.jsonl (one ftpbench line per workload and run, with
# "rep") and OUT/table.txt; summarise with bench/ab_summary.py OUT.
set -u
OLD=${OLD:?binary A} NEW=${NEW:?binary B}
OUT=${OUT:-/tmp/ab}
BENCH=${BENCH:-$(dirname "$0")/../../shared/bench/ftpbench.py}
mkdir -p "$OUT"; : > "$OUT/results.jsonl"
HASH=$(printf 'bench\nbench\n' | "$NEW" hash-password 2>/dev/null | tail -1)
for rep in $(seq 1 "${REPS:-3}"); do
  for which in old new; do
    d=$(mktemp -d /dev/shm/ab.XXXX); mkdir -p "$d/root"
    cat > "$d/p.toml" <<TOML
[server]
listen = ["127.0.0.1:0"]
allow_root = true
[passive]
ports = "62000-62999"
[limits]
max_sessions = 5000
max_sessions_per_ip = 5000
[[users]]
name = "bench"
password_hash = "$HASH"
root = "$d/root"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]
TOML
    bin=$OLD; [ "$which" = new ] && bin=$NEW
    "$bin" serve --config "$d/p.toml" > "$d/log" 2>&1 & pid=$!
    for i in $(seq 1 100); do grep -q "listening on" "$d/log" && break; sleep 0.1; done
    port=$(grep -o "listening on [0-9.:]*" "$d/log" | head -1 | sed 's/.*://')
    python3 "$BENCH" --port "$port" --user bench --password bench \
      --root "$d/root" --pid $pid --label "$which" --quick \
      --only ${ONLY:-retr,stor,small_retr,small_stor,list,mlsd} 2>>"$OUT/table.txt" | sed "s/^{/{\"rep\": $rep, /" >> "$OUT/results.jsonl"
    kill $pid; wait $pid 2>/dev/null
    rm -rf "$d"
  done
done
