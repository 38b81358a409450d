#!/usr/bin/env bash
# The manager (`mamori manager`) on loopback with a temporary state directory, spoken to
# by a real client (manager_client.py: TLS pinned by the token's fingerprint, HTTPS
# enrollment, WebSocket channel): enrollment with good and bad tokens, the channel's
# authentication, hello/events/acks with a batch sent twice, liveness (silence, a
# dropped connection, recovery with a verify command, goodbye), duplicate identities,
# oversized messages, and the certificate's files.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/webhook_lib.sh"

CLIENT="/usr/bin/python3 $(dirname "$0")/manager_client.py"
# Every answer and message of the manager is checked against the committed schema.
export MANAGER_SCHEMA=$(cd "$(dirname "$0")/../.." && pwd)/docs/formats/protocol.schema.json
LOST_AFTER=3
# The manager's own events go to its [[sink]]s, like an agent's.
start_webhook "$SCRATCH/hook"
loopback_manager_config "heartbeat = 1
lost_after = $LOST_AFTER
max_agents = 50

[[sink]]
type = \"webhook\"
url = \"$WEBHOOK_URL\"
actions = [\"agent-lost\", \"agent-duplicate\"]"

MANAGER_PID=""
start_manager() {
  _MLOG_FROM=$(stat -c %s "$MLOG" 2>/dev/null || echo 0)
  "$MAMORI" --config "$CONFIG" manager >>"$MLOG" 2>&1 &
  MANAGER_PID=$!
  WAIT_SECONDS=20 WAIT_EXPLAIN='cat "$MLOG"' wait_for "the manager to listen" _manager_listening
}
_manager_listening() { tail -c +"$((_MLOG_FROM + 1))" "$MLOG" | grep -q 'listening on'; }
stop_manager() {
  [[ -n $MANAGER_PID ]] || return 0
  local pid=$MANAGER_PID
  MANAGER_PID=""
  stop_pid "$pid" "the manager" || fail "the manager did not stop within 10 s of SIGTERM"
}
on_exit stop_manager

# agent_status KEY: the agent's status in `mamori manager agents --json`.
agent_field() {
  local key=$1 field=$2
  expect_exit 0 mamori manager agents --json
  json "[a['$field'] for a in j['agents'] if a['agent_key'] == '$key'][0]"
}
status_is() { [[ $(agent_field "$1" status) == "$2" ]]; }
manager_event() { grep -q "$1" "$MLOG"; }

step "first start: the certificate is made, 0644 and 0600, its fingerprint in the log"
start_manager
[[ $(stat -c %a "$MSTATE/manager.crt") == 644 ]] || fail "manager.crt is $(stat -c %a "$MSTATE/manager.crt")"
[[ $(stat -c %a "$MSTATE/manager.key") == 600 ]] || fail "manager.key is $(stat -c %a "$MSTATE/manager.key")"
FP=$(openssl x509 -in "$MSTATE/manager.crt" -outform DER | sha256sum | cut -d' ' -f1)
assert_contains "$(cat "$MLOG")" "$FP" "the fingerprint in the manager's log"
openssl x509 -in "$MSTATE/manager.crt" -noout -text | grep -q 'ASN1 OID: prime256v1' ||
  fail "the certificate's key is not P-256"
# TLS 1.1 is refused, 1.2 is served.
if openssl s_client -connect "127.0.0.1:$PORT" -tls1_1 </dev/null >/dev/null 2>&1; then
  fail "TLS 1.1 was accepted"
fi
openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 </dev/null 2>/dev/null | grep -q 'Protocol *: TLSv1.2' ||
  fail "TLS 1.2 was not served"

step "tokens: create (the fingerprint and URL inside), list, a used-up and a revoked one"
expect_exit 0 mamori manager token create --group web --json
TOKEN=$(json 'j["token"]')
assert_eq "$FP" "$(json 'j["fingerprint"]')" "the token's fingerprint"
assert_eq "https://127.0.0.1:$PORT" "$(json 'j["url"]')"
expect_exit 0 mamori manager token create --uses 1 --json
ONCE=$(json 'j["token"]')
expect_exit 0 mamori manager token create --json
REVOKED=$(json 'j["token"]')
REVOKED_ID=$(json 'j["id"]')
expect_exit 0 mamori manager token revoke "$REVOKED_ID"
expect_exit 2 mamori manager token revoke 999
expect_exit 2 mamori manager token create --expires soon
expect_exit 0 mamori manager token list --json
assert_eq '["valid", "valid", "revoked"]' "$(json '[t["state"] for t in j["tokens"]]')"
assert_not_contains "$OUT" "$(json 'j["tokens"][0]["id"]' "$OUT")-secret" # no secret listed

step "enroll: 200 with a new agent_key each time; 401 for used-up, revoked, garbage"
expect_exit 0 $CLIENT enroll "$TOKEN"
assert_eq 200 "$(json 'j["status"]')"
M1=$(json 'json.dumps(j["manager"])')
KEY1=$(json 'j["manager"]["agent_key"]')
assert_eq "[1, $LOST_AFTER]" "$(json '[j["body"]["heartbeat_s"], j["body"]["lost_after_s"]]')" "the timings enrollment gives"
expect_exit 0 $CLIENT enroll "$TOKEN" "" web2
expect_exit 0 $CLIENT enroll "$ONCE"
assert_eq 200 "$(json 'j["status"]')"
M2=$(json 'json.dumps(j["manager"])')
KEY2=$(json 'j["manager"]["agent_key"]')
assert_ne "$KEY1" "$KEY2" "each enrollment's agent_key"
expect_exit 0 $CLIENT enroll "$ONCE"
assert_eq '[401, "bad-token"]' "$(json '[j["status"], j["body"]["error"]["code"]]')" "a used-up token"
expect_exit 0 $CLIENT enroll "$REVOKED"
assert_eq '[401, "bad-token"]' "$(json '[j["status"], j["body"]["error"]["code"]]')" "a revoked token"
expect_exit 0 $CLIENT enroll "$TOKEN" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
assert_eq '[401, "bad-token"]' "$(json '[j["status"], j["body"]["error"]["code"]]')" "an unknown secret"
expect_exit 0 $CLIENT garbage-enroll "$TOKEN"
assert_eq '[405, 404, 426, 400, 400, 400]' "$(json '[x["status"] for x in j]')" "a GET of enroll, an unknown path, a channel without upgrade, malformed enrollments"
assert_eq '["bad-message", "bad-message", "unsupported-version"]' "$(json '[x["body"]["error"]["code"] for x in j[3:]]')"
manager_event "agent-enrolled" || fail "no agent-enrolled event"

step "the channel without, with a wrong credential, with an unknown key: 401"
expect_exit 0 $CLIENT unauthorized "$M1"

step "hello, events, the same batch again, a later batch: acks right, stored once"
expect_exit 0 $CLIENT events "$M1"
assert_eq 5 "$(agent_field "$KEY1" events)" "events stored once each"
assert_eq stopped "$(agent_field "$KEY1" status)" "after bye"
assert_eq web1 "$(agent_field "$KEY1" name)"
expect_exit 0 $CLIENT bad-first "$M1"
assert_contains "$OUT" "hello"

step "silence: closed and lost within lost_after + 1 s"
expect_exit 0 $CLIENT silent "$M1"
took=$(json 'j["closed_after_s"]')
/usr/bin/python3 -c "import sys; t = float(sys.argv[1]); sys.exit(0 if $LOST_AFTER - 0.5 <= t <= $LOST_AFTER + 1 else 1)" "$took" ||
  fail "the silent channel was closed after $took s, lost_after is $LOST_AFTER"
echo "    silent channel closed after $took s (lost_after $LOST_AFTER)"
assert_eq lost "$(agent_field "$KEY1" status)" "right after the close"
manager_event "sent nothing for $LOST_AFTER s" || fail "no agent-lost for the silence"

step "a lost agent's hello: recovered, and a verify command"
expect_exit 0 $CLIENT recover "$M1"
assert_eq verify "$(json 'j["request"]["cmd"]')"
manager_event "agent web1 (web1.example) is back" || fail "no agent-recovered"

step "the baseline changed between hellos: unexpected without a deploy, expected after one"
expect_exit 0 $CLIENT rebaseline "$M1"
assert_eq 1 "$(grep -c 'baseline-changed-unexpectedly' "$MLOG")" "baseline-changed-unexpectedly events"
assert_eq 3 "$(sqlite3 "$MSTATE/manager.db" "SELECT COUNT(*) FROM baselines WHERE agent_key = '$KEY1'")" "baseline hashes recorded (aa, bb, cc)"

step "a dropped connection: lost within 2 s"
expect_exit 0 $CLIENT drop "$M2"
dropped_at=$(date +%s%N)
WAIT_SECONDS=2 WAIT_ON=$MSTATE WAIT_EXPLAIN='cat "$MLOG"' wait_for "agent 2 to be lost" status_is "$KEY2" lost
manager_event "the connection ended without goodbye" || fail "no agent-lost for the drop"
echo "    lost $(( ($(date +%s%N) - dropped_at) / 1000000 )) ms after the drop (including one agents --json)"

step "a second connection with a live agent_key: duplicate-identity; the first goes on"
expect_exit 0 $CLIENT duplicate "$M2"
manager_event "a second connection with the same identity" || fail "no agent-duplicate event"
assert_eq stopped "$(agent_field "$KEY2" status)" "after the first connection's bye"

step "the agent's old connection dead unbeknown (no pong): its new one is let in"
expect_exit 0 $CLIENT replace "$M2"
echo "    the reconnection was welcomed after $(json 'j["welcome_after_s"]') s (the dead one's ping unanswered)"
grep -c 'agent-duplicate' "$MLOG" | grep -qx 1 || fail "the reconnection counted as a duplicate"

step "an oversized message, an oversized batch, a message nested a million levels deep: each closes the channel; the manager still serves"
expect_exit 0 $CLIENT oversize "$M2"
expect_exit 0 $CLIENT enroll "$TOKEN"
assert_eq 200 "$(json 'j["status"]')"

step "max_agents connections at once; 10 s for the TLS handshake"
expect_exit 0 $CLIENT limits "$TOKEN" 50
assert_eq 200 "$(json 'j["enroll_after"]')" "an enrollment once the idle connections are gone"
echo "    a connection without TLS closed after $(json 'j["handshake_closed_after_s"]') s"

step "the agents' list; the manager's own events stored under its own id, valid events"
expect_exit 0 mamori manager agents --json
assert_eq 5 "$(json 'j["count"]')" "agents enrolled"
assert_eq '["web1", "web2", "web1", "web1", "after-limits"]' "$(json '[a["name"] for a in j["agents"]]')"
assert_eq web "$(json 'j["agents"][0]["group"]')"
expect_exit 0 mamori manager agents
assert_contains "$OUT" "$KEY1"
MKEY=$(cat "$MSTATE/agent-id")
sqlite3 "$MSTATE/manager.db" "SELECT json FROM events WHERE agent_key = '$MKEY' ORDER BY sequence" >"$SCRATCH/manager-events.jsonl"
actions=$(python3 -c 'import json, sys; print(sorted({json.loads(l)["event"]["action"] for l in open(sys.argv[1])}))' "$SCRATCH/manager-events.jsonl")
assert_eq "['agent-duplicate', 'agent-enrolled', 'agent-lost', 'agent-recovered', 'agent-stopped', 'baseline-changed-unexpectedly']" "$actions" "the manager's stored events"
check_events "$SCRATCH/manager-events.jsonl"
# The webhook sink got the actions its filter names, each as stored.
lost_stored=$(grep -c '"agent-lost"' "$SCRATCH/manager-events.jsonl")
webhook_wait_bodies "$((lost_stored + 1))"
assert_eq "['agent-duplicate', 'agent-lost']" "$(python3 -c 'import json, sys; print(sorted({json.loads(l)["event"]["action"] for l in open(sys.argv[1])}))' "$WEBHOOK_OUT")" "the webhook's events"
assert_eq mamori.manager "$(python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["event"]["dataset"])' "$WEBHOOK_OUT")"

step "SIGTERM stops it cleanly; its agents are not lost for it, unless they do not come back"
$CLIENT hold "$M1" >"$SCRATCH/hold.out" 2>&1 &
HOLD=$!
WAIT_EXPLAIN='cat "$SCRATCH/hold.out"' wait_for "the held channel" grep -q connected "$SCRATCH/hold.out"
wait_for "agent 1 online" status_is "$KEY1" online
stop_manager
wait "$HOLD" || fail "the held channel's client failed: $(cat "$SCRATCH/hold.out")"
assert_contains "$(cat "$SCRATCH/hold.out")" '"code": "shutting-down"'
assert_eq online "$(agent_field "$KEY1" status)" "an agent connected when the manager stopped"
lost_before=$(grep -c 'agent-lost' "$MLOG")
start_manager
WAIT_SECONDS=$((LOST_AFTER + 2)) WAIT_ON=$MSTATE wait_for "agent 1 lost after the restart" status_is "$KEY1" lost
assert_eq $((lost_before + 1)) "$(grep -c 'agent-lost' "$MLOG")" "one agent-lost after the restart"
grep -q 'its manager stopped and it did not come back within' "$MLOG" || fail "no agent-lost for an agent of the stopped manager"
stop_manager

step "retention: at start, each agent keeps at most max_events_per_agent events"
over=$(sqlite3 "$MSTATE/manager.db" "SELECT COUNT(*) FROM (SELECT agent_key FROM events GROUP BY agent_key HAVING COUNT(*) > 2)")
((over > 0)) || fail "no agent with more than 2 events stored to prune"
sed -i 's/^max_agents = 50$/max_agents = 50\nmax_events_per_agent = 2/' "$CONFIG"
start_manager
WAIT_ON=$MSTATE WAIT_EXPLAIN='tail -n 3 "$MLOG"' wait_for "the retention log line" \
  grep -q 'retention: [0-9]* events deleted' "$MLOG"
assert_eq 0 "$(sqlite3 "$MSTATE/manager.db" "SELECT COUNT(*) FROM (SELECT agent_key FROM events GROUP BY agent_key HAVING COUNT(*) > 2)")" \
  "agents with more than max_events_per_agent events"
stop_manager
