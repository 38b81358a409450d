# shellcheck shell=bash
# shellcheck disable=SC2016  # on_exit and WAIT_EXPLAIN strings are eval'ed later
# Agents of a manager for the integration tests, and what the manager says of them.
# Sourced after lib.sh, never run alone. The test sets FLEET_MANAGER_CONFIG, the config
# `mamori manager agents` reads (any manager of the fleet: they share the database).
#
#   fleet_agent I URL TOKEN_FILE   writes agent I's config: root $SCRATCH/aI/www (the test
#                                  fills it), state, socket and event log of its own, name
#                                  webI; sets ACONF[I], AEVENTS[I], ASOCK[I]; runs init
#   fleet_agent_config I URL TOKEN_FILE [ROOT]
#                                  the same config (root ROOT if given), without init
#   start_fleet_agent I            starts it (APID[I]), waits until it guards
#   fleet_agents_json              `mamori manager agents --json`
#   fleet_field NAME KEY           that field of the agent named NAME
#   fleet_is_status NAME STATUS
#   fleet_online_count
#   fleet_ms_since NAME T0         ms from T0 (date +%s%N) to the agent's status_since:
#                                  the manager's own time of its last status change
#   fleet_all_acked I...           every event of those agents acknowledged by the manager
#   fleet_stored_once TSV I...     TSV ("agent_key<TAB>event_id" per stored event) holds
#                                  each event of agents I... (their events.jsonl) once

declare -a APID ACONF AEVENTS ASOCK

fleet_agent() {
  fleet_agent_config "$@"
  expect_exit 0 "$MAMORI" --config "${ACONF[$1]}" init
}

fleet_agent_config() {
  local i=$1 url=$2 token_file=$3 d=$SCRATCH/a$1
  local root=${4:-$d/www}
  ACONF[i]=$d/mamori.toml
  AEVENTS[i]=$d/events.jsonl
  ASOCK[i]=$d/agent.sock
  cat >"${ACONF[i]}" <<EOF
state_dir = "$d/state"

[[root]]
path = "$root"
mode = "restore"

[agent]
name = "web$i"
socket = "${ASOCK[i]}"
event_log = "${AEVENTS[i]}"
# The fleet's tests tamper as the attacker would without the open gate (its own test:
# open_gate_test.sh), which would refuse them the new files they write.
open_gate = "off"

[manager]
url = "$url"
token_file = "$token_file"
EOF
}

start_fleet_agent() {
  local i=$1 log=$SCRATCH/a$1/agent.log from
  from=$(stat -c %s "$log" 2>/dev/null || echo 0)
  "$MAMORI" --config "${ACONF[i]}" agent >>"$log" 2>&1 &
  APID[i]=$!
  on_exit "kill -CONT ${APID[i]} 2>/dev/null; stop_pid ${APID[i]} 'agent $i'"
  WAIT_SECONDS=60 WAIT_EXPLAIN="cat $log" wait_for "agent $i to be ready" \
    bash -c "tail -c +$((from + 1)) $log | grep -q 'ready: guarding'"
}

fleet_agents_json() {
  timeout -k 5 "$MAMORI_TIMEOUT" "$MAMORI" --config "$FLEET_MANAGER_CONFIG" manager agents --json
}

fleet_field() {
  fleet_agents_json | python3 -c '
import json, sys
for a in json.load(sys.stdin)["agents"]:
    if a["name"] == sys.argv[1]:
        print(a[sys.argv[2]])
' "$1" "$2"
}

fleet_is_status() { [[ $(fleet_field "$1" status) == "$2" ]]; }

fleet_online_count() {
  fleet_agents_json | python3 -c '
import json, sys
print(sum(1 for a in json.load(sys.stdin)["agents"] if a["status"] == "online"))'
}

fleet_ms_since() {
  python3 -c '
import datetime, sys
whole, frac = sys.argv[1].rstrip("Z").split(".")  # 2026-12-04T22:08:35.978023645Z
t = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc)
print((int(t.timestamp()) * 10**9 + int(frac.ljust(9, "0")) - int(sys.argv[2])) // 10**6)
' "$(fleet_field "$1" status_since)" "$2"
}

fleet_all_acked() {
  local i st
  for i in "$@"; do
    st=$(timeout 30 "$MAMORI" --config "${ACONF[i]}" status --json)
    [[ $(json 'j["agent"]["manager"]["cursor"]' "$st") == "$(json 'j["agent"]["outbox"]["next_sequence"]' "$st")" ]] || return 1
  done
}

fleet_stored_once() {
  local tsv=$1 i
  shift
  fleet_agents_json >"$SCRATCH/fleet-agents.json"
  local logs=()
  for i in "$@"; do logs+=("web$i=${AEVENTS[i]}"); done
  python3 - "$tsv" "$SCRATCH/fleet-agents.json" "${logs[@]}" <<'PY'
import json, sys
stored = [line.rstrip("\n").split("\t") for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
keys = {a["name"]: a["agent_key"] for a in json.load(open(sys.argv[2]))["agents"]}
bad = []
for arg in sys.argv[3:]:
    name, path = arg.split("=", 1)
    rows = [e for k, e in stored if k == keys[name]]
    logged = [json.loads(line)["event"]["id"] for line in open(path, encoding="utf-8")]
    if len(rows) != len(set(rows)) or sorted(rows) != sorted(logged):
        bad.append(f"{name}: {len(logged)} logged, {len(rows)} stored ({len(set(rows))} distinct), "
                   f"missing {sorted(set(logged) - set(rows))[:5]}, extra {sorted(set(rows) - set(logged))[:5]}")
    else:
        print(f"{name}: {len(rows)} events, each stored once")
if bad:
    sys.exit("\n".join(bad))
PY
}
