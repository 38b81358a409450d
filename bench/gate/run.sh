#!/usr/bin/env bash
# bench/gate/run.sh - what the open gate (docs/open-gate.md) costs a reader: open, read
# and close of every file of a WordPress copy (Debian's wordpress package), ROUNDS times,
# by open_read.c, with the agent guarding the copy in restore mode, in one run:
#   off       open_gate = "off"
#   root      open_gate = "on", the copy as Debian ships it (root:root, 0644 and 0755):
#             once verified, a file's opens stop being asked about (locked)
#   www-data  open_gate = "on", the copy chowned to www-data (and baselined so): every
#             open is asked about
# Prints p50/p99/p99.9 per file (µs), files/s, what each row adds to "off", and the
# permission events the gate answered per open.
#
# Usage: bench/gate/run.sh [ROUNDS]   (default 20)
# Environment: MAMORI=<repo>/build/release/bin/mamori, WORK=/var/tmp/mamori-bench
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
MAMORI=${MAMORI:-$here/../../build/release/bin/mamori}
WORK=${WORK:-/var/tmp/mamori-bench}/gate
ROUNDS=${1:-20}
[[ -x $MAMORI ]] || { echo "no mamori at $MAMORI (cmake --preset release && cmake --build --preset release)" >&2; exit 2; }
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rm -rf "$WORK" && mkdir -p "$WORK"
cc -O2 -o "$WORK/open_read" "$here/open_read.c"
cp -aL /usr/share/wordpress "$WORK/site"
find "$WORK/site" -type f >"$WORK/files"
files=$(wc -l <"$WORK/files")
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
init() { rm -rf "$WORK/state" && "$MAMORI" --config "$WORK/mamori.toml" -q init; }
row() {  # NAME GATE: prints "p50 p99 p999 files_per_s events_per_open"
  sed -i "s/^open_gate = .*/open_gate = \"$2\"/" "$WORK/mamori.toml"
  "$MAMORI" --config "$WORK/mamori.toml" agent 2>"$WORK/agent-$1.log" &
  local agent=$! before=0 after=0
  until grep -q 'ready' "$WORK/agent-$1.log"; do kill -0 $agent; sleep 0.05; done
  "$WORK/open_read" "$WORK/files" 1 >/dev/null  # warm: page cache, the gate's verdicts
  events() { "$MAMORI" --config "$WORK/mamori.toml" status --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["agent"]["gate"].get("events", 0))'; }
  [[ $2 == off ]] || before=$(events)
  local times
  times=$("$WORK/open_read" "$WORK/files" "$ROUNDS")
  [[ $2 == off ]] || after=$(events)
  kill $agent
  wait $agent || true
  echo "$times $(awk -v e=$((after - before)) -v n=$((files * ROUNDS)) 'BEGIN { printf "%.2f", e / n }')"
}
init
off=$(row off off)
root=$(row root on)
chown -R www-data:www-data "$WORK/site"
init
www=$(row www-data on)
echo "open+read+close of $files files x $ROUNDS rounds; load $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "(µs per file: p50 p99 p99.9; files/s; permission events per open)"
printf '  %-22s %s\n' "gate off:" "$off" "gate on, root's copy:" "$root" "gate on, www-data's:" "$www"
for r in root www; do
  awk -v name="$r" -v a="$off" -v b="${!r}" 'BEGIN { split(a, x); split(b, y);
    printf "  added (%s): p50 %.1f µs, p99 %.1f µs, p99.9 %.1f µs; throughput %.2fx\n",
      name, y[1] - x[1], y[2] - x[2], y[3] - x[3], y[4] / x[4] }'
done
