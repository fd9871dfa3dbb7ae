#!/usr/bin/env python3
"""Medians of a bench/hooks.sh run by variant, as a Markdown table, each
against the run without hooks."""
import collections
import json
import statistics as st
import sys

# The workload and the figure shown (stor twice: its MB/s, and its ratio
# to the raw loopback ceiling measured just before it, which cancels the
# machine's drift).
METRIC = [("small_stor", "files_per_s"), ("stor", "MBps"), ("stor", "x_raw"),
          ("small_retr", "files_per_s"), ("retr", "x_raw")]
VARIANTS = ["none", "filtered", "hook", "error", "silent", "spool-tmpfs", "spool-disk"]
rows = [json.loads(line) for line in open(sys.argv[1] + "/results.jsonl")]
runs = collections.defaultdict(list)
for r in rows:
    for w, m in METRIC:
        if w == r["workload"] and m in r:
            runs[(w, m, r["variant"])].append(r[m])
print("| workload | variant | by rep | median | / none |")
print("|---|---|---|---|---|")
for w, m in METRIC:
    base = runs.get((w, m, "none"))
    for v in VARIANTS:
        xs = runs.get((w, m, v))
        if not xs:
            continue
        med = st.median(xs)
        ratio = f"{med / st.median(base):.2f}" if base else ""
        by = ", ".join(f"{x:.4g}" for x in xs)
        print(f"| {w} ({m}) | {v} | {by} | {med:.4g} | {ratio} |")
