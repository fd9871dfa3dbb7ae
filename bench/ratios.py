#!/usr/bin/env python3
"""portcullis against the best peer, per workload, from ftpbench JSON lines.

  ratios.py results.jsonl

Medians over repetitions per server, then for each figure the ratio
portcullis / best peer (throughput, files/s, sessions/s: higher is better)
or best peer / portcullis (milliseconds, KiB per session: lower is better),
so that above 1.00 always means portcullis is ahead.
"""
import json, statistics, sys

# (workload, key, higher_is_better)
FIGURES = [
    ("retr", "x_raw", True), ("retr", "MBps", True), ("retr_active", "MBps", True),
    ("stor", "MBps", True), ("stor", "x_raw", True),
    ("small_retr", "files_per_s", True), ("small_stor", "files_per_s", True),
    ("login", "ms", False), ("concurrent", "sessions_per_s", True), ("concurrent", "p99_ms", False),
    ("list", "ms", False), ("mlsd", "ms", False),
    ("idle", "KiB_per_session", False), ("idle", "PSS_KiB_per_session", False),
    # The server's CPU per GiB moved (its whole process tree): derived below
    # for the referee's big transfers (one Python client, one transfer at a
    # time, a login each), measured by bench/parallel.py for several curl
    # processes at once (less the same sessions' set-up).
    ("retr", "server_cpu_s_per_GiB", False), ("retr_active", "server_cpu_s_per_GiB", False),
    ("stor", "server_cpu_s_per_GiB", False),
    ("par_retr", "MBps", True), ("par_retr", "x_raw", True), ("par_retr", "server_cpu_s_per_GiB", False),
    ("par_stor", "MBps", True), ("par_stor", "x_raw", True), ("par_stor", "server_cpu_s_per_GiB", False),
]

import os

# Under the default AUTH=system the peers check a system password hash, as
# portcullis checks argon2id; pyftpdlib and unFTP compare plain text. Session
# set-up is compared at equal authentication cost (the rule), so for
# login and concurrent only the hashing peers count, unless AUTH=fast.
PLAIN_TEXT = {"pyftpdlib", "unftp"}
AUTH_FIGURES = {"login", "concurrent"}
fast = os.environ.get("AUTH") == "fast"

vals = {}
for fn in sys.argv[1:]:
    for line in open(fn):
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if "error" in r:
            continue
        # The referee's big transfers: server CPU over the wall time of the
        # workload (its raw transfers, when the server idles, included) and
        # the bytes of its FTP transfers.
        if r.get("workload") in ("retr", "retr_active", "stor") and "server_cpu_pct" in r \
                and r.get("bytes") and r.get("runs_MBps"):
            moved = r["bytes"] * len(r["runs_MBps"]) / (1 << 30)
            r["server_cpu_s_per_GiB"] = r["server_cpu_pct"] / 100 * r["wall_s"] / moved
        for k, v in r.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                vals.setdefault((r.get("server"), r.get("workload"), k), []).append(v)

servers = sorted({s for s, _, _ in vals})
peers = [s for s in servers if s != "portcullis"]
med = {k: statistics.median(v) for k, v in vals.items()}
if not fast:
    print("\nlogin and concurrent: against the peers that hash passwords (pyftpdlib and unFTP"
          " compare plain text; see the AUTH=fast run for those).")
print("\n| workload | portcullis | best peer | ratio (>1: portcullis ahead) |")
print("|---|---|---|---|")
for w, k, higher in FIGURES:
    mine = med.get(("portcullis", w, k))
    eligible = [p for p in peers if fast or w not in AUTH_FIGURES or p not in PLAIN_TEXT]
    theirs = [(med[(p, w, k)], p) for p in eligible if (p, w, k) in med and med[(p, w, k)] > 0]
    if mine is None or not theirs:
        continue
    best, who = max(theirs) if higher else min(theirs)
    if mine <= 0:
        continue
    ratio = mine / best if higher else best / mine
    fmt = (lambda x: f"{x:.2f}") if k in ("x_raw", "server_cpu_s_per_GiB") else (lambda x: f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}")
    print(f"| {w} {k} | {fmt(mine)} | {fmt(best)} ({who}) | {ratio:.2f} |")

if any((s, "retr", "server_cpu_s_per_GiB") in med for s in servers):
    print("\nretr/stor server_cpu_s_per_GiB come from the referee's /proc count, which misses"
          " session processes that exit unreaped into a parent's cutime (vsftpd's): read the"
          " par_ rows, counted in a cgroup (bench/servercpu.py), for those servers.")

for key, what in (("par_raw", "as many raw loopback streams, sendfile into a socket, read and"
                   " thrown away: RETR's ceiling"),
                  ("par_raw_write", "the same streams written into files in the root with"
                   " splice(2): STOR's ceiling")):
    raw = {s: med[(s, key, "MBps")] for s in servers if (s, key, "MBps") in med}
    if raw:
        print(f"\n{key} beside each server's parallel run ({what}), MB/s: "
              + ", ".join(f"{s} {v:.0f}" for s, v in sorted(raw.items())) + ".")

split = [(s, w) for s in servers for w in ("small_retr_split", "small_stor_split")
         if (s, w, "wall_us") in med]
if split:
    print("\nA 4 KiB transfer, microseconds per file (bench/small_split.py, medians): wall, the"
          " server's user and system CPU, the client's; when wall is about the sum, server and"
          " client take turns and the client's share bounds every server.\n")
    print("| server | transfer | files/s | wall | server user | server sys | client user | client sys |")
    print("|---|---|---|---|---|---|---|---|")
    for s, w in split:
        g = lambda k: med.get((s, w, k), float("nan"))  # noqa: E731
        print(f"| {s} | {w.split('_')[1].upper()} | {g('files_per_s'):.0f} | {g('wall_us'):.0f} |"
              f" {g('server_user_us'):.0f} | {g('server_sys_us'):.0f} | {g('client_user_us'):.0f} |"
              f" {g('client_sys_us'):.0f} |")
