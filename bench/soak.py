#!/usr/bin/env python3
"""Soak test: many clients upload and download for minutes while others
misbehave; then every file is checked against its checksum.

  python3 bench/soak.py [--minutes 3] [--good 16] [--bad 8] [--bin target/release/portcullis]

Starts its own portcullis on 127.0.0.1 (release build by default) with a
fresh root on /dev/shm. Good clients (from 127.0.0.1) loop: upload a random
file (1 KiB to 4 MiB, sometimes in two parts with REST), download it and
compare, resume a download, list (also by wildcard), set modification
times (MFMT), rename, delete some. Bad clients (from
127.0.0.2, so that the bans they earn do not hit the good ones) loop over:
garbage and overlong lines, wrong passwords, PASV without connecting,
uploads cut off mid-transfer, downloads abandoned, a byte at a time,
wildcard patterns built to make a backtracking matcher slow.

At the end: every file a good client kept must be on disk with its SHA-256,
no temporary upload files may be left, the server must still answer, and no
good-client operation may have failed. Exit status 0 only then. Prints the
figures (operations, bytes, errors, server RSS) for the README.
Traffic stays on loopback; every loop is bounded by the duration.
"""
import argparse, ftplib, hashlib, io, os, random, shutil, socket, struct, subprocess, sys, tempfile, threading, time

PASSWORD = "soak pass"


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}

    def add(self, k, n=1):
        with self.lock:
            self.c[k] = self.c.get(k, 0) + n


def good_client(i, args, deadline, stats, kept, errors):
    rnd = random.Random(i)
    seq = 0
    while time.time() < deadline:
        try:
            f = ftplib.FTP()
            f.connect("127.0.0.1", args.port, timeout=60)
            f.login("soak", PASSWORD)
            for _ in range(20):
                if time.time() >= deadline:
                    break
                seq += 1
                name = f"c{i}-{seq}.bin"
                size = rnd.choice([1024, 4096, 65536, 700_000, 4 << 20]) + rnd.randrange(1000)
                data = rnd.randbytes(size)
                if rnd.random() < 0.2 and size > 2000:
                    cut = size // 3
                    f.storbinary(f"STOR {name}", io.BytesIO(data[:cut]))
                    f.storbinary(f"STOR {name}", io.BytesIO(data[cut:]), rest=cut)
                    stats.add("resumed_uploads")
                else:
                    f.storbinary(f"STOR {name}", io.BytesIO(data))
                stats.add("uploads")
                stats.add("bytes_up", size)
                out = io.BytesIO()
                f.retrbinary(f"RETR {name}", out.write)
                if out.getvalue() != data:
                    errors.append(f"client {i}: {name} came back different")
                stats.add("downloads")
                stats.add("bytes_down", size)
                if size > 2000 and rnd.random() < 0.3:
                    off = rnd.randrange(size)
                    out = io.BytesIO()
                    f.retrbinary(f"RETR {name}", out.write, rest=off)
                    if out.getvalue() != data[off:]:
                        errors.append(f"client {i}: resumed download of {name} differs")
                    stats.add("resumed_downloads")
                r = rnd.random()
                if r < 0.3:
                    f.delete(name)
                    stats.add("deletes")
                elif r < 0.45:
                    new = f"r{i}-{seq}.bin"
                    f.rename(name, new)
                    kept[new] = hashlib.sha256(data).hexdigest()
                    stats.add("renames")
                else:
                    kept[name] = hashlib.sha256(data).hexdigest()
                if rnd.random() < 0.1:
                    f.nlst()
                    stats.add("listings")
                if rnd.random() < 0.1:
                    # Only this client's names match its pattern.
                    mine = f.nlst(f"c{i}-*")
                    if any(not n.startswith(f"c{i}-") for n in mine):
                        errors.append(f"client {i}: NLST c{i}-* gave {mine[:5]}")
                    stats.add("pattern_listings")
                if name in kept and rnd.random() < 0.1:
                    f.sendcmd(f"MFMT 20200101000000 {name}")
                    if f.sendcmd(f"MDTM {name}") != "213 20200101000000":
                        errors.append(f"client {i}: MFMT on {name} did not stick")
                    stats.add("mfmt")
            f.quit()
            stats.add("sessions")
        except Exception as e:  # any failure of a well-behaved client is a finding
            errors.append(f"client {i}: {type(e).__name__}: {e}")
            time.sleep(0.2)


def bad_client(i, args, deadline, stats):
    rnd = random.Random(1000 + i)
    src = ("127.0.0.2", 0)
    while time.time() < deadline:
        kind = rnd.choice(["garbage", "password", "pasv_idle", "cut_upload", "abandon_download", "slow", "glob"])
        try:
            if kind in ("garbage", "slow", "password"):
                s = socket.create_connection(("127.0.0.1", args.port), timeout=10, source_address=src)
                s.recv(512)
                if kind == "garbage":
                    s.sendall(rnd.randbytes(rnd.randrange(1, 20000)) + b"\r\n" + b"A" * 9000 + b"\r\n")
                elif kind == "password":
                    for _ in range(3):
                        s.sendall(b"USER soak\r\nPASS wrong\r\n")
                else:
                    for b in b"USER so":
                        s.send(bytes([b]))
                        time.sleep(0.3)
                        if time.time() >= deadline:
                            break
                s.close()
            else:
                f = ftplib.FTP(source_address=src)
                f.connect("127.0.0.1", args.port, timeout=10)
                f.login("soak", PASSWORD)
                if kind == "pasv_idle":
                    f.sendcmd("PASV")
                    f.close()
                elif kind == "glob":
                    # Patterns built to make a backtracking matcher slow.
                    f.nlst("*a" * 400 + "b")
                    f.nlst("[" * 300 + "*")
                    f.close()
                elif kind == "cut_upload":
                    conn = f.transfercmd(f"STOR bad{i}.bin")
                    conn.sendall(rnd.randbytes(300_000))
                    # Cut off: a reset, not a clean end of file, so the
                    # server must not keep a partial file.
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    f.sock.close()
                else:
                    names = [n for n in f.nlst() if n.startswith("c")]
                    if names:
                        conn = f.transfercmd(f"RETR {rnd.choice(names)}")
                        conn.recv(1000)
                        conn.close()
                    f.sock.close()
            stats.add("bad_" + kind)
        except (OSError, EOFError, ftplib.Error):
            stats.add("bad_" + kind)
        time.sleep(rnd.random() * 0.2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--good", type=int, default=16)
    ap.add_argument("--bad", type=int, default=8)
    ap.add_argument("--port", type=int, default=2199)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--bin", default=os.path.join(here, "..", "target", "release", "portcullis"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="portcullis-soak-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    root = os.path.join(work, "root")
    os.mkdir(root)
    h = subprocess.run([args.bin, "hash-password"], input=PASSWORD + "\n", capture_output=True, text=True, check=True).stdout.strip()
    cfg = os.path.join(work, "soak.toml")
    with open(cfg, "w") as c:
        c.write(f"""[server]
listen = ["127.0.0.1:{args.port}"]
allow_root = true
login_timeout = "10s"
[passive]
ports = "42000-42999"
accept_timeout = "5s"
[limits]
max_sessions = 2000
max_sessions_per_ip = 1000
max_login_failures = 5
ban_time = "5s"
data_timeout = "10s"
[[users]]
name = "soak"
password_hash = "{h}"
root = "{root}"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]
""")
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen([args.bin, "serve", "--config", cfg], stdout=subprocess.PIPE, stderr=log,
                              env=dict(os.environ, PORTCULLIS_LOG="warn"))
    server.stdout.readline()
    threading.Thread(target=server.stdout.read, daemon=True).start()
    rss_start = rss_kib(server.pid)
    stats, kept, errors = Stats(), {}, []
    deadline = time.time() + args.minutes * 60
    threads = [threading.Thread(target=good_client, args=(i, args, deadline, stats, kept, errors)) for i in range(args.good)]
    threads += [threading.Thread(target=bad_client, args=(i, args, deadline, stats)) for i in range(args.bad)]
    t0 = time.time()
    rss_peak = 0
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        rss_peak = max(rss_peak, rss_kib(server.pid) or 0)
        time.sleep(1)
    for t in threads:
        t.join()
    elapsed = time.time() - t0

    # Verification.
    bad_files = []
    for name, digest in kept.items():
        p = os.path.join(root, name)
        try:
            with open(p, "rb") as fh:
                if hashlib.sha256(fh.read()).hexdigest() != digest:
                    bad_files.append(name + " (content)")
        except OSError:
            bad_files.append(name + " (missing)")
    time.sleep(1)
    leftovers = [n for n in os.listdir(root) if n.startswith(".") or n.startswith("bad")]
    alive = server.poll() is None
    try:
        f = ftplib.FTP()
        f.connect("127.0.0.1", args.port, timeout=10)
        f.login("soak", PASSWORD)
        f.quit()
        answering = True
    except Exception as e:
        answering = False
        errors.append(f"server not answering at the end: {e}")
    rss_end = rss_kib(server.pid)
    server.terminate()
    server.wait(timeout=10)

    c = stats.c
    print(f"soak: {elapsed:.0f} s, {args.good} good + {args.bad} bad clients")
    print(f"  good: {c.get('sessions', 0)} sessions, {c.get('uploads', 0)} uploads ({c.get('resumed_uploads', 0)} resumed), "
          f"{c.get('downloads', 0)} downloads (+{c.get('resumed_downloads', 0)} resumed), {c.get('renames', 0)} renames, "
          f"{c.get('deletes', 0)} deletes, {c.get('pattern_listings', 0)} wildcard listings, {c.get('mfmt', 0)} MFMT, "
          f"{(c.get('bytes_up', 0) + c.get('bytes_down', 0)) / 1e9:.2f} GB moved")
    print("  bad:  " + ", ".join(f"{k[4:]} {v}" for k, v in sorted(c.items()) if k.startswith("bad_")))
    print(f"  verified {len(kept)} kept files: {len(bad_files)} wrong or missing; leftover temp/partial files: {len(leftovers)}")
    print(f"  good-client errors: {len(errors)}; server alive: {alive}, answering: {answering}")
    print(f"  server RSS: {rss_start} KiB at start, {rss_peak} KiB peak, {rss_end} KiB at end")
    for e in (errors + bad_files + leftovers)[:20]:
        print("   ", e)
    ok = not errors and not bad_files and not leftovers and alive and answering
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"  kept for inspection: {work}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
