#!/usr/bin/env python3
"""Medians of a bench/ab.sh run, old against new, as a Markdown table."""
import collections
import json
import statistics as st
import sys

# (workload, figure): the headline figures, and the server's CPU of the
# uploads (server_cpu_pct, 100 = one core, over the workload's time).
METRIC = [("retr", "x_raw"), ("stor", "x_raw"), ("stor", "MBps"),
          ("stor", "server_cpu_pct"), ("small_retr", "files_per_s"),
          ("small_stor", "files_per_s"), ("small_stor", "server_cpu_pct"),
          ("list", "ms"), ("mlsd", "ms")]
rows = [json.loads(line) for line in open(sys.argv[1] + "/results.jsonl")]
runs = collections.defaultdict(list)
for r in rows:
    for w, m in METRIC:
        if r["workload"] == w and m in r:
            runs[(w, m, r["server"])].append(r[m])
print("| workload | figure | old, by rep | new, by rep | median old | median new | new/old |")
print("|---|---|---|---|---|---|---|")
for w, m in METRIC:
    old, new = runs[(w, m, "old")], runs[(w, m, "new")]
    if old and new:
        mo, mn = st.median(old), st.median(new)
        fmt = lambda xs: ", ".join(f"{x:.3g}" for x in xs)
        print(f"| {w} | {m} | {fmt(old)} | {fmt(new)} | {mo:.4g} | {mn:.4g} | {mn / mo:.2f} |")
