#!/usr/bin/env python3
"""s3_rss.py PORT PID N MIB: N clients (threads) each STOR MIB MiB at once
to the FTP server on 127.0.0.1:PORT as bench/bench; prints the server's
VmRSS before and its peak (VmHWM) after, and the peak per upload."""
import ftplib, io, sys, threading, time

port, pid, n, mib = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def status(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])  # KiB
    raise SystemExit(f"no {field}")


data = bytes(range(256)) * (mib * 4096)
before = status("VmRSS")
errors = []
go = threading.Barrier(n)


def upload(i):
    try:
        f = ftplib.FTP()
        f.connect("127.0.0.1", port, timeout=300)
        f.login("bench", "bench")
        go.wait(timeout=120)
        f.storbinary(f"STOR rss{i}.bin", io.BytesIO(data), blocksize=1 << 20)
        f.delete(f"rss{i}.bin")
        f.quit()
    except Exception as e:  # reported below
        errors.append(f"{i}: {e}")


t0 = time.time()
threads = [threading.Thread(target=upload, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join(timeout=900)
peak = status("VmHWM")
print(f"{n} x {mib} MiB uploads in {time.time() - t0:.1f} s, {len(errors)} failed; "
      f"server RSS before {before / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB, "
      f"growth {(peak - before) / 1024 / n:.1f} MiB per upload (documented bound 26 MiB: three 8 MiB parts and 2 MiB of buffers)")
for e in errors[:5]:
    print("error", e)
