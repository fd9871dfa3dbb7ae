#!/usr/bin/env bash
# A longer run of the fleet in deploy/haproxy, as shipped: moto's S3
# server, two portcullis nodes (node.toml, rendered with envsubst) and
# HAProxy (haproxy.cfg) on loopback, as tests/integration/fleet.rs sets
# them up. Clients upload, download and compare through the balancer in
# passive mode for the given minutes while the nodes are restarted one
# after the other (SIGTERM drain, start again): a rolling restart under
# load. Exit status 0 only if no client operation failed and every file
# kept matches its SHA-256 when read back at the end.
#
# With Redis (the default; NO_REDIS=1 runs without): the nodes share
# their state through a redis-server on 127.0.0.1 ([cluster], node names
# node1 and node2), and two more things are in force through the restarts:
# a ban (a client from 127.0.3.1 that fails its logins is refused by
# whichever node it reaches, until the end) and a quota (two clients of
# the account `capped`, quota_bytes = 20000000, upload until refused with
# 552 and delete to make room; at the end its files hold no more than the
# quota, as the store's listing says).
#
#   bash bench/fleet-soak.sh [MINUTES (default 3)] [CLIENTS (default 8)]
#
# Needs: haproxy, moto_server (pip install 'moto[server]'), python3,
# envsubst (gettext-base), redis-server (unless NO_REDIS=1), a release
# build (built here unless PORTCULLIS_BIN names a binary). Everything runs
# on 127.0.0.30-32 (clients from 127.0.1.N, 127.0.3.1) and stops when the
# script ends, whatever happens; the logs are kept when the run fails (or
# with KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-3}
CLIENTS=${2:-8}
REDIS=$([ -n "${NO_REDIS:-}" ] && echo "" || echo redis-server)
for tool in haproxy moto_server python3 envsubst $REDIS; do
  command -v "$tool" >/dev/null || { echo "fleet-soak: $tool is not installed" >&2; exit 2; }
done
# PORTCULLIS_BIN: a binary already built (e.g. target/debug/portcullis).
BIN=${PORTCULLIS_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release --locked --quiet
  BIN=$PWD/target/release/portcullis
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  local status=$?
  # The nodes restarted by the run are not this shell's children.
  for f in "$WORK"/node*/pid; do [ -f "$f" ] && PIDS+=("$(cat "$f")"); done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  # A failed run keeps its logs (the nodes' server.log, haproxy.log).
  if [ -n "${KEEP:-}" ] || [ "$status" != 0 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# The names haproxy.cfg and node.toml use.
export FTP_PUBLIC_ADDR=127.0.0.30 BALANCER_ADDR=127.0.0.30 FTP_PORT=10021 FTPS_PORT=10990
export NODE1_ADDR=127.0.0.31 NODE2_ADDR=127.0.0.32 NODE1_PASSIVE=61000-61049 NODE2_PASSIVE=61050-61099
export NODE_METRICS_PORT=19121 HAPROXY_STATS_SOCKET=$WORK/haproxy.sock NODE_USER=nobody
export TLS_DIR=$WORK/tls S3_BUCKET=fleet-soak S3_ALLOW_HTTP=true FTP_USER=soak
PASSWORD="soak pass"
FTP_USER_HASH=$(printf '%s\n' "$PASSWORD" | "$BIN" hash-password)
export FTP_USER_HASH
"$BIN" gen-cert --host 127.0.0.30 --out "$TLS_DIR" >/dev/null

MOTO_PORT=19000
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT AWS_ACCESS_KEY_ID=soak AWS_SECRET_ACCESS_KEY=soak
for _ in $(seq 100); do
  python3 -c "import boto3; boto3.client('s3', region_name='us-east-1').create_bucket(Bucket='$S3_BUCKET')" 2>/dev/null && break
  sleep 0.2
done

REDIS_PORT=19379
if [ -n "$REDIS" ]; then
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --dir "$WORK" \
    >"$WORK/redis.log" 2>&1 &
  PIDS+=($!)
fi
CAPPED_HASH=$(printf '%s\n' "capped pass" | "$BIN" hash-password)

start_node() { # 1 or 2
  local n=$1 dir=$WORK/node$1
  mkdir -p "$dir"
  # The node opens its xferlog as NODE_USER (and reopens it after a
  # rotation): its directory is that user's.
  if [ "$(id -u)" = 0 ]; then chmod 711 "$WORK"; chown "$NODE_USER" "$dir"; fi
  NODE_ADDR=$(eval echo "\$NODE${n}_ADDR") NODE_PASSIVE=$(eval echo "\$NODE${n}_PASSIVE") \
    STATE_DIR=$dir envsubst <deploy/haproxy/node.toml >"$dir/portcullis.toml"
  if [ -n "$REDIS" ]; then
    # The fleet chapter's few lines, commented out in node.toml: a name
    # per node, the shared Redis (no password here).
    sed -i -e "s/^#node_name = .*/node_name = \"node$n\"/" -e 's/^#\[cluster\]$/[cluster]/' \
      -e "s|^#redis = .*|redis = \"redis://127.0.0.1:$REDIS_PORT/0\"|" "$dir/portcullis.toml"
    grep -q '^\[cluster\]$' "$dir/portcullis.toml" || { echo "fleet-soak: no [cluster] in node.toml" >&2; exit 2; }
    printf '\n[[users]]\nname = "capped"\npassword_hash = "%s"\nroot = "s3://%s/capped"\n' \
      "$CAPPED_HASH" "$S3_BUCKET" >>"$dir/portcullis.toml"
    printf 'permissions = ["read", "write", "delete"]\nquota_bytes = 20000000\n' >>"$dir/portcullis.toml"
  fi
  "$BIN" serve --config "$dir/portcullis.toml" >>"$dir/out.log" 2>>"$dir/server.log" &
  echo $! >"$dir/pid"
  PIDS+=($!)
}
start_node 1
start_node 2
haproxy -db -f deploy/haproxy/haproxy.cfg >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)

python3 - "$MINUTES" "$CLIENTS" "$PASSWORD" "$WORK" "$BIN" "$REDIS" <<'EOF'
import ftplib, hashlib, io, os, random, signal, socket, subprocess, sys, threading, time
minutes, clients, pw, work, binary = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
shared = bool(sys.argv[6])
host, port = "127.0.0.30", int(os.environ["FTP_PORT"])

def up(node):
    """HAProxy's view of ftp_nodes/nodeN (the runtime API)."""
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(os.environ["HAPROXY_STATS_SOCKET"])
        s.sendall(b"show stat\n")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        for line in out.decode().splitlines():
            f = line.split(",")
            if len(f) > 17 and f[0] == "ftp_nodes" and f[1] == node:
                return f[17] == "UP"
    except OSError:
        pass
    return False

def wait_up(node, limit=60):
    end = time.time() + limit
    while not up(node):
        if time.time() > end:
            sys.exit(f"{node} never came up")
        time.sleep(0.2)

wait_up("node1"); wait_up("node2")
stop = time.time() + minutes * 60
kept, errors, stats, lock = {}, [], {"up": 0, "down": 0, "bytes": 0, "sessions": 0, "closed_by_drain": 0}, threading.Lock()
drains = []

def client(n):
    rnd = random.Random(n)
    i = 0
    last = 0.0
    while time.time() < stop:
        # At most one new session a second per client: haproxy.cfg's rate
        # guard refuses an address past 30 new connections in 10 s (and
        # keeps refusing while it goes on trying).
        time.sleep(max(0.0, last + 1.0 - time.time()))
        last = time.time()
        try:
            f = ftplib.FTP()
            # A client address of its own: the stick table's rate guard
            # counts per address.
            f.connect(host, port, timeout=60, source_address=(f"127.0.1.{n + 1}", 0))
            f.login("soak", pw)
            with lock: stats["sessions"] += 1
            for _ in range(rnd.randint(1, 12)):
                if time.time() >= stop: break
                name = f"c{n}-{i}.bin"; i += 1
                data = rnd.randbytes(rnd.choice([1000, 100_000, 1_500_000]))
                f.storbinary("STOR " + name, io.BytesIO(data))
                got = bytearray(); f.retrbinary("RETR " + name, got.extend)
                if bytes(got) != data:
                    raise AssertionError(f"{name} differs")
                with lock:
                    kept[name] = hashlib.sha256(data).hexdigest()
                    stats["up"] += 1; stats["down"] += 1; stats["bytes"] += 2 * len(data)
            f.quit()
        except Exception as e:
            # A drain closes the sessions between transfers with 421 at
            # once (the client reconnects, to the other node); a command
            # sent as that happens may meet a reset. Anything else, or a
            # reset far from a drain, is an error.
            near = any(abs(time.time() - t) < 10 for t in drains)
            with lock:
                if (isinstance(e, ftplib.error_temp) and str(e).startswith("421")) or (
                        near and isinstance(e, (ConnectionError, EOFError))):
                    stats["closed_by_drain"] += 1
                else:
                    errors.append(f"client {n}: {e!r}")

QUOTA = 20_000_000
quota = {"refused": 0, "stored": 0}

def capped(n):
    """Uploads 1.5 MB files to the quota account until refused, then deletes one."""
    rnd = random.Random(1000 + n)
    i = 0
    mine = []
    while time.time() < stop:
        time.sleep(1.0)
        try:
            f = ftplib.FTP()
            f.connect(host, port, timeout=60, source_address=(f"127.0.4.{n + 1}", 0))
            f.login("capped", "capped pass")
            for _ in range(rnd.randint(1, 6)):
                if time.time() >= stop: break
                name = f"q{n}-{i}.bin"; i += 1
                try:
                    try:
                        f.storbinary("STOR " + name, io.BytesIO(rnd.randbytes(1_500_000)))
                    except (BrokenPipeError, ConnectionResetError):
                        # Refused mid-upload: the server closed the data
                        # connection under the client's writes; its reply
                        # (552) is still on the control connection.
                        f.getresp()
                        raise AssertionError("a cut upload was answered 2xx")
                    mine.append(name)
                    with lock: quota["stored"] += 1
                except ftplib.error_perm as e:
                    if not str(e).startswith("552"): raise
                    with lock: quota["refused"] += 1
                    if mine:
                        f.delete(mine.pop(rnd.randrange(len(mine))))
            f.quit()
        except Exception as e:
            near = any(abs(time.time() - t) < 10 for t in drains)
            with lock:
                if (isinstance(e, ftplib.error_temp) and str(e).startswith("421")) or (
                        near and isinstance(e, (ConnectionError, EOFError))):
                    stats["closed_by_drain"] += 1
                else:
                    errors.append(f"capped {n}: {e!r}")

ban = {"refused": 0, "let_in": 0}

def attacker():
    """Fails its logins until banned; then every connection must be refused (421)."""
    src = ("127.0.3.1", 0)
    banned = False
    tries = 0
    while time.time() < stop and tries < 600:
        time.sleep(1.0)
        tries += 1
        try:
            f = ftplib.FTP()
            welcome = f.connect(host, port, timeout=30, source_address=src)
            if banned:
                with lock: ban["let_in"] += 1
                errors.append(f"banned client let in: {welcome!r}")
                f.close(); continue
            try:
                f.login("soak", "wrong password")
            except ftplib.error_perm:
                pass
            f.close()
        except ftplib.error_temp as e:
            # 421 at connect: banned (or a drain's 421 before the greeting).
            if "failed logins" in str(e):
                banned = True
                with lock: ban["refused"] += 1
        except (ConnectionError, EOFError, socket.timeout):
            pass

threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
if shared:
    threads += [threading.Thread(target=capped, args=(n,)) for n in range(2)]
    threads.append(threading.Thread(target=attacker))
for t in threads: t.start()
def alive(pid):
    """Not ended (a zombie has; the shell may reap it at any moment)."""
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except OSError:
        return False

# The rolling restart: each node in turn drained with SIGTERM (its
# transfers finish, new sessions go to the other), then started again.
restarts = 0
while time.time() < stop - 20:
    for n in (1, 2):
        if time.time() >= stop - 20: break
        time.sleep(min(15, max(0, stop - 20 - time.time())))
        pid = int(open(f"{work}/node{n}/pid").read())
        drains.append(time.time())
        os.kill(pid, signal.SIGTERM)
        end = time.time() + 90
        while alive(pid):
            if time.time() > end: sys.exit(f"node{n} did not end its drain")
            time.sleep(0.2)
        p = subprocess.Popen([binary, "serve", "--config", f"{work}/node{n}/portcullis.toml"],
                             stdout=subprocess.DEVNULL, stderr=open(f"{work}/node{n}/server.log", "a"))
        open(f"{work}/node{n}/pid", "w").write(str(p.pid))
        wait_up(f"node{n}")
        restarts += 1
for t in threads: t.join(300)
if any(t.is_alive() for t in threads): errors.append("a client hung")
# Every file kept, read back through the balancer.
f = ftplib.FTP(); f.connect(host, port, timeout=60, source_address=("127.0.2.1", 0)); f.login("soak", pw)
bad = 0
for name, digest in sorted(kept.items()):
    h = hashlib.sha256(); f.retrbinary("RETR " + name, h.update)
    bad += h.hexdigest() != digest
f.quit()
if shared:
    # What the quota account holds, as the store lists it.
    import boto3
    s3 = boto3.client("s3", region_name="us-east-1")
    held = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=os.environ["S3_BUCKET"], Prefix="capped/"):
        held += sum(o["Size"] for o in page.get("Contents", []))
    if held > QUOTA:
        errors.append(f"the quota was passed: {held} bytes stored, quota {QUOTA}")
    if quota["refused"] == 0:
        errors.append("the quota never refused an upload (the run was too short to fill it)")
    if ban["refused"] == 0:
        errors.append("the failing client was never banned")
    print(f"quota: {quota['stored']} uploads kept, {quota['refused']} refused with 552, "
          f"{held} of {QUOTA} bytes held; ban: {ban['refused']} refusals, {ban['let_in']} let in")
print(f"fleet soak: {minutes} min, {clients} clients, {stats['sessions']} sessions, {stats['up']} uploads, "
      f"{stats['down']} downloads, {stats['bytes'] / 1e9:.2f} GB moved, {restarts} node restarts, "
      f"{stats['closed_by_drain']} sessions closed by a drain, {len(kept)} files verified, "
      f"{bad} mismatched, {len(errors)} errors")
for e in errors[:20]: print("  " + e)
sys.exit(1 if errors or bad else 0)
EOF
