#!/usr/bin/env bash
# mamori's state (catalog.db, bans.db, their -wal/-shm, evidence) is root's alone, even
# when the state directory already existed with 0755 and a 0644 catalog was left by an
# older run under umask 022: the directory is made 0700 (and the change reported), every
# database 0600. www-data cannot read the baseline, the bans or the evidence.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
umask 022

SITE=$SCRATCH/site
mkdir -p "$SITE"
printf '<?php\necho "hello";\n' >"$SITE/index.php"
write_config "$SITE"
MODE=preserve agent_config
chmod 0711 "$SCRATCH"  # so only the state directory's own mode keeps www-data out
mkdir -m 0755 "$STATE"

modes() {  # every file and directory under the state directory with its mode
  find "$STATE" -printf '%m %P\n' | LC_ALL=C sort -k2
}
all_private() {  # WHAT: the directory 700, every file in it 600 (directories 700)
  [[ $(stat -c %a "$STATE") == 700 ]] || fail "$1: the state directory is $(stat -c %a "$STATE"), not 700"
  local loose
  loose=$(find "$STATE" -mindepth 1 \( -type f ! -perm 0600 \) -o \( -type d ! -perm 0700 \) -printf '%m %P\n')
  [[ -z $loose ]] || fail "$1: state files readable by others:
$loose"
}

step "init into an existing 0755 state directory"
expect_exit 0 mamori -q init
assert_contains "$ERR" "was mode 0755" "init reports the loose state directory"
all_private "after init"
[[ -f $STATE/catalog.db ]] || fail "no catalog.db"
if runuser -u www-data -- cat "$STATE/catalog.db" >/dev/null 2>&1; then fail "www-data can read catalog.db"; fi

step "a state left loose by an older run (0755 directory, 0644 databases) is tightened"
chmod 0755 "$STATE"
for f in "$STATE"/catalog.db*; do chmod 0644 "$f"; done
: >"$STATE/catalog.db-wal" && chmod 0644 "$STATE/catalog.db-wal"
printf 'more\n' >>"$SITE/index.php"
expect_exit 0 mamori -q accept --all
assert_contains "$ERR" "was mode 0755"
all_private "after accept"

step "bans.db"
chmod 0755 "$STATE"
expect_exit 0\|1\|3 mamori bans list
[[ -f $STATE/bans.db ]] || fail "bans list made no bans.db: $ERR"
all_private "after bans list"

step "the agent: evidence and the state directory"
chmod 0755 "$STATE"
start_agent
assert_contains "$(cat "$AGENT_LOG")" "was mode 0755" "the agent reports the loose state directory"
printf '<?php system($_GET["c"]); ?>\n' >>"$SITE/index.php"
has_evidence() { [[ -n $(events 'e["event"]["action"] == "file-restored" and e.get("mamori", {}).get("evidence")') ]]; }
wait_for "the evidence of the tamper" has_evidence
stop_agent
[[ -f $STATE/evidence/index.db ]] || fail "no evidence index: $(modes)"
all_private "after the agent kept evidence"
if runuser -u www-data -- ls "$STATE/evidence" >/dev/null 2>&1; then fail "www-data can list the evidence"; fi
echo "PASS"
