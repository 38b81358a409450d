#!/usr/bin/env bash
# Issue 10 item 4: `mamori deploy` must accept only what the deploy command's own
# process tree wrote. While a deploy runs (its command blocked on a FIFO, so the timing
# is exact without a sleep), a dropper running as www-data (which owns the tree, as in
# an auto-updating WordPress) rewrites a core PHP file and plants
# wp-content/uploads/2024/11/cache.php. Afterwards the deploy's own changes are in the
# baseline and guarded; the dropper's are restored / quarantined at once, reported as
# tampers during the deploy (mamori.deploy.writer = foreign), and never accepted. With
# inotify (no writer known) a deploy accepts nothing unreviewed.
# shellcheck disable=SC2016  # PHP and Python filters in single quotes are meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WP=$SCRATCH/wp
chmod 0755 "$SCRATCH"
copy_wordpress "$WP"
mkdir -p "$WP/wp-content/uploads"
chown -R www-data:www-data "$WP"
write_config "$WP"
sed -i '/^path = /a allow_new = ["wp-content/uploads/**"]' "$CONFIG"
agent_config
expect_exit 0 mamori -q init

has_event() { [[ -n $(events "$1") ]]; }
on() { printf 'e["event"]["action"] == "%s" and e.get("mamori", {}).get("path") == "%s"' "$1" "$2"; }

NEW=$SCRATCH/release
mkdir "$NEW"
{ cat "$WP/index.php"; echo '// release 2'; } >"$NEW/index.php"
printf '<?php /* Plugin Name: Legit */\n' >"$NEW/legit.php"
GO=$SCRATCH/go
mkfifo "$GO"
start_agent

step "a deploy runs; meanwhile a www-data dropper rewrites a core file and plants a shell"
mamori deploy -- sh -c "
  cp '$NEW/index.php' '$WP/index.php' &&
  cp '$NEW/legit.php' '$WP/wp-content/plugins/legit.php' &&
  cat '$GO' >/dev/null" >"$SCRATCH/deploy.out" 2>"$SCRATCH/deploy.err" &
DEPLOY=$!
on_exit "kill $DEPLOY 2>/dev/null; exec 9<>'$GO'"  # a failed test must not leave it blocked
wait_for "the deploy's own edits recorded" \
  has_event "$(on file-created wp-content/plugins/legit.php) and e['mamori']['mode'] == 'deploy'"
runuser -u www-data -- sh -c "
  printf '<?php eval(\$_POST[\"x\"]);\n' >>'$WP/wp-settings.php' &&
  mkdir -p '$WP/wp-content/uploads/2024/11' &&
  printf '<?php system(\$_GET[\"c\"]);\n' >'$WP/wp-content/uploads/2024/11/cache.php'"
echo go >"$GO"  # the dropper is done: the deploy's command may end
rc=0
wait "$DEPLOY" || rc=$?
assert_eq 0 "$rc" "deploy exit status (stderr: $(cat "$SCRATCH/deploy.err"))"
assert_contains "$(cat "$SCRATCH/deploy.err")" "wp-settings.php was changed during the deploy by a process outside it"

step "the deploy's changes are in place and in the baseline"
assert_same_file "$NEW/index.php" "$WP/index.php" "index.php is the release's"
assert_same_file "$NEW/legit.php" "$WP/wp-content/plugins/legit.php" "the new plugin stays"
n=$(events "$(on file-changed index.php) and e['mamori']['deploy']['writer'] == 'deploy'" | wc -l)
((n >= 1)) || fail "index.php was not recorded as the deploy's"

step "the dropper's changes are undone, reported as tampers during the deploy, not accepted"
assert_same_file "$WP_SRC/wp-settings.php" "$WP/wp-settings.php" "wp-settings.php restored"
[[ ! -e $WP/wp-content/uploads/2024/11/cache.php ]] || fail "the planted cache.php is still there"
# (user.name only when the writer was still in /proc: the shell may be gone already.)
foreign='e["mamori"].get("deploy", {}).get("writer") == "foreign" and e["process"]["pid"] > 0'
wait_for "file-restored wp-settings.php (foreign writer)" \
  has_event "$(on file-restored wp-settings.php) and $foreign"
wait_for "file-quarantined cache.php (foreign writer)" \
  has_event "$(on file-quarantined wp-content/uploads/2024/11/cache.php) and $foreign"
# The dropper's (empty) upload directories are all that differs, and allow_new allows
# them: listed as allowed, not counted as changes.
expect_exit 0 mamori --json check
assert_eq '["wp-content/uploads/2024", "wp-content/uploads/2024/11"]' \
  "$(json 'sorted(c["path"][len(c["root"]) + 1:] for c in j["changes"] if c.get("allowed"))')" "what differs from the baseline after the deploy"
assert_eq 0 "$(json 'len([c for c in j["changes"] if not c.get("allowed")])')" "changes besides allowed uploads"

step "after the deploy the guard defends the release, and the dropper's writes stay undone"
printf 'defaced\n' >"$WP/index.php"
wait_for "index.php back to the release's" cmp -s "$NEW/index.php" "$WP/index.php"
rm "$WP/wp-content/plugins/legit.php"
wait_for "the deployed plugin restored when deleted" cmp -s "$NEW/legit.php" "$WP/wp-content/plugins/legit.php"
runuser -u www-data -- sh -c "printf '<?php eval(\$_POST[\"x\"]);\n' >>'$WP/wp-settings.php'"
wait_for "wp-settings.php back to the original" cmp -s "$WP_SRC/wp-settings.php" "$WP/wp-settings.php"

step "a deploy whose CLI is killed does not leave the guard paused"
# Not through the mamori() wrapper: $! must be the CLI itself.
"$MAMORI" --config "$CONFIG" deploy -- sh -c "echo '// half' >>'$WP/wp-cron.php'; cat '$GO' >/dev/null" 2>/dev/null &
DEPLOY=$!
wait_for "the killed deploy's edit recorded" has_event "$(on file-changed wp-cron.php)"
kill -KILL "$DEPLOY"
wait "$DEPLOY" 2>/dev/null || true
echo go >"$GO"  # its orphaned command ends too
WAIT_SECONDS=15 wait_for "deploy-abandoned" has_event 'e["event"]["action"] == "deploy-abandoned"'
wait_for "wp-cron.php rolled back" cmp -s "$WP_SRC/wp-cron.php" "$WP/wp-cron.php"
stop_agent

step "inotify names no writer: nothing is accepted unreviewed"
sed -i '/^\[agent\]$/a backend = "inotify"' "$CONFIG"
start_agent
expect_exit 3 mamori deploy -- sh -c "echo '// unattributed' >>'$WP/wp-mail.php'"
assert_contains "$ERR" "cannot tell the deploy's writes from others'"
assert_same_file "$WP_SRC/wp-mail.php" "$WP/wp-mail.php" "wp-mail.php rolled back"
stop_agent
