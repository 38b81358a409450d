#!/usr/bin/env bash
# Inode exhaustion must not keep a tamper live (issue 10, item 6). The site is on a small
# ext4 with few inodes; www-data fills every free inode with empty uploads, then rewrites
# index.php. No temporary can be created for the atomic replace (ENOSPC), so the agent
# rewrites the original content into the existing inode and says so
# (mamori.restore.method = rewritten-in-place). Before the fix: file-restore-failed
# "No space left on device" and the tampered page stayed live.
# shellcheck disable=SC2016  # Python filters in single quotes are meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WEB=$SCRATCH/site
IMG=$SCRATCH/site.img
mkdir -p "$WEB"
truncate -s 16M "$IMG"
mkfs.ext4 -q -F -N 64 "$IMG"
mount -o loop "$IMG" "$WEB"
on_exit "umount '$WEB'"
findmnt -n "$WEB" >/dev/null || fail "ext4 image not mounted on $WEB"
rmdir "$WEB/lost+found"

mkdir -p "$WEB/wp-content/uploads" "$WEB/wp-includes"
printf '<?php echo "front page"; ?>\n' >"$WEB/index.php"
head -c 20000 /dev/urandom | base64 >"$WEB/wp-includes/functions.php"
printf '<?php echo "link"; ?>\n' >"$WEB/wp-includes/linked.php"
cp "$WEB/index.php" "$SCRATCH/index.orig"
cp "$WEB/wp-includes/linked.php" "$SCRATCH/linked.orig"
cp "$WEB/wp-includes/functions.php" "$SCRATCH/functions.orig"
chown -R www-data:www-data "$WEB"
chmod 711 "$SCRATCH"
write_config "$WEB"
sed -i '/^mode = /a allow_new = ["wp-content/uploads/**"]' "$CONFIG"
agent_config
expect_exit 0 mamori -q init
start_agent
as_web() { runuser -u www-data -- "$@"; }

step "www-data fills every free inode with empty uploads"
as_web sh -c 'i=0; while touch "$1/wp-content/uploads/f$i.jpg" 2>/dev/null; do i=$((i + 1)); done' sh "$WEB"
assert_eq 0 "$(df --output=iavail "$WEB" | tail -1 | tr -d ' ')" "free inodes left"

step "index.php tampered (shorter) and functions.php (longer): both back, in place"
as_web sh -c 'echo "<?php system(\$_GET[1]); ?>" > "$1/index.php"' sh "$WEB"
as_web sh -c 'head -c 40000 /dev/zero | tr "\0" "A" >> "$1/wp-includes/functions.php"' sh "$WEB"
WAIT_SECONDS=20 wait_for "index.php restored" cmp -s "$SCRATCH/index.orig" "$WEB/index.php"
WAIT_SECONDS=20 wait_for "functions.php restored" cmp -s "$SCRATCH/functions.orig" "$WEB/wp-includes/functions.php"
assert_eq "644 www-data:www-data" "$(stat -c '%a %U:%G' "$WEB/index.php")" "index.php mode and owner"
wait_for "the restore events" test -n "$(events 'e["event"]["action"] == "file-restored" and e["file"]["path"].endswith("/index.php")')"
ev=$(events 'e["event"]["action"] == "file-restored" and e["file"]["path"].endswith("/index.php")' | tail -1)
assert_eq rewritten-in-place "$(json 'j["mamori"]["restore"]["method"]' "$ev")" "how index.php came back"
assert_eq "" "$(events 'e["event"]["action"] == "file-restore-failed"')" "no restore failed"

step "a hard link of a baselined file into uploads, written through: the link quarantined, the file back"
# Inodes are full, so make room for one link by removing one upload (links take no inode).
rm "$WEB/wp-content/uploads/f0.jpg"
as_web touch "$WEB/wp-content/uploads/f0.jpg"  # full again
stop_agent
as_web ln "$WEB/wp-includes/linked.php" "$WEB/wp-content/uploads/keep.jpg"
as_web sh -c 'echo "<?php /* mine */ ?>" > "$1/wp-includes/linked.php"' sh "$WEB"
AGENT_LOG=$SCRATCH/agent-restarted.log
start_agent
# A new name of baselined code is never an allowed upload: it goes first, so the inode
# has no other name left when the content is written back into it (a file with a second
# name is never written in place: that name could be outside the root).
wait_for "keep.jpg quarantined" test -n "$(events 'e["event"]["action"] == "file-quarantined" and e["file"]["path"].endswith("/uploads/keep.jpg")')"
[[ ! -e $WEB/wp-content/uploads/keep.jpg ]] || fail "the hard link is still in uploads"
WAIT_SECONDS=20 wait_for "linked.php restored" cmp -s "$SCRATCH/linked.orig" "$WEB/wp-includes/linked.php"

step "after a clean-up the restore is atomic again"
rm -f "$WEB"/wp-content/uploads/f*.jpg
restored_index() { events 'e["event"]["action"] == "file-restored" and e["file"]["path"].endswith("/index.php")'; }
before=$(restored_index | wc -l)
as_web sh -c 'echo "<?php system(\$_GET[2]); ?>" > "$1/index.php"' sh "$WEB"
WAIT_SECONDS=20 wait_for "index.php restored again" cmp -s "$SCRATCH/index.orig" "$WEB/index.php"
# The event is written after the file is back: wait for it, not for the earlier one.
wait_for "the second restore's event" test "$(restored_index | wc -l)" -gt "$before"
ev=$(restored_index | tail -1)
assert_eq replaced "$(json 'j["mamori"]["restore"]["method"]' "$ev")" "how index.php came back with inodes free"
