#!/usr/bin/env bash
# The real-time agent in restore mode on a copy of WordPress, with the real kernel
# backends. Every way an attacker changes a tree (content, delete, a deleted tree,
# chmod, chown, a security xattr, a rename, a new file, a directory swapped for a
# symlink to /etc) is undone by the agent on its own: bytes with cmp, modes and owners
# with stat, and each is reported by the right event. Then the core cases again with
# the inotify backend.
# shellcheck disable=SC2016  # PHP and Python filters in single quotes are meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WP_SRC=/usr/share/wordpress
[[ -f $WP_SRC/index.php && -d $WP_SRC/wp-admin/css ]] ||
  fail "$WP_SRC is missing: install Debian's 'wordpress' package (tools/install-deps)"

WP=$SCRATCH/wp
# The pristine copy to compare with is Debian's tree itself, read through its links to
# /usr/share/javascript and /etc/wordpress the way cp -aL copied them.
PRISTINE=$WP_SRC
cp -aL "$WP_SRC" "$WP"

# --- helpers ----------------------------------------------------------------------------
# Type, mode, owner of every entry; size and mtime of files (directory times follow their
# children and are not restored).
snapshot() {  # DIR (the pristine one is read through its symlinks)
  local follow=()
  [[ $1 == "$PRISTINE" ]] && follow=(-L)
  (cd "$1" && find "${follow[@]}" . -type f -printf '%p f %m %u:%g %s %T@\n' -o -printf '%p %y %m %u:%g\n') | LC_ALL=C sort
}
# The whole tree is the pristine one again: every entry, its metadata, every byte.
tree_is_pristine() {
  [[ $(snapshot "$WP") == "$(snapshot "$PRISTINE")" ]] && diff -r "$PRISTINE" "$WP" >/dev/null
}
assert_tree_pristine() {  # WHAT
  local a b
  a=$(snapshot "$PRISTINE")
  b=$(snapshot "$WP")
  [[ $a == "$b" ]] || fail "$1: the tree's metadata differs from the pristine copy:
$(diff <(echo "$a") <(echo "$b") | head -n 20)"
  diff -r "$PRISTINE" "$WP" >/dev/null || fail "$1: the tree's bytes differ from the pristine copy:
$(diff -rq "$PRISTINE" "$WP" | head -n 20)"
}
same_stat() {  # REL: mode, owner, size and mtime are the pristine ones
  [[ $(stat -c '%F %a %u:%g %s %Y' -- "$WP/$1") == "$(stat -L -c '%F %a %u:%g %s %Y' -- "$PRISTINE/$1")" ]]
}
same_file() {  # REL: bytes and metadata
  [[ -f $WP/$1 && ! -L $WP/$1 ]] && cmp -s -- "$PRISTINE/$1" "$WP/$1" && same_stat "$1"
}
has_event() { [[ -n $(events "$1") ]]; }
# await_event WHAT FILTER: waits (at most 10 s) until an event matching FILTER is
# written; prints it. On a timeout shows the last events and the agent's log.
await_event() {
  WAIT_EXPLAIN='echo "--- last events:"; tail -n 20 "$EVENTS"; echo "--- agent log:"; cat "$AGENT_LOG"' \
    wait_for "an event: $1 (filter: $2)" has_event "$2"
  events "$2"
}
# A filter for the event of ACTION on mamori.path REL.
on() { printf 'e["event"]["action"] == "%s" and e.get("mamori", {}).get("path") == "%s"' "$1" "$2"; }

write_config "$WP"
agent_config 'backend = "fanotify"'
expect_exit 0 mamori -q init

step "the fanotify agent starts and says so"
start_agent
await_event "agent-started with fanotify" 'e["event"]["action"] == "agent-started" and e["mamori"]["backend"] == "fanotify"' >/dev/null
assert_tree_pristine "right after start-up"

step "overwritten content comes back byte for byte, reported with who did it"
printf '<?php system($_GET["c"]); ?>\n' >>"$WP/index.php"  # by this shell: $$ is the writer
wait_for "index.php restored" same_file index.php
ev=$(await_event "file-restored index.php" "$(on file-restored index.php)" | tail -n 1)
assert_eq "changed realtime $WP/index.php" "$(json '"%s %s %s" % (j["mamori"]["change"], j["mamori"]["trigger"], j["file"]["path"])' "$ev")" \
  "index.php event change/trigger/file.path"
assert_contains "$(json 'j["mamori"]["attrs"]' "$ev")" '"content"' "index.php event attrs"
assert_eq "$(sha256 "$PRISTINE/index.php")" "$(json 'j["mamori"]["baseline"]["sha256"]' "$ev")" "baseline sha256 in the event"
assert_eq "$$ root" "$(json '"%s %s" % (j["process"]["pid"], j["user"]["name"])' "$ev")" "who: this shell, as root"

step "a deleted file comes back"
rm "$WP/wp-login.php"
wait_for "wp-login.php restored" same_file wp-login.php
ev=$(await_event "file-restored wp-login.php" "$(on file-restored wp-login.php)" | tail -n 1)
assert_eq removed "$(json 'j["mamori"]["change"]' "$ev")" "wp-login.php event change"

step "a tree moved out of the root comes back whole, reported once for its top"
mapfile -t css < <(cd "$PRISTINE" && find wp-admin/css)
((${#css[@]} > 10)) || fail "wp-admin/css should be a tree, has ${#css[@]} entries"
mv "$WP/wp-admin/css" "$SCRATCH/css.gone"  # atomic: the whole tree is gone at once
wait_for "wp-admin/css restored" diff -r "$PRISTINE/wp-admin/css" "$WP/wp-admin/css"
ev=$(await_event "file-restored wp-admin/css" "$(on file-restored wp-admin/css)")
assert_eq 1 "$(wc -l <<<"$ev")" "one event for the tree"
assert_eq "removed ${#css[@]}" "$(json '"%s %s" % (j["mamori"]["change"], j["mamori"]["entries"])' "$ev")" \
  "wp-admin/css event change and entries (the whole tree)"
n=$(events 'e.get("mamori", {}).get("path", "").startswith("wp-admin/css/")' | wc -l)
assert_eq 0 "$n" "no event for an entry beneath wp-admin/css"
assert_tree_pristine "after the tree moved out"

step "rm -rf of a tree, racing the agent's restore: the tree ends whole"
# rm may lose the race ('Directory not empty' once the agent put entries back).
rm -rf "$WP/wp-admin/images" 2>/dev/null || true
WAIT_SECONDS=20 wait_for "wp-admin/images restored" tree_is_pristine
await_event "file-restored under wp-admin/images" \
  'e["event"]["action"] == "file-restored" and (e["mamori"]["path"] + "/").startswith("wp-admin/images/")' >/dev/null
assert_tree_pristine "after rm -rf"

step "chmod 777 and chown nobody are repaired without rewriting the content"
ino=$(stat -c %i "$WP/wp-cron.php")
chmod 777 "$WP/wp-cron.php"
wait_for "wp-cron.php mode back" same_file wp-cron.php
assert_eq 644 "$(stat -c %a "$WP/wp-cron.php")" "wp-cron.php mode"
ev=$(await_event "file-repaired wp-cron.php" "$(on file-repaired wp-cron.php)" | tail -n 1)
assert_eq '["mode"]' "$(json 'j["mamori"]["attrs"]' "$ev")" "wp-cron.php event attrs"
assert_eq "$ino" "$(stat -c %i "$WP/wp-cron.php")" "a metadata repair keeps the inode"
chown nobody "$WP/xmlrpc.php"
wait_for "xmlrpc.php owner back" same_file xmlrpc.php
assert_eq root:root "$(stat -c %U:%G "$WP/xmlrpc.php")" "xmlrpc.php owner"
ev=$(await_event "file-repaired xmlrpc.php" "$(on file-repaired xmlrpc.php)" | tail -n 1)
assert_eq '["owner"]' "$(json 'j["mamori"]["attrs"]' "$ev")" "xmlrpc.php event attrs"

step "a security.* xattr (tracked) is removed again"
no_xattr() { [[ -z $(getfattr --absolute-names -m - -d "$WP/wp-mail.php" 2>/dev/null) ]]; }
no_xattr || fail "wp-mail.php should have no xattrs to begin with"
setfattr -n security.mamori-test -v injected "$WP/wp-mail.php"
wait_for "wp-mail.php xattr removed" no_xattr
ev=$(await_event "file-repaired wp-mail.php" "$(on file-repaired wp-mail.php)" | tail -n 1)
assert_contains "$(json 'j["mamori"]["attrs"]' "$ev")" '"xattrs"' "wp-mail.php event attrs"
wait_for "wp-mail.php intact" same_file wp-mail.php

step "a rename: the old name comes back, the new name is quarantined with evidence"
mv "$WP/wp-settings.php" "$WP/wp-settings.php.bak"
wait_for "wp-settings.php back" same_file wp-settings.php
wait_for "wp-settings.php.bak quarantined" test ! -e "$WP/wp-settings.php.bak"
await_event "file-restored wp-settings.php" "$(on file-restored wp-settings.php)" >/dev/null
ev=$(await_event "file-quarantined wp-settings.php.bak" "$(on file-quarantined wp-settings.php.bak)" | tail -n 1)
assert_eq added "$(json 'j["mamori"]["change"]' "$ev")" "wp-settings.php.bak event change"
id=$(json 'j["mamori"]["evidence"]["id"]' "$ev")
expect_exit 0 mamori evidence export "$id" --output "$SCRATCH/bak.evidence"
assert_same_file "$PRISTINE/wp-settings.php" "$SCRATCH/bak.evidence" "the quarantined copy kept as evidence"

step "a new file is quarantined with evidence"
printf '<?php eval(base64_decode($_POST["x"])); ?>\n' >"$SCRATCH/shell.php"
# Written whole, then renamed in: quarantine on creation must see the full content.
cp "$SCRATCH/shell.php" "$SCRATCH/shell.tmp" && mv "$SCRATCH/shell.tmp" "$WP/wp-content/mamori-shell.php"
wait_for "mamori-shell.php removed" test ! -e "$WP/wp-content/mamori-shell.php"
ev=$(await_event "file-quarantined mamori-shell.php" "$(on file-quarantined wp-content/mamori-shell.php)" | tail -n 1)
id=$(json 'j["mamori"]["evidence"]["id"]' "$ev")
expect_exit 0 mamori evidence export "$id" --output "$SCRATCH/shell.evidence"
assert_same_file "$SCRATCH/shell.php" "$SCRATCH/shell.evidence" "the web shell kept as evidence"

step "a directory swapped (atomically) for a symlink to /etc comes back; nothing lands in /etc"
mapfile -t js_top < <(cd "$PRISTINE/wp-admin/js" && ls -A)
for n in "${js_top[@]}"; do [[ ! -e /etc/$n ]] || fail "/etc/$n exists before the test"; done
etc_before=$(find /etc -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort)
ln -s /etc "$SCRATCH/swap"
# renameat2(RENAME_EXCHANGE): wp-admin/js is the symlink in one step, the real tree now
# outside the root (same file system) at $SCRATCH/swap.
python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
if libc.renameat2(AT_FDCWD, sys.argv[1].encode(), AT_FDCWD, sys.argv[2].encode(), RENAME_EXCHANGE) != 0:
    e = ctypes.get_errno(); sys.exit("renameat2: " + os.strerror(e))
' "$SCRATCH/swap" "$WP/wp-admin/js"
[[ -d $SCRATCH/swap && ! -L $SCRATCH/swap ]] || fail "the exchange did not happen"
wait_for "wp-admin/js a directory again" test -d "$WP/wp-admin/js" -a ! -L "$WP/wp-admin/js"
WAIT_SECONDS=20 wait_for "the tree pristine after the swap" tree_is_pristine
ev=$(await_event "file-restored wp-admin/js" "$(on file-restored wp-admin/js)" | tail -n 1)
assert_contains "$(json 'j["mamori"]["attrs"]' "$ev")" '"type"' "wp-admin/js event attrs"
for n in "${js_top[@]}"; do [[ ! -e /etc/$n ]] || fail "/etc/$n was written through the symlink"; done
assert_eq "$etc_before" "$(find /etc -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort)" "no name added to or removed from /etc"

step "a directory with tampered contents swapped in from outside the root is examined whole"
# Same name, same mode and owner: only what it holds differs, and no event names it.
cp -a "$WP/wp-includes/images" "$SCRATCH/images.evil"
printf '<?php system($_GET["c"]); ?>\n' >"$SCRATCH/images.evil/blank.gif"
printf '<?php eval($_POST["x"]); ?>\n' >"$SCRATCH/images.evil/shell.php"
rm "$SCRATCH/images.evil/w-logo-blue.png"
python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 2) != 0:
    sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
' "$SCRATCH/images.evil" "$WP/wp-includes/images"
WAIT_SECONDS=20 wait_for "wp-includes/images contents restored" tree_is_pristine
await_event "file-restored wp-includes/images/blank.gif" "$(on file-restored wp-includes/images/blank.gif)" >/dev/null
await_event "file-quarantined wp-includes/images/shell.php" "$(on file-quarantined wp-includes/images/shell.php)" >/dev/null

step "everything is as the baseline has it"
assert_tree_pristine "end of the fanotify run"
expect_exit 0 mamori check
expect_exit 0 mamori --json check
assert_eq true "$(json 'j["clean"]')" "check --json .clean"
n=$(events 'e["event"]["action"] == "file-restore-failed"' | wc -l)
assert_eq 0 "$n" "no file-restore-failed event"
stop_agent

# --- the same core cases with inotify -------------------------------------------------
step "the inotify agent: content, delete, chmod, new file (also in a new directory)"
EVENTS=$SCRATCH/events-inotify.jsonl
AGENT_LOG=$SCRATCH/agent-inotify.log
write_config "$WP"
echo 'allow_new = ["wp-content/uploads", "wp-content/uploads/**"]' >>"$CONFIG"
agent_config 'backend = "inotify"'
start_agent
await_event "agent-started with inotify" 'e["event"]["action"] == "agent-started" and e["mamori"]["backend"] == "inotify"' >/dev/null

printf 'defaced\n' >"$WP/wp-links-opml.php"
wait_for "wp-links-opml.php restored (inotify)" same_file wp-links-opml.php
await_event "file-restored wp-links-opml.php" "$(on file-restored wp-links-opml.php)" >/dev/null

rm "$WP/wp-trackback.php"
wait_for "wp-trackback.php restored (inotify)" same_file wp-trackback.php
ev=$(await_event "file-restored wp-trackback.php" "$(on file-restored wp-trackback.php)" | tail -n 1)
assert_eq removed "$(json 'j["mamori"]["change"]' "$ev")" "wp-trackback.php event change"

chmod 777 "$WP/wp-signup.php"
wait_for "wp-signup.php mode back (inotify)" same_file wp-signup.php
await_event "file-repaired wp-signup.php" "$(on file-repaired wp-signup.php)" >/dev/null

# Deep in the tree, so the watch on a nested directory is exercised too.
deep=wp-includes/js/tinymce/plugins/wordpress
[[ -d $WP/$deep ]] || fail "$deep is missing from the WordPress copy"
cp "$SCRATCH/shell.php" "$WP/$deep/x.php"
wait_for "$deep/x.php quarantined (inotify)" test ! -e "$WP/$deep/x.php"
await_event "file-quarantined $deep/x.php" "$(on file-quarantined "$deep/x.php")" >/dev/null

# New directories where uploads are allowed: inotify must watch each as it appears to
# see what is written into it. The picture stays; the script (deny_new) does not.
mkdir -p "$WP/wp-content/uploads/2024/05"
printf 'GIF89a\n' >"$WP/wp-content/uploads/2024/05/cat.gif"
cp "$SCRATCH/shell.php" "$WP/wp-content/uploads/2024/05/cat.php"
wait_for "uploads/2024/05/cat.php quarantined (inotify)" test ! -e "$WP/wp-content/uploads/2024/05/cat.php"
await_event "file-quarantined cat.php" "$(on file-quarantined wp-content/uploads/2024/05/cat.php)" >/dev/null
await_event "file-allowed cat.gif" "$(on file-allowed wp-content/uploads/2024/05/cat.gif)" >/dev/null
assert_eq GIF89a "$(cat "$WP/wp-content/uploads/2024/05/cat.gif")" "the allowed upload stays"
rm -r "$WP/wp-content/uploads"

assert_tree_pristine "end of the inotify run"
expect_exit 0 mamori check
n=$(events 'e["event"]["action"] == "file-restore-failed"' | wc -l)
assert_eq 0 "$n" "no file-restore-failed event (inotify)"
stop_agent

step "every event written passes the field list (docs/formats/ecs-fields.tsv)"
check_events
