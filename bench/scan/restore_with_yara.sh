#!/usr/bin/env bash
# bench/scan/restore_with_yara.sh - does YARA on every tampered file slow the restore?
# (docs/scan.md, "What is scanned when"). The agent (restore mode, fanotify) guards a
# site of 1,000 PHP files; restore_latency (bench/tools/fim-peers) overwrites N of them
# one at a time and times how long until the original bytes are back, with [agent]
# yara = false, true, false, true (interleaved: the machine's load drifts). Each
# tampering write is a different 32 KiB web shell (derived here from restore_latency.c),
# so every scan is a real YARA pass, never a verdict-cache hit. Also counts the
# file-restored events that name a rule (all of them should, with yara = true).
#
# Usage: bench/scan/restore_with_yara.sh MAMORI [N]     (as root; N defaults to 300)
# Work dir: $WORK (default /tmp/mamori-bench-yara), removed first. A program, not a test.
set -euo pipefail
M=$(realpath "$1")
N=${2:-300}
here=$(cd "$(dirname "$0")" && pwd)
W=${WORK:-/tmp/mamori-bench-yara}
rm -rf "$W"
mkdir -p "$W/backup"

# restore_latency with a varied, larger tampering write.
python3 - "$here/../tools/fim-peers/restore_latency.c" "$W/rl.c" <<'PY'
import sys
s = open(sys.argv[1]).read()
reps = [
    ('''static const char TAMPER[] =
    "<?php /* tampered by restore_latency */ system($_GET['c']); ?>\\n";''',
     '''static char TAMPER_BUF[40000];
static size_t TAMPER_LEN;
static void make_tamper(size_t i)
{
    int n = snprintf(TAMPER_BUF, sizeof TAMPER_BUF,
                     "<?php /* tampered, sample %zu */ system($_GET['c']); ?>\\n", i);
    size_t len = (size_t)n;
    while (len + 64 < 32768) {
        n = snprintf(TAMPER_BUF + len, sizeof TAMPER_BUF - len,
                     "<!-- padding %zu of sample %zu -->\\n", len, i);
        len += (size_t)n;
    }
    TAMPER_LEN = len;
}'''),
    ('''        if ((size_t)olen == sizeof TAMPER - 1 && memcmp(orig, TAMPER, olen) == 0)
            continue; /* cannot tell tampered from original */''', '''        make_tamper(i);'''),
    ('''write(fd, TAMPER, sizeof TAMPER - 1) != (ssize_t)(sizeof TAMPER - 1)''',
     '''write(fd, TAMPER_BUF, TAMPER_LEN) != (ssize_t)TAMPER_LEN'''),
    ('''len == (ssize_t)sizeof TAMPER - 1 && memcmp(cur, TAMPER, (size_t)len) == 0''',
     '''len == (ssize_t)TAMPER_LEN && memcmp(cur, TAMPER_BUF, (size_t)len) == 0'''),
]
for a, b in reps:
    if s.count(a) != 1:
        sys.exit("restore_latency.c changed: update bench/scan/restore_with_yara.sh")
    s = s.replace(a, b)
open(sys.argv[2], "w").write(s)
PY
cc -O2 -Wall -o "$W/rl" "$W/rl.c"

python3 - "$W/backup" <<'PY'
import os, random, sys
random.seed(1)
for d in range(20):
    os.makedirs(f"{sys.argv[1]}/d{d}", exist_ok=True)
    for f in range(50):
        body = "<?php\n" + "".join(
            f"function f{d}_{f}_{i}() {{ return {random.randint(0, 10**9)}; }}\n"
            for i in range(random.randint(20, 120)))
        open(f"{sys.argv[1]}/d{d}/f{f}.php", "w").write(body)
PY

for yara in false true false true; do
  rm -rf "$W/site" "$W/state" "$W/events.jsonl"
  cp -a "$W/backup" "$W/site"
  cat >"$W/m.toml" <<T
state_dir = "$W/state"
[[root]]
path = "$W/site"
mode = "restore"
[agent]
socket = "$W/agent.sock"
event_log = "$W/events.jsonl"
backend = "fanotify"
yara = $yara
T
  "$M" --config "$W/m.toml" -q init
  : >"$W/agent.log"
  "$M" --config "$W/m.toml" agent >>"$W/agent.log" 2>&1 &
  pid=$!
  for _ in $(seq 150); do
    grep -q 'ready: guarding' "$W/agent.log" && break
    kill -0 "$pid" || { cat "$W/agent.log"; exit 1; }
    sleep 0.2
  done
  echo "== yara = $yara (1-min load $(cut -d' ' -f1 /proc/loadavg))"
  "$W/rl" "$W/site" "$W/backup" "$N" 1 30 5000
  kill "$pid"
  wait "$pid" || true
  echo "file-restored events: $(grep -c '"file-restored"' "$W/events.jsonl" || true)," \
    "naming a YARA rule: $(grep -c '"scan":{"rules"' "$W/events.jsonl" || true)"
done
