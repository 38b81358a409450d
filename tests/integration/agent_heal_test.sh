#!/usr/bin/env bash
# Self-healing conditions and actions on the real agent: N tampers in T seconds and a
# quarantined web shell fail the node (the health endpoint answers 503, the health file
# is rewritten, the hook gets the event on stdin), the state survives a restart, a hook
# that hangs is killed and reported, a missing health file directory is an error event
# while the agent keeps guarding, and recovery comes by `mamori heal --clear` or, with
# recover_after, by itself after a clean verify.
source "$(dirname "$0")/lib.sh"

mkdir -p "$SCRATCH/www/uploads" "$SCRATCH/health"
for i in 1 2 3 4 5 6; do echo "page $i" >"$SCRATCH/www/page$i.html"; done
write_config "$SCRATCH/www"
sed -i 's|^mode = "restore"$|mode = "restore"\nallow_new = ["uploads/**"]|' "$CONFIG"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$SCRATCH/hook.sh" <<EOF
#!/bin/sh
# The event arrives on stdin; a real hook would call a cloud CLI here.
cat >"$SCRATCH/hook.\$\$.json"
echo "reason=\$MAMORI_HEAL_REASON" >>"$SCRATCH/hook.\$\$.json"
EOF
chmod 0755 "$SCRATCH/hook.sh"
agent_config
cat >>"$CONFIG" <<EOF
[heal]
on = ["script-quarantined"]
tamper_count = 4
tamper_window = 60
health_file = "$SCRATCH/health/status"
health_file_action = "rewrite"
health_listen = "127.0.0.1:$PORT"
hook = ["$SCRATCH/hook.sh"]
hook_timeout = 5
EOF
mamori -q init
start_agent

step "healthy: the endpoint answers 200, the health file says ok"
assert_eq "200" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" "endpoint status"
assert_eq "ok" "$(cat "$SCRATCH/health/status")" "health file"
expect_exit 0 mamori heal
assert_contains "$OUT" "healthy" "heal"

step "three tampers stay under the threshold; a fifth crosses it"
for i in 1 2 3; do echo x >"$SCRATCH/www/page$i.html"; done
three() { [[ $(events 'e["event"]["action"] == "file-restored"' | wc -l) -ge 3 ]]; }
wait_for "three restores" three
assert_eq "200" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")" "endpoint after three"
for i in 4 5; do echo x >"$SCRATCH/www/page$i.html"; done
unhealthy() { events 'e["event"]["action"] == "node-unhealthy"' | grep -q .; }
wait_for "node-unhealthy" unhealthy
assert_eq "503" "$(curl -s -o "$SCRATCH/body" -w '%{http_code}' "http://127.0.0.1:$PORT/")" "endpoint when unhealthy"
assert_contains "$(cat "$SCRATCH/body")" "unhealthy" "endpoint body"
assert_contains "$(cat "$SCRATCH/health/status")" "DOWN" "rewritten health file"
hook_ran() { events 'e["event"]["action"] == "hook-ran"' | grep -q .; }
wait_for "the hook to run" hook_ran
hook_json=$(cat "$SCRATCH"/hook.*.json)
assert_contains "$hook_json" '"event":{' "the event JSON on the hook's stdin"
assert_contains "$hook_json" "reason=" "MAMORI_HEAL_REASON"
expect_exit 1 mamori heal --json
assert_eq "false" "$(json 'j["healthy"]')" "heal --json"

step "an agent restart keeps the node out of rotation"
stop_agent
start_agent
assert_eq "503" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")" "endpoint after a restart"
expect_exit 1 mamori heal

step "--clear: healthy again; --fail drains by hand; --clear again"
expect_exit 0 mamori heal --clear
assert_eq "200" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")" "endpoint after --clear"
assert_eq "ok" "$(cat "$SCRATCH/health/status")" "health file after --clear"
cleared() { events 'e["event"]["action"] == "node-healthy"' | grep -q 'mamori heal --clear'; }
wait_for "node-healthy naming who cleared it" cleared
expect_exit 0 mamori heal --fail "kernel update"
assert_eq "503" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")" "endpoint after --fail"
expect_exit 2 mamori heal --clear --fail x
expect_exit 0 mamori heal --clear

step "a web shell dropped into uploads is quarantined and fails the node"
echo '<?php system($_GET["c"]); ?>' >"$SCRATCH/www/uploads/shell.php"
shell_unhealthy() { events 'e["event"]["action"] == "node-unhealthy" and e["mamori"]["heal"].get("trigger", {}).get("action") == "file-quarantined"' | grep -q .; }
WAIT_EXPLAIN="events | tail -n 4" wait_for "node-unhealthy after the web shell" shell_unhealthy
[[ ! -e $SCRATCH/www/uploads/shell.php ]] || fail "the web shell is still in uploads"
expect_exit 0 mamori heal --clear

step "a hook that hangs is killed after hook_timeout and reported"
stop_agent
printf '#!/bin/sh\nexec sleep 600\n' >"$SCRATCH/hook.sh"
start_agent
expect_exit 0 mamori heal --fail "hook test"
killed() { events 'e["event"]["action"] == "hook-failed"' | grep -q .; }
WAIT_SECONDS=20 wait_for "hook-failed after the timeout" killed
failed=$(events 'e["event"]["action"] == "hook-failed"' | head -n 1)
assert_contains "$failed" '"timed_out": true' "the hook-failed event"
expect_exit 0 mamori heal --clear

step "a missing health file directory: reported, and the agent keeps guarding"
stop_agent
rm -rf "$SCRATCH/health"
sed -i "s|^recover_after.*||; s|^hook_timeout = 5|hook_timeout = 5\nrecover_after = 2|" "$CONFIG"
start_agent
reported() { events 'e["event"]["action"] == "health-action-failed"' | grep -q "$SCRATCH/health"; }
wait_for "health-action-failed naming the directory" reported
echo x >"$SCRATCH/www/page6.html"
page6() { [[ $(cat "$SCRATCH/www/page6.html") == "page 6" ]]; }
wait_for "page6 restored" page6

step "recover_after: back on its own once a verify is clean (a manual --fail would wait for --clear)"
unhealthy_twice() { [[ $(events 'e["event"]["action"] == "node-unhealthy" and not e["mamori"]["heal"]["manual"]' | wc -l) -ge 3 ]]; }
mkdir -p "$SCRATCH/health"
for i in 1 2 3 4 5; do echo x >"$SCRATCH/www/page$i.html"; done
wait_for "node-unhealthy again" unhealthy_twice
recovered() { events 'e["event"]["action"] == "node-healthy"' | grep -q 'verify-clean'; }
WAIT_SECONDS=20 wait_for "node-healthy after a clean verify" recovered
assert_eq "ok" "$(cat "$SCRATCH/health/status")" "health file after recovery"

step "mamori's own baseline edited behind its back: state-failed at start-up fails the node"
stop_agent
sqlite3 "$STATE/catalog.db" "UPDATE entries SET mode = 511 WHERE path = 'page1.html'"
sed -i 's|^on = \["script-quarantined"\]|on = ["state-failed"]|' "$CONFIG"
start_agent
state_failed() { events 'e["event"]["action"] == "node-unhealthy" and e["mamori"]["heal"]["reason"] == "state-failed"' | grep -q .; }
WAIT_EXPLAIN='events | tail -n 3' wait_for "node-unhealthy for state-failed" state_failed
events 'e["event"]["action"] == "state-failed"' | grep -q "root hash\|verif" ||
  fail "the state-failed event does not say what failed: $(events 'e["event"]["action"] == "state-failed"')"

step "every event written passes the field list (docs/formats/ecs-fields.tsv)"
check_events
