#!/usr/bin/env bash
# bench/azure.sh [--mib M] [--reps N] [--quick] [--workloads W,W|none] [--rss-uploads N] [--rss-mib M] [--out DIR] [--azure 'KEY = VALUE']...
#
# Azure Blob Storage, beside bench/s3.sh: portcullis on an az:// root on
# Azurite (npm azurite@3.35.0, started here on 127.0.0.1 over a directory
# on tmpfs, BENCH_ROOT), against the store's own throughput. There is no
# Azure peer FTP server to compare with, so the targets are the store's:
# - the store alone: one blob of M MiB (default 1024) put in one Put Blob
#   and read in one GET, one stream each, signed with the account key (the
#   tests' blob.py, Python's urllib: a client of one stream, as an FTP
#   transfer is one, against Azurite, which is itself Node.js);
# - through portcullis: the same file STORed and RETRieved with curl
#   (blocks of block_size, upload_streams at once; ranged GETs of
#   download_chunk, download_streams at once), byte for byte;
# - portcullis's peak RSS (VmHWM) while N clients upload M MiB each at
#   once (default 20 x 100 MiB; bench/s3_rss.py), the store on disk
#   (RSS_ROOT).
# Prints MB/s and the ratios (portcullis / store; the target is 0.8 and
# above) of each repetition (each one the four transfers back to back, so
# the repetitions interleave), then the medians, with the date; writes
# DIR/azure.md (and the seconds of each rep, DIR/times.txt). --azure adds a line to
# portcullis's [azure] section (e.g. --azure 'block_size = "16M"').
# Then the shared referee's workloads (../shared/bench/ftpbench.py;
# --workloads, default small_retr,small_stor,list,mlsd as bench/s3.sh runs
# them beside the big transfers; none: skipped; --quick: its quick sizes,
# 300 small files, as the S3 figures were taken) against the same server,
# through bench/azure_referee.py: the referee's fixtures put into the
# container as blobs, small_stor's count taken from the container; results
# in DIR/results.jsonl and DIR/summary.md. --reps 0 skips the big transfers.
set -u
here=$(cd "$(dirname "$0")" && pwd)
blob_py=$here/../crates/portcullis/tests/integration/azure/blob.py
mib=1024 reps=1 rss_n=20 rss_mib=100 az_lines="" out="$here/results/azure-$(date -u +%Y-%m-%dT%H%M%SZ)"
workloads=small_retr,small_stor,list,mlsd quick=""
shared=${BENCH_DIR:-$here/../../shared/bench}
while [ $# -gt 0 ]; do case $1 in
  --quick) quick=--quick; shift;;
  --workloads) workloads=$2; shift 2;;
  --mib) mib=$2; shift 2;;
  --reps) reps=$2; shift 2;;
  --rss-uploads) rss_n=$2; shift 2;;
  --rss-mib) rss_mib=$2; shift 2;;
  --out) out=$2; shift 2;;
  --azure) az_lines="$az_lines
$2"; shift 2;;
  *) echo "unknown argument $1" >&2; exit 2;;
esac; done
command -v azurite-blob >/dev/null || { echo "azurite is not installed (npm install -g azurite@3.35.0)" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is not installed" >&2; exit 2; }
[ "$workloads" = none ] || [ -f "$shared/ftpbench.py" ] || { echo "no referee at $shared (set BENCH_DIR)" >&2; exit 2; }
mkdir -p "$out"
# PORTCULLIS_BIN: a binary already built (nothing is built then).
if [ -z "${PORTCULLIS_BIN:-}" ]; then
  (cd "$here/.." && cargo build --release --locked -q -p portcullis) || exit 1
  export PORTCULLIS_BIN=${CARGO_TARGET_DIR:-$here/../target}/release/portcullis
fi
account=devstoreaccount1
key=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
container=bench
data=${BENCH_ROOT:-/dev/shm/ftpbench-azure}
rss_store=${RSS_ROOT:-/var/tmp/ftpbench-azure-rss}
state=/tmp/ftpbench-state/azure; mkdir -p "$state"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$data" "$rss_store"; }
trap cleanup EXIT
# start_store DIR: Azurite over DIR, the container made; sets $endpoint
# and AZURE_SECTION (for bench/portcullis.sh).
start_store() {
  local log=$state/azurite-$(basename "$1").log
  mkdir -p "$1"
  azurite-blob --blobHost 127.0.0.1 --blobPort 0 --location "$1" --silent --disableTelemetry \
    --skipApiVersionCheck > "$log" 2>&1 &
  pids+=($!); store_pid=$!
  endpoint=""
  for _ in $(seq 100); do
    endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | tail -1)
    [ -n "$endpoint" ] && grep -q "listens on" "$log" && break; sleep 0.1
  done
  [ -n "$endpoint" ] || { echo "azurite did not start" >&2; exit 1; }
  endpoint=$endpoint/$account
  python3 "$blob_py" "$endpoint" $account "$key" create $container || exit 1
  export AZURE_SECTION="[azure]
account = \"$account\"
access_key = \"$key\"
endpoint = \"$endpoint\"
allow_http = true$az_lines"
}
secs() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$1" "$2"; }
start_store "$data/store"
[ "$reps" -gt 0 ] && head -c $((mib << 20)) /dev/urandom > "$data/big.bin"
"$here/portcullis.sh" 2121 "az://$container" "$state/portcullis.pid" > /dev/null || exit 1
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) out=$out store=$endpoint mib=$mib reps=$reps" | tee "$out/azure.md"
for rep in $(seq "$reps"); do
  t0=$(date +%s.%N)
  python3 "$blob_py" "$endpoint" $account "$key" put $container own.bin "$data/big.bin" || exit 1
  t1=$(date +%s.%N)
  python3 "$blob_py" "$endpoint" $account "$key" fetch $container own.bin "$data/own.bin" || exit 1
  rm -f "$data/own.bin"
  t2=$(date +%s.%N)
  curl -sS -T "$data/big.bin" ftp://bench:bench@127.0.0.1:2121/ftp.bin || exit 1
  t3=$(date +%s.%N)
  curl -sS ftp://bench:bench@127.0.0.1:2121/ftp.bin -o "$data/back.bin" || exit 1
  t4=$(date +%s.%N)
  cmp -s "$data/big.bin" "$data/back.bin" || { echo "round trip through portcullis differs" >&2; exit 1; }
  rm -f "$data/back.bin"
  echo "$(secs "$t0" "$t1") $(secs "$t1" "$t2") $(secs "$t2" "$t3") $(secs "$t3" "$t4")" >> "$out/times.txt"
  python3 - "$mib" "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "$(secs "$t2" "$t3")" "$(secs "$t3" "$t4")" <<'PY' | tee -a "$out/azure.md"
import sys
mib, put, get, stor, retr = int(sys.argv[1]), *map(float, sys.argv[2:])
mb = mib * 1048576 / 1e6
print(f"| {mib} MiB | store PUT {mb/put:.0f} MB/s | portcullis STOR {mb/stor:.0f} MB/s ({put/stor:.2f}x) "
      f"| store GET {mb/get:.0f} MB/s | portcullis RETR {mb/retr:.0f} MB/s ({get/retr:.2f}x) |")
PY
done
# The medians of the interleaved repetitions, and the median of each
# rep's own ratio (the store and portcullis measured back to back).
[ "$reps" -gt 0 ] && python3 - "$mib" "$out/times.txt" <<'PY' | tee -a "$out/azure.md"
import statistics as st, sys
mb = int(sys.argv[1]) * 1048576 / 1e6
reps = [list(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
put, get, stor, retr = (st.median(r[i] for r in reps) for i in range(4))
print(f"| median of {len(reps)} | store PUT {mb/put:.0f} MB/s | portcullis STOR {mb/stor:.0f} MB/s "
      f"(ratio of medians {put/stor:.2f}x, median ratio {st.median(r[0]/r[2] for r in reps):.2f}x) "
      f"| store GET {mb/get:.0f} MB/s | portcullis RETR {mb/retr:.0f} MB/s "
      f"(ratio of medians {get/retr:.2f}x, median ratio {st.median(r[1]/r[3] for r in reps):.2f}x) |")
PY
rm -f "$data/big.bin"
# The referee's workloads on the same server and container (its fixtures
# made in $data/referee and put into the container; big.bin, which these
# workloads do not read, at 1 MiB).
if [ "$workloads" != none ]; then
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) referee: $workloads ${quick:-full sizes}; load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/azure.md"
  mkdir -p "$data/referee"
  BENCH_DIR=$shared python3 "$here/azure_referee.py" "$endpoint" $account "$key" $container -- \
    --port 2121 --user bench --password bench --root "$data/referee" --big-mib 1 $quick \
    --pidfile "$state/portcullis.pid" --label portcullis-az --only "$workloads" \
    2> "$out/referee.log" > "$out/results.jsonl" || { cat "$out/referee.log" >&2; exit 1; }
  python3 "$shared/peers/summarize.py" "$out/results.jsonl" > "$out/summary.md"
  grep '^#' "$out/referee.log" | tee -a "$out/azure.md"
  tee -a "$out/azure.md" < "$out/summary.md"
fi
"$here/../../shared/bench/peers/stop.sh" "$state/portcullis.pid" 2>/dev/null || kill "$(cat "$state/portcullis.pid")"
if [ "$rss_n" -gt 0 ]; then
  start_store "$rss_store"
  "$here/portcullis.sh" 2121 "az://$container" "$state/rss.pid" > /dev/null || exit 1
  python3 "$here/s3_rss.py" 2121 "$(cat "$state/rss.pid")" "$rss_n" "$rss_mib" | tee -a "$out/azure.md"
  kill "$(cat "$state/rss.pid")"
fi
