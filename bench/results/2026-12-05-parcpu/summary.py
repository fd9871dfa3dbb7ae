import sys, json, statistics as st, collections
rows = [json.loads(l) for l in open(sys.argv[1])]
by = collections.defaultdict(list)
for r in rows:
    if r.get("workload") == "par_retr" and "MBps" in r: by[r["server"]].append(r)
raw = collections.defaultdict(list)
for r in rows:
    if r.get("workload") == "par_raw" and "MBps" in r: raw[r["server"]].append(r["MBps"])
for k, v in by.items():
    gib = v[0]["bytes"] / 2**30
    print(f"{k:14s} n={len(v)} MBps med {st.median(x['MBps'] for x in v):7.0f}  srv s/GiB med {st.median(x['server_cpu_s_per_GiB'] for x in v):.3f} "
          f"[{' '.join(str(x['server_cpu_s_per_GiB']) for x in v)}]  usr/sys med {st.median(x['server_user_s'] for x in v):.2f}/{st.median(x['server_sys_s'] for x in v):.2f}  "
          f"client s/GiB med {st.median(x['client_cpu_pct']/100*x['wall_s']/gib for x in v):.3f}  "
          f"server+client med {st.median(x['server_cpu_s_per_GiB'] + x['client_cpu_pct']/100*x['wall_s']/gib for x in v):.3f}  x_raw med {st.median(x['x_raw'] for x in v):.3f}")
