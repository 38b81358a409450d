#!/usr/bin/env bash
# Names and depths that once hid a web shell from the real-time agent (fanotify) and
# from every verify, attacked as www-data, which owns the WordPress tree:
#   a. a directory named "y (deleted)": the kernel marks a deleted directory's path with
#      that suffix, and taking the text for the fact dropped every event beneath it. A
#      shell written there is quarantined in real time.
#   b. a chain of 300 nested directories with a shell at the bottom (past the walk's
#      limit of 200), moved into wp-content/uploads (allow_new) while the agent runs:
#      what lies past the limit is quarantined whole, with an event saying so.
#   c. the same chain made while the agent is down: quarantined at start-up.
# The agent stays up and answers throughout.
# shellcheck disable=SC2016  # PHP and Python in single quotes are meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

id www-data >/dev/null 2>&1 || fail "the www-data user is missing"
WP=$SCRATCH/wp
copy_wordpress "$WP"
chown -R www-data:www-data "$WP"
UP=$WP/wp-content/uploads
install -d -o www-data -g www-data -m 0755 "$UP"
chmod 0711 "$SCRATCH"  # www-data reaches $WP and its staging directory, nothing else
STAGE=$SCRATCH/stage
install -d -o www-data -g www-data -m 0700 "$STAGE"

write_config "$WP"
sed -i '/^path = /a allow_new = ["wp-content/uploads/**"]' "$CONFIG"
# Each of the chain's 200 allowed directories is a change: no storm summary may stand in
# for the quarantine event this test waits for.
agent_config 'storm_changes_per_second = 100000'
expect_exit 0 mamori init
start_agent
as_www() { runuser -u www-data -- "$@"; }
has_event() { [[ -n $(events "$1") ]]; }
await_event() {  # WHAT FILTER
  WAIT_EXPLAIN='echo "--- last events:"; tail -n 5 "$EVENTS" | cut -c1-600; echo "--- agent log:"; tail -n 20 "$AGENT_LOG"' \
    wait_for "an event: $1 (filter: $2)" has_event "$2"
}
on() { printf 'e["event"]["action"] == "%s" and e.get("mamori", {}).get("path") == "%s"' "$1" "$2"; }
await_event "agent-started with fanotify" 'e["event"]["action"] == "agent-started" and e["mamori"]["backend"] == "fanotify"'
shells_left() { find "$UP" -name s.php | wc -l; }

step "a. a shell written under a directory named 'y (deleted)'"
as_www mkdir -p "$UP/2024/y (deleted)"
await_event "the directory allowed" "$(on file-allowed 'wp-content/uploads/2024/y (deleted)')"
as_www sh -c 'printf "<?php system(\$_GET[1]);\n" >"$1/s.php"' sh "$UP/2024/y (deleted)"
await_event "the shell quarantined" "$(on file-quarantined 'wp-content/uploads/2024/y (deleted)/s.php')"
[[ ! -e "$UP/2024/y (deleted)/s.php" ]] || fail "the shell under 'y (deleted)' is still there"

# chain DIR: 300 nested directories "a" under DIR (made by www-data), then
# "y (deleted)/s.php" at the bottom; prints the shell's path relative to DIR.
chain() {
  as_www python3 -c '
import os, sys
os.chdir(sys.argv[1])
rel = "/".join(["a"] * 300) + "/y (deleted)"
os.makedirs(rel)
with open(rel + "/s.php", "w") as f:
    f.write("<?php system($_GET[1]);\n")
print(rel + "/s.php")
' "$1"
}
# The directory a walk does not enter: 201 components below the root.
LIMIT=200
cut_of() {  # TOP (relative to the root, e.g. wp-content/uploads/2025): prints the cut
  python3 -c '
import sys
top, limit = sys.argv[1], int(sys.argv[2])
parts = top.split("/")
print("/".join(parts + ["a"] * (limit + 1 - len(parts))))
' "$1" "$LIMIT"
}

step "b. a 300-deep chain with a shell at the bottom, moved into uploads while the agent runs"
shell=$(chain "$STAGE")
[[ -f $STAGE/$shell ]] || fail "the chain was not made"
as_www mv "$STAGE/a" "$UP/2025"
cut=$(cut_of wp-content/uploads/2025)
await_event "the part past the depth limit quarantined" \
  "$(on file-quarantined "$cut")"' and e["mamori"]["reason"] == "nested-too-deep"'
assert_eq 0 "$(shells_left)" "shells left in uploads after the chain moved in"
[[ ! -e $WP/$cut ]] || fail "the directory past the limit is still there"
[[ -d $WP/$(dirname "$cut") ]] || fail "the levels above the limit (allowed uploads) went too"
kill -0 "$AGENT_PID" || fail "the agent died"
expect_exit 0 mamori --json status

step "c. the same chain made in uploads while the agent is down"
stop_agent
as_www mkdir "$UP/2026"
chain "$UP/2026" >/dev/null
[[ $(shells_left) == 1 ]] || fail "the chain was not made in uploads"
start_agent
cut=$(cut_of wp-content/uploads/2026)
await_event "quarantined at start-up" \
  "$(on file-quarantined "$cut")"' and e["mamori"]["reason"] == "nested-too-deep" and e["mamori"]["trigger"] == "startup"'
assert_eq 0 "$(shells_left)" "shells left in uploads after start-up"
kill -0 "$AGENT_PID" || fail "the agent died"
expect_exit 0 mamori --json status
