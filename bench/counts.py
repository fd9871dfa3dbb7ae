#!/usr/bin/env python3
"""counts.py: the server's own cost per operation, as counts that do not
depend on how busy the machine is (see bench/counts.sh, which runs it).

  counts.py instr    BIN  ROOT   instructions per LIST/NLST/MLSD of a
                                 10,000-entry directory and per 4 KiB
                                 RETR and STOR (callgrind, server only)
  counts.py syscalls BIN  ROOT   system calls per operation (strace -c -f)
  counts.py idle     BIN  ROOT   RSS and PSS growth per idle logged-in
                                 session, plain and TLS (N sessions)

The server is started with bench/portcullis.sh (AUTH=fast: the password
hash is not what is measured). Instruction counts are zeroed after a
warm-up repetition of the operation and dumped after REPS more, with
callgrind_control, so the figure is the server's work per operation and
nothing of the client's. Standard library only.
"""
import ftplib
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ENTRIES = int(os.environ.get("ENTRIES", "10000"))
REPS = int(os.environ.get("REPS", "5"))
SMALL_REPS = int(os.environ.get("SMALL_REPS", "50"))
IDLE = int(os.environ.get("IDLE", "1000"))
PAYLOAD = os.urandom(4096)


def free_port():
    # Not one of the passive ports (41000-41999, below): the server
    # refuses a listener inside its passive range.
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not 41000 <= port <= 41999:
            return port
    raise RuntimeError("no free port outside 41000-41999")


def fixtures(root):
    many = os.path.join(root, "many")
    if not os.path.isdir(many) or len(os.listdir(many)) != ENTRIES:
        os.makedirs(many, exist_ok=True)
        for i in range(ENTRIES):
            open(os.path.join(many, f"entry-{i:05d}.dat"), "w").close()
    with open(os.path.join(root, "f4k.bin"), "wb") as f:
        f.write(PAYLOAD)


class Server:
    """bench/portcullis.sh under an optional wrapper (valgrind), stopped
    on exit."""

    def __init__(self, binary, root, wrap="", tls=None):
        self.state = tempfile.mkdtemp(prefix="counts-")
        self.port = free_port()
        env = dict(os.environ, PORTCULLIS_BIN=binary, AUTH="fast", WRAP=wrap,
                   WAIT_TENTHS="600", PASV_LO=str(41000), PASV_HI=str(41999))
        if tls:
            env.update(TLS_CERT=tls[0], TLS_KEY=tls[1])
        pidfile = os.path.join(self.state, "pid")
        subprocess.run(["bash", os.path.join(HERE, "portcullis.sh"), str(self.port), root,
                        pidfile], env=env, check=True, stdout=subprocess.DEVNULL)
        with open(pidfile) as f:
            self.pid = int(f.read())

    def stop(self):
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(600):
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(self.pid, signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()


def client(port, tls=False):
    c = ftplib.FTP_TLS() if tls else ftplib.FTP()
    if tls:
        c.context = ssl._create_unverified_context()
    c.connect("127.0.0.1", port, timeout=120)
    c.login("bench", "bench")
    if tls:
        c.prot_p()
    return c


def ops():
    """name -> (setup, one operation) on a logged-in client."""
    def lines(cmd):
        def go(c):
            n = [0]
            c.retrlines(cmd, lambda _: n.__setitem__(0, n[0] + 1))
            assert n[0] >= ENTRIES, (cmd, n[0])
        return go

    def retr(c):
        got = bytearray()
        c.retrbinary("RETR /f4k.bin", got.extend)
        assert len(got) == 4096

    def stor(c):
        import io
        c.storbinary("STOR /up4k.bin", io.BytesIO(PAYLOAD))

    into_many = lambda c: c.cwd("/many")
    binary = lambda c: c.voidcmd("TYPE I")
    return {
        "list": (into_many, lines("LIST"), REPS),
        "nlst": (into_many, lines("NLST"), REPS),
        "mlsd": (into_many, lines("MLSD"), REPS),
        "retr4k": (binary, retr, SMALL_REPS),
        "stor4k": (binary, stor, SMALL_REPS),
    }


def callgrind_total(pid, state, n):
    out = subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True,
                         text=True, check=True)
    files = sorted((f for f in os.listdir(state) if f.startswith("callgrind.out")),
                   key=lambda f: os.path.getmtime(os.path.join(state, f)))
    with open(os.path.join(state, files[-1])) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {files[-1]}: {out.stdout}")


def instr(binary, root):
    state = tempfile.mkdtemp(prefix="counts-cg-")
    wrap = (f"valgrind --tool=callgrind --callgrind-out-file={state}/callgrind.out.%p "
            "--dump-instr=no --collect-jumps=no -q")
    with Server(binary, root, wrap=wrap) as srv:
        for name, (setup, op, reps) in ops().items():
            c = client(srv.port)
            setup(c)
            op(c)  # warm-up: first use of each code path, caches
            subprocess.run(["callgrind_control", "-z", str(srv.pid)], check=True,
                           capture_output=True)
            for _ in range(reps):
                op(c)
            total = callgrind_total(srv.pid, state, reps)
            c.quit()
            print(f"{name}\tinstructions_per_op\t{total // reps}", flush=True)


def syscalls(binary, root):
    with Server(binary, root) as srv:
        for name, (setup, op, reps) in ops().items():
            c = client(srv.port)
            setup(c)
            op(c)
            log = os.path.join(srv.state, f"strace-{name}")
            st = subprocess.Popen(["strace", "-f", "-c", "-o", log, "-p", str(srv.pid)],
                                  stderr=subprocess.DEVNULL)
            # strace says nothing when attached: give it a moment per thread.
            time.sleep(1.0)
            for _ in range(reps):
                op(c)
            st.send_signal(signal.SIGINT)
            st.wait(timeout=60)
            c.quit()
            total = 0
            with open(log) as f:
                for line in f:
                    m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?total", line)
                    if m:
                        total = int(m.group(1))
            print(f"{name}\tsyscalls_per_op\t{total / reps:.1f}", flush=True)


def mem(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def idle(binary, root):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    certs = tempfile.mkdtemp(prefix="counts-tls-")
    subprocess.run([binary, "gen-cert", "--host", "127.0.0.1", "--out", certs], check=True,
                   stdout=subprocess.DEVNULL)
    tls = (os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem"))
    for label, use_tls in (("idle_plain", False), ("idle_tls", True)):
        with Server(binary, root, tls=tls) as srv:
            # One session first: what every session shares (the TLS
            # configuration, thread stacks, the allocator's arenas) is
            # then in the base.
            client(srv.port, use_tls).quit()
            time.sleep(0.5)
            base = mem(srv.pid)
            with ThreadPoolExecutor(16) as ex:
                conns = list(ex.map(lambda _: client(srv.port, use_tls), range(IDLE)))
            time.sleep(1.0)
            after = mem(srv.pid)
            with ThreadPoolExecutor(16) as ex:
                alive = sum(ex.map(lambda c: c.voidcmd("NOOP").startswith("200"), conns))
            for c in conns:
                c.sock.close()
            assert alive == IDLE, alive
            print(f"{label}\tKiB_per_session_rss\t{(after[0] - base[0]) / IDLE:.2f}")
            print(f"{label}\tKiB_per_session_pss\t{(after[1] - base[1]) / IDLE:.2f}",
                  flush=True)


def main():
    mode, binary, root = sys.argv[1:4]
    os.makedirs(root, exist_ok=True)
    root = os.path.abspath(root)
    fixtures(root)
    {"instr": instr, "syscalls": syscalls, "idle": idle}[mode](binary, root)


if __name__ == "__main__":
    main()
