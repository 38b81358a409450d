#!/usr/bin/env bash
# The fanotify backend's queues (agent/watch/fanotify): the whole filesystem's events pass
# through them, and an overflow costs a rescan of every root (a million files: minutes).
# The agent's groups hold 262,144 events, not the kernel's default 16,384, and leave the
# setting as they found it:
#   - fs.fanotify.max_queued_events is what it was before the agent started;
#   - the agent stopped (SIGSTOP), 40,000 files made and removed elsewhere on the same
#     filesystem (40,000 events), the agent resumed: no watch-overflow (16,384 would
#     overflow), and a tampered file is still restored;
#   - 300,000 files the same way (the kernel merges a file's create, close and delete
#     into one event): one watch-overflow, and the root rescanned.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SETTING=/proc/sys/fs/fanotify/max_queued_events
[[ -r $SETTING ]] || fail "$SETTING missing: a kernel before 5.13"
before=$(cat "$SETTING")
((before < 262144)) || fail "max_queued_events is already $before here: nothing to show"

mkdir -p "$SCRATCH/site" "$SCRATCH/elsewhere"
for i in $(seq 20); do echo "page $i" >"$SCRATCH/site/page$i.html"; done
write_config "$SCRATCH/site"
agent_config 'backend = "fanotify"'
mamori -q init
start_agent
assert_eq "$before" "$(cat "$SETTING")" "max_queued_events after the agent started"

churn() {  # N: N files made and removed beside the root, with the agent stopped
  kill -STOP "$AGENT_PID"
  /usr/bin/python3 - "$SCRATCH/elsewhere" "$1" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    p = f"{d}/f{i}"
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))
    os.unlink(p)
EOF
  kill -CONT "$AGENT_PID"
}
restored() { cmp -s "$SCRATCH/site/page$1.html" <(echo "page $1"); }

step "40,000 files made and removed while the agent is stopped: no overflow, a restore after"
churn 40000
echo "defaced" >"$SCRATCH/site/page1.html"
WAIT_SECONDS=30 wait_for "page1.html restored" restored 1
assert_eq "" "$(events 'e["event"]["action"] == "watch-overflow"')" "watch-overflow events"

step "300,000 the same way: more than the queue holds, one overflow, the root rescanned"
churn 300000
echo "defaced" >"$SCRATCH/site/page2.html"
overflowed() { [[ -n $(events 'e["event"]["action"] == "watch-overflow"') ]]; }
WAIT_SECONDS=30 wait_for "a watch-overflow event" overflowed
WAIT_SECONDS=30 wait_for "page2.html restored" restored 2
assert_eq "$before" "$(cat "$SETTING")" "max_queued_events at the end"
check_events
echo "PASS"
