#!/bin/bash
# ab.sh OUT REPS VARIANT... where VARIANT is name=BIN[:ENV=VAL,ENV=VAL] or name=proftpd
# Each rep: every variant on a fresh server, par_retr only (parallel.py --only retr).
out=$1 reps=$2; shift 2
root=/dev/shm/ftpbench/root; wt=$(cd "$(dirname "$0")/../../.." && pwd); P=${BENCH_DIR:-$wt/../shared/bench}/peers
for rep in $(seq $reps); do
  for v in "$@"; do
    name=${v%%=*}; spec=${v#*=}; bin=${spec%%:*}; envs=""; [ "$spec" != "$bin" ] && envs=${spec#*:}
    pidfile=/tmp/pc/$name/pid
    if [ "$bin" = proftpd ] || [ "$bin" = vsftpd ]; then $P/$bin.sh 2131 $root $pidfile >/dev/null; port=2131
    else env $(echo "$envs" | tr ',' ' ') PORTCULLIS_BIN=$bin $wt/bench/portcullis.sh 2132 $root $pidfile >/dev/null; port=2132; fi
    python3 $wt/bench/parallel.py --port $port --user bench --password bench --root $root --pidfile $pidfile --label $name --only retr 2>>$out.log \
      | sed "s/^{/{\"rep\": $rep, /" >> $out
    $P/stop.sh $pidfile; sleep 1
  done
done
