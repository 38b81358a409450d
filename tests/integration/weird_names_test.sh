#!/usr/bin/env bash
# File names are attacker-controlled: newlines, spaces, a leading dash, invalid UTF-8,
# terminal escapes, 255-byte names. init/check/restore handle every one; text output
# escapes them (one line per path, no raw control bytes); JSON stays valid and gives
# the exact bytes in "path_hex" when a path is not UTF-8; restore is byte-exact.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$SCRATCH/root
ORIG=$SCRATCH/orig
mkdir -p "$R"
LONG=$(printf 'L%.0s' $(seq 251)).php
NAMES=(
  $'line\nbreak.php'
  'with space.php'
  '-rf'
  $'\xff\xfe'
  "$LONG"
  $'esc\e[31mred.php'
  "it's \"quoted\" \\ back.php"
  '日本語.php'
  $'dir with\nnewline/\xc3(bad utf8 inside).txt'
)
assert_eq 255 "$(printf '%s' "$LONG" | wc -c)" "length of the long name"
i=0
for n in "${NAMES[@]}"; do
  mkdir -p "$R/$(dirname -- "$n")"
  printf 'content %d of %q\n' "$i" "$n" >"$R/$n"
  i=$((i + 1))
done
cp -a "$R" "$ORIG"
write_config "$R"

# Every path beneath the root, as bytes in hex, sorted; and the same from check --json.
disk_paths_hex() {
  python3 -c '
import os, sys
root = os.fsencode(sys.argv[1])
out = []
for d, dirs, files in os.walk(root):
    for n in dirs + files:
        out.append(os.path.join(d, n).hex())
print("\n".join(sorted(out)))' "$R"
}
json_paths_hex() {  # CHANGE-KIND
  json '"\n".join(sorted((bytes.fromhex(c["path_hex"]) if "path_hex" in c else c["path"].encode()).hex() for c in j["changes"] if c["change"] == "'"$1"'"))'
}
# Text output: every line is a report line or the summary; nothing a raw control byte
# could forge.
check_text_lines() {  # WHAT FIRST-WORD-REGEX
  local line n=0
  while IFS= read -r line; do
    n=$((n + 1))
    [[ $line =~ $2 || $line =~ ^[0-9]+\ (change|entr) ]] ||
      fail "$1: line $n is not a report line (a raw newline split a path?): $(printf '%q' "$line")"
  done <<<"$OUT"
  [[ $OUT != *$'\e'* && $OUT != *$'\xff'* ]] || fail "$1: raw escape or invalid byte in text output"
}

step "init and check"
expect_exit 0 mamori init
expect_exit 0 mamori check
assert_contains "$OUT" "clean"

step "every file changed: text output escapes, JSON carries exact bytes"
for n in "${NAMES[@]}"; do printf 'injected\n' >>"$R/$n"; done
expect_exit 1 mamori check
check_text_lines "check" '^changed  /'
assert_eq $((${#NAMES[@]} + 1)) "$(wc -l <<<"$OUT")" "check prints one line per changed file plus the summary"
assert_contains "$OUT" "changed  $R/line\\nbreak.php  (content, mtime)" "newline shown as \\n"
assert_contains "$OUT" "changed  $R/\\xff\\xfe  (content, mtime)" "invalid UTF-8 shown as \\xNN"
assert_contains "$OUT" "changed  $R/esc\\x1b[31mred.php" "ESC shown as \\x1b"
assert_contains "$OUT" "changed  $R/-rf  (content, mtime)"
assert_contains "$OUT" "changed  $R/日本語.php" "valid UTF-8 printed as is"
expect_exit 1 mamori --json check
files_hex=$(cd "$R" && python3 -c '
import os, sys
print("\n".join(sorted(os.path.join(os.fsencode(sys.argv[1]), os.fsencode(n)).hex() for n in sys.argv[2:])))' "$R" "${NAMES[@]}")
assert_eq "$files_hex" "$(json_paths_hex changed)" "changed paths in check --json (as bytes)"
assert_eq "$(printf '%s' "$R/"$'\xff\xfe' | od -An -tx1 | tr -d ' \n')" \
  "$(json '[c["path_hex"] for c in j["changes"] if c["path"].endswith("\\xff\\xfe")][0]')" "path_hex of the invalid UTF-8 name"
assert_eq "$R/"$'line\nbreak.php' "$(json '[c["path"] for c in j["changes"] if "break" in c["path"]][0]')" \
  "a valid UTF-8 path with a newline is given exactly in .path"
assert_eq 2 "$(json 'sum(1 for c in j["changes"] if "path_hex" in c)')" "path_hex only where the path is not UTF-8"

step "diff on a name with a newline"
expect_exit 1 mamori diff "$R/"$'line\nbreak.php'
assert_contains "$OUT" "+injected"
assert_not_contains "$OUT" "$R/"$'line\nbreak' "diff labels must escape the newline"

step "restore --all is byte-exact"
expect_exit 0 mamori restore --all
check_text_lines "restore" '^restored /'
diff -r "$ORIG" "$R" >/dev/null || fail "tree differs after restore: $(diff -rq "$ORIG" "$R" 2>&1 | head -n 5)"
for n in "${NAMES[@]}"; do assert_same_file "$ORIG/$n" "$R/$n" "restored $(printf '%q' "$n")"; done
expect_exit 0 mamori check

step "everything deleted: reported removed by exact bytes, restored one by one by name"
rm -rf "${R:?}"/*
expect_exit 1 mamori --json check
before_hex=$(cd "$ORIG" && python3 -c '
import os, sys
root = os.fsencode(sys.argv[1])
out = [os.path.join(root, os.path.relpath(os.path.join(d, n), b".")).hex()
       for d, ds, fs in os.walk(b".") for n in ds + fs]
print("\n".join(sorted(out)))' "$R")
assert_eq "$before_hex" "$(json_paths_hex removed)" "removed paths in check --json (as bytes)"
cd "$R" || exit 1
for n in "${NAMES[@]}"; do
  # Relative names, with `--` so that "-rf" is a path and not an option. A file in a
  # directory that is gone too: restore the directory (a name with a newline) first.
  d=$(dirname -- "$n")
  if [[ $d != . && ! -d $d ]]; then expect_exit 0 mamori restore -- "$d"; fi
  expect_exit 0 mamori restore -- "$n"
done
cd "$SCRATCH" || exit 1
assert_eq "$(cd "$ORIG" && find . | LC_ALL=C sort | od -c)" "$(cd "$R" && find . | LC_ALL=C sort | od -c)" "names after restore"
for n in "${NAMES[@]}"; do assert_same_file "$ORIG/$n" "$R/$n" "restored by name: $(printf '%q' "$n")"; done
assert_eq "$(disk_paths_hex)" "$(cd "$ORIG" && python3 -c '
import os, sys
root = os.fsencode(sys.argv[1])
print("\n".join(sorted(os.path.join(root, os.path.relpath(os.path.join(d, n), b".")).hex() for d, ds, fs in os.walk(b".") for n in ds + fs)))' "$R")" \
  "paths on disk after restore"
expect_exit 0 mamori check
assert_contains "$OUT" "clean"
