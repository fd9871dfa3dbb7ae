#!/usr/bin/env python3
"""Where the CPU of one big transfer goes, server and store together.

    s3_cpu.py run --port P --label L --file F --pid NAME=PID [--pid ...]
    s3_cpu.py summary RESULTS.jsonl

`run` uploads F with curl (STOR), downloads it back (RETR) and checks the
bytes; for each it prints one JSON line: the wall time and the CPU seconds
(user + system) that curl and every named process (the FTP server, s3s-fs,
HAProxy) spent in it. On a machine of two cores, nothing can finish sooner
than the sum of those CPU seconds over two, so that sum shows how close a
server is to what the machine allows, and how much of it is the store's.
`summary` prints the medians per server and transfer as a Markdown table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def cpu_seconds(pid):
    """User + system CPU seconds of a running process, threads included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(argv, pids):
    """Run argv; its wall time, its CPU and what each pid spent meanwhile."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    proc = subprocess.Popen(argv)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv[0]} failed: {os.waitstatus_to_exitcode(status)}")
    cpu = {name: round(cpu_seconds(pid) - before[name], 3) for name, pid in pids.items()}
    cpu["client"] = round(usage.ru_utime + usage.ru_stime, 3)
    return wall, cpu


def run(args):
    pids = dict(p.split("=", 1) for p in args.pid)
    url = f"ftp://bench:bench@127.0.0.1:{args.port}/cpu-{args.label}.bin"
    size = os.path.getsize(args.file)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(args.file)) as tmp:
        back = os.path.join(tmp, "back.bin")
        for op, argv in (
            ("stor", ["curl", "-sS", "-T", args.file, url]),
            ("retr", ["curl", "-sS", "-o", back, url]),
        ):
            wall, cpu = timed(argv, pids)
            print(json.dumps({
                "server": args.label, "op": op, "bytes": size,
                "wall_s": round(wall, 3), "cpu_s": cpu,
                "cpu_total_s": round(sum(cpu.values()), 3),
            }), flush=True)
        if subprocess.call(["cmp", "-s", args.file, back]) != 0:
            sys.exit("the downloaded bytes differ from the uploaded ones")


def summary(args):
    rows = {}
    for line in open(args.results):
        r = json.loads(line)
        rows.setdefault((r["server"], r["op"]), []).append(r)
    names = sorted({n for rs in rows.values() for r in rs for n in r["cpu_s"]})
    print("| server | transfer | n | wall s | " + " | ".join(f"CPU s {n}" for n in names)
          + " | CPU s total | total / 2 cores |")
    print("|---|---|---|---|" + "---|" * (len(names) + 2))
    for (server, op), rs in sorted(rows.items()):
        med = lambda xs: statistics.median(xs)
        cells = [f"{med([r['cpu_s'].get(n, 0) for r in rs]):.2f}" for n in names]
        total = med([r["cpu_total_s"] for r in rs])
        print(f"| {server} | {op} | {len(rs)} | {med([r['wall_s'] for r in rs]):.2f} | "
              + " | ".join(cells) + f" | {total:.2f} | {total / 2:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--label", required=True)
    r.add_argument("--file", required=True)
    r.add_argument("--pid", action="append", default=[], help="NAME=PID")
    s = sub.add_parser("summary")
    s.add_argument("results")
    args = ap.parse_args()
    run(args) if args.cmd == "run" else summary(args)


if __name__ == "__main__":
    main()
