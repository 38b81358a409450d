#!/usr/bin/env bash
# An operator's verdicts on a running agent (docs/formats/control.md, accept and restore):
# accepting a tampered copy the guard put back makes it the baseline (the guard leaves it,
# `mamori check` is clean, the owner stays the baseline's); restore puts an alert-mode
# change back now and keeps what it replaced; paths that climb out of the root, evidence
# of another path and unknown evidence are refused without touching anything.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WP=$SCRATCH/wp
copy_wordpress "$WP"
chown www-data: "$WP/index.php"
write_config "$WP"
MODE=preserve agent_config
expect_exit 0 mamori -q init
start_agent
ok() { json '"%s" % j["ok"]' "$1"; }

step "a tamper in preserve mode: put back, the tampered copy kept as evidence"
before_owner=$(stat -c '%U %a' "$WP/index.php")
# What the attacker leaves: the guard may have put the original back before we could read it.
{ cat "$WP/index.php" && printf '<?php /* injected */ echo "<iframe src=//evil.example>"; ?>\n'; } >"$SCRATCH/tampered.php"
tampered=$(sha256 "$SCRATCH/tampered.php")
cat "$SCRATCH/tampered.php" >"$WP/index.php"
has_evidence() { [[ -n $(events 'e["event"]["action"] == "file-restored" and e.get("mamori", {}).get("path") == "index.php" and "id" in e.get("mamori", {}).get("evidence", {})') ]]; }
WAIT_SECONDS=20 wait_for "index.php restored with its evidence" has_evidence
restored=$(events 'e["event"]["action"] == "file-restored" and e["mamori"]["path"] == "index.php"' | tail -n1)
evidence=$(json 'j["mamori"]["evidence"]["id"]' "$restored")
restored_event=$(json 'j["event"]["id"]' "$restored")
assert_same_file "$WP_SRC/index.php" "$WP/index.php" "restored before any verdict"
old_hash=$(root_hash)

step "refused: a path outside the root, another path's evidence, unknown evidence"
a=$(control_request "{\"v\":2,\"cmd\":\"accept\",\"root\":\"$WP\",\"path\":\"../../etc/passwd\"}")
assert_eq "False bad-argument" "$(json '"%s %s" % (j["ok"], j["error"]["code"])' "$a")" "a climbing path"
a=$(control_request "{\"v\":2,\"cmd\":\"accept\",\"root\":\"$WP\",\"path\":\"wp-login.php\",\"evidence\":$evidence}")
assert_contains "$a" "was kept from" "evidence of another path"
assert_same_file "$WP_SRC/wp-login.php" "$WP/wp-login.php" "wp-login.php untouched"
a=$(control_request "{\"v\":2,\"cmd\":\"accept\",\"root\":\"$WP\",\"path\":\"index.php\",\"evidence\":99999}")
assert_contains "$a" "no evidence item 99999" "unknown evidence"
a=$(control_request "{\"v\":2,\"cmd\":\"accept\",\"root\":\"/etc\",\"path\":\"passwd\"}")
assert_eq "unknown-root" "$(json 'j["error"]["code"]' "$a")" "a root the agent does not guard"
assert_eq "$old_hash" "$(root_hash)" "the baseline is unchanged by refusals"

step "accept the tampered copy: it is written back and becomes the baseline"
a=$(control_request "{\"v\":2,\"cmd\":\"accept\",\"root\":\"$WP\",\"path\":\"index.php\",\"evidence\":$evidence}")
assert_eq "True True" "$(json '"%s %s" % (j["ok"], j["entries"] >= 1)' "$a")" "accept answer"
new_hash=$(json 'j["root_hash"]' "$a")
assert_ne "$old_hash" "$new_hash" "the baseline is resealed"
assert_eq "$new_hash" "$(root_hash)" "the seal the answer names"
assert_eq "$tampered" "$(sha256 "$WP/index.php")" "index.php holds the accepted content"
assert_eq "$before_owner" "$(stat -c '%U %a' "$WP/index.php")" "owner and mode are the baseline's"
accepted=$(events 'e["event"]["action"] == "baseline-accepted"')
assert_eq "$evidence $restored_event" "$(json '"%s %s" % (j["mamori"]["evidence"]["id"], j["mamori"]["related_event"])' "$accepted")" "baseline-accepted names the evidence and the incident"
# The guard has judged its own write by now (a verify is handled after it) and left it.
a=$(control_request "{\"v\":2,\"cmd\":\"verify\"}")
assert_eq "True" "$(ok "$a")" "verify"
assert_eq "$tampered" "$(sha256 "$WP/index.php")" "the guard leaves the accepted content"
expect_exit 0 mamori check
assert_eq "1" "$(events 'e["event"]["action"] == "file-restored" and e["mamori"]["path"] == "index.php"' | wc -l)" "no restore after the accept"

step "restore in alert mode: the change is put back now, what it replaced kept"
a=$(control_request "{\"v\":2,\"cmd\":\"mode\",\"roots\":\"*\",\"mode\":\"alert\"}")
assert_eq "True" "$(ok "$a")" "mode alert"
echo '<?php system($_GET["c"]); ?>' >"$WP/wp-login.php"
changed() { [[ -n $(events 'e["event"]["action"] == "file-changed" and e["mamori"]["path"] == "wp-login.php"') ]]; }
WAIT_SECONDS=20 wait_for "the alert on wp-login.php" changed
a=$(control_request "{\"v\":2,\"cmd\":\"restore\",\"root\":\"$WP\",\"path\":\"wp-login.php\"}")
assert_eq "True 1" "$(json '"%s %s" % (j["ok"], j["entries"])' "$a")" "restore answer"
assert_same_file "$WP_SRC/wp-login.php" "$WP/wp-login.php" "wp-login.php is the baseline's again"
kept() { [[ -n $(events 'e["mamori"].get("trigger") == "command" and e["mamori"].get("path") == "wp-login.php" and "id" in e["mamori"].get("evidence", {})') ]]; }
WAIT_SECONDS=20 wait_for "the replaced wp-login.php kept as evidence" kept
expect_exit 0 mamori check

step "accept in alert mode without evidence: the path as it is"
echo '<!-- legitimate edit -->' >>"$WP/readme.html"
a=$(control_request "{\"v\":2,\"cmd\":\"accept\",\"root\":\"$WP\",\"path\":\"readme.html\"}")
assert_eq "True" "$(ok "$a")" "accept without evidence"
assert_contains "$(cat "$WP/readme.html")" "legitimate edit" "the edit stays"
expect_exit 0 mamori check

check_events
echo "PASS: agent_verdicts_test"
