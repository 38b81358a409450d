#!/usr/bin/env bash
# The agent restores a file deep in a tree while a racer swaps the file's parent
# directory for a symlink to an outside directory and back, thousands of times
# (renameat2 RENAME_EXCHANGE: the swap is atomic either way). The agent must never write
# through the symlink: the outside directory ends byte-for-byte as it began, with no new
# name in it, and once the racer stops the tree ends restored.
# shellcheck disable=SC2016  # Python in single quotes is meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$SCRATCH/root
DEEP=a/b/c/d            # the directory the racer swaps
OUTSIDE=$SCRATCH/outside
PRISTINE=$SCRATCH/pristine
mkdir -p "$R/$DEEP" "$OUTSIDE"
# 2 MiB: a restore takes long enough for many swaps to land in the middle of it.
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 8192)' >"$R/$DEEP/target.php"
printf '<?php // sibling\n' >"$R/$DEEP/sibling.php"
printf '<?php // c\n' >"$R/a/b/c/c.php"
# The outside holds files of the same names: a write through the symlink would land on them.
printf 'outside target\n' >"$OUTSIDE/target.php"
printf 'outside sibling\n' >"$OUTSIDE/sibling.php"
chmod 640 "$OUTSIDE/sibling.php"
cp -a "$R" "$PRISTINE"
outside_state() {  # every name, type, mode, owner, size and content hash, times of files
  (cd "$OUTSIDE" && find . -printf '%p %y %m %u:%g %s %T@\n' | LC_ALL=C sort &&
    find . -type f -exec sha256sum {} + | LC_ALL=C sort)
}
outside_before=$(outside_state)

write_config "$R"
agent_config
expect_exit 0 mamori -q init
start_agent

step "tamper the deep file again and again while its parent is swapped for a symlink"
RACER=$SCRATCH/racer.py
cat >"$RACER" <<'PY'
# Swaps DIR and LINK (a symlink to the outside) with RENAME_EXCHANGE until STOP exists
# (at most 30 s). The agent fights back (it quarantines the stray name, restores the
# directory), so every step tolerates a missing name and puts the link back.
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
d, link, outside, stop = sys.argv[1:5]
swaps, end = 0, time.monotonic() + 30
while not os.path.exists(stop) and time.monotonic() < end:
    try:
        if not os.path.lexists(link):
            os.symlink(outside, link)
    except OSError:
        pass
    if libc.renameat2(-100, d.encode(), -100, link.encode(), 2) == 0:
        swaps += 1
print(swaps)
PY
python3 "$RACER" "$R/a/b/c/d" "$R/a/b/c/d.swap" "$OUTSIDE" "$SCRATCH/stop" >"$SCRATCH/swaps" &
racer=$!
on_exit "touch '$SCRATCH/stop'; kill $racer 2>/dev/null || true"
# The tamperer writes only into the real directory (opened with O_NOFOLLOW, wherever it
# is at that moment), never through the symlink: anything outside would be the agent's.
python3 - "$R/a/b/c" "$PRISTINE/$DEEP/target.php" <<'PY'
import os, sys, time
c, original = sys.argv[1], open(sys.argv[2], "rb").read()
tampered = restored = 0
for i in range(40):
    for name in ("d", "d.swap"):
        try:
            dfd = os.open(os.path.join(c, name), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fd = os.open("target.php", os.O_WRONLY | os.O_TRUNC, dir_fd=dfd)
            os.write(fd, b"<?php system($_GET['c']); // %d\n" % i)
            os.close(fd)
            tampered += 1
        except OSError:
            pass
        os.close(dfd)
        break
    # Give the agent up to 0.5 s to restore this round (the outcome is checked at the end).
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        try:
            with open(os.path.join(c, "d", "target.php"), "rb") as f:
                if f.read() == original:
                    restored += 1
                    break
        except OSError:
            pass
        time.sleep(0.005)
print("tampered %d times, seen restored %d times" % (tampered, restored))
PY
touch "$SCRATCH/stop"
wait "$racer"
swaps=$(cat "$SCRATCH/swaps")
echo "swaps: $swaps"
((swaps >= 100)) || fail "the racer swapped only $swaps times: the race did not happen"

step "nothing was written outside"
assert_eq "$outside_before" "$(outside_state)" "the outside directory (names, modes, sizes, times, hashes)"

step "once the racer stops, the tree ends restored"
clean() { mamori -q check; }
WAIT_SECONDS=30 WAIT_EXPLAIN='mamori check; echo "--- agent log:"; tail -n 20 "$AGENT_LOG"; echo "--- last events:"; tail -n 5 "$EVENTS"' \
  wait_for "the tree clean again after the race" clean
diff -r --no-dereference "$PRISTINE" "$R" >/dev/null || fail "the tree differs from the pristine copy:
$(diff -rq --no-dereference "$PRISTINE" "$R" | head -n 10)"
[[ -d $R/$DEEP && ! -L $R/$DEEP ]] || fail "$DEEP is not a real directory at the end"
[[ ! -e $R/a/b/c/d.swap && ! -L $R/a/b/c/d.swap ]] || fail "the racer's d.swap is still in the tree"
assert_eq "$outside_before" "$(outside_state)" "the outside directory, after the agent's cleanup"
n=$(events 'e["event"]["action"] in ("file-restored", "file-quarantined")' | wc -l)
((n > 0)) || fail "the agent reported no restore or quarantine during the race"
kill -0 "$AGENT_PID" || fail "the agent died during the race"
stop_agent
