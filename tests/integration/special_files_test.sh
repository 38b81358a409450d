#!/usr/bin/env bash
# FIFOs, sockets, devices and hostile symlinks (loops, pointing outside the root,
# dangling): init and check finish (a blocked open of a FIFO would hang them), never
# open the nodes, record them so they come back, and restoring never writes through a
# symlink to anything outside the root.
# shellcheck disable=SC2016  # PHP in single quotes is meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$SCRATCH/root
OUTSIDE=$SCRATCH/outside
mkdir -p "$R/nodes" "$R/sub" "$OUTSIDE"
printf 'keep me\n' >"$OUTSIDE/keep.txt"
printf 'sentinel\n' >"$OUTSIDE/sentinel"
chown nobody:nogroup "$OUTSIDE/sentinel"
chmod 600 "$OUTSIDE/sentinel"
touch -d '2001-02-03 04:05:06' "$OUTSIDE/sentinel"

printf '<?php // the site\n' >"$R/index.php"
printf '<?php $db = "prod";\n' >"$R/conf.php"
printf 'x\n' >"$R/sub/x.php"
mkfifo -m 640 "$R/nodes/pipe"
mknod -m 620 "$R/nodes/null" c 1 3
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$R/nodes/sock"
ln -s loop-b "$R/loop-a"
ln -s loop-a "$R/loop-b"
ln -s /etc/passwd "$R/passwd"
ln -s "$OUTSIDE/sentinel" "$R/sentinel-link"
ln -s "$OUTSIDE" "$R/outdir"
ln -s does/not/exist "$R/dangling"
[[ -p $R/nodes/pipe && -c $R/nodes/null && -S $R/nodes/sock ]] || fail "could not make the special files"
write_config "$R"
MAMORI_TIMEOUT=20  # a FIFO opened for reading blocks forever: a hang must fail fast

# Runs a command while inotify watches $R/nodes, then fails if anything opened or read
# one of the nodes in it (opening the directory itself, to list it, is fine).
OPENS=$SCRATCH/opens.py
cat >"$OPENS" <<'EOF'
import ctypes, os, struct, subprocess, sys
IN_ACCESS, IN_OPEN = 0x1, 0x20
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
if fd < 0 or libc.inotify_add_watch(fd, sys.argv[1].encode(), IN_OPEN | IN_ACCESS) < 0:
    sys.exit("inotify: errno %d" % ctypes.get_errno())
rc = subprocess.call(sys.argv[3:])
names = []
try:
    while True:
        buf = os.read(fd, 65536)
        off = 0
        while off < len(buf):
            _, mask, _, n = struct.unpack_from("iIII", buf, off)
            name = buf[off + 16:off + 16 + n].rstrip(b"\0")
            off += 16 + n
            if name:
                names.append(name.decode(errors="replace"))
except BlockingIOError:
    pass
with open(sys.argv[2], "w") as f:
    f.write("\n".join(sorted(set(names))))
sys.exit(rc)
EOF
no_node_opened() {  # CODE MAMORI-ARGS...
  local code=$1
  shift
  expect_exit "$code" python3 "$OPENS" "$R/nodes" "$SCRATCH/opened" timeout -k 2 20 "$MAMORI" --config "$CONFIG" "$@"
  [[ ! -s $SCRATCH/opened ]] || fail "mamori $* opened nodes it must never open: $(tr '\n' ' ' <"$SCRATCH/opened")"
}
# The watcher itself works: opening the FIFO without blocking is seen.
expect_exit 0 python3 "$OPENS" "$R/nodes" "$SCRATCH/opened" \
  python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK))' "$R/nodes/pipe"
assert_eq pipe "$(cat "$SCRATCH/opened")" "the inotify watcher sees an open of the FIFO"

passwd_before=$(sha256 /etc/passwd; stat -c '%a %u:%g %Y' /etc/passwd)
sentinel_before=$(stat -c '%a %u:%g %Y %s' "$OUTSIDE/sentinel")
outside_before=$(cd "$OUTSIDE" && find . -printf '%p %y %m %u:%g %s %T@\n' | LC_ALL=C sort)

step "init finishes, records every node, opens none"
no_node_opened 0 init
assert_contains "$OUT" "baseline sealed"
step "check is clean"
no_node_opened 0 check
assert_contains "$OUT" "clean"
no_node_opened 0 check --full
assert_contains "$OUT" "clean"

step "every special entry is in the baseline: removed ones are reported with their type"
rm "$R/nodes/pipe" "$R/nodes/null" "$R/loop-a" "$R/loop-b" "$R/passwd" "$R/dangling" "$R/outdir"
expect_exit 1 mamori --json check
actual=$(json '"\n".join(sorted("%s %s %s %s" % (c["path"], c["change"], c["before"]["type"], c["before"].get("link_target", "-")) for c in j["changes"]))' | sed "s|$R/||")
expected=$(
  cat <<EOF
dangling removed symlink does/not/exist
loop-a removed symlink loop-b
loop-b removed symlink loop-a
nodes/null removed chardev -
nodes/pipe removed fifo -
outdir removed symlink $OUTSIDE
passwd removed symlink /etc/passwd
EOF
)
assert_eq "$expected" "$actual" "removed entries (path change type link_target)"

step "restore --all brings the FIFO, the device and the links back, as they were"
no_node_opened 0 restore --all
[[ -p $R/nodes/pipe && ! -L $R/nodes/pipe ]] || fail "nodes/pipe is not a FIFO after restore: $(stat -c %F "$R/nodes/pipe" 2>&1)"
assert_eq "fifo 640 0:0" "$(stat -c 'fifo %a %u:%g' "$R/nodes/pipe")" "restored FIFO's mode and owner"
[[ -c $R/nodes/null ]] || fail "nodes/null is not a character device after restore"
assert_eq "1,3 620" "$(stat -c '%t,%T %a' "$R/nodes/null")" "restored device's numbers and mode"
assert_eq loop-b "$(readlink "$R/loop-a")"
assert_eq loop-a "$(readlink "$R/loop-b")"
assert_eq /etc/passwd "$(readlink "$R/passwd")"
assert_eq does/not/exist "$(readlink "$R/dangling")"
assert_eq "$OUTSIDE" "$(readlink "$R/outdir")"
no_node_opened 0 check
assert_contains "$OUT" "clean"

step "tampering through links that lead outside the root never writes outside it"
chown -h nobody:nogroup "$R/sentinel-link"  # the link itself, not the sentinel
rm "$R/passwd"
printf 'root::0:0::/root:/bin/sh\n' >"$R/passwd"  # the link replaced by a file
rm "$R/conf.php"
ln -s /etc/passwd "$R/conf.php"  # a file replaced by a link to /etc/passwd
rm -r "$R/sub"
ln -s "$OUTSIDE" "$R/sub"  # a directory replaced by a link to a directory outside
expect_exit 1 mamori --json check
assert_eq "conf.php changed type
passwd changed type
sentinel-link changed owner
sub changed type
sub/x.php removed " \
  "$(json '"\n".join(sorted("%s %s %s" % (c["path"], c["change"], ",".join(c["attributes"])) for c in j["changes"]))' | sed "s|$R/||")" \
  "changes through links"
expect_exit 0 mamori restore --all
assert_eq "$passwd_before" "$(sha256 /etc/passwd; stat -c '%a %u:%g %Y' /etc/passwd)" "/etc/passwd content, mode, owner, mtime"
assert_eq "$sentinel_before" "$(stat -c '%a %u:%g %Y %s' "$OUTSIDE/sentinel")" "the sentinel outside the root"
assert_eq "$outside_before" "$(cd "$OUTSIDE" && find . -printf '%p %y %m %u:%g %s %T@\n' | LC_ALL=C sort)" \
  "the directory outside the root gained or changed entries"
assert_eq "0:0" "$(stat -c '%u:%g' "$R/sentinel-link")" "the link's own owner is restored"
assert_eq /etc/passwd "$(readlink "$R/passwd")" "passwd is a link again"
[[ -f $R/conf.php && ! -L $R/conf.php ]] || fail "conf.php is not a regular file after restore"
assert_eq '<?php $db = "prod";' "$(cat "$R/conf.php")" "conf.php content"
[[ -d $R/sub && ! -L $R/sub ]] || fail "sub is not a real directory after restore"
assert_eq x "$(cat "$R/sub/x.php")" "sub/x.php content"
expect_exit 0 mamori check
assert_contains "$OUT" "clean"
