#!/usr/bin/env bash
# One incident, reconstructed from event ids alone, on a real web stack: nginx and
# php-fpm serve a WordPress copy; an attacker (127.0.0.66) uploads a web shell through
# the site's upload handler and calls it. The agent quarantines the shell, its log
# watch finds the caller in nginx's access log and bans it (ban backend "none": recorded
# and reported, applied nowhere, so loopback keeps working). Then:
#   - `mamori events --ip` shows the call -> quarantine -> ban as one incident;
#   - `--json` carries the links: tamper-attributed and ip-banned name the file event's
#     id (mamori.related_event), the ban has file.path;
#   - every event has its origin (agent.id from STATE/agent-id, agent.version from the
#     build, host.*, event.dataset, event.created, file.name/extension) and passes
#     `mamori events --check`;
#   - `--follow` prints a second incident as it happens, across a log rotation, and
#     `--since` reads the rotated file when it reaches back;
#   - a corrupt STATE/agent-id stops the agent with a clear error; it is not replaced.
# shellcheck disable=SC2016  # PHP in single quotes is meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=web_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/web_lib.sh"

web_install
ATTACKER=127.0.0.66

step "a WordPress copy with an upload handler; nginx, php-fpm; the agent reading the access log"
WWW=$SCRATCH/www
copy_wordpress "$WWW"
chmod 0755 "$WWW"
cat >"$WWW/upload.php" <<'PHP'
<?php
$dir = __DIR__ . '/wp-content/uploads/2026';
if (!is_dir($dir) && !mkdir($dir, 0755, true)) { http_response_code(500); exit("mkdir failed\n"); }
$name = basename($_FILES['f']['name']);
if (!move_uploaded_file($_FILES['f']['tmp_name'], "$dir/$name")) { http_response_code(500); exit("move failed\n"); }
echo "stored $name\n";
PHP
install -d -o www-data -g www-data -m 0755 "$WWW/wp-content/uploads"
start_php_fpm "$WWW"
start_nginx "$WWW"
write_config "$WWW"
sed -i '/^path = /a allow_new = ["wp-content/uploads/**"]' "$CONFIG"
MODE=preserve agent_config 'name = "web-1"'
cat >>"$CONFIG" <<EOF
[logwatch]
allowlist = ["127.0.0.1/32"]
[ban]
backend = "none"
[[log]]
path = "$WEB_DIR/nginx-access.log"
format = "combined"
root = "$WWW"
EOF
expect_exit 0 mamori init
start_agent
AGENT_ID=$(cat "$STATE/agent-id")
[[ $AGENT_ID =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] ||
  fail "STATE/agent-id is not a UUID: $(printf '%q' "$AGENT_ID")"
assert_eq 600 "$(stat -c %a "$STATE/agent-id")" "mode of STATE/agent-id"

# attack NAME: the attacker uploads a web shell NAME, then calls it.
attack() {
  printf '<?php system($_GET["c"]); /* %s */ ?>\n' "$1" >"$SCRATCH/$1"
  code=$(http_code "$WEB_URL/upload.php" --interface "$ATTACKER" -F "f=@$SCRATCH/$1;filename=$1")
  assert_eq 200 "$code" "the upload of $1"
  wait_for "the quarantine of $1" grep -qF "\"path\":\"wp-content/uploads/2026/$1\"" "$EVENTS"
  code=$(http_code "$WEB_URL/wp-content/uploads/2026/$1?c=id" --interface "$ATTACKER")
  assert_eq 404 "$code" "calling $1 after its quarantine"
}
attributed() { grep -F '"action":"tamper-attributed"' "$EVENTS" | grep -qF "$1"; }

step "the attack: upload shell.php, call it"
attack shell.php
wait_for "the ban of $ATTACKER" grep -qF '"action":"ip-banned"' "$EVENTS"
wait_for "the attribution of shell.php" attributed shell.php

step "the events carry their origin and the incident's links"
q=$(events "e['event']['action'] == 'file-quarantined' and e['file']['name'] == 'shell.php'")
[[ $(grep -c . <<<"$q") -eq 1 ]] || fail "expected one file-quarantined event for shell.php:
$q"
FILE_ID=$(json 'j["event"]["id"]' "$q")
assert_eq "$AGENT_ID" "$(json 'j["agent"]["id"]' "$q")" "agent.id"
assert_eq web-1 "$(json 'j["agent"]["name"]' "$q")" "agent.name (config)"
assert_eq "$("$MAMORI" --version | awk '{print $2}')" "$(json 'j["agent"]["version"]' "$q")" "agent.version"
assert_eq "$(hostname)" "$(json 'j["host"]["hostname"]' "$q")" "host.hostname"
assert_eq mamori.guard "$(json 'j["event"]["dataset"]' "$q")" "event.dataset"
assert_eq php "$(json 'j["file"]["extension"]' "$q")" "file.extension"
[[ $(json 'j["event"]["created"] >= j["@timestamp"]' "$q") == true ]] || fail "event.created before @timestamp"
ban=$(events "e['event']['action'] == 'ip-banned'")
assert_eq "$ATTACKER guard-correlation $FILE_ID $WWW/wp-content/uploads/2026/shell.php mamori.logwatch" \
  "$(json '" ".join([j["source"]["ip"], j["rule"]["name"], j["mamori"]["related_event"], j["file"]["path"], j["event"]["dataset"]])' "$ban")" \
  "the ban: source.ip rule.name mamori.related_event file.path event.dataset"
att=$(events "e['event']['action'] == 'tamper-attributed'")
assert_eq "$ATTACKER $FILE_ID called GET 404" \
  "$(json '" ".join([j["source"]["ip"], j["mamori"]["related_event"], j["mamori"]["attribution"], j["http"]["request"]["method"], str(j["http"]["response"]["status_code"])])' "$att")" \
  "the attribution: source.ip mamori.related_event mamori.attribution method status"
assert_contains "$(json 'j["url"]["original"]' "$att")" "GET /wp-content/uploads/2026/shell.php?c=id"

step "mamori events --ip: the incident as a timeline"
expect_exit 0 mamori events --ip "$ATTACKER"
TIMELINE=$OUT
printf '%s\n' "$TIMELINE"
assert_eq 1 "$(grep -c '^incident ' <<<"$TIMELINE")" "one incident"
assert_contains "$TIMELINE" "incident ${FILE_ID: -8} (3 events): $ATTACKER $WWW/wp-content/uploads/2026/shell.php"
for a in file-quarantined tamper-attributed ip-banned; do
  assert_contains "$TIMELINE" "  $a " "the incident has $a"
done
assert_contains "$TIMELINE" "<- ${FILE_ID: -8}]" "the links are shown"

step "--json: the same events, with their references"
expect_exit 0 mamori --json events --ip "$ATTACKER"
assert_eq 3 "$(grep -c . <<<"$OUT")" "three events"
refs=$(while read -r l; do json '"%s %s" % (j["event"]["action"], j.get("mamori", {}).get("related_event", "-"))' "$l"; done <<<"$OUT" | sort)
assert_eq "file-quarantined -
ip-banned $FILE_ID
tamper-attributed $FILE_ID" "$refs" "--json references"

step "--path, --since, no match, bad input"
expect_exit 0 mamori --json events --path "$WWW/wp-content/uploads/*/shell.php"
assert_eq 3 "$(grep -c . <<<"$OUT")" "--path glob: the file event and its incident"
expect_exit 0 mamori --json events --path "$WWW/wp-content/uploads"
assert_contains "$OUT" "$FILE_ID"
expect_exit 1 mamori events --ip 192.0.2.1
expect_exit 1 mamori events --since 2099-01-01
expect_exit 2 mamori events --since yesterday
expect_exit 2 mamori events --ip not-an-ip

step "--follow prints the next incident as it happens, across a rotation"
FOLLOW_OUT=$SCRATCH/follow.out
"$MAMORI" --config "$CONFIG" --json events --follow --ip "$ATTACKER" >"$FOLLOW_OUT" 2>&1 &
FOLLOW_PID=$!
on_exit 'stop_pid "$FOLLOW_PID" "mamori events --follow"'
wait_for "--follow to print the first incident" grep -qF '"action":"ip-banned"' "$FOLLOW_OUT"
mv "$EVENTS" "$EVENTS.1"
kill -HUP "$AGENT_PID"
attack second.php
wait_for "the second attribution" attributed second.php
wait_for "--follow to print the second attribution" grep -qF 'second.php' "$FOLLOW_OUT"
stop_pid "$FOLLOW_PID" "mamori events --follow" || fail "mamori events --follow ignored SIGTERM"
FOLLOW_PID=""
grep -F 'second.php' "$FOLLOW_OUT" | grep -qF '"action":"tamper-attributed"' ||
  fail "--follow did not print the tamper-attributed event of second.php:
$(cat "$FOLLOW_OUT")"
expect_exit 0 mamori --json events --since 1h --ip "$ATTACKER"
assert_contains "$OUT" "$FILE_ID" "--since reaching back reads events.jsonl.1"

step "every event of the run passes the field list"
check_events "$EVENTS.1" "$EVENTS"

step "agent.id is stable across a restart; a corrupt one stops the agent"
stop_agent
start_agent
stop_agent
started=$(events "e['event']['action'] == 'agent-started'" | tail -n 1)
assert_eq "$AGENT_ID" "$(json 'j["agent"]["id"]' "$started")" "agent.id after a restart"
echo garbage >"$STATE/agent-id"
expect_exit 3 timeout -k 5 60 "$MAMORI" --config "$CONFIG" agent
assert_contains "$ERR$OUT" "agent-id"
assert_contains "$ERR$OUT" "delete it to make a new id"
assert_eq garbage "$(cat "$STATE/agent-id")" "the corrupt id is left for the administrator"
