#!/usr/bin/env python3
"""Start the installed portcullis as its systemd unit would (root, the
unit's capability bounding set, no new privileges, a NOTIFY_SOCKET), with
CONFIG (the packaged config plus a user), and check: READY=1, the process
runs as user portcullis with no capabilities left, a wrong password gets
530, USER's upload lands in the xferlog and in /metrics, SIGTERM sends
STOPPING=1 and exits 0. Usage: package-smoke.py CONFIG USER PASSWORD."""

import ftplib
import io
import os
import pwd
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CAPS = "-all,+net_bind_service,+setuid,+setgid,+dac_read_search"
XFERLOG = "/var/log/portcullis/xferlog"


def fail(msg):
    print(f"package-smoke: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    config, user, password = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(path)
        notify.settimeout(20)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        log = open(os.path.join(tmp, "server.log"), "w+")
        server = subprocess.Popen(
            ["setpriv", "--no-new-privs", f"--bounding-set={CAPS}",
             "/usr/bin/portcullis", "serve", "--config", config],
            env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            run(server, notify, user, password)
        except BaseException:
            log.seek(0)
            print(log.read(), file=sys.stderr)
            raise
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()


def run(server, notify, user, password):
    # The start-up lines, read on a thread of their own so that the wait
    # for them is bounded.
    lines = queue.Queue()

    def read():
        for line in server.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    ftp_addr = metrics_addr = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            fail("the server ended before listening")
        if "listening on " in line and "implicit" not in line:
            ftp_addr = line.strip().split("listening on ")[1]
        if line.startswith("metrics at http://"):
            metrics_addr = line.strip()[len("metrics at http://"):].split("/")[0]
        if line.startswith("passive mode"):
            break
    if not ftp_addr or not metrics_addr:
        fail("no listening lines from the server")
    msg = notify.recv(1024).decode()
    if not msg.startswith("READY=1"):
        fail(f"first notification: {msg!r}")

    status = open(f"/proc/{server.pid}/status").read()
    uid = str(pwd.getpwnam("portcullis").pw_uid)
    uids = next(l for l in status.splitlines() if l.startswith("Uid:")).split()[1:]
    if uids != [uid] * 4:
        fail(f"runs as {uids}, not portcullis ({uid})")
    for cap in ("CapPrm:", "CapEff:"):
        value = next(l for l in status.splitlines() if l.startswith(cap)).split()[1]
        if int(value, 16) != 0:
            fail(f"{cap} {value}: capabilities kept after the drop")

    host, port = ftp_addr.rsplit(":", 1)
    ftp = ftplib.FTP()
    ftp.connect(host, int(port), timeout=10)
    try:
        ftp.login(user, password + "-wrong")
        fail("a wrong password was accepted")
    except ftplib.error_perm as e:
        if not str(e).startswith("530"):
            fail(f"wrong password: {e}")
    ftp.close()
    body = b"uploaded through the package\n"
    ftp = ftplib.FTP()
    ftp.connect(host, int(port), timeout=10)
    ftp.login(user, password)
    ftp.storbinary("STOR smoke.txt", io.BytesIO(body))
    ftp.quit()

    page = urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=10).read().decode()
    sample = 'portcullis_received_bytes_total{mode="passive",tls="no"}'
    got = [l.split()[-1] for l in page.splitlines() if l.startswith(sample + " ")]
    if got != [str(len(body))]:
        fail(f"{sample}: {got}, not {len(body)}")
    logged = [l for l in open(XFERLOG) if " /smoke.txt " in l and f" {user} " in l]
    if len(logged) != 1 or f" {len(body)} " not in logged[0] or f" {user} " not in logged[0]:
        fail(f"xferlog: {logged}")

    server.send_signal(signal.SIGTERM)
    msg = notify.recv(1024).decode()
    if not msg.startswith("STOPPING=1"):
        fail(f"after SIGTERM: {msg!r}")
    try:
        code = server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        fail("no exit within 30 s of SIGTERM")
    if code != 0:
        fail(f"exit status {code} after the drain")
    print("package-smoke: ok (READY, 530, upload in xferlog and /metrics, drop to portcullis, STOPPING, exit 0)")


if __name__ == "__main__":
    main()
