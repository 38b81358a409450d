#!/usr/bin/python3
"""A reader that hammers a guarded file while a writer keeps tampering with it.

    gate_race.py FILE SECONDS SPARE_DIR [fd]

The writer (a process of its own) alternates the two ways a file is tampered with: in
place (open with O_TRUNC, write) and by renaming over it a copy prepared in SPARE_DIR
(outside the guarded tree, on its filesystem). With "fd", it only writes in place
through a descriptor it opens without O_TRUNC (same size, other bytes), and only into
an inode old enough for the open gate to have stopped asking about its opens (a locked
file: docs/open-gate.md): the write alone must make the gate ask again. The reader (this
process) opens, reads and closes the file in a loop and sorts every read: the original
bytes; cut (a strict beginning of them: the read raced the O_TRUNC, no byte of the
attacker's); tampered (any other bytes); refused (EPERM, the open gate). Prints one JSON
object with the counts.
"""
import errno
import json
import os
import sys
import time


def writer(path, stop_at, spare_dir):
    evil = b"<?php /* tampered */ system($_GET['c']); ?>\n"
    tmp = os.path.join(spare_dir, "race-tmp")
    n = 0
    while time.monotonic() < stop_at:
        n += 1
        try:
            if n % 2:
                with open(path, "wb") as f:  # O_TRUNC, then the attacker's bytes
                    f.write(evil)
            else:
                with open(tmp, "wb") as f:
                    f.write(evil)
                os.rename(tmp, path)
        except OSError:
            pass  # refused by the gate, or the guard moved something away: try again
    os._exit(0)


# The gate locks an inode only once its ctime is this old (open_gate.cc: kSettledNs, 50 ms)
SETTLED = 0.2


def fd_writer(path, stop_at, size):
    evil = b"<?php /* tampered */ system($_GET['c']); ?>\n"
    evil = (evil + b" " * size)[:size] if size >= len(evil) else evil
    while time.monotonic() < stop_at:
        try:
            age = time.time() - os.stat(path).st_ctime
            if age < SETTLED:  # the inode the guard just put back: not locked yet
                time.sleep(SETTLED - age)
                continue
            with open(path, "r+b") as f:  # no O_TRUNC: the write is the only change
                f.write(evil)
        except OSError:
            pass
    os._exit(0)


def main():
    path, seconds, spare_dir = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    through_fd = len(sys.argv) > 4 and sys.argv[4] == "fd"
    with open(path, "rb") as f:
        original = f.read()
    stop_at = time.monotonic() + seconds
    pid = os.fork()
    if pid == 0:
        if through_fd:
            fd_writer(path, stop_at, len(original))
        writer(path, stop_at, spare_dir)
    counts = {"reads": 0, "original": 0, "cut": 0, "tampered": 0, "refused": 0, "missing": 0,
              "other_errors": 0}
    sample = None
    while time.monotonic() < stop_at:
        counts["reads"] += 1
        try:
            with open(path, "rb") as f:
                data = f.read()
        except PermissionError:
            counts["refused"] += 1
            continue
        except FileNotFoundError:
            counts["missing"] += 1
            continue
        except OSError as e:
            counts["refused" if e.errno == errno.EPERM else "other_errors"] += 1
            continue
        if data == original:
            counts["original"] += 1
        elif original.startswith(data):
            counts["cut"] += 1
        else:
            counts["tampered"] += 1
            sample = sample or data[:60].decode("utf-8", "replace")
    os.waitpid(pid, 0)
    counts["sample"] = sample
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
