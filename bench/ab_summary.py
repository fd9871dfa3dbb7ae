#!/usr/bin/env python3
"""Medians of a bench/ab.sh run, old against new, as a Markdown table."""
import collections
import json
import statistics as st
import sys

METRIC = {"retr": "x_raw", "stor": "x_raw", "small_retr": "files_per_s",
          "small_stor": "files_per_s", "list": "ms", "mlsd": "ms"}
rows = [json.loads(line) for line in open(sys.argv[1] + "/results.jsonl")]
runs = collections.defaultdict(list)
for r in rows:
    m = METRIC.get(r["workload"])
    if m and m in r:
        runs[(r["workload"], r["server"])].append(r[m])
print("| workload | figure | old, by rep | new, by rep | median old | median new | new/old |")
print("|---|---|---|---|---|---|---|")
for w, m in METRIC.items():
    old, new = runs[(w, "old")], runs[(w, "new")]
    if old and new:
        mo, mn = st.median(old), st.median(new)
        fmt = lambda xs: ", ".join(f"{x:.3g}" for x in xs)
        print(f"| {w} | {m} | {fmt(old)} | {fmt(new)} | {mo:.4g} | {mn:.4g} | {mn / mo:.2f} |")
