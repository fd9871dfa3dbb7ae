#!/usr/bin/env python3
"""Medians of a bench/cluster.sh run, without [cluster] (off) against with
(on), as a Markdown table; redis_commands is per run (the login workload
and the concurrent one together), heartbeats, refreshes and the commands
that scripts run included (OUT/commandstats-REP.txt breaks them down);
redis_per_session divides it by the sessions of both workloads."""
import collections
import json
import statistics as st
import sys

METRIC = [("login", "ms"), ("login", "p90_ms"),
          ("concurrent", "sessions_per_s"), ("concurrent", "p50_ms"),
          ("concurrent", "p99_ms"), ("concurrent", "errors"),
          ("concurrent", "server_cpu_pct"), ("concurrent", "sessions"),
          ("both", "redis_commands"), ("both", "redis_per_session")]
rows = [json.loads(line) for line in open(sys.argv[1] + "/results.jsonl")]
# One "both" row per run: the Redis commands of the run (less the INFO
# that read the count) over its sessions (sequential logins + concurrent).
both = collections.defaultdict(lambda: {"workload": "both", "redis_commands": 0, "n": 0})
for r in rows:
    b = both[(r["server"], r["rep"])]
    b["server"] = r["server"]
    b["redis_commands"] = max(r.get("redis_commands", 1) - 1, 0)
    b["n"] += r.get("n", 0) if r["workload"] == "login" else r.get("sessions", 0)
for b in both.values():
    b["redis_per_session"] = b["redis_commands"] / b["n"] if b["n"] else 0
rows += list(both.values())
runs = collections.defaultdict(list)
for r in rows:
    for w, m in METRIC:
        if r["workload"] == w and m in r:
            runs[(w, m, r["server"])].append(r[m])
print("| workload | figure | off, by rep | on, by rep | median off | median on | on/off |")
print("|---|---|---|---|---|---|---|")
for w, m in METRIC:
    off, on = runs[(w, m, "off")], runs[(w, m, "on")]
    if off and on:
        mo, mn = st.median(off), st.median(on)
        fmt = lambda xs: ", ".join(f"{x:.4g}" for x in xs)
        ratio = f"{mn / mo:.2f}" if mo else "-"
        print(f"| {w} | {m} | {fmt(off)} | {fmt(on)} | {mo:.4g} | {mn:.4g} | {ratio} |")
