#!/usr/bin/env bash
# counts.sh [BIN...]: the server's own cost, as counts that the machine's
# load does not change (wall time on a shared machine is noise): for each
# binary, instructions per operation (callgrind: a 10,000-entry LIST, NLST
# and MLSD, a 4 KiB RETR and STOR), system calls per operation (strace -c)
# and RSS/PSS growth per idle logged-in session, plain and TLS. Defaults
# to the release build; give two binaries (before, after) for an A/B.
#
#   bash bench/counts.sh                          # target/release/portcullis
#   bash bench/counts.sh /tmp/pc-old /tmp/pc-new  # side by side
#   ONLY=idle IDLE=1000 bash bench/counts.sh      # one part: instr, syscalls, idle
#
# Environment: ROOT (the served directory, default /dev/shm/counts-root),
# ENTRIES (10000), REPS (listings per count, 5), SMALL_REPS (4 KiB
# transfers per count, 50), IDLE (sessions, 1000). Needs valgrind (for
# callgrind_control) and strace; a part whose tool is missing is skipped.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- "$here/../target/release/portcullis"
root=${ROOT:-/dev/shm/counts-root}
parts=${ONLY:-instr,syscalls,idle}
for bin in "$@"; do
  [ -x "$bin" ] || { echo "no binary $bin" >&2; exit 2; }
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
  for part in ${parts//,/ }; do
    case $part in
      instr) command -v callgrind_control >/dev/null || { echo "SKIP valgrind" >&2; continue; } ;;
      syscalls) command -v strace >/dev/null || { echo "SKIP strace" >&2; continue; } ;;
    esac
    python3 "$here/counts.py" "$part" "$bin" "$root" | sed "s|^|$bin\t|"
  done
done
