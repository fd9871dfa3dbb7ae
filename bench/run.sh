#!/usr/bin/env bash
# bench/run.sh [--quick] [--reps N] [--out DIR] [--tls] [--phases "main idle parallel split"] [server ...] [-- ftpbench args]
#
# Runs the referee (../shared/bench/ftpbench.py) against portcullis and every
# installed peer (../shared/bench/peers: vsftpd proftpd pureftpd pyftpdlib
# unftp) in one sitting, repetitions interleaved so the machine's drift is
# spread over all servers, then prints the referee's summary and a table of
# ratios: portcullis against the best peer on each workload. The
# "parallel" phase (bench/parallel.py) moves big files with several curl
# processes at once, a client that is not the bound, beside as many raw
# loopback streams, and reports each server's CPU seconds per GiB; the
# "split" phase (bench/small_split.py) splits a 4 KiB transfer's time into
# the server's and the client's user and system CPU.
# Install the peers first with ../shared/bench/peers/setup.sh (as root).
set -u
here=$(cd "$(dirname "$0")" && pwd)
shared=${BENCH_DIR:-$here/../../shared/bench}
peers=$shared/peers
quick="" reps=3 tls="" phases="main idle parallel split" out="$here/results/$(date -u +%Y-%m-%dT%H%M%SZ)" servers=() extra=()
while [ $# -gt 0 ]; do case $1 in
  --quick) quick=--quick; shift;;
  --reps) reps=$2; shift 2;;
  --out) out=$2; shift 2;;
  --tls) tls=--tls; shift;;
  --phases) phases=$2; shift 2;;
  --) shift; extra=("$@"); break;;
  *) servers+=("$1"); shift;;
esac; done
[ -f "$shared/ftpbench.py" ] || { echo "no referee at $shared (set BENCH_DIR)" >&2; exit 2; }
# NO_BUILD=1: the release binary as it is (a sitting of the same build).
[ -n "${NO_BUILD:-}" ] || (cd "$here/.." && cargo build --release --locked -q) || exit 1
if [ ${#servers[@]} -eq 0 ]; then
  servers=(portcullis)
  [ -x /opt/peers/vsftpd/usr/sbin/vsftpd ] && servers+=(vsftpd)
  [ -d /opt/peers/proftpd-core/usr ] && servers+=(proftpd)
  command -v pure-ftpd >/dev/null && servers+=(pureftpd)
  python3 -c 'import pyftpdlib' 2>/dev/null && servers+=(pyftpdlib)
  [ -x /opt/peers/unftp/bin/unftp ] && servers+=(unftp)
fi
if [ -n "$tls" ] && [ -z "${TLS_CERT:-}" ]; then
  "$here/../target/release/portcullis" gen-cert --host localhost --host 127.0.0.1 --out "$out/tls" >/dev/null
  chmod 0644 "$out/tls/key.pem"   # the peers read it after dropping root
  export TLS_CERT=$out/tls/cert.pem TLS_KEY=$out/tls/key.pem
fi
root=${BENCH_ROOT:-/dev/shm/ftpbench/root}
mkdir -p "$out" "$root"
echo "# out=$out root=$root reps=$reps quick=${quick:-no} tls=${tls:-no} servers=${servers[*]}" >&2
for rep in $(seq "$reps"); do
  i=0
  for s in "${servers[@]}"; do
    port=$((2121 + i)); i=$((i + 1))
    pidfile=/tmp/ftpbench-state/$s/pid
    if [ "$s" = portcullis ]; then launch=$here/portcullis.sh; else launch=$peers/$s.sh; fi
    # Idle sessions are measured on a freshly started server (as peers/run.sh does).
    for phase in $phases; do
      case $phase in main) sel=(--skip idle) ;; idle) sel=(--only idle) ;; *) sel=() ;; esac
      if ! "$launch" $port "$root" "$pidfile" >/dev/null; then
        echo "{\"rep\": $rep, \"server\": \"$s\", \"workload\": \"$phase\", \"error\": \"server did not start\"}" >> "$out/results.jsonl"
        continue
      fi
      echo "# rep $rep: $s $phase on port $port" >&2
      if [ $phase = split ]; then
        python3 "$here/small_split.py" --port $port --user bench --password bench --root "$root" \
          --pidfile "$pidfile" --label "$s" --files "$([ -n "$quick" ] && echo 300 || echo 2000)" \
          2> "$out/$s-rep$rep-$phase.log" | sed "s/^{/{\"rep\": $rep, /" >> "$out/results.jsonl"
      elif [ $phase = parallel ]; then
        # 4 x 512 MiB each way (4 x 128 MiB with --quick).
        python3 "$here/parallel.py" --port $port --user bench --password bench --root "$root" \
          --pidfile "$pidfile" --label "$s" --streams "${PAR_STREAMS:-4}" \
          --size-mib "${PAR_MIB:-$([ -n "$quick" ] && echo 128 || echo 512)}" $tls \
          2> "$out/$s-rep$rep-$phase.log" | sed "s/^{/{\"rep\": $rep, /" >> "$out/results.jsonl"
      else
        python3 "$shared/ftpbench.py" --port $port --user bench --password bench --root "$root" \
          --pidfile "$pidfile" --label "$s" $quick $tls "${sel[@]}" "${extra[@]}" 2> "$out/$s-rep$rep-$phase.log" \
          | sed "s/^{/{\"rep\": $rep, /" >> "$out/results.jsonl"
      fi
      "$peers/stop.sh" "$pidfile"
      sleep 1
    done
  done
done
python3 "$peers/summarize.py" "$out/results.jsonl" > "$out/summary.md"
python3 "$here/ratios.py" "$out/results.jsonl" > "$out/ratios.md"
cat "$out/summary.md" "$out/ratios.md"
