#!/usr/bin/env bash
# The agent killed with SIGKILL misses nothing: 50 files tampered while it was down
# (content, deletes, a chmod) are all restored by the next start-up before it says it
# is ready, each reported exactly once as changed while down. And a second agent on a
# host where one runs refuses to start, says why, and changes nothing.
# shellcheck disable=SC2016  # Python filters in single quotes are meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WP=$SCRATCH/wp
copy_wordpress "$WP"
write_config "$WP"
agent_config
expect_exit 0 mamori -q init
# A second config: its own state dir (and baseline of the same tree), the same socket.
cp "$CONFIG" "$SCRATCH/second.toml"
sed -i "s|^state_dir = .*|state_dir = \"$SCRATCH/state2\"|" "$SCRATCH/second.toml"
expect_exit 0 timeout 60 "$MAMORI" --config "$SCRATCH/second.toml" -q init

step "start, then SIGKILL the agent (its socket file stays behind)"
start_agent
pid=$AGENT_PID
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
AGENT_PID=""
kill -0 "$pid" 2>/dev/null && fail "the agent survived SIGKILL"
[[ -S $SOCKET ]] || fail "expected the killed agent's socket file to remain at $SOCKET"
lines_before=$(wc -l <"$EVENTS")

step "tamper 50 files while it is down: 40 rewritten, 9 deleted, 1 chmod 777"
# 50 regular files, spread over the tree, none beneath another's path.
mapfile -t files < <(cd "$WP" && find . -type f -name '*.php' -printf '%P\n' | LC_ALL=C sort | awk 'NR % 15 == 1' | head -n 50)
assert_eq 50 "${#files[@]}" "files picked"
for i in "${!files[@]}"; do
  f=$WP/${files[i]}
  if ((i < 40)); then
    printf '<?php /* tampered %d */ system($_GET["c"]); ?>\n' "$i" >"$f"
  elif ((i < 49)); then
    rm -- "$f"
  else
    chmod 777 -- "$f"
  fi
done
expect_exit 1 mamori --json check
assert_eq "0 9 41" "$(json '"%d %d %d" % (j["summary"]["added"], j["summary"]["removed"], j["summary"]["changed"])')" \
  "check while down: added removed changed"

step "the next start-up restores all 50 before it is ready"
AGENT_LOG=$SCRATCH/agent-restarted.log  # start_agent waits for 'ready' in this log: a fresh one
start_agent
for f in "${files[@]}"; do
  assert_same_file "$WP_SRC/$f" "$WP/$f" "restored at start-up"
  assert_eq "$(stat -L -c '%a %u:%g %Y' "$WP_SRC/$f")" "$(stat -c '%a %u:%g %Y' "$WP/$f")" "$f mode owner mtime"
done
expect_exit 0 mamori check

step "each of the 50 is reported once, trigger startup, changed_while_down"
wait_for "the agent-started event" grep -q '"agent-started"' <(tail -n +"$((lines_before + 1))" "$EVENTS")
got=$(events 'e.get("mamori", {}).get("trigger") == "startup"')
assert_eq 50 "$(wc -l <<<"$got")" "events with mamori.trigger == startup"
paths=$(python3 -c '
import json, sys
bad = [l for l in sys.stdin if json.loads(l)["mamori"].get("changed_while_down") is not True]
if bad: sys.exit("startup events without changed_while_down true:\n" + "".join(bad[:3]))
' <<<"$got" && python3 -c '
import json, sys
for l in sys.stdin: print(json.loads(l)["mamori"]["path"])' <<<"$got" | LC_ALL=C sort)
assert_eq "$(printf '%s\n' "${files[@]}" | LC_ALL=C sort)" "$paths" "the startup events name exactly the 50 tampered paths"
actions=$(python3 -c '
import json, sys
from collections import Counter
c = Counter(json.loads(l)["event"]["action"] for l in sys.stdin)
print(" ".join("%s=%d" % kv for kv in sorted(c.items())))' <<<"$got")
assert_eq "file-repaired=1 file-restored=49" "$actions" "startup event actions"
n=$(events 'e["event"]["action"] == "file-restore-failed"' | wc -l)
assert_eq 0 "$n" "no file-restore-failed event"

step "it guards in real time after the restart"
printf 'defaced\n' >"$WP/index.php"
wait_for "index.php restored after the restart" cmp -s "$WP_SRC/index.php" "$WP/index.php"

step "a second agent on the same config refuses, says why, and changes nothing"
expect_exit 0 mamori mode "$WP" alert  # the running agent only reports now
printf 'left for alert mode\n' >"$WP/wp-blog-header.php"
cp "$WP/wp-blog-header.php" "$SCRATCH/left"
has_changed() { [[ -n $(events 'e["event"]["action"] == "file-changed" and e["mamori"]["path"] == "wp-blog-header.php"') ]]; }
wait_for "the running agent's file-changed event (alert mode)" has_changed
lines=$(wc -l <"$EVENTS")
expect_exit 2\|3 mamori agent
assert_contains "$ERR" "another mamori" "the second agent's error"
assert_same_file "$SCRATCH/left" "$WP/wp-blog-header.php" "the second agent restored nothing (the first is in alert mode)"
assert_eq "$lines" "$(wc -l <"$EVENTS")" "the second agent wrote no event"
kill -0 "$AGENT_PID" || fail "the first agent died"

step "a second agent with its own state but the same socket refuses: the socket is in use"
expect_exit 2\|3 timeout 60 "$MAMORI" --config "$SCRATCH/second.toml" agent
assert_contains "$ERR" "another mamori agent is running" "the second agent's error"
assert_contains "$ERR" "$SOCKET" "the error names the socket"
assert_same_file "$SCRATCH/left" "$WP/wp-blog-header.php" "the refused agent restored nothing"
assert_eq "$lines" "$(wc -l <"$EVENTS")" "the refused agent wrote no event"
# The first one still owns the socket and answers on it.
expect_exit 0 mamori mode "$WP" restore
wait_for "wp-blog-header.php restored on leaving alert mode" cmp -s "$WP_SRC/wp-blog-header.php" "$WP/wp-blog-header.php"
expect_exit 0 mamori check
stop_agent
