#!/usr/bin/env bash
# bench/gate/run.sh - what the open gate (docs/open-gate.md) costs a reader: open, read
# and close of every file of a WordPress copy (Debian's wordpress package), ROUNDS times,
# by open_read.c. Two copies, both guarded in restore mode by one agent:
#   root      as Debian ships it (root:root, 0644 and 0755): once verified, a file's
#             opens stop being asked about (locked)
#   www-data  chowned to www-data (and baselined so): every open is asked about
# The agent runs with open_gate = "off", then "on", REPEAT times in turn (the machine is
# shared: the median of the repeats is printed, every run in $WORK/runs). Prints
# p50/p99/p99.9 per file (µs), files/s, what the gate adds, and the permission events it
# answered per open.
#
# Usage: bench/gate/run.sh [ROUNDS] [REPEAT]   (default 20, 3)
# Environment: MAMORI=<repo>/build/release/bin/mamori, WORK=/var/tmp/mamori-bench
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MAMORI=${MAMORI:-$here/../../build/release/bin/mamori}
WORK=${WORK:-/var/tmp/mamori-bench}/gate
ROUNDS=${1:-20}
REPEAT=${2:-3}
[[ -x $MAMORI ]] || { echo "no mamori at $MAMORI (cmake --preset release && cmake --build --preset release)" >&2; exit 2; }
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rm -rf "$WORK" && mkdir -p "$WORK"
cc -O2 -o "$WORK/open_read" "$here/open_read.c"
cp -aL /usr/share/wordpress "$WORK/root"
cp -aL /usr/share/wordpress "$WORK/www-data"
chown -R www-data:www-data "$WORK/www-data"
for c in root www-data; do find "$WORK/$c" -type f >"$WORK/files-$c"; done
files=$(wc -l <"$WORK/files-root")
cat >"$WORK/mamori.toml" <<TOML
state_dir = "$WORK/state"
[[root]]
path = "$WORK/root"
mode = "restore"
[[root]]
path = "$WORK/www-data"
mode = "restore"
[agent]
socket = "$WORK/agent.sock"
event_log = "$WORK/events.jsonl"
backend = "fanotify"
open_gate = "off"
TOML
"$MAMORI" --config "$WORK/mamori.toml" -q init
events() {
  "$MAMORI" --config "$WORK/mamori.toml" status --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["agent"]["gate"].get("events", 0))'
}
run() {  # GATE: one line per copy into $WORK/runs/GATE-COPY: "p50 p99 p999 files/s events/open"
  sed -i "s/^open_gate = .*/open_gate = \"$1\"/" "$WORK/mamori.toml"
  local log=$WORK/agent-$1-$((++runs)).log
  "$MAMORI" --config "$WORK/mamori.toml" agent 2>"$log" &
  local agent=$! c before after times
  until grep -q 'ready' "$log"; do kill -0 $agent; sleep 0.05; done
  for c in root www-data; do
    "$WORK/open_read" "$WORK/files-$c" 1 >/dev/null  # warm: page cache, the gate's verdicts
    before=$(events)
    times=$("$WORK/open_read" "$WORK/files-$c" "$ROUNDS")
    after=$(events)
    echo "$times $(awk -v e=$((after - before)) -v n=$((files * ROUNDS)) 'BEGIN { printf "%.2f", e / n }')" \
      >>"$WORK/runs/$1-$c"
  done
  kill $agent
  wait $agent || true
}
runs=0
mkdir -p "$WORK/runs"
for _ in $(seq "$REPEAT"); do
  run off
  run on
done
median() {  # FILE: the median of each column
  python3 -c 'import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
print(" ".join("%g" % statistics.median(c) for c in zip(*rows)))' "$1"
}
echo "open+read+close of $files files x $ROUNDS rounds, median of $REPEAT runs (gate off and on in turn);"
echo "load $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "(µs per file: p50 p99 p99.9; files/s; permission events per open)"
for c in root www-data; do
  off=$(median "$WORK/runs/off-$c")
  on=$(median "$WORK/runs/on-$c")
  printf '  %-9s gate off: %s\n  %-9s gate on:  %s\n' "$c" "$off" "" "$on"
  awk -v name="$c" -v a="$off" -v b="$on" 'BEGIN { split(a, x); split(b, y);
    printf "  %-9s added: p50 %.1f µs, p99 %.1f µs, p99.9 %.1f µs; throughput %.2fx\n",
      name, y[1] - x[1], y[2] - x[2], y[3] - x[3], y[4] / x[4] }'
done
