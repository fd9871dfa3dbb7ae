#!/usr/bin/env bash
# bench/azure_retr_ab.sh REPS BEFORE_BIN AFTER_BIN [MIB]
#
# RETR from an az:// root against the store's own GET, and two builds of
# portcullis against each other, on a shared (noisy) machine: one Azurite
# (npm azurite@3.35.0, on tmpfs) with one blob of MIB MiB (default 256),
# two servers on it (bench/portcullis.sh, ports 2124 and 2125). Each
# repetition runs, in an order rotated from one repetition to the next:
# the store's own GET (the tests' blob.py, one stream, to /dev/null), a
# RETR through BEFORE_BIN and one through AFTER_BIN (curl, to /dev/null),
# each with its seconds and the server's CPU (utime + stime, in ticks).
# Prints every line, then the medians and the median of each
# repetition's ratio to the store's GET (above 1: faster than the store's
# one-stream GET). For a fixed machine-independent figure, run perf stat
# -e task-clock,page-faults -p PID on each server meanwhile.
set -u
[ $# -ge 3 ] || { echo "usage: $0 REPS BEFORE_BIN AFTER_BIN [MIB]" >&2; exit 2; }
reps=$1 before=$2 after=$3 mib=${4:-256}
here=$(cd "$(dirname "$0")" && pwd)
command -v azurite-blob >/dev/null || { echo "azurite is not installed (npm install -g azurite@3.35.0)" >&2; exit 2; }
blob_py=$here/../crates/portcullis/tests/integration/azure/blob.py
account=devstoreaccount1
key=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
data=${BENCH_ROOT:-/dev/shm/ftpbench-azure-ab}; rm -rf $data; mkdir -p $data/store
state=/tmp/ftpbench-state/azure-ab; rm -rf $state; mkdir -p $state/b $state/a
azurite-blob --blobHost 127.0.0.1 --blobPort 0 --location $data/store --silent --disableTelemetry --skipApiVersionCheck > $state/azurite.log 2>&1 &
apid=$!
trap 'kill $apid 2>/dev/null; for s in a b; do [ -f $state/$s/p.pid ] && kill $(cat $state/$s/p.pid) 2>/dev/null; done; rm -rf $data' EXIT
for _ in $(seq 100); do endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' $state/azurite.log | tail -1); [ -n "$endpoint" ] && grep -q "listens on" $state/azurite.log && break; sleep 0.1; done
endpoint=$endpoint/$account
python3 "$blob_py" "$endpoint" $account "$key" create bench || exit 1
export AZURE_SECTION="[azure]
account = \"$account\"
access_key = \"$key\"
endpoint = \"$endpoint\"
allow_http = true"
PORTCULLIS_BIN=$before "$here/portcullis.sh" 2124 "az://bench" "$state/b/p.pid" > /dev/null || exit 1
PORTCULLIS_BIN=$after "$here/portcullis.sh" 2125 "az://bench" "$state/a/p.pid" > /dev/null || exit 1
head -c $((mib << 20)) /dev/urandom > $data/big.bin
python3 "$blob_py" "$endpoint" $account "$key" put bench big.bin $data/big.bin || exit 1
rm -f $data/big.bin
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
now() { date +%s.%N; }
run() { # run WHICH -> "secs ticks"
  local t0 t1 c0 c1 pid
  case $1 in
    store) t0=$(now); python3 "$blob_py" "$endpoint" $account "$key" fetch bench big.bin /dev/null >&2 || return 1; t1=$(now); echo "$t0 $t1 0";;
    before|after)
      local port=2124 dir=b; [ $1 = after ] && port=2125 dir=a
      pid=$(cat $state/$dir/p.pid); c0=$(ticks $pid); t0=$(now)
      curl -sS ftp://bench:bench@127.0.0.1:$port/big.bin -o /dev/null || return 1
      t1=$(now); c1=$(ticks $pid); echo "$t0 $t1 $((c1 - c0))";;
  esac
}
# a warm-up of each
for w in store before after; do run $w > /dev/null; done
orders=("store before after" "before after store" "after store before")
for rep in $(seq $reps); do
  for w in ${orders[$(( (rep - 1) % 3 ))]}; do
    out=$(run $w) || { echo "rep $rep: $w failed; stopping (the lines so far count)" >&2; break 2; }
    read t0 t1 c <<< "$out"
    echo "$rep $w $(python3 -c "print(round($t1 - $t0, 3))") $c"
  done
done | tee $state/times.txt
python3 - $state/times.txt $mib <<'PY'
import statistics as st, sys, collections
t = collections.defaultdict(dict)
for l in open(sys.argv[1]):
    rep, w, s, c = l.split()
    t[int(rep)][w] = (float(s), int(c))
t = {k: v for k, v in t.items() if len(v) == 3}
mb = int(sys.argv[2]) * 1048576 / 1e6
for w in ("store", "before", "after"):
    secs = [r[w][0] for r in t.values()]
    line = f"{w}: median {st.median(secs):.3f} s ({mb / st.median(secs):.0f} MB/s)"
    if w != "store":
        line += (f", ratio to the store's GET: median of per-rep ratios "
                 f"{st.median(r['store'][0] / r[w][0] for r in t.values()):.2f}x, "
                 f"server CPU median {st.median(r[w][1] for r in t.values()) / 100:.2f} s")
    print(line, "| all:", " ".join(f"{s:.2f}" for s in secs))
PY
