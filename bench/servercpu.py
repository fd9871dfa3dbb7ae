"""The server's CPU, counted in a cgroup when the machine lets us make one.

Reading /proc of the server's process tree (as the shared referee does)
loses the CPU of session processes that have exited without being waited
for by a parent that would fold it into its own cutime: vsftpd's, whose
children are reaped without that. A cgroup counts every task that was in
it, exited or not. `ServerCpu(pid)` moves the server's process tree into
a new cgroup (v1 cpuacct, or v2 where the cpu controller is on; as root),
so that every session it forks from then on is counted;
`ServerCpu.read()` gives (user, system) CPU seconds (in clock ticks),
`total()` their sum (exact where the cgroup counts nanoseconds); `close()` moves the
tasks back and removes the cgroup. Without a usable cgroup it falls back
to the /proc tree and says so (`method`).
"""
import os

V1 = "/sys/fs/cgroup/cpuacct"
V2 = "/sys/fs/cgroup"


def _tree(pid):
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(p))
            except (OSError, ValueError, IndexError):
                pass
    out, stack = [], [pid]
    while stack:
        q = stack.pop()
        out.append(q)
        stack.extend(children.get(q, []))
    return out


class ServerCpu:
    def __init__(self, pid):
        self.pid = pid
        self.dir = None
        self.method = "proc"
        self.tick = os.sysconf("SC_CLK_TCK")
        name = f"portcullis-bench-{os.getpid()}-{pid}"
        for base, kind in ((V1, "v1"), (V2, "v2")):
            if kind == "v2" and "cpu" not in _read(os.path.join(V2, "cgroup.controllers")).split():
                continue
            d = os.path.join(base, name)
            try:
                os.mkdir(d)
            except OSError:
                continue
            try:
                for p in _tree(pid):
                    with open(os.path.join(d, "cgroup.procs"), "w") as f:
                        f.write(str(p))
            except OSError:
                self._remove(d, base)
                continue
            self.dir, self.base, self.method = d, base, "cgroup-" + kind
            break

    def read(self):
        """(user, system) CPU seconds of the server since it was moved in
        (cgroup), or of its living tree and the children it reaped (proc)."""
        if self.method == "cgroup-v1":
            # cpuacct.stat in clock ticks (10 ms): non-negative deltas for
            # the split; total() is exact.
            st = dict(line.split() for line in _read(os.path.join(self.dir, "cpuacct.stat")).splitlines())
            return int(st.get("user", 0)) / self.tick, int(st.get("system", 0)) / self.tick
        if self.method == "cgroup-v2":
            st = dict(line.split() for line in _read(os.path.join(self.dir, "cpu.stat")).splitlines())
            return int(st["user_usec"]) / 1e6, int(st["system_usec"]) / 1e6
        user = sys_ = 0
        for p in _tree(self.pid):
            try:
                with open(f"/proc/{p}/stat") as f:
                    v = f.read().rsplit(")", 1)[1].split()
                user += int(v[11]) + int(v[13])
                sys_ += int(v[12]) + int(v[14])
            except (OSError, ValueError, IndexError):
                pass
        return user / self.tick, sys_ / self.tick

    def total(self):
        """CPU seconds, user and system together (exact in a v1 cgroup:
        cpuacct.usage counts nanoseconds)."""
        if self.method == "cgroup-v1":
            return int(_read(os.path.join(self.dir, "cpuacct.usage")) or 0) / 1e9
        return sum(self.read())

    def close(self):
        if self.dir:
            self._remove(self.dir, self.base)
            self.dir = None

    @staticmethod
    def _remove(d, base):
        # Back to the parent group, then the empty group goes (bounded:
        # tasks are only ever moved out of it).
        for _ in range(50):
            procs = _read(os.path.join(d, "cgroup.procs")).split()
            if not procs:
                break
            for p in procs:
                try:
                    with open(os.path.join(base, "cgroup.procs"), "w") as f:
                        f.write(p)
                except OSError:
                    pass
        try:
            os.rmdir(d)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
