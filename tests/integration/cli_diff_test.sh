#!/usr/bin/env bash
# mamori diff and mamori evidence diff on an attacker's file: at a terminal, escape
# sequences and carriage returns in the content are shown escaped, so an injected line
# cannot erase itself from the screen (ESC[2K, \r, C1 CSI, a bidi override); a pipe
# still gets the exact bytes. `diff --json` gives JSON; a path neither in the baseline
# nor on disk is a usage error (exit 2), not a failed operation.
# shellcheck disable=SC2016  # PHP in single quotes is meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SITE=$SCRATCH/site
mkdir -p "$SITE"
printf '<?php\necho "hello";\n' >"$SITE/index.php"
write_config "$SITE"
MODE=preserve agent_config
expect_exit 0 mamori -q init

# on_tty OUTFILE CMD...: runs CMD with stdout on a pseudo-terminal in raw mode (so the
# tty adds no \r of its own) and writes what it printed to OUTFILE; returns its status.
on_tty() {
  local out=$1
  shift
  python3 - "$out" "$@" <<'PY'
import os, pty, subprocess, sys, tty
master, slave = pty.openpty()
tty.setraw(slave)
p = subprocess.Popen(sys.argv[2:], stdout=slave, stderr=subprocess.DEVNULL)
os.close(slave)
data = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:  # EIO once the child closed its side
        break
    if not chunk:
        break
    data += chunk
open(sys.argv[1], "wb").write(data)
sys.exit(p.wait())
PY
}
# The injected line, then bytes that make a terminal erase it and show the original.
INJECT=$'system($_GET["c"]); /* \r\e[2K\e[1A\e[2Kecho "hello"; \xc2\x9b2K \xe2\x80\xae */\n'
check_shown() {  # FILE WHAT: the injected line is visible, no control byte reached the tty
  python3 - "$1" "$2" <<'PY'
import sys
data, what = open(sys.argv[1], "rb").read(), sys.argv[2]
bad = [c for c in data if (c < 0x20 and c not in (0x0a, 0x09)) or c == 0x7f]
if bad: sys.exit("%s: raw control bytes %s reached the terminal: %r" % (what, sorted(set(bad)), data[-300:]))
for b in (b"\xc2\x9b", b"\xe2\x80\xae"):
    if b in data: sys.exit("%s: %r reached the terminal raw" % (what, b))
for want in (b'+system($_GET["c"]);', b"\\x0d\\x1b[2K\\x1b[1A\\x1b[2K", b"\\u{009b}2K", b"\\u{202e}"):
    if want not in data: sys.exit("%s: %r is not shown: %r" % (what, want, data[-300:]))
PY
}

step "diff at a terminal: the control bytes are shown escaped"
printf '%s' "$INJECT" >>"$SITE/index.php"
rc=0
on_tty "$SCRATCH/tty.out" "$MAMORI" --config "$CONFIG" diff "$SITE/index.php" || rc=$?
assert_eq 1 "$rc" "diff's exit status at a terminal"
check_shown "$SCRATCH/tty.out" "mamori diff" || fail "mamori diff printed the attacker's control bytes raw"

step "diff into a pipe: the exact bytes, usable by patch(1)"
expect_exit 1 mamori diff "$SITE/index.php"
assert_contains "$OUT" "$(printf '%s' "$INJECT" | head -c 40)" "the exact injected bytes in piped output"
printf '%s\n' "$OUT" >"$SCRATCH/p.diff"
cp "$SITE/index.php" "$SCRATCH/patched.php"
patch -s -R "$SCRATCH/patched.php" "$SCRATCH/p.diff"
printf '<?php\necho "hello";\n' >"$SCRATCH/original.php"
assert_same_file "$SCRATCH/original.php" "$SCRATCH/patched.php" "the piped diff reverses the tamper with patch -R"

step "diff --json"
for form in "diff --json" "--json diff"; do
  # shellcheck disable=SC2086  # the two words of each form
  expect_exit 1 mamori $form "$SITE/index.php"
  assert_eq changed "$(json 'j["change"]')" "$form: change"
  assert_eq '["content"]' "$(json 'j["attributes"]')" "$form: attributes"
  assert_eq text "$(json 'j["content"]')" "$form: content"
  assert_eq "$SITE/index.php" "$(json 'j["path"]')" "$form: path"
  assert_contains "$(json 'j["diff"]')" 'system($_GET["c"]);' "$form: the diff text"
  assert_eq "$(sha256 "$SITE/index.php")" "$(json 'j["current"]["sha256"]')" "$form: current sha256"
done
printf '<?php\necho "hello";\n' >"$SITE/index.php"
expect_exit 0 mamori diff --json "$SITE/index.php"
assert_eq none "$(json 'j["change"]')" "an unchanged file: change"
printf 'x\n' >"$SITE/new.php"
expect_exit 1 mamori diff --json "$SITE/new.php"
assert_eq added "$(json 'j["change"]')" "a new file: change"

step "a path neither in the baseline nor on disk is a usage error"
expect_exit 2 mamori diff "$SITE/nope.php"
assert_contains "$ERR" "neither in the baseline nor on disk"
expect_exit 2 mamori diff --json "$SITE/nope.php"
assert_contains "$(json 'j["error"]["message"]')" "neither in the baseline nor on disk"
expect_exit 2 mamori diff "$SCRATCH/outside.php"
rm "$SITE/new.php"

step "evidence diff at a terminal: the control bytes are shown escaped"
start_agent
printf '%s' "$INJECT" >>"$SITE/index.php"
has_evidence() { [[ -n $(events 'e["event"]["action"] == "file-restored" and e.get("mamori", {}).get("evidence")') ]]; }
wait_for "the evidence of the tamper" has_evidence
id=$(json 'j["mamori"]["evidence"]["id"]' "$(events 'e["event"]["action"] == "file-restored"' | tail -n 1)")
rc=0
on_tty "$SCRATCH/tty-evidence.out" "$MAMORI" --config "$CONFIG" evidence diff "$id" || rc=$?
assert_eq 1 "$rc" "evidence diff's exit status at a terminal"
check_shown "$SCRATCH/tty-evidence.out" "mamori evidence diff" || fail "mamori evidence diff printed the attacker's control bytes raw"
echo "PASS"
