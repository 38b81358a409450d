#!/usr/bin/env bash
# bench/gate/run.sh - what the open gate (docs/open-gate.md) costs a reader: open, read
# and close of every file of a WordPress copy (Debian's wordpress package), ROUNDS times,
# by open_read.c, with the agent guarding the copy in restore mode with open_gate = "off"
# and then "on", in the same run. Prints p50/p99/p99.9 per file (µs), files/s and the
# ratios.
#
# Usage: bench/gate/run.sh [ROUNDS]   (default 20)
# Environment: MAMORI=<repo>/build/release/bin/mamori, WORK=/var/tmp/mamori-bench
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MAMORI=${MAMORI:-$here/../../build/release/bin/mamori}
WORK=${WORK:-/var/tmp/mamori-bench}/gate
ROUNDS=${1:-20}
[[ -x $MAMORI ]] || { echo "no mamori at $MAMORI (cmake --preset release && cmake --build --preset release)" >&2; exit 2; }
rm -rf "$WORK" && mkdir -p "$WORK"
cc -O2 -o "$WORK/open_read" "$here/open_read.c"
cp -aL /usr/share/wordpress "$WORK/site"
find "$WORK/site" -type f >"$WORK/files"
cat >"$WORK/mamori.toml" <<TOML
state_dir = "$WORK/state"
[[root]]
path = "$WORK/site"
mode = "restore"
[agent]
socket = "$WORK/agent.sock"
event_log = "$WORK/events.jsonl"
backend = "fanotify"
open_gate = "off"
TOML
"$MAMORI" --config "$WORK/mamori.toml" -q init
row() {  # GATE
  sed -i "s/^open_gate = .*/open_gate = \"$1\"/" "$WORK/mamori.toml"
  "$MAMORI" --config "$WORK/mamori.toml" agent 2>"$WORK/agent-$1.log" &
  local agent=$!
  until grep -q 'ready' "$WORK/agent-$1.log"; do kill -0 $agent; sleep 0.05; done
  "$WORK/open_read" "$WORK/files" 1 >/dev/null  # warm: page cache, and the gate's verdicts
  "$WORK/open_read" "$WORK/files" "$ROUNDS"
  [[ $1 == off ]] || "$MAMORI" --config "$WORK/mamori.toml" status --json >"$WORK/status-$1.json"
  kill $agent
  wait $agent || true
}
off=$(row off)
on=$(row on)
files=$(wc -l <"$WORK/files")
echo "open+read+close of $files files x $ROUNDS rounds (µs per file: p50 p99 p99.9; files/s)"
echo "  gate off: $off"
echo "  gate on:  $on"
python3 -c 'import json, sys; g = json.load(open(sys.argv[1]))["agent"]["gate"]
print("  the gate answered %d permission events for %d opens" % (g["events"], int(sys.argv[2])))' \
  "$WORK/status-on.json" "$((files * (ROUNDS + 1)))"
awk -v a="$off" -v b="$on" 'BEGIN { split(a, x); split(b, y);
  printf "  added: p50 %.1f µs, p99 %.1f µs; throughput %.2fx\n", y[1] - x[1], y[2] - x[2], y[4] / x[4] }'
