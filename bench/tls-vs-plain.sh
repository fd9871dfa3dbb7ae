#!/usr/bin/env bash
# bench/tls-vs-plain.sh [--quick] [--reps N]: RETR and STOR of the big file
# (1 GiB; 256 MiB with --quick) over plain FTP and over FTPS (AUTH TLS,
# PROT P) against the same portcullis, alternating, and the TLS/plain ratio.
set -u
here=$(cd "$(dirname "$0")" && pwd)
shared=${BENCH_DIR:-$here/../../shared/bench}
quick="" reps=2
while [ $# -gt 0 ]; do case $1 in
  --quick) quick=--quick; shift;;
  --reps) reps=$2; shift 2;;
  *) echo "usage: $0 [--quick] [--reps N]" >&2; exit 2;;
esac; done
(cd "$here/.." && cargo build --release --locked -q) || exit 1
out="$here/results/$(date -u +%Y-%m-%dT%H%M%SZ)-tls-vs-plain"
mkdir -p "$out"
"$here/../target/release/portcullis" gen-cert --host localhost --out "$out/tls" >/dev/null
export TLS_CERT=$out/tls/cert.pem TLS_KEY=$out/tls/key.pem
root=${BENCH_ROOT:-/dev/shm/ftpbench/root}
pidfile=/tmp/ftpbench-state/portcullis-tls/pid
"$here/portcullis.sh" 2131 "$root" "$pidfile" >/dev/null || exit 1
for rep in $(seq "$reps"); do
  for mode in plain tls; do
    flag=""; [ $mode = tls ] && flag=--tls
    python3 "$shared/ftpbench.py" --port 2131 --user bench --password bench --root "$root" \
      --pidfile "$pidfile" --label "portcullis-$mode" $quick $flag --only retr,stor 2>>"$out/log" \
      | sed "s/^{/{\"rep\": $rep, /" >> "$out/results.jsonl"
  done
done
"$shared/peers/stop.sh" "$pidfile"
python3 - "$out/results.jsonl" <<'PY' | tee "$out/summary.md"
import json, statistics, sys
v = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "MBps" in r:
        v.setdefault((r["server"], r["workload"]), []).append(r["MBps"])
print("| workload | plain MB/s | FTPS (PROT P) MB/s | FTPS / plain |")
print("|---|---|---|---|")
for w in ("retr", "stor"):
    p = statistics.median(v.get(("portcullis-plain", w), [0]))
    t = statistics.median(v.get(("portcullis-tls", w), [0]))
    print(f"| {w} | {p:.0f} | {t:.0f} | {t / p if p else 0:.2f} |")
PY
