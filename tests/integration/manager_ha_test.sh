#!/usr/bin/env bash
# shellcheck disable=SC2016  # WAIT_EXPLAIN and on_exit strings are eval'ed later
# Two managers behind a real HAProxy (TCP, TLS passed through), sharing one PostgreSQL
# server and one certificate; three agents enrolled through HAProxy (least connections:
# their channels spread over both).
#   - agent web1's manager is killed (-9) while the agents' files are being tampered and
#     web1 is SIGSTOPped: the other agents of the killed manager reconnect to the other
#     one and are never reported lost; web1, which cannot come back, is reported lost by
#     the surviving manager within lost_after + 2 s of the kill; SIGCONT: web1 is online
#     again there;
#   - every event of every agent is stored exactly once (event ids in PostgreSQL against
#     each agent's events.jsonl).
#   - web3's credential copied to a fourth host that connects to the manager not holding
#     web3 (a cloned image): the managers see two live channels of one identity, report
#     `agent-duplicate`, refuse one, and it enrolls again: two agents, two identities.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/web_lib.sh"
source "$(dirname "$0")/postgres_lib.sh"
source "$(dirname "$0")/fleet_lib.sh"

command -v haproxy >/dev/null || fail "haproxy is not installed (tools/install-deps)"
LOST_AFTER=5

step "PostgreSQL, two managers with one certificate, HAProxy in front"
start_postgres "$SCRATCH/pg"
LB_PORT=$(free_port)
declare -a MPORT MCONF MLOG MPID MID
for m in 1 2; do
  MPORT[m]=$(free_port)
  mkdir -p "$SCRATCH/m$m"
  MCONF[m]=$SCRATCH/m$m/mamori.toml
  MLOG[m]=$SCRATCH/m$m/manager.log
  cat >"${MCONF[$m]}" <<EOF
# written by $TEST_NAME
[manager]
listen = "127.0.0.1:${MPORT[$m]}"
state_dir = "$SCRATCH/m$m/state"
database = "$PG_URL"
public_url = "https://127.0.0.1:$LB_PORT"
heartbeat = 1
lost_after = $LOST_AFTER
EOF
done
manager() { timeout -k 5 "$MAMORI_TIMEOUT" "$MAMORI" --config "${MCONF[1]}" manager "$@"; }
start_manager() {  # M
  local m=$1
  "$MAMORI" --config "${MCONF[$m]}" manager >>"${MLOG[$m]}" 2>&1 &
  MPID[m]=$!
  on_exit "stop_pid ${MPID[$m]} 'manager $m'"
  WAIT_SECONDS=30 WAIT_EXPLAIN="cat ${MLOG[$m]}" wait_for "manager $m to listen" \
    grep -q 'listening on' "${MLOG[$m]}"
  MID[m]=$(grep -o 'manager id [0-9a-f-]*' "${MLOG[$m]}" | tail -n 1 | cut -d' ' -f3)
}
start_manager 1
# The agents pin one fingerprint, whichever manager HAProxy picks: the second manager
# gets the first one's pair before its first start.
mkdir -p "$SCRATCH/m2/state"
chmod 0700 "$SCRATCH/m2/state"
cp -p "$SCRATCH/m1/state/manager.crt" "$SCRATCH/m1/state/manager.key" "$SCRATCH/m2/state/"
start_manager 2
assert_ne "${MID[1]}" "${MID[2]}" "the managers' ids"
cat >"$SCRATCH/haproxy.cfg" <<EOF
defaults
  mode tcp
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  default-server inter 200ms fastinter 100ms downinter 100ms fall 1 rise 1
frontend managers
  bind 127.0.0.1:$LB_PORT
  default_backend managers
backend managers
  balance leastconn
  server m1 127.0.0.1:${MPORT[1]} check
  server m2 127.0.0.1:${MPORT[2]} check
EOF
haproxy -db -f "$SCRATCH/haproxy.cfg" >"$SCRATCH/haproxy.out" 2>&1 &
HAPROXY=$!
on_exit 'stop_pid $HAPROXY haproxy'
WAIT_EXPLAIN='cat "$SCRATCH/haproxy.out"' wait_for "HAProxy to listen" \
  bash -c "exec 3<>/dev/tcp/127.0.0.1/$LB_PORT"

step "three agents enroll through HAProxy with one token"
expect_exit 0 manager token create --group web --uses 3
echo "$OUT" | grep -o 'mamori-token-v1\.[A-Za-z0-9_-]*' | head -n 1 >"$SCRATCH/token"
chmod 0600 "$SCRATCH/token"
FLEET_MANAGER_CONFIG=${MCONF[1]}
for i in 1 2 3; do
  mkdir -p "$SCRATCH/a$i/www"
  for n in $(seq 1 20); do echo "page $n of site $i" >"$SCRATCH/a$i/www/p$n.html"; done
  fleet_agent "$i" "https://127.0.0.1:$LB_PORT" "$SCRATCH/token"
  start_fleet_agent "$i"
done
agents_json() { fleet_agents_json; }
field() { fleet_field "$@"; }
is_status() { fleet_is_status "$@"; }
all_online() { [[ $(fleet_online_count) == 3 ]]; }
WAIT_SECONDS=30 WAIT_EXPLAIN='agents_json; tail -n 3 $SCRATCH/a*/agent.log' wait_for \
  "three agents online" all_online
held_by() {  # M: how many agents manager M holds
  agents_json | python3 -c '
import json, sys
print(sum(1 for a in json.load(sys.stdin)["agents"] if a["manager_id"] == sys.argv[1]))' "$1"
}
echo "manager 1 holds $(held_by "${MID[1]}"), manager 2 holds $(held_by "${MID[2]}")"
((($(held_by "${MID[1]}") + $(held_by "${MID[2]}")) == 3)) || fail "not every agent is held by a manager: $(agents_json)"

step "web1's manager killed mid-stream, web1 frozen: the others move, web1 is lost, then back"
VICTIM=1
[[ $(field web1 manager_id) == "${MID[2]}" ]] && VICTIM=2
SURVIVOR=$((3 - VICTIM))
echo "web1 is on manager $VICTIM, which is killed; manager $SURVIVOR survives"
# A steady stream of tampering on web2 and web3 while their channels move.
touch "$SCRATCH/tampering"
(
  n=0
  while [[ -e $SCRATCH/tampering ]]; do
    n=$((n + 1))
    for i in 2 3; do echo "<iframe src=//evil.example/$n>" >>"$SCRATCH/a$i/www/p$((n % 20 + 1)).html"; done
    read -r -t 0.05 <> <(:) || true  # paced: about 20 rounds a second
  done
) &
TAMPERER=$!
on_exit 'rm -f "$SCRATCH/tampering"; wait $TAMPERER 2>/dev/null'
kill -STOP "${APID[1]}"
t0=$(date +%s%N)
kill -9 "${MPID[$VICTIM]}"
wait "${MPID[$VICTIM]}" 2>/dev/null || true
WAIT_SECONDS=$((LOST_AFTER + 5)) WAIT_EXPLAIN='agents_json; tail -n 5 "${MLOG[$SURVIVOR]}"' \
  wait_for "web1 lost" is_status web1 lost
ms=$(fleet_ms_since web1 "$t0")
echo "web1 reported lost by manager $SURVIVOR $ms ms after its manager was killed"
((ms <= (LOST_AFTER + 2) * 1000)) || fail "web1 was reported lost after $ms ms (> $(((LOST_AFTER + 2) * 1000)))"
grep -q 'its manager stopped and it did not come back' "${MLOG[$SURVIVOR]}" ||
  fail "the survivor's log has no agent-lost for web1: $(tail -n 5 "${MLOG[$SURVIVOR]}")"
on_manager() { [[ $(field "$1" manager_id) == "$2" && $(field "$1" status) == online ]]; }
for name in web2 web3; do
  WAIT_SECONDS=$((LOST_AFTER + 5)) wait_for "$name online on manager $SURVIVOR" \
    on_manager "$name" "${MID[$SURVIVOR]}"
done
rm -f "$SCRATCH/tampering"
wait "$TAMPERER" || true
kill -CONT "${APID[1]}"
WAIT_SECONDS=40 wait_for "web1 online again" is_status web1 online
assert_eq "${MID[$SURVIVOR]}" "$(field web1 manager_id)" "web1's manager"
# The managers' events are stored under their own ids; the agent is in mamori.managed_agent.
lost=$(psql "$PG_URL" -X -At -c "SELECT json FROM events WHERE action = 'agent-lost'" |
  python3 -c 'import json, sys; print(" ".join(sorted({json.loads(l)["mamori"]["managed_agent"]["key"] for l in sys.stdin if l.strip()})))')
assert_eq "$(field web1 agent_key)" "$lost" "the agents reported lost (web1 only: web2 and web3 moved)"

step "every event of every agent stored exactly once"
WAIT_SECONDS=60 wait_for "every agent's events acknowledged" fleet_all_acked 1 2 3
psql "$PG_URL" -X -At -F $'\t' -c "SELECT agent_key, event_id FROM events" >"$SCRATCH/stored.tsv"
fleet_stored_once "$SCRATCH/stored.tsv" 1 2 3 || fail "the store does not hold every agent event exactly once"
(($(wc -l <"${AEVENTS[2]}") > 10)) || fail "too few events from web2 to call it a stream: $(wc -l <"${AEVENTS[2]}")"

step "web3's credential copied to a new host that reaches the other manager: refused as a duplicate there or here"
start_manager "$VICTIM"
expect_exit 0 manager token create --group web --uses 1
echo "$OUT" | grep -o 'mamori-token-v1\.[A-Za-z0-9_-]*' | head -n 1 >"$SCRATCH/token"
mkdir -p "$SCRATCH/a4/www"
echo "page of the copy" >"$SCRATCH/a4/www/p1.html"
HOLDER=1
[[ $(field web3 manager_id) == "${MID[2]}" ]] && HOLDER=2
OTHER=$((3 - HOLDER))
fleet_agent 4 "https://127.0.0.1:${MPORT[$OTHER]}" "$SCRATCH/token"
cp -p "$SCRATCH/a3/state/manager.json" "$SCRATCH/a4/state/manager.json"
key3=$(field web3 agent_key)
echo "web3 ($key3) is on manager $HOLDER; its copy connects to manager $OTHER directly"
t0=$(date +%s%N)
start_fleet_agent 4
duplicate_stored() {
  (($(psql "$PG_URL" -X -At -c "SELECT count(*) FROM events WHERE action = 'agent-duplicate'") > 0))
}
WAIT_SECONDS=20 WAIT_EXPLAIN='agents_json; tail -n 5 "${MLOG[1]}" "${MLOG[2]}"' \
  wait_for "an agent-duplicate event" duplicate_stored
echo "agent-duplicate stored $(((($(date +%s%N) - t0)) / 1000000)) ms after the copy started (an upper bound)"
psql "$PG_URL" -X -At -c "SELECT json FROM events WHERE action = 'agent-duplicate'" | grep -q "$key3" ||
  fail "the agent-duplicate event does not name web3's key $key3"
distinct_online() {
  [[ $(field web3 status) == online && $(field web4 status) == online &&
    -n $(field web3 agent_key) && $(field web3 agent_key) != "$(field web4 agent_key)" ]]
}
WAIT_SECONDS=40 WAIT_EXPLAIN='agents_json; tail -n 5 "$SCRATCH/a3/agent.log" "$SCRATCH/a4/agent.log"' \
  wait_for "web3 and its copy online under two identities (the refused one enrolled again)" distinct_online
