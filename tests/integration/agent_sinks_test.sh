#!/usr/bin/env bash
# Sinks against real receivers: rsyslog over its local socket, UDP, TCP and TLS; an SMTP
# server with authentication (right and wrong password); a webhook receiver that fails
# first and one that is not there yet. Every event reaches every sink whose filter
# passes it, exactly once across an agent restart, and none is lost while a receiver is
# down; a sink that cannot deliver never stops the guard.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/rsyslog_lib.sh"
source "$(dirname "$0")/smtp_lib.sh"
source "$(dirname "$0")/webhook_lib.sh"

mkdir -p "$SCRATCH/www"
for i in 1 2 3 4 5; do echo "page $i" >"$SCRATCH/www/page$i.html"; done
write_config "$SCRATCH/www"

start_rsyslog "$SCRATCH/rsyslog"
start_smtp "$SCRATCH/smtp-good" --auth mamori s3cret
GOOD_SMTP_PORT=$SMTP_PORT GOOD_MAILDIR=$SMTP_MAILDIR
start_smtp "$SCRATCH/smtp-bad" --auth mamori other-password
BAD_SMTP_PORT=$SMTP_PORT BAD_MAILDIR=$SMTP_MAILDIR
start_webhook "$SCRATCH/hook-flaky" --fail-first 2
FLAKY_PORT=$WEBHOOK_PORT FLAKY_OUT=$WEBHOOK_OUT
LATE_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo s3cret >"$SCRATCH/smtp.password"
chmod 0600 "$SCRATCH/smtp.password"

agent_config
cat >>"$CONFIG" <<EOF
[[sink]]
type = "syslog"
name = "local"
address = "unix:$RSYSLOG_SOCKET"
[[sink]]
type = "syslog"
name = "udp"
address = "udp://127.0.0.1:$RSYSLOG_UDP_PORT"
facility = "local4"
[[sink]]
type = "syslog"
name = "tcp"
address = "tcp://127.0.0.1:$RSYSLOG_TCP_PORT"
actions = ["file-restored"]
[[sink]]
type = "syslog"
name = "tls"
address = "tls://localhost:$RSYSLOG_TLS_PORT"
ca_file = "$RSYSLOG_CA"
min_severity = "warning"
[[sink]]
type = "smtp"
name = "mail"
url = "smtp://127.0.0.1:$GOOD_SMTP_PORT"
starttls = "none"
from = "mamori@web1.test"
to = ["oncall@example.test"]
username = "mamori"
password_file = "$SCRATCH/smtp.password"
min_severity = "warning"
digest = 1
[[sink]]
type = "smtp"
name = "wrong-password"
url = "smtp://127.0.0.1:$BAD_SMTP_PORT"
starttls = "none"
from = "mamori@web1.test"
to = ["oncall@example.test"]
username = "mamori"
password_file = "$SCRATCH/smtp.password"
digest = 0
[[sink]]
type = "webhook"
name = "flaky"
url = "http://127.0.0.1:$FLAKY_PORT/hook"
[[sink]]
type = "webhook"
name = "late"
url = "http://127.0.0.1:$LATE_PORT/hook"
format = "slack"
timeout = 2
EOF

step "the agent starts although two receivers cannot take anything"
mamori -q init
start_agent

step "three tampered pages are restored and reported to every sink"
for i in 1 2 3; do echo "defaced" >"$SCRATCH/www/page$i.html"; done
restored() { [[ $(events 'e["event"]["action"] == "file-restored"' | wc -l) -ge 3 ]]; }
wait_for "three restores" restored
for i in 1 2 3; do assert_eq "page $i" "$(cat "$SCRATCH/www/page$i.html")" "page$i.html"; done
mapfile -t IDS < <(events 'e["event"]["action"] == "file-restored"' | python3 -c '
import json, sys
for line in sys.stdin: print(json.loads(line)["event"]["id"])')

syslog_has() {  # INPUT-NAME ID
  grep "id=\"$2\"" "$RSYSLOG_OUT" | grep -q "^$1 "
}
all_in_syslog() {
  local id
  for id in "${IDS[@]}"; do
    syslog_has unix "$id" && syslog_has udp "$id" && syslog_has tcp "$id" &&
      syslog_has tls "$id" || return 1
  done
}
WAIT_ON=$(dirname "$RSYSLOG_OUT") WAIT_SECONDS=30 WAIT_EXPLAIN='cat "$RSYSLOG_OUT"' \
  wait_for "every restore over the local socket, UDP, TCP and TLS" all_in_syslog
line=$(grep "id=\"${IDS[0]}\"" "$RSYSLOG_OUT" | grep '^udp ')
assert_contains "$line" "file-restored" "the MSGID"
assert_contains "$line" "path=\"$SCRATCH/www/page" "the path in the structured data"
# local4 (20) * 8 + warning (4)
assert_contains "$line" " 164 " "PRI of facility local4, severity warning"
# The TCP sink only takes file-restored; the agent-started event went elsewhere.
started_id=$(events 'e["event"]["action"] == "agent-started"' | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"]["id"])')
syslog_has udp "$started_id" || fail "agent-started did not reach the UDP sink"
! syslog_has tcp "$started_id" || fail "the TCP sink's action filter let agent-started through"
! syslog_has tls "$started_id" || fail "the TLS sink's severity filter let an info event through"

step "mail: one digest with the three restores; the wrong password is reported, not retried silently"
mailed() { grep -l "${IDS[2]}" "$GOOD_MAILDIR"/* >/dev/null 2>&1; }
WAIT_ON=$GOOD_MAILDIR WAIT_SECONDS=20 wait_for "the digest mail" mailed
mail=$(cat "$(grep -l "${IDS[2]}" "$GOOD_MAILDIR"/* | head -n 1)")
for id in "${IDS[@]}"; do assert_contains "$mail" "$id" "event $id in the digest"; done
assert_contains "$mail" "oncall@example.test" "the recipient"
failing() { mamori status --json >"$SCRATCH/status.json" && python3 -c '
import json, sys
s = {x["name"]: x for x in json.load(open(sys.argv[1]))["agent"]["sinks"]}
sys.exit(0 if s["wrong-password"]["failing"] and s["late"]["failing"] else 1)' "$SCRATCH/status.json"; }
WAIT_SECONDS=20 WAIT_EXPLAIN='cat "$SCRATCH/status.json"' wait_for "both broken sinks reported failing" failing
expect_exit 0 mamori status
assert_contains "$OUT" "wrong-password (smtp): 0 delivered, FAILING:" "status of the sink with the wrong password"
[[ -z $(ls "$BAD_MAILDIR") ]] || fail "a mail was accepted with the wrong password"
grep -q "wrong-password" "$AGENT_LOG" || fail "the agent's log does not name the failing sink"

step "the webhook that failed twice got every event after its retries, once"
hooked() { local id; for id in "${IDS[@]}"; do grep -q "$id" "$FLAKY_OUT" || return 1; done; }
WAIT_ON=$(dirname "$FLAKY_OUT") WAIT_SECONDS=30 wait_for "the flaky webhook to get the restores" hooked

step "the guard is not held up by the failing sinks"
echo "defaced again" >"$SCRATCH/www/page4.html"
page4() { [[ $(cat "$SCRATCH/www/page4.html") == "page 4" ]]; }
wait_for "page4 restored" page4

step "a restart: nothing is delivered twice, nothing written meanwhile is lost"
stop_agent
start_agent
echo "defaced" >"$SCRATCH/www/page5.html"
page5() { [[ $(cat "$SCRATCH/www/page5.html") == "page 5" ]] && events 'e["event"]["action"] == "file-restored"' | grep -q page5; }
wait_for "page5 restored" page5
page5_id=$(events 'e["event"]["action"] == "file-restored" and e["mamori"]["path"] == "page5.html"' | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"]["id"])')
hooked5() { grep -q "$page5_id" "$FLAKY_OUT"; }
WAIT_ON=$(dirname "$FLAKY_OUT") WAIT_SECONDS=30 wait_for "page5's restore at the webhook" hooked5
dupes=$(python3 -c '
import json, sys, collections
ids = collections.Counter()
for line in open(sys.argv[1]):
    try: ids[json.loads(line)["event"]["id"]] += 1
    except Exception: pass
print(sum(1 for n in ids.values() if n > 1))' "$FLAKY_OUT")
assert_eq 0 "$dupes" "events the webhook got twice"

step "logrotate moves the event log away and sends SIGHUP: the sinks follow into the new file"
mv "$EVENTS" "$EVENTS.1"
kill -HUP "$AGENT_PID"
reopened() { [[ -e $EVENTS ]]; }
wait_for "the agent to reopen the event log" reopened
echo "defaced after the rotation" >"$SCRATCH/www/page2.html"
rotated() { events 'e["event"]["action"] == "file-restored"' | grep -q page2; }
wait_for "page2's restore in the new event log" rotated
rotated_id=$(events 'e["event"]["action"] == "file-restored"' | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["event"]["id"])')
hooked_rotated() { grep -q "$rotated_id" "$FLAKY_OUT"; }
WAIT_ON=$(dirname "$FLAKY_OUT") WAIT_SECONDS=30 wait_for "the restore after the rotation at the webhook" hooked_rotated
IDS+=("$rotated_id")

step "the receiver that was not there gets the whole backlog once it is"
start_webhook "$SCRATCH/hook-late" --port "$LATE_PORT"
# Slack text carries no event id; the request's X-Mamori-Event-Id header does.
LATE_REQUESTS=$(dirname "$WEBHOOK_OUT")/requests.jsonl
late() { local id; for id in "${IDS[@]}" "$page5_id"; do grep -q "$id" "$LATE_REQUESTS" || return 1; done; }
WAIT_ON=$(dirname "$WEBHOOK_OUT") WAIT_SECONDS=90 WAIT_EXPLAIN='echo "${IDS[*]} $page5_id"; cut -c1-300 "$LATE_REQUESTS"' wait_for "the backlog at the late webhook" late
first=$(head -n 1 "$WEBHOOK_OUT")
python3 -c 'import json,sys; assert "text" in json.loads(sys.argv[1])' "$first" ||
  fail "the slack-format webhook did not get {\"text\": ...}: $first"
