#!/usr/bin/env python3
"""Big transfers with a client that is not the bound: several curl
processes at once, each writing what it downloads to /dev/null or
uploading from a file on tmpfs, against any FTP server; and the same
number of raw loopback streams (sendfile into a socket, read and thrown
away) for the kernel's own ceiling.

  parallel.py --port 2121 --user bench --password bench --root DIR \\
      --pidfile PIDFILE --label NAME [--streams 4] [--size-mib 512] [--tls]

Prints one JSON line per workload, as the shared referee does:
  par_raw    N raw streams at once (no FTP): MBps, the kernel's ceiling
  par_retr   N curl downloads of one file at once: MBps, x_raw
  par_raw_write  N raw streams written into files in --root with
             splice(2) (no FTP): the ceiling for receiving and storing
  par_stor   N curl uploads at once: MBps, x_raw (over par_raw_write)
with server_cpu_s_per_GiB (the server's CPU, counted in a cgroup of its
own where the machine allows, bench/servercpu.py, so that session
processes that exit are counted too; over the GiB moved, less the CPU of the same
sessions' set-up without the transfer, par_setup: N curls that log in,
ask SIZE and quit, so that the password hash does not count as data
work), server_user_s and server_sys_s (the split, set-up included),
client_cpu_s_per_GiB (the curl processes', start-up included),
server_cpu_pct and
client_cpu_pct (100 = one core). --only retr or --only stor runs one
direction. x_raw is the figure over the par_raw
run measured just before it, so that the machine's drift cancels.
The files live in --root (fixture par.bin) and uploads are removed.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("BENCH_DIR", os.path.join(HERE, "..", "..", "shared", "bench")))
import ftpbench  # noqa: E402  (the referee: its fixtures)
from servercpu import ServerCpu  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30


def children_cpu():
    t = os.times()
    return t.children_user + t.children_system


def senders(path, n):
    """n listening sockets on loopback, each with a forked process that
    sends the file to whoever connects (sendfile); the sockets and pids."""
    listeners, pids = [], []
    for _ in range(n):
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        listeners.append(ls)
    for ls in listeners:
        pid = os.fork()
        if pid == 0:
            try:
                c, _ = ls.accept()
                with open(path, "rb") as f:
                    c.sendfile(f)
                c.close()
            finally:
                os._exit(0)
        pids.append(pid)
    return listeners, pids


def raw_run(path, n, receive):
    """n forked sendfile senders and n forked receivers, each running
    receive(socket, i); MB/s of all of them together."""
    listeners, pids = senders(path, n)
    t0 = time.perf_counter()
    receivers = []
    for i, ls in enumerate(listeners):
        port = ls.getsockname()[1]
        pid = os.fork()
        if pid == 0:
            try:
                receive(socket.create_connection(("127.0.0.1", port)), i)
            finally:
                os._exit(0)
        receivers.append(pid)
        ls.close()
    for pid in receivers + pids:
        os.waitpid(pid, 0)
    dt = time.perf_counter() - t0
    return n * os.path.getsize(path) / dt / 1e6


def raw_streams(path, n):
    """Raw loopback streams read 1 MiB at a time and thrown away: the
    kernel's ceiling for RETR."""
    def receive(s, _):
        buf = bytearray(MiB)
        while s.recv_into(buf):
            pass
    return raw_run(path, n, receive)


def raw_write_streams(path, n, dest):
    """Raw loopback streams written into new files in dest (on the root's
    file system) with splice(2) through a pipe, as a server's upload path
    may: the kernel's ceiling for receiving and storing."""
    def receive(s, i):
        r, w = os.pipe()
        try:
            import fcntl
            fcntl.fcntl(w, 1031, MiB)  # F_SETPIPE_SZ
        except OSError:
            pass
        fd = os.open(os.path.join(dest, f"raw-{os.getpid()}-{i}.bin"),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        while True:
            k = os.splice(s.fileno(), w, MiB)
            if not k:
                break
            while k:
                moved = os.splice(r, fd, k)
                if not moved:
                    raise OSError("splice into the file moved nothing")
                k -= moved
        os.close(fd)
    try:
        return raw_run(path, n, receive)
    finally:
        for f in os.listdir(dest):
            if f.startswith("raw-"):
                os.remove(os.path.join(dest, f))


def curl_base(a):
    base = ["curl", "-sS", "--fail", "--user", f"{a.user}:{a.password}", "--connect-timeout", "10",
            "--max-time", "600"]
    if a.tls:
        base += ["--ssl-reqd", "--insecure"]
    return base


def run_curls(cmds):
    """Start every command, wait for all; their combined wall time."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=700)
        if p.returncode != 0:
            errs.append(f"curl exit {p.returncode}: {err.decode(errors='replace').strip()[:160]}")
    dt = time.perf_counter() - t0
    if errs:
        raise RuntimeError(errs[0])
    return dt


def measure(a, cpu, name, go, ref=None, setup_cpu=0.0):
    """Run go() (returns moved bytes, wall seconds, extra fields) with the
    server's and the client's CPU accounted; print the JSON line."""
    time.sleep(0.3)
    s0, c0, u0 = cpu.total(), children_cpu(), cpu.read()
    try:
        moved, dt, extra = go()
        # Without a cgroup, a process-per-session server's sessions are
        # counted once the listener has reaped them.
        time.sleep(0.3)
        s1, c1, u1 = cpu.total(), children_cpu(), cpu.read()
        res = {"MBps": round(moved / dt / 1e6, 1), "bytes": moved, "streams": a.streams,
               "wall_s": round(dt, 2), "client_cpu_pct": round(100 * (c1 - c0) / dt, 1), **extra}
        if name == "par_setup":
            res = {"server_cpu_s": round(s1 - s0, 3), "streams": a.streams,
                   "wall_s": round(dt, 2)}
        elif not name.startswith("par_raw"):
            res["server_cpu_pct"] = round(100 * (s1 - s0) / dt, 1)
            # Less the sessions' set-up (login: a password hash each),
            # measured on its own just before.
            res["server_cpu_s_per_GiB"] = round(max(0.0, s1 - s0 - setup_cpu) / (moved / GiB), 3)
            # The client's too: on loopback, whoever pushes a segment pays
            # for its trip through TCP (see benchmarks.md, parallel RETR).
            res["client_cpu_s_per_GiB"] = round((c1 - c0) / (moved / GiB), 3)
            # The user and system split (clock ticks; set-up included).
            res["server_user_s"] = round(u1[0] - u0[0], 2)
            res["server_sys_s"] = round(u1[1] - u0[1], 2)
        if ref:
            res["x_raw"] = round(res["MBps"] / ref, 3)
        if not name.startswith("par_raw"):
            res["cpu_method"] = cpu.method
    except Exception as e:  # a server that cannot do it is a finding, not a crash
        res = {"error": f"{type(e).__name__}: {e}"[:240]}
    line = {"server": a.label, "workload": name, **res}
    print(json.dumps(line), flush=True)
    return line


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--root", required=True, help="the user's / on the file system")
    p.add_argument("--pid", type=int)
    p.add_argument("--pidfile")
    p.add_argument("--label", default="server")
    p.add_argument("--streams", type=int, default=4)
    p.add_argument("--size-mib", type=int, default=512, help="per stream")
    p.add_argument("--tls", action="store_true", help="explicit FTPS (AUTH TLS, PROT P)")
    p.add_argument("--only", choices=["retr", "stor"],
                   help="one direction only (with its par_raw and par_setup)")
    a = p.parse_args()
    if a.pidfile and not a.pid:
        a.pid = int(open(a.pidfile).read().split()[0])
    if not a.pid:
        p.error("--pid or --pidfile is needed (the server's CPU is the point)")
    size = a.size_mib * MiB
    src = os.path.join(a.root, "par.bin")
    ftpbench.ensure_file(a.root, src, size)
    ftpbench.warm(src)
    url = f"ftp://{a.host}:{a.port}"
    base = curl_base(a)
    raw = {}

    def go_raw():
        mbps = raw_streams(src, a.streams)
        raw["MBps"] = mbps
        return a.streams * size, a.streams * size / (mbps * 1e6), {}

    def go_raw_write():
        d = os.path.join(a.root, "par-raw")
        os.makedirs(d, exist_ok=True)
        mbps = raw_write_streams(src, a.streams, d)
        raw["write_MBps"] = mbps
        return a.streams * size, a.streams * size / (mbps * 1e6), {}

    def go_retr():
        dt = run_curls([base + ["-o", "/dev/null", f"{url}/par.bin"] for _ in range(a.streams)])
        return a.streams * size, dt, {}

    def go_stor():
        names = [f"par-up-{i}.bin" for i in range(a.streams)]
        for n in names:
            if os.path.exists(os.path.join(a.root, n)):
                os.remove(os.path.join(a.root, n))
        try:
            dt = run_curls([base + ["-T", src, f"{url}/{n}"] for n in names])
            for n in names:
                got = os.path.getsize(os.path.join(a.root, n))
                if got != size:
                    raise RuntimeError(f"server stored {got} bytes of {n}, expected {size}")
        finally:
            for n in names:
                try:
                    os.remove(os.path.join(a.root, n))
                except OSError:
                    pass
        return a.streams * size, dt, {}

    def go_setup():
        # The same sessions without the transfer: log in, SIZE, quit.
        dt = run_curls([base + ["-I", f"{url}/par.bin"] for _ in range(a.streams)])
        return 1, dt, {}

    with ServerCpu(a.pid) as cpu:
        if a.only != "stor":
            measure(a, cpu, "par_raw", go_raw)
            setup = measure(a, cpu, "par_setup", go_setup).get("server_cpu_s", 0.0)
            measure(a, cpu, "par_retr", go_retr, ref=raw.get("MBps"), setup_cpu=setup)
        if a.only == "retr":
            return
        measure(a, cpu, "par_raw", go_raw)
        if hasattr(os, "splice"):
            measure(a, cpu, "par_raw_write", go_raw_write)
        setup = measure(a, cpu, "par_setup", go_setup).get("server_cpu_s", 0.0)
        measure(a, cpu, "par_stor", go_stor, ref=raw.get("write_MBps") or raw.get("MBps"),
                setup_cpu=setup)
        measure(a, cpu, "par_raw", go_raw)

if __name__ == "__main__":
    main()
