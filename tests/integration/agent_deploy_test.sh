#!/usr/bin/env bash
# `mamori deploy` with the agent running: a command that succeeds leaves its edits in
# place and in the baseline, and the agent goes on guarding the new version; a command
# that fails is rolled back to the baseline, exits non-zero, and what it created is
# quarantined by the agent when it resumes.
# shellcheck disable=SC2016  # PHP and Python filters in single quotes are meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WP=$SCRATCH/wp
copy_wordpress "$WP"
write_config "$WP"
agent_config
expect_exit 0 mamori -q init

has_event() { [[ -n $(events "$1") ]]; }
on() { printf 'e["event"]["action"] == "%s" and e.get("mamori", {}).get("path") == "%s"' "$1" "$2"; }

# The release: index.php and wp-cron.php edited, a plugin added, readme.html dropped.
NEW=$SCRATCH/release
mkdir "$NEW"
{ cat "$WP/index.php"; echo '// release 2'; } >"$NEW/index.php"
{ cat "$WP/wp-cron.php"; echo '// release 2'; } >"$NEW/wp-cron.php"
printf '<?php /* Plugin Name: Release 2 */\n' >"$NEW/release.php"
start_agent

step "a deploy that succeeds: edits in place and in the baseline"
expect_exit 0 mamori deploy -- sh -c "
  cp '$NEW/index.php' '$WP/index.php' &&
  cp '$NEW/wp-cron.php' '$WP/wp-cron.php' &&
  cp '$NEW/release.php' '$WP/wp-content/plugins/release.php' &&
  rm '$WP/readme.html'"
assert_contains "$OUT" "$WP/index.php" "deploy shows what changed"
assert_contains "$OUT" "$WP/wp-content/plugins/release.php" "deploy shows the new file"
assert_same_file "$NEW/index.php" "$WP/index.php" "index.php is the release's"
assert_same_file "$NEW/wp-cron.php" "$WP/wp-cron.php" "wp-cron.php is the release's"
assert_same_file "$NEW/release.php" "$WP/wp-content/plugins/release.php" "the new plugin stays"
[[ ! -e $WP/readme.html ]] || fail "readme.html came back after a deploy that removed it"
expect_exit 0 mamori check
wait_for "deploy-started" has_event 'e["event"]["action"] == "deploy-started"'
wait_for "deploy-ended" has_event 'e["event"]["action"] == "deploy-ended"'
# While paused the agent only recorded; it restored and quarantined nothing.
n=$(events 'e["event"]["action"] in ("file-restored", "file-repaired", "file-quarantined")' | wc -l)
assert_eq 0 "$n" "no restore or quarantine around a successful deploy"
wait_for "the deploy's edits recorded (mode deploy)" \
  has_event "$(on file-changed index.php) and e[\"mamori\"][\"mode\"] == \"deploy\""

step "the agent guards the deployed version"
printf 'defaced\n' >"$WP/index.php"
wait_for "index.php back to the release's" cmp -s "$NEW/index.php" "$WP/index.php"
wait_for "file-restored index.php (realtime)" has_event "$(on file-restored index.php) and e[\"mamori\"][\"trigger\"] == \"realtime\""
printf '<?php system($_GET["c"]); ?>\n' >"$SCRATCH/shell.tmp" && mv "$SCRATCH/shell.tmp" "$WP/wp-content/shell.php"
wait_for "a new shell quarantined after the deploy" test ! -e "$WP/wp-content/shell.php"
rm -f "$WP/wp-content/plugins/release.php"
wait_for "the deployed plugin restored when deleted" cmp -s "$NEW/release.php" "$WP/wp-content/plugins/release.php"
expect_exit 0 mamori check

step "a deploy that fails: rolled back, non-zero exit, its new files quarantined on resume"
expect_exit 3 mamori deploy -- sh -c "
  echo '// broken release' >>'$WP/index.php' &&
  chmod 600 '$WP/wp-login.php' &&
  rm '$WP/wp-mail.php' &&
  echo '<?php /* half-deployed */' >'$WP/wp-content/plugins/broken.php' &&
  mkdir '$WP/wp-content/plugins/broken-dir' && echo x >'$WP/wp-content/plugins/broken-dir/a.php' &&
  exit 1"
assert_contains "$ERR" "failed (exit 1)" "deploy says the command failed"
assert_contains "$ERR" "rolling" "deploy says it rolls back"
assert_same_file "$NEW/index.php" "$WP/index.php" "index.php rolled back to the deployed version"
assert_eq "$(stat -L -c %a "$WP_SRC/wp-login.php")" "$(stat -c %a "$WP/wp-login.php")" "wp-login.php mode rolled back"
assert_same_file "$WP_SRC/wp-mail.php" "$WP/wp-mail.php" "wp-mail.php rolled back"
wait_for "broken.php quarantined on resume" test ! -e "$WP/wp-content/plugins/broken.php"
wait_for "broken-dir quarantined on resume" test ! -e "$WP/wp-content/plugins/broken-dir"
wait_for "deploy-ended after the failed deploy" has_event 'e["event"]["action"] == "deploy-ended"'
for p in wp-content/plugins/broken.php wp-content/plugins/broken-dir; do
  wait_for "$p quarantined by the resume (event)" \
    has_event "$(on file-quarantined "$p") and e[\"mamori\"][\"trigger\"] == \"resume\""
done
expect_exit 0 mamori check
expect_exit 0 mamori --json check
assert_eq true "$(json 'j["clean"]')" "check --json .clean after the rollback"

step "and it still guards after the failed deploy"
printf 'defaced\n' >"$WP/wp-cron.php"
wait_for "wp-cron.php back to the release's" cmp -s "$NEW/wp-cron.php" "$WP/wp-cron.php"
stop_agent

step "every event written passes the field list (docs/formats/ecs-fields.tsv)"
check_events
