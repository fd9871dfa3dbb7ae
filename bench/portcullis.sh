#!/usr/bin/env bash
# portcullis.sh PORT ROOT PIDFILE: start the release build of portcullis the
# way the referee's peer launchers start theirs (../shared/bench/peers/NAME.sh):
# 127.0.0.1:PORT, user bench/bench (argon2id at the default cost; with
# AUTH=fast a near-free one, as the peers switch to a near-free check), ROOT
# served read-write, passive ports 40000-40999, logging
# at warn, limits raised for 1000+ idle sessions and 200 concurrent clients
# from one address, TLS_CERT/TLS_KEY for explicit FTPS. Started as root, it
# binds and then runs as the bench account. Writes the PID to PIDFILE.
# WRAP runs the server under a command (bench/counts.sh: valgrind), and
# WAIT_TENTHS is how long to wait for the port, in tenths of a second.
# USER_EXTRA: more lines in the bench user's entry (e.g. quota_bytes).
# LIMITS_EXTRA: more lines in [limits] (e.g. hash_on_upload = "sha256").
# CONFIG_EXTRA: more sections at the end of the file (bench/hooks.sh: [events]).
# SERVER_EXTRA: more lines in [server] (bench/cluster.sh: node_name).
set -eu
[ $# -eq 3 ] || { echo "usage: $0 PORT ROOT PIDFILE" >&2; exit 2; }
port=$1 root=$2 pidfile=$3
here=$(cd "$(dirname "$0")" && pwd)
bin=${PORTCULLIS_BIN:-$here/../target/release/portcullis}
state=$(dirname "$pidfile"); mkdir -p "$state"; state=$(cd "$state" && pwd)
# ROOT may be s3://BUCKET[/PREFIX], reached through S3_SECTION (an [s3]
# section, as bench/s3.sh gives it), or az://CONTAINER[/PREFIX], through
# AZURE_SECTION (an [azure] section, as bench/azure.sh gives it).
case $root in
  s3://*|az://*) local_root="" ;;
  *) mkdir -p "$root"; root=$(cd "$root" && pwd); local_root=$root ;;
esac
ulimit -n "$(ulimit -Hn)"
run_as=""
if [ "$(id -u)" = 0 ] && id bench >/dev/null 2>&1; then
  [ -n "$local_root" ] && chown bench:bench "$root"; run_as='user = "bench"'
elif [ "$(id -u)" = 0 ]; then
  run_as='allow_root = true'
fi
# AUTH=fast (as for the peers): a near-free argon2id (8 KiB, 1 pass) so that
# session set-up is compared without the hash; otherwise the default cost.
if [ "${AUTH:-system}" = fast ]; then
  hash=$(printf 'bench\n' | "$bin" hash-password --m-cost 8 --t-cost 1)
else
  hash=$(printf 'bench\n' | "$bin" hash-password)
fi
# FSYNC=off: no fsync before 226, as vsftpd and Pure-FTPd (equal durability).
FSYNC_LINE=""
[ "${FSYNC:-on}" = off ] && FSYNC_LINE='fsync_uploads = false'
tls=""
if [ -n "${TLS_CERT:-}" ]; then
  tls=$(printf '[tls]\ncert = "%s"\nkey = "%s"\n' "$TLS_CERT" "$TLS_KEY")
fi
cat > "$state/portcullis.toml" <<CONF
[server]
listen = ["127.0.0.1:$port"]
idle_timeout = "600s"
$run_as
$FSYNC_LINE
${SERVER_EXTRA:-}

[passive]
ports = "${PASV_LO:-40000}-${PASV_HI:-40999}"

[limits]
max_sessions = 20000
max_sessions_per_ip = 20000
max_login_failures = 0
${LIMITS_EXTRA:-}

[[users]]
name = "bench"
password_hash = "$hash"
root = "$root"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]
${USER_EXTRA:-}

$tls
${S3_SECTION:-}
${AZURE_SECTION:-}
${CONFIG_EXTRA:-}
CONF
PORTCULLIS_LOG=warn ${WRAP:-} "$bin" serve --config "$state/portcullis.toml" > "$state/stdout" 2> "$state/stderr" &
pid=$!
echo "$pid" > "$pidfile"
for _ in $(seq "${WAIT_TENTHS:-100}"); do
  if ! kill -0 "$pid" 2>/dev/null; then echo "portcullis exited; see $state/stderr" >&2; exit 1; fi
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then echo "$pid"; exit 0; fi
  sleep 0.1
done
echo "port $port not answering after $((${WAIT_TENTHS:-100} / 10)) s" >&2; exit 1
