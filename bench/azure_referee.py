"""The shared referee's workloads (ftpbench.py) against a server whose
root is an Azure container (bench/azure.sh): the referee writes its
fixtures as files under --root, which an az:// root does not read, so
this runs the referee with two changes and nothing else:

- its fixtures are made by the referee's own code in a local directory
  (--root) and then put into the container under the same names
  (small/, many/, c64k.bin, big.bin; those already there are kept), with
  the tests' blob.py (Azure's SharedKey REST, no SDK), eight at a time;
- small_stor is the referee's, timed the same way (one session, N x 4 KiB
  STOR, a new PASV each), but counts what the server stored in the
  container's listing, not in the local directory, and deletes it there.

Usage: azure_referee.py ENDPOINT ACCOUNT KEY CONTAINER -- FTPBENCH ARGS
(BENCH_DIR: the referee's directory, default ../../shared/bench).
"""

import concurrent.futures
import importlib.util
import os
import runpy
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BLOB_PY = os.path.join(HERE, "../crates/portcullis/tests/integration/azure/blob.py")


def load(endpoint, account, key, container):
    """The referee as a module, and blob.py's functions (loading blob.py
    runs its `create CONTAINER`, which is harmless)."""
    argv = sys.argv
    sys.argv = ["blob.py", endpoint, account, key, "create", container]
    blob = runpy.run_path(BLOB_PY, run_name="blob")
    sys.argv = argv
    shared = os.environ.get("BENCH_DIR", os.path.join(HERE, "../../shared/bench"))
    spec = importlib.util.spec_from_file_location("ftpbench", os.path.join(shared, "ftpbench.py"))
    ftpbench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ftpbench)
    return ftpbench, blob


def main():
    endpoint, account, key, container = sys.argv[1:5]
    assert sys.argv[5] == "--", "usage: azure_referee.py ENDPOINT ACCOUNT KEY CONTAINER -- ARGS"
    ftpbench, blob = load(endpoint, account, key, container)
    put, keys, request, check = blob["put"], blob["keys"], blob["request"], blob["check"]
    local_fixtures = ftpbench.fixtures

    def parallel(fn, items):
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(fn, items))

    def fixtures(a):
        local_fixtures(a)
        there = set(keys(container))
        names = []
        for base, _, files in os.walk(a.root):
            for f in files:
                rel = os.path.relpath(os.path.join(base, f), a.root)
                if rel.split(os.sep)[0] in ("small", "many", "c64k.bin", "big.bin") and rel not in there:
                    names.append(rel)
        t = time.perf_counter()
        parallel(lambda n: put(container, n, open(os.path.join(a.root, n), "rb").read()), names)
        print(f"# {len(names)} fixtures put into {container} in {time.perf_counter() - t:.1f}s",
              file=sys.stderr)

    def stored():
        return [k for k in keys(container) if k.startswith("up/")]

    def delete(name):
        status, body = request("DELETE", "/%s/%s" % (container, name))
        check(status, body, 202, 404)

    def small_stor(a):
        parallel(delete, stored())
        c = ftpbench.login(a)
        data = os.urandom(4096)
        t0 = time.perf_counter()
        for i in range(a.small):
            c.stor(f"up/u{i:05d}.bin", data=data)
        dt = time.perf_counter() - t0
        c.quit()
        got = stored()
        parallel(delete, got)
        if len(got) != a.small:
            raise ftpbench.FtpError(f"server stored {len(got)} of {a.small} files")
        return {"files_per_s": round(a.small / dt, 1), "files": a.small}

    ftpbench.fixtures = fixtures
    ftpbench.WORKLOADS["small_stor"] = small_stor
    sys.argv = ["ftpbench.py"] + sys.argv[6:]
    ftpbench.main()


if __name__ == "__main__":
    main()
