#!/usr/bin/env bash
# The open gate follows `mamori mode` (docs/open-gate.md): an agent guarding a root in
# restore mode and another in alert mode marks both, and enforces the alert one only once
# it is switched to restore at run time (and not again once switched back):
#   - alert: a PHP file written into it is created (the guard only reports it);
#   - `mamori mode B restore`: the next one is refused at its open ("Operation not
#     permitted"), as in the restore root from the start;
#   - `mamori mode B alert` again: created again.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

A=$SCRATCH/a B=$SCRATCH/b
mkdir -p "$A" "$B"
echo "<?php echo 'a';" >"$A/index.php"
echo "<?php echo 'b';" >"$B/index.php"
write_config "$A" "$B"
# B starts in alert mode.
python3 - "$CONFIG" "$B" <<'EOF'
import sys
path, b = sys.argv[1], sys.argv[2]
text = open(path).read().replace(f'path = "{b}"\nmode = "restore"', f'path = "{b}"\nmode = "alert"')
open(path, "w").write(text)
EOF
agent_config 'open_gate = "on"' 'backend = "fanotify"'
mamori -q init
start_agent
gate=$(mamori status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["agent"]["gate"]["state"])')
assert_eq on "$gate" "the gate's state"

drop() {  # FILE: true when a new PHP file could be written there
  (echo "<?php system(\$_GET['c']);" >"$1") 2>/dev/null
}
step "the restore root refuses a new script; the alert root does not"
! drop "$A/shell.php" || fail "a new script was written into the restore root"
drop "$B/shell1.php" || fail "a new script could not be written into the alert root"

step "mamori mode B restore: refused there from now on"
mamori mode "$B" restore >/dev/null
! drop "$B/shell2.php" || fail "a new script was written into B after 'mamori mode restore'"
[[ ! -e $B/shell2.php ]] || [[ ! -s $B/shell2.php ]] || fail "B/shell2.php has content"

step "mamori mode B alert: allowed again"
mamori mode "$B" alert >/dev/null
drop "$B/shell3.php" || fail "a new script could not be written into B back in alert mode"
echo "PASS"
