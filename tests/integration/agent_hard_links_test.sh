#!/usr/bin/env bash
# Hard links and writable mappings against the real agent (fanotify), attacked as
# www-data, which owns the WordPress tree as in an auto-updating install:
#   a. os.link('wp-blog-header.php', '.t'), an fd kept open on .t, a write through it:
#      quarantining .t must not leave the inode (and so wp-blog-header.php) writable.
#   b. ln wp-config.php uploads/2024/cfg.jpg (uploads are allow_new), then an append:
#      a hard link to baselined code is never an allowed upload.
#   c. mmap(MAP_SHARED) of a baselined file, the fd closed, a write through the mapping
#      (which raises no event at all): the file closed after being opened for writing is
#      replaced by a fresh copy, so the mapping writes into a detached inode.
#   d. a hard link outside the root on the same filesystem, written through: the open
#      names the inode (fanotify reports opens by file handle), so the baselined name
#      gets a fresh copy and the write goes into the detached inode.
#   e. (root, simulating what protected_hardlinks keeps www-data from doing) a 0600 root
#      file outside the root with the same bytes as a baselined file, hard-linked over
#      it: owner and mode repair must not follow the link out (the agent and
#      `mamori restore` alike): the baselined path gets a fresh inode, the outside file
#      keeps root:root 0600.
# After each, the baselined file holds its original bytes.
# shellcheck disable=SC2016  # PHP and Python in single quotes are meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

id www-data >/dev/null 2>&1 || fail "the www-data user is missing"
WP=$SCRATCH/wp
copy_wordpress "$WP"
chown -R www-data:www-data "$WP"
install -d -o www-data -g www-data -m 0755 "$WP/wp-content/uploads"
chmod 0711 "$SCRATCH"  # www-data reaches $WP, nothing else
OUTSIDE=$SCRATCH/outside
install -d -m 0700 "$OUTSIDE"

write_config "$WP"
sed -i '/^path = /a allow_new = ["wp-content/uploads/**"]' "$CONFIG"
# settle() below chmods readme.html once per step and waits for each repair's own event;
# steps can run faster than a second apart, past the default 5 repairs of one path a
# second that are summarised (file-restore-repeated, agent_storm_test's concern).
agent_config "path_restores_per_second = 100"
expect_exit 0 mamori init
start_agent
as_www() { runuser -u www-data -- "$@"; }

has_event() { [[ -n $(events "$1") ]]; }
count_events() { events "$1" | wc -l; }
await_event() {  # WHAT FILTER
  WAIT_EXPLAIN='echo "--- last events:"; tail -n 20 "$EVENTS"; echo "--- agent log:"; tail -n 20 "$AGENT_LOG"' \
    wait_for "an event: $1 (filter: $2)" has_event "$2"
}
on() { printf 'e["event"]["action"] == "%s" and e.get("mamori", {}).get("path") == "%s"' "$1" "$2"; }
await_event "agent-started with fanotify" 'e["event"]["action"] == "agent-started" and e["mamori"]["backend"] == "fanotify"'

# settle: returns once the agent has handled everything that happened before it: a chmod
# of readme.html (repaired in place), and the agent handles events in order.
SETTLED=0
settle() {
  SETTLED=$((SETTLED + 1))
  chmod 0600 "$WP/readme.html"
  local f
  f=$(on file-repaired readme.html)
  WAIT_EXPLAIN='tail -n 20 "$EVENTS"' wait_for "the agent to catch up (#$SETTLED)" \
    test "$(count_events "$f")" -ge "$SETTLED"
}
pristine() { cmp -s -- "$WP_SRC/$1" "$WP/$1"; }

# A writer as www-data, talked to line by line: it says what it did, waits for "go".
start_writer() {  # PYTHON ARGS...
  local py=$1
  shift
  coproc WRITER { runuser -u www-data -- python3 -u -c "$py" "$@" 2>&1; }
  WRITER_PID=$WRITER_PID
  on_exit "kill $WRITER_PID 2>/dev/null || true"
}
expect_line() {  # WANT
  local line=""
  read -r -t 30 line <&"${WRITER[0]}" || true
  assert_eq "$1" "$line" "the writer's report"
}
go() { echo go >&"${WRITER[1]}"; }

step "a. a hard link .t to wp-blog-header.php, an fd kept on .t, a write through it"
start_writer '
import os, sys
os.chdir(sys.argv[1])
for _ in range(200):
    try:
        os.link("wp-blog-header.php", ".t")
        fd = os.open(".t", os.O_RDWR)
        break
    except FileNotFoundError:  # the agent took .t away before we opened it: again
        continue
    except FileExistsError:
        continue
else:
    sys.exit("the link never stayed long enough to be opened")
print("opened")
sys.stdin.readline()
os.pwrite(fd, b"<?php eval($_POST[\"x\"]); ?>\n", 0)
print("written")
sys.stdin.readline()
' "$WP"
expect_line opened
await_event ".t quarantined" "$(on file-quarantined .t)"
go
expect_line written
settle
pristine wp-blog-header.php || fail "wp-blog-header.php kept the write made through its hard link .t:
$(head -c 200 "$WP/wp-blog-header.php")"
f='e["event"]["action"] in ("file-replaced", "file-restored") and e["mamori"]["path"] == "wp-blog-header.php"'
await_event "wp-blog-header.php replaced" "$f"  # after its evidence, like wp-load.php's below
q=$(events "$(on file-quarantined .t)" | sed -n 1p)
assert_eq "hard-link-to-baselined-file" "$(json 'j["mamori"]["reason"]' "$q")" "why .t was quarantined"
go
wait "$WRITER_PID" || true
[[ ! -e $WP/.t ]] || fail ".t is still there"

step "b. ln wp-config.php wp-content/uploads/2024/cfg.jpg, then an append to it"
as_www mkdir -p "$WP/wp-content/uploads/2024"
await_event "uploads/2024 allowed" "$(on file-allowed wp-content/uploads/2024)"
as_www sh -c 'cd "$1" && ln wp-config.php wp-content/uploads/2024/cfg.jpg &&
  printf "<?php eval(\$_POST[1]); ?>\n" >>wp-content/uploads/2024/cfg.jpg' sh "$WP"
settle
pristine wp-config.php || fail "wp-config.php kept the append made through uploads/2024/cfg.jpg:
$(tail -c 200 "$WP/wp-config.php")"
# A quarantine is reported once its evidence is read, after the writer has been quiet
# for a moment (guard.h: kQuietNs): it may come after the settle's own event.
WAIT_EXPLAIN='echo "--- events of cfg.jpg:"; events "\"cfg.jpg\" in e.get(\"mamori\", {}).get(\"path\", \"\")"; echo "--- agent log:"; tail -n 20 "$AGENT_LOG"' \
  wait_for "cfg.jpg quarantined" has_event "$(on file-quarantined wp-content/uploads/2024/cfg.jpg)"
q=$(events "$(on file-quarantined wp-content/uploads/2024/cfg.jpg)" | sed -n 1p)
assert_eq "hard-link-to-baselined-file" "$(json 'j["mamori"]["reason"]' "$q")" "why cfg.jpg was quarantined"
[[ ! -e $WP/wp-content/uploads/2024/cfg.jpg || $(stat -c %h "$WP/wp-content/uploads/2024/cfg.jpg") == 1 ]] ||
  fail "cfg.jpg is still a hard link"

step "c. mmap(MAP_SHARED) of wp-load.php, the fd closed, a write through the mapping"
start_writer '
import mmap, os, sys
os.chdir(sys.argv[1])
fd = os.open("wp-load.php", os.O_RDWR)
m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
os.close(fd)
print("mapped")
sys.stdin.readline()
evil = b"<?php eval($_POST[1]);/*"
m[0:len(evil)] = evil
m.flush()
print("written")
sys.stdin.readline()
' "$WP"
expect_line mapped
settle  # the close is handled
go
expect_line written
settle
pristine wp-load.php || fail "wp-load.php holds what was written through a mapping:
$(head -c 100 "$WP/wp-load.php")"
# file-replaced, or file-restored when the write came while the detached inode was still
# watched (then the event carries what was written). The event waits for the detached
# inode's evidence, taken once the mapping's writer is quiet (guard.h, kQuietNs; at most
# kMaxHoldNs): it may come after the settle's own event.
await_event "wp-load.php named as opened for writing" \
  'e["event"]["action"] in ("file-replaced", "file-restored") and e["mamori"]["path"] == "wp-load.php" and e["mamori"].get("reason") == "opened-for-writing"'
go
wait "$WRITER_PID" || true
pristine wp-load.php || fail "wp-load.php changed when the writer exited"

step "d. a hard link outside the root (same filesystem), written through an fd kept open"
# No event of the write names anything in the root; the open names the inode itself.
install -d -o www-data -g www-data -m 0700 "$SCRATCH/www-tmp"
start_writer '
import os, sys
os.link(os.path.join(sys.argv[1], "wp-settings.php"), sys.argv[2])
fd = os.open(sys.argv[2], os.O_RDWR)
print("opened")
sys.stdin.readline()
os.pwrite(fd, b"<?php eval($_POST[1]);/*", 0)
print("written")
sys.stdin.readline()
' "$WP" "$SCRATCH/www-tmp/x"
expect_line opened
settle
go
expect_line written
settle
pristine wp-settings.php || fail "wp-settings.php kept the write made through a hard link outside the root:
$(head -c 100 "$WP/wp-settings.php")"
await_event "wp-settings.php replaced" \
  'e["event"]["action"] in ("file-replaced", "file-restored") and e["mamori"]["path"] == "wp-settings.php"'
go
wait "$WRITER_PID" || true

step "e. a root 0600 file outside the root, hard-linked over a baselined file with its bytes"
link_over() {  # REL: $OUTSIDE/secret-REL, 0600 root, same bytes, linked over REL
  local s=$OUTSIDE/secret-${1//\//_}
  cp "$WP_SRC/$1" "$s"
  chown root:root "$s"
  chmod 0600 "$s"
  ln "$s" "$OUTSIDE/link"
  mv -f "$OUTSIDE/link" "$WP/$1"  # one rename: the baselined name now is the outside inode
  echo "$s"
}
check_not_followed() {  # REL SECRET
  assert_eq "root:root 600 1" "$(stat -c '%U:%G %a %h' "$2")" "the outside file's owner, mode and links"
  assert_ne "$(stat -c %i "$2")" "$(stat -c %i "$WP/$1")" "the baselined path's inode"
  assert_eq "www-data:www-data $(stat -L -c %a "$WP_SRC/$1") 1" "$(stat -c '%U:%G %a %h' "$WP/$1")" \
    "$1's owner, mode and links"
  pristine "$1" || fail "$1 differs from the original"
}
secret=$(link_over wp-links-opml.php)
await_event "wp-links-opml.php handled" \
  'e["event"]["action"] in ("file-restored", "file-replaced", "file-repaired") and e["mamori"]["path"] == "wp-links-opml.php"'
check_not_followed wp-links-opml.php "$secret"
has_event "$(on file-repaired wp-links-opml.php)" && fail "wp-links-opml.php's metadata was repaired in place"

step "e. the same while the agent is down, then mamori restore --all"
stop_agent
secret=$(link_over wp-trackback.php)
expect_exit 0 mamori restore --all
check_not_followed wp-trackback.php "$secret"

step "the agent starts again on the repaired tree"
start_agent
for f in wp-blog-header.php wp-config.php wp-load.php wp-settings.php wp-links-opml.php wp-trackback.php; do
  pristine "$f" || fail "$f differs from the original at the end"
done
