#!/usr/bin/env python3
"""Runs one detection case of tests/cases/ (README.md there) through `mamori logs test
--json` and compares the verdicts with the case's expect.json. Exit 0 when they match;
exit 1 with a unified diff of expected against actual (only the keys expect.json names)
when they do not; exit 2 when the case itself is malformed.

usage: run_case.py MAMORI CASE_DIR
"""
import difflib
import json
import os
import subprocess
import sys

KNOWN = {"comment", "exit", "banned", "bans", "rules", "innocent", "stats"}


def malformed(case, why):
    print(f"{case}: malformed case: {why}", file=sys.stderr)
    sys.exit(2)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    mamori, case = sys.argv[1], sys.argv[2].rstrip("/")
    name = os.path.basename(case)
    try:
        with open(os.path.join(case, "expect.json")) as f:
            expect = json.load(f)
    except (OSError, ValueError) as e:
        malformed(name, f"expect.json: {e}")
    if not isinstance(expect, dict) or "banned" not in expect:
        malformed(name, 'expect.json must be an object with at least "banned"')
    if set(expect) - KNOWN:
        malformed(name, f"unknown keys in expect.json: {sorted(set(expect) - KNOWN)}")

    log = os.path.join(case, "access.log")
    with open(log, "rb") as f:
        log_text = f.read()
    # An innocent address the log does not hold proves nothing: refuse the typo.
    for ip in expect.get("innocent", []):
        if ip.encode() not in log_text:
            malformed(name, f"innocent address {ip} does not occur in access.log")

    argv = [mamori, "logs", "test", "--json"]
    rules = os.path.join(case, "rules")
    if os.path.exists(rules):
        argv += ["--rules", rules]
    options = os.path.join(case, "options")
    if os.path.exists(options):
        with open(options) as f:
            argv += [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    argv.append(log)
    run = subprocess.run(argv, capture_output=True)
    try:
        out = json.loads(run.stdout)
    except ValueError:
        print(f"{name}: mamori printed no JSON (exit {run.returncode})\n"
              f"command: {' '.join(argv)}\nstderr: {run.stderr.decode(errors='replace')}")
        return 1

    bans = {b["ip"]: b for b in out["bans"]}
    fired = {a["ip"]: sorted(a["rules"]) for a in out["addresses"]}
    actual = {}
    want = {}
    for key, value in expect.items():
        if key == "comment":
            continue
        want[key] = value
        if key == "exit":
            actual[key] = run.returncode
        elif key == "banned":
            want[key] = sorted(value)
            actual[key] = sorted(bans)
        elif key == "bans":  # per banned address, the fields named
            actual[key] = {ip: ({k: bans[ip].get(k) for k in fields} if ip in bans else None)
                           for ip, fields in value.items()}
        elif key == "rules":  # per address, exactly the rules that fired
            want[key] = {ip: sorted(r) for ip, r in value.items()}
            actual[key] = {ip: fired.get(ip, []) for ip in value}
        elif key == "innocent":
            actual[key] = [ip for ip in value if ip not in bans]
        elif key == "stats":
            actual[key] = {k: out.get(k) for k in value}
    if "exit" not in expect:  # the documented exit status always holds
        want["exit"] = 1 if expect["banned"] else 0
        actual["exit"] = run.returncode

    if want == actual:
        print(f"{name}: ok ({out['lines']} lines, {len(bans)} banned)")
        return 0
    a = json.dumps(want, indent=2, sort_keys=True).splitlines()
    b = json.dumps(actual, indent=2, sort_keys=True).splitlines()
    print(f"{name}: mamori's verdicts differ from expect.json\ncommand: {' '.join(argv)}")
    print("\n".join(difflib.unified_diff(a, b, "expected", "actual", lineterm="")))
    return 1


if __name__ == "__main__":
    sys.exit(main())
