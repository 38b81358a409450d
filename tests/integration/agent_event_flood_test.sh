#!/usr/bin/env bash
# Issue 10 item 7: an attacker with only the web server's account must not be able to
# push security events out of the audit log. While the agent is down, www-data fills an
# allow_new upload directory with 12,000 empty files whose paths are long (each event
# about them is ~10 KiB, together far past the outbox's in-memory bound) and two
# baselined files are chmodded. At start-up every file-repaired event must be in the
# event log; the allowed files are summarised, and nothing but low-severity events may
# ever be dropped (each drop then reported by an events-dropped event).
# shellcheck disable=SC2016  # Python filters in single quotes are meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WP=$SCRATCH/wp
copy_wordpress "$WP"
chmod 0755 "$SCRATCH"
mkdir -p "$WP/wp-content/uploads"
chown -R www-data:www-data "$WP/wp-content/uploads"
write_config "$WP"
sed -i '/^path = /a allow_new = ["wp-content/uploads/**"]' "$CONFIG"
agent_config
expect_exit 0 mamori -q init


# flood: while the agent is down, two chmods and 12,000 long-named uploads as www-data.
flood() {
  # Sorted before wp-content/, so the verify reports them first: the oldest in the queue.
  chmod 600 "$WP/index.php" "$WP/wp-blog-header.php"
  runuser -u www-data -- python3 - "$WP/wp-content/uploads" <<'EOF'
import os, sys
d = sys.argv[1]
# A chain of 200-byte directory names (about 3 KiB deep), then 255-byte file names.
for i in range(15):
    d = os.path.join(d, ("d%02d" % i) * 66 + "dd")
    os.mkdir(d)
for i in range(12000):
    open(os.path.join(d, ("%05d" % i) + "x" * 250), "w").close()
EOF
}
has_event() { [[ -n $(events "$1") ]]; }
# both_repaired: the two file-repaired events are in the log, and the modes are back.
both_repaired() {
  local p
  for p in index.php wp-blog-header.php; do
    WAIT_SECONDS=30 wait_for "the file-repaired event of $p in the event log (not pushed out by the flood)" \
      has_event "e['event']['action'] == 'file-repaired' and e['mamori']['path'] == '$p'"
    assert_eq "$(stat -L -c %a "$WP_SRC/$p")" "$(stat -c %a "$WP/$p")" "$p mode repaired"
  done
}

step "while the agent is down: 12,000 long-named uploads (as www-data) and two chmods"
flood
start_agent
both_repaired
wait_for "agent-started written" has_event 'e["event"]["action"] == "agent-started"'
expect_exit 0 mamori --json status
dropped=$(json 'j["agent"]["counters"]["events_dropped"]')
if [[ $dropped != 0 ]]; then
  # Only low-severity events may go, and never silently.
  has_event 'e["event"]["action"] == "events-dropped"' ||
    fail "$dropped event(s) dropped without an events-dropped event"
  assert_eq 0 "$(json 'j["agent"]["counters"]["events_dropped_security"]')" "security events dropped"
fi

step "the allowed uploads are summarised, not one ~10 KiB event each"
n=$(events 'e["event"]["action"] == "file-allowed"' | wc -l)
((n <= 200)) || fail "$n file-allowed events: the flood was not summarised"
has_event 'e["event"]["action"] == "file-allowed-summary" and e["mamori"]["summary"]["path_count"] + '"$n"' >= 12000' ||
  fail "no file-allowed-summary counting the rest of the 12,000 uploads"

step "with no summarising at all, the outbox still writes every event (~120 MiB) and drops none"
stop_agent
rm -rf "$WP/wp-content/uploads/d00"* "$EVENTS" "$STATE"
expect_exit 0 mamori -q init
sed -i '/^\[agent\]$/a allowed_events_per_second = 1000000' "$CONFIG"
flood
start_agent
both_repaired
wait_for "agent-started written" has_event 'e["event"]["action"] == "agent-started"'
n=$(events 'e["event"]["action"] == "file-allowed"' | wc -l)
((n >= 12000)) || fail "only $n file-allowed events for 12,000 uploads"
expect_exit 0 mamori --json status
assert_eq 0 "$(json 'j["agent"]["counters"]["events_dropped"]')" "events dropped with a working disk"

step "and the guard still works"
echo 'defaced' >"$WP/wp-cron.php"
WAIT_SECONDS=30 wait_for "wp-cron.php restored" cmp -s "$WP_SRC/wp-cron.php" "$WP/wp-cron.php"
stop_agent

step "a truly full disk: security events wait in memory and are written once space returns"
LOGFS=$SCRATCH/logfs
mkdir "$LOGFS"
mount -t tmpfs -o size=1m tmpfs "$LOGFS"
on_exit "umount -l '$LOGFS'"
sed -i "s|^event_log = .*|event_log = \"$LOGFS/events.jsonl\"|" "$CONFIG"
EVENTS=$LOGFS/events.jsonl
rm -rf "$WP/wp-content/uploads/d00"*  # (or the start-up verify reports them again: 120 MiB)
start_agent
wait_for "agent-started written" has_event 'e["event"]["action"] == "agent-started"'
dd if=/dev/zero of="$LOGFS/filler" bs=64k 2>/dev/null || true  # until ENOSPC
# Ten restores: ~15 KiB of events, more than the slack in the log's last page.
TAMPERED=(wp-cron.php wp-links-opml.php wp-mail.php wp-settings.php wp-signup.php
  wp-trackback.php xmlrpc.php wp-comments-post.php wp-activate.php)
for f in "${TAMPERED[@]}"; do echo 'defaced' >"$WP/$f"; done
chmod 600 "$WP/wp-load.php"
for f in "${TAMPERED[@]}"; do wait_for "$f restored" cmp -s "$WP_SRC/$f" "$WP/$f"; done
load_repaired() { [[ $(stat -c %a "$WP/wp-load.php") == "$(stat -L -c %a "$WP_SRC/wp-load.php")" ]]; }
wait_for "wp-load.php repaired" load_repaired
wait_for "the agent says the event log cannot be written" grep -q 'event log: .*No space left' "$AGENT_LOG"
n=$(events 'e["event"]["action"] in ("file-restored", "file-repaired")' | wc -l)
((n < 10)) || fail "all $n events were written to a full disk: the test did not fill it"
rm "$LOGFS/filler"  # space again; nothing else happens: the writer retries by itself
for f in "${TAMPERED[@]}"; do
  WAIT_ON=$LOGFS wait_for "file-restored $f written once space returned" \
    has_event 'e["event"]["action"] == "file-restored" and e["mamori"]["path"] == "'"$f"'"'
done
WAIT_ON=$LOGFS wait_for "file-repaired wp-load.php written once space returned" \
  has_event 'e["event"]["action"] == "file-repaired" and e["mamori"]["path"] == "wp-load.php"'
expect_exit 0 mamori --json status
assert_eq 0 "$(json 'j["agent"]["counters"]["events_dropped"]')" "events dropped through a short full disk"
stop_agent
