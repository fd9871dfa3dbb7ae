"""CPU ms per context (server / client / other) and kernel path, from a
`perf record -a -g` taken over a par_retr run. The server is the process
(pid) with comm in SERVER_COMMS that ran code from a binary whose path
contains SERVER_DSO (other servers of the same name on the machine are
left out); the client is every curl.
  perf_contexts.py PERF.DATA SERVER_COMMS SERVER_DSO"""
import sys, subprocess, collections
data, server, dso = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
out = subprocess.run(["perf","script","-i",data,"-F","comm,pid,tid,period,ip,sym,dso"],capture_output=True,text=True).stdout
blocks = []
for blk in out.split("\n\n"):
    lines = blk.strip().split("\n")
    if not lines or not lines[0].strip(): continue
    head = lines[0].split()
    comm = head[0]; pid = head[1].split("/")[0]
    period = int([x for x in head if x.isdigit()][-1])
    blocks.append((comm, pid, period, lines[1:]))
pids = {pid for comm, pid, _, fr in blocks if comm in server and any(dso in l for l in fr)}
c = collections.Counter()
for comm, pid, period, lines in blocks:
    ctx = "server" if (comm in server and pid in pids) else ("client" if comm == "curl" else "other")
    fr = [l.split()[1].split("+")[0] for l in lines if len(l.split())>1]
    s = set(fr)
    if "net_rx_action" in s: cat = "rx softirq (receiver's tcp_v4_rcv, ACK processing)"
    elif "tcp_write_xmit" in s: cat = "tcp_write_xmit"
    elif s & {"shmem_file_splice_read","filemap_splice_read"}: cat = "file side of sendfile"
    elif "tcp_sendmsg_locked" in s: cat = "tcp_sendmsg (queueing)"
    elif "tcp_recvmsg" in s: cat = "tcp_recvmsg (copy to user)"
    elif s & {"do_epoll_wait", "do_futex"}: cat = "epoll_wait, futex"
    elif any(f.startswith(("entry_SYSCALL","asm_")) for f in fr): cat = "other kernel"
    else: cat = "user"
    if ctx == "other" and cat in ("user","other kernel","epoll_wait, futex"): continue
    c[(ctx, cat)] += period
print("server pids", sorted(pids))
for ctx in ("server","client","other"):
    t = sum(v for (x,_),v in c.items() if x==ctx)
    print(f"{ctx}: {t/1e6:.0f} ms")
    for (x,cat),v in sorted(c.items(), key=lambda kv:-kv[1]):
        if x==ctx: print(f"   {v/1e6:7.0f}  {cat}")
