#!/usr/bin/env bash
# shellcheck disable=SC2016  # WAIT_EXPLAIN and on_exit strings are eval'ed later
# The fleet on one machine: one `mamori manager` and three agents (roots, state
# directories, control sockets and event logs of their own), one group token with 3 uses.
#   - all three enroll with it and show online in `mamori manager agents --json`;
#   - kill -9 agent 1: lost within 2 s, and the manager's agent-lost reaches a real SMTP
#     server and a real rsyslog (TCP) through the manager's [[sink]]s, within 2 s;
#   - SIGSTOP agent 2: lost within lost_after + 1 s; SIGCONT: online again, and the
#     manager's verify command ran on it (its verify counter and the link's command
#     counter moved);
#   - the manager stopped, files tampered on agents 2 and 3 meanwhile, the manager
#     started: every event of every agent is stored exactly once (event ids in the
#     manager's database against each agent's events.jsonl);
#   - a clone of agent 3 (its STATE/manager.json copied) is refused as a duplicate and
#     enrolls again with its own token: a new agent_key, agent 3 stays online;
#   - an orderly stop (bye) is `stopped`, not lost;
#   - a drained node that goes away is retired (no alarm); a revoked credential is refused.
# MANAGER_DB=postgres runs the same on a PostgreSQL server of the test's own
# (manager_fleet_postgres_test.sh); the default is the SQLite file.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/web_lib.sh"
source "$(dirname "$0")/smtp_lib.sh"
source "$(dirname "$0")/rsyslog_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
source "$(dirname "$0")/fleet_lib.sh"

LOST_AFTER=4

step "an SMTP server and an rsyslog collector for the manager's sinks"
start_smtp "$SCRATCH/mail"
start_rsyslog "$SCRATCH/rsyslog"

step "the manager, on ${MANAGER_DB:-sqlite}"
MDIR=$SCRATCH/manager
mkdir -p "$MDIR"
case ${MANAGER_DB:-sqlite} in
  sqlite) DB_URL="sqlite://$MDIR/manager.db" ;;
  postgres)
    start_postgres "$SCRATCH/pg"
    DB_URL=$PG_URL
    ;;
  *) fail "MANAGER_DB is sqlite or postgres, not $MANAGER_DB" ;;
esac
# What changes when the manager records a status: its database file, or (PostgreSQL) its
# outbox, where the event about it goes at the same moment. The waits wake on it.
MWATCH=$MDIR
[[ ${MANAGER_DB:-sqlite} == postgres ]] && MWATCH=$MDIR/state/outbox
# db_event_ids: "agent_key<TAB>event_id" for every stored event.
db_event_ids() {
  if [[ ${MANAGER_DB:-sqlite} == postgres ]]; then
    psql "$DB_URL" -X -At -F $'\t' -c "SELECT agent_key, event_id FROM events"
  else
    sqlite3 -separator $'\t' "$MDIR/manager.db" "SELECT agent_key, event_id FROM events"
  fi
}
MPORT=$(free_port)
MCONFIG=$MDIR/mamori.toml
MLOG=$MDIR/manager.log
cat >"$MCONFIG" <<EOF
# written by $TEST_NAME
[manager]
listen = "127.0.0.1:$MPORT"
state_dir = "$MDIR/state"
database = "$DB_URL"
public_url = "https://127.0.0.1:$MPORT"
heartbeat = 1
lost_after = $LOST_AFTER

[[sink]]
name = "mail"
type = "smtp"
url = "smtp://127.0.0.1:$SMTP_PORT"
from = "mamori@test.example"
to = ["ops@test.example"]
actions = ["agent-lost"]
digest = 0

[[sink]]
name = "syslog"
type = "syslog"
address = "tcp://127.0.0.1:$RSYSLOG_TCP_PORT"
actions = ["agent-lost"]
EOF
manager() { timeout -k 5 "$MAMORI_TIMEOUT" "$MAMORI" --config "$MCONFIG" manager "$@"; }
MANAGER_PID=""
start_manager() {
  local from
  from=$(stat -c %s "$MLOG" 2>/dev/null || echo 0)
  "$MAMORI" --config "$MCONFIG" manager >>"$MLOG" 2>&1 &
  MANAGER_PID=$!
  on_exit 'stop_manager'
  WAIT_SECONDS=30 WAIT_EXPLAIN='cat "$MLOG"' wait_for "the manager to listen" \
    bash -c "exec 3<>/dev/tcp/127.0.0.1/$MPORT"
}
stop_manager() {
  [[ -n $MANAGER_PID ]] || return 0
  local pid=$MANAGER_PID
  MANAGER_PID=""
  stop_pid "$pid" "the manager" || fail "the manager did not stop within 10 s of SIGTERM"
  # With agents connected too (shutting their channels down once crashed it).
  ((STOPPED_RC == 0)) || fail "the manager exited with status $STOPPED_RC on SIGTERM"
}
start_manager

FLEET_MANAGER_CONFIG=$MCONFIG
agents_json() { fleet_agents_json; }
status_of() { fleet_field "$1" status; }
is_status() { fleet_is_status "$@"; }
all_online() { [[ $(fleet_online_count) == 3 ]]; }

step "one group token with 3 uses"
expect_exit 0 manager token create --group web --uses 3
TOKEN=$(echo "$OUT" | grep -o 'mamori-token-v1\.[A-Za-z0-9_-]*' | head -n 1)
[[ -n $TOKEN ]] || fail "no token printed: $OUT"
echo "$TOKEN" >"$SCRATCH/token"
chmod 0600 "$SCRATCH/token"

step "three agents, each with its own root, state, socket and event log"
for i in 1 2 3; do
  d=$SCRATCH/a$i
  mkdir -p "$d/www/sub"
  for f in index.php wp-config.php sub/page.html; do echo "site $i $f" >"$d/www/$f"; done
  for n in $(seq 1 30); do echo "page $n of site $i" >"$d/www/sub/p$n.html"; done
  fleet_agent "$i" "https://127.0.0.1:$MPORT" "$SCRATCH/token"
  start_fleet_agent "$i"
done
agent_status() { timeout 30 "$MAMORI" --config "${ACONF[$1]}" status --json; }

step "all three enroll with the one token and are online"
WAIT_SECONDS=30 WAIT_EXPLAIN='agents_json; tail -n 5 $SCRATCH/a*/agent.log' wait_for \
  "three agents online" all_online
for i in 1 2 3; do
  st=$(agent_status "$i")
  assert_eq connected "$(json 'j["agent"]["manager"]["state"]' "$st")" "agent $i's link"
  mode=$(stat -c %a "$SCRATCH/a$i/state/manager.json")
  assert_eq 600 "$mode" "agent $i's credential file mode"
done
keys=$(agents_json | python3 -c 'import json,sys; print(len({a["agent_key"] for a in json.load(sys.stdin)["agents"]}))')
assert_eq 3 "$keys" "distinct agent keys"
expect_exit 0 manager token list --json
assert_contains "$OUT" '"uses_left": 0' "the token is used up"

# The times measured are the manager's (the status change it recorded), not this test's
# polls; the waits wake on the manager's database or outbox (MWATCH).
step "kill -9 agent 1: lost within 2 s, agent-lost reaches the SMTP server and rsyslog"
t0=$(date +%s%N)
kill -9 "${APID[1]}"
WAIT_SECONDS=3 WAIT_ON=$MWATCH wait_for "agent 1 lost" is_status web1 lost
ms=$(fleet_ms_since web1 "$t0")
echo "agent 1 lost after $ms ms"
((ms <= 2000)) || fail "agent 1 was reported lost after $ms ms (> 2000)"
# When the line was written (the file's mtime; a later write only makes it later), not
# when this test's poll, up to 1 s behind, saw it.
written_ms() { echo $((($(stat -c %.9Y "$1" | tr -d .) - t0) / 1000000)); }
WAIT_SECONDS=10 wait_for_syslog "agent-lost"
ms=$(written_ms "$RSYSLOG_OUT")
echo "agent-lost at rsyslog $ms ms after the kill"
((ms <= 2000)) || fail "agent-lost reached rsyslog after $ms ms (> 2000)"
assert_contains "$(grep -F agent-lost "$RSYSLOG_OUT")" "web1" "the syslog line names the agent"
WAIT_SECONDS=10 smtp_wait_mail 1
ms=$(written_ms "$SMTP_MAILDIR/0001.eml")
echo "agent-lost mail received $ms ms after the kill"
((ms <= 2000)) || fail "the agent-lost mail arrived after $ms ms (> 2000)"
assert_contains "$(smtp_mail 1)" "agent-lost" "the mail"
assert_contains "$(smtp_mail 1)" "web1" "the mail names the agent"

step "SIGSTOP agent 2: lost within lost_after + 1 s; SIGCONT: recovered and verified"
before=$(agent_status 2)
verifies_before=$(json 'j["agent"]["counters"]["verifies"]' "$before")
t0=$(date +%s%N)
kill -STOP "${APID[2]}"
WAIT_SECONDS=$((LOST_AFTER + 3)) WAIT_ON=$MWATCH wait_for "agent 2 lost" is_status web2 lost
ms=$(fleet_ms_since web2 "$t0")
echo "agent 2 (stopped) lost after $ms ms"
((ms <= (LOST_AFTER + 1) * 1000)) || fail "agent 2 was lost after $ms ms (> $(((LOST_AFTER + 1) * 1000)))"
kill -CONT "${APID[2]}"
WAIT_SECONDS=35 wait_for "agent 2 online again" is_status web2 online
verify_ran() {
  local st
  st=$(agent_status 2)
  (($(json 'j["agent"]["counters"]["verifies"]' "$st") > verifies_before)) &&
    (($(json 'j["agent"]["manager"]["commands"]' "$st") >= 1))
}
WAIT_SECONDS=10 wait_for "the manager's verify to run on agent 2" verify_ran

step "restart agent 1: it comes back with its stored credential"
start_fleet_agent 1
WAIT_SECONDS=35 wait_for "agent 1 online again" is_status web1 online

step "the manager stopped, files tampered on agents 2 and 3, the manager started"
stop_manager
for i in 2 3; do
  for n in $(seq 1 30); do echo "<iframe src=//evil.example>" >>"$SCRATCH/a$i/www/sub/p$n.html"; done
  echo '<?php system($_GET["c"]);' >"$SCRATCH/a$i/www/sub/shell.php"
done
for i in 2 3; do
  WAIT_ON=$SCRATCH/a$i wait_for "agent $i to restore" \
    grep -q file-quarantined "${AEVENTS[$i]}"
done
start_manager
WAIT_SECONDS=35 WAIT_EXPLAIN='agents_json' wait_for "three agents online after the outage" all_online

WAIT_SECONDS=30 wait_for "every agent's events acknowledged" fleet_all_acked 1 2 3
db_event_ids >"$SCRATCH/stored.tsv"
fleet_stored_once "$SCRATCH/stored.tsv" 1 2 3 || fail "the manager's store does not hold every agent event exactly once"

step "a clone of agent 3's credential (a golden image) becomes an agent of its own"
expect_exit 0 manager token create --group web --uses 1
echo "$OUT" | grep -o 'mamori-token-v1\.[A-Za-z0-9_-]*' | head -n 1 >"$SCRATCH/token4"
chmod 0600 "$SCRATCH/token4"
d=$SCRATCH/a4
mkdir -p "$d/www"
echo "site 4" >"$d/www/index.php"
ACONF[4]=$d/mamori.toml
AEVENTS[4]=$d/events.jsonl
sed -e "s|$SCRATCH/a3|$d|g" -e 's/^name = "web3"/name = "web4"/' -e "s|$SCRATCH/token|$SCRATCH/token4|" \
  "${ACONF[3]}" >"${ACONF[4]}"
expect_exit 0 "$MAMORI" --config "${ACONF[4]}" init
cp -p "$SCRATCH/a3/state/manager.json" "$d/state/manager.json"
key3=$(fleet_field web3 agent_key)
start_fleet_agent 4
WAIT_SECONDS=30 WAIT_EXPLAIN='agents_json; cat $SCRATCH/a4/agent.log' wait_for "the clone enrolled as web4" is_status web4 online
key4=$(fleet_field web4 agent_key)
assert_ne "$key3" "$key4" "the clone's agent_key"
assert_contains "$(cat "$d/agent.log")" "another agent uses this identity" "the clone's log"
assert_eq online "$(status_of web3)" "the original agent 3"

step "orderly stop: stopped, not lost"
stop_pid "${APID[3]}" "agent 3" || fail "agent 3 did not stop within 10 s of SIGTERM"
WAIT_SECONDS=5 wait_for "agent 3 stopped" is_status web3 stopped

step "a drained node that goes away is retired, not lost: no alarm"
lost_lines=$(grep -cF agent-lost "$RSYSLOG_OUT" || true)
expect_exit 0 "$MAMORI" --config "${ACONF[2]}" heal --fail "scaled in by the test"
# The next heartbeat (every second) tells the manager the node is drained.
WAIT_SECONDS=10 WAIT_ON=$MWATCH wait_for "agent 2 unhealthy at the manager" is_status web2 unhealthy
kill -9 "${APID[2]}"
WAIT_SECONDS=5 WAIT_ON=$MWATCH wait_for "agent 2 retired" is_status web2 retired
WAIT_SECONDS=5 wait_for "the manager's agent-retired event" \
  grep -q agent-retired "$MLOG" "$MDIR/state/outbox"/*.seg
assert_eq "$lost_lines" "$(grep -cF agent-lost "$RSYSLOG_OUT" || true)" \
  "agent-lost lines at rsyslog (a retired agent raises none)"

step "a revoked credential is refused, and the agent does not enroll again by itself"
key1=$(fleet_field web1 agent_key)
stop_pid "${APID[1]}" "agent 1" || fail "agent 1 did not stop within 10 s of SIGTERM"
expect_exit 0 manager agents revoke "$key1" --json
assert_eq revoked "$(json 'j["status"]' "$OUT")" "the revoked agent's status"
expect_exit 2 manager agents revoke no-such-agent
agents_before=$(agents_json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["agents"]))')
start_fleet_agent 1
WAIT_SECONDS=15 WAIT_EXPLAIN="cat $SCRATCH/a1/agent.log" wait_for "agent 1 refused" \
  grep -q "refused this agent's credential" "$SCRATCH/a1/agent.log"
assert_eq revoked "$(status_of web1)" "agent 1 after its refused connection"
assert_eq "$agents_before" "$(agents_json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["agents"]))')" \
  "agents in the manager (no new enrollment)"
