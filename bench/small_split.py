#!/usr/bin/env python3
"""Where the time of a 4 KiB transfer goes: the server's user and system
CPU per file, and the client's, for one session doing N small RETRs and
then N small STORs (ftplib, as the shared referee's small-file workloads:
TYPE I, PASV and the transfer, a new data connection each).

  small_split.py --port 2121 --user bench --password bench --root DIR \\
      --pidfile PIDFILE --label NAME [--files 2000]

One JSON line per direction: files_per_s, wall_us (per file), and
server_user_us, server_sys_us, client_user_us, client_sys_us per file.
The server's figures are counted in a cgroup of its own where the
machine allows (bench/servercpu.py; else its /proc process tree, read
before the session's QUIT, while a process-per-session server's session
process is still alive), so they hold what it spent on this session.
When wall_us is about the sum of the server's and the client's CPU, the
two take turns (one request at a time) and no server can make a file
take less than the client's own share.
"""
import argparse
import ftplib
import io
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("BENCH_DIR", os.path.join(HERE, "..", "..", "shared", "bench")))
import ftpbench  # noqa: E402  (the referee: its fixtures)
from servercpu import ServerCpu  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--pidfile", required=True)
    p.add_argument("--label", default="server")
    p.add_argument("--files", type=int, default=2000)
    a = p.parse_args()
    pid = int(open(a.pidfile).read().split()[0])
    d = os.path.join(a.root, "split")
    ftpbench.ensure_dir(a.root, d, clean=True)
    ftpbench.ensure_file(a.root, os.path.join(d, "f.bin"), 4096)
    payload = os.urandom(4096)
    with ServerCpu(pid) as cpu:
        run(a, cpu, payload)


def run(a, cpu, payload):
    c = ftplib.FTP()
    c.connect("127.0.0.1", a.port, timeout=30)
    c.login(a.user, a.password)
    for direction in ("small_retr", "small_stor"):
        s0, t0, w0 = cpu.read(), os.times(), time.perf_counter()
        for i in range(a.files):
            if direction == "small_retr":
                c.retrbinary("RETR split/f.bin", lambda b: None)
            else:
                c.storbinary(f"STOR split/u{i}.bin", io.BytesIO(payload))
        w1, t1, s1 = time.perf_counter(), os.times(), cpu.read()
        n = a.files
        per = lambda x: round(x / n * 1e6, 1)  # noqa: E731
        print(json.dumps({
            "server": a.label, "workload": direction + "_split",
            "files_per_s": round(n / (w1 - w0), 1), "wall_us": per(w1 - w0),
            "server_user_us": per(s1[0] - s0[0]), "server_sys_us": per(s1[1] - s0[1]),
            "client_user_us": per(t1.user - t0.user), "client_sys_us": per(t1.system - t0.system),
            "cpu_method": cpu.method,
        }), flush=True)
    c.quit()


if __name__ == "__main__":
    main()
