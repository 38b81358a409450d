#!/usr/bin/env bash
# Alert mode only reports: a rewritten file, a new web shell, a deleted file and a chmod
# stay exactly as the attacker left them, each with its event. Switching the running
# agent to restore (`mamori mode`) repairs everything alert saw before the command
# returns. Preserve mode restores too, and keeps the tampered bytes as evidence, which
# restore mode does not.
# shellcheck disable=SC2016  # PHP and Python filters in single quotes are meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WP=$SCRATCH/wp
copy_wordpress "$WP"
write_config "$WP"
MODE=alert agent_config
expect_exit 0 mamori -q init

has_event() { [[ -n $(events "$1") ]]; }
on() { printf 'e["event"]["action"] == "%s" and e.get("mamori", {}).get("path") == "%s"' "$1" "$2"; }
one_event() {  # WHAT FILTER: waits for it, prints the last one
  wait_for "$1" has_event "$2"
  events "$2" | tail -n 1
}
pristine() {  # REL: bytes, mode, owner and mtime as Debian's
  cmp -s -- "$WP_SRC/$1" "$WP/$1" &&
    [[ $(stat -c '%a %u:%g %Y' -- "$WP/$1") == "$(stat -L -c '%a %u:%g %Y' -- "$WP_SRC/$1")" ]]
}

start_agent
step "alert mode: the tampering stays on disk, each change is reported"
BACKDOOR='<?php system($_GET["c"]); ?>'
printf '%s\n' "$BACKDOOR" >>"$WP/index.php"
cp "$WP/index.php" "$SCRATCH/index.tampered"
printf '<?php eval($_POST["x"]); ?>\n' >"$SCRATCH/shell.php"
cp "$SCRATCH/shell.php" "$SCRATCH/shell.tmp" && mv "$SCRATCH/shell.tmp" "$WP/wp-content/shell.php"
rm "$WP/wp-login.php"
chmod 777 "$WP/wp-cron.php"

ev=$(one_event "file-changed index.php" "$(on file-changed index.php)")
assert_eq "alert realtime changed" "$(json '"%s %s %s" % (j["mamori"]["mode"], j["mamori"]["trigger"], j["mamori"]["change"])' "$ev")" \
  "index.php event mode/trigger/change"
assert_contains "$(json 'j["mamori"]["attrs"]' "$ev")" '"content"' "index.php event attrs"
one_event "file-created wp-content/shell.php" "$(on file-created wp-content/shell.php)" >/dev/null
one_event "file-deleted wp-login.php" "$(on file-deleted wp-login.php)" >/dev/null
ev=$(one_event "file-changed wp-cron.php" "$(on file-changed wp-cron.php)")
assert_contains "$(json 'j["mamori"]["attrs"]' "$ev")" '"mode"' "wp-cron.php event attrs"
# Every event above was written after its change was handled: the disk is as left.
assert_same_file "$SCRATCH/index.tampered" "$WP/index.php" "alert mode leaves the tampered bytes"
assert_same_file "$SCRATCH/shell.php" "$WP/wp-content/shell.php" "alert mode leaves the new file"
[[ ! -e $WP/wp-login.php ]] || fail "alert mode put wp-login.php back"
assert_eq 777 "$(stat -c %a "$WP/wp-cron.php")" "alert mode leaves the mode"
n=$(events 'e["event"]["action"] in ("file-restored", "file-repaired", "file-quarantined")' | wc -l)
assert_eq 0 "$n" "no restore, repair or quarantine event in alert mode"
expect_exit 1 mamori --json check
assert_eq "1 1 2" "$(json '"%d %d %d" % (j["summary"]["added"], j["summary"]["removed"], j["summary"]["changed"])')" \
  "check in alert mode: added removed changed"

step "mamori mode ROOT restore: everything alert saw is repaired before it returns"
expect_exit 0 mamori mode "$WP" restore
assert_contains "$OUT" "restore mode"
for f in index.php wp-login.php wp-cron.php; do pristine "$f" || fail "$f is not back after the switch to restore"; done
[[ ! -e $WP/wp-content/shell.php ]] || { events | cut -c1-600; fail "shell.php is still there after the switch to restore"; }
expect_exit 0 mamori check
ev=$(one_event "mode-changed to restore" 'e["event"]["action"] == "mode-changed" and e["mamori"]["mode"] == "restore"')
assert_eq alert "$(json 'j["mamori"]["previous_mode"]' "$ev")" "mode-changed previous_mode"
resumed() { events "$(on "$1" "$2") and e[\"mamori\"][\"trigger\"] == \"resume\"" | tail -n 1; }
for a in "file-restored index.php" "file-quarantined wp-content/shell.php" "file-restored wp-login.php" \
  "file-repaired wp-cron.php"; do
  # shellcheck disable=SC2086  # "action path"
  [[ -n $(resumed $a) ]] || fail "no $a event with trigger resume"
done
ev=$(resumed file-restored index.php)
[[ $(json 'j["mamori"].get("evidence")' "$ev") == null ]] || fail "restore mode kept evidence for a modified file: $ev"
ev=$(resumed file-quarantined wp-content/shell.php)
id=$(json 'j["mamori"]["evidence"]["id"]' "$ev")
expect_exit 0 mamori evidence export "$id" --output "$SCRATCH/shell.evidence"
assert_same_file "$SCRATCH/shell.php" "$SCRATCH/shell.evidence" "the quarantined shell kept as evidence"

step "restore mode now acts in real time"
printf 'defaced\n' >"$WP/wp-mail.php"
wait_for "wp-mail.php restored" pristine wp-mail.php
ev=$(one_event "file-restored wp-mail.php" "$(on file-restored wp-mail.php)")
[[ $(json 'j["mamori"].get("evidence")' "$ev") == null ]] || fail "restore mode kept evidence for a modified file: $ev"

step "mamori mode ROOT preserve: restores, and keeps the tampered bytes as evidence"
expect_exit 0 mamori mode "$WP" preserve
one_event "mode-changed to preserve" 'e["event"]["action"] == "mode-changed" and e["mamori"]["mode"] == "preserve"' >/dev/null
# Made aside and renamed in: the agent may act at once, the copy to compare must be whole.
{ cat "$WP/xmlrpc.php"; printf '%s\n' "$BACKDOOR"; } >"$SCRATCH/xmlrpc.tampered"
cp -p "$SCRATCH/xmlrpc.tampered" "$SCRATCH/xmlrpc.new"
mv "$SCRATCH/xmlrpc.new" "$WP/xmlrpc.php" &
mover=$!
wait "$mover"
wait_for "xmlrpc.php restored in preserve mode" pristine xmlrpc.php
ev=$(one_event "file-restored xmlrpc.php" "$(on file-restored xmlrpc.php)")
assert_eq preserve "$(json 'j["mamori"]["mode"]' "$ev")" "xmlrpc.php event mode"
id=$(json 'j["mamori"]["evidence"]["id"]' "$ev")
expect_exit 0 mamori evidence export "$id" --output "$SCRATCH/xmlrpc.evidence"
assert_same_file "$SCRATCH/xmlrpc.tampered" "$SCRATCH/xmlrpc.evidence" "preserve mode kept the tampered bytes"
expect_exit 0 mamori --json evidence show "$id"
# The pid always; the executable when mv had not exited yet by the time the agent read
# /proc (a web server's worker outlives its request; mv lives for microseconds).
assert_eq "$WP/xmlrpc.php modified $mover" \
  "$(json '"%s %s %s" % (j["file"]["path"], j["mamori"]["evidence"]["reason"], j["process"]["pid"])')" \
  "evidence show: path, reason, who"
assert_contains "/usr/bin/mv|" "$(json 'j["process"].get("executable", "")')|" "evidence show: the executable, if known"
expect_exit 1 mamori evidence diff "$id"  # 1: they differ, like diff(1)
assert_contains "$OUT" "+$BACKDOOR" "evidence diff shows the injected line"
expect_exit 0 mamori check

step "and back to alert: the next change stays"
expect_exit 0 mamori mode "$WP" alert
printf 'defaced again\n' >"$WP/wp-mail.php"
one_event "file-changed wp-mail.php" "$(on file-changed wp-mail.php)" >/dev/null
assert_eq "defaced again" "$(cat "$WP/wp-mail.php")" "alert mode leaves wp-mail.php as written"
stop_agent

step "every event written passes the field list (docs/formats/ecs-fields.tsv)"
check_events
