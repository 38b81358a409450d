#!/usr/bin/python3
"""A reader that hammers a guarded file while a writer keeps tampering with it.

    gate_race.py FILE SECONDS SPARE_DIR

The writer (a process of its own) alternates the two ways a file is tampered with: in
place (open with O_TRUNC, write) and by renaming over it a copy prepared in SPARE_DIR
(outside the guarded tree, on its filesystem). The reader (this
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


def main():
    path, seconds, spare_dir = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    with open(path, "rb") as f:
        original = f.read()
    stop_at = time.monotonic() + seconds
    pid = os.fork()
    if pid == 0:
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
