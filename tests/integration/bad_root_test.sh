#!/usr/bin/env bash
# A configured root that is missing or is not a directory: init fails with exit 3
# ("the operation failed") and a message naming the path, and leaves no baseline
# behind on a fresh state dir, or the previous baseline untouched.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MISSING=$SCRATCH/no-such-root
FILE_ROOT=$SCRATCH/plain-file
GOOD=$SCRATCH/site
printf 'not a directory\n' >"$FILE_ROOT"
mkdir -p "$GOOD/sub"
printf '<?php echo 1;\n' >"$GOOD/index.php"
printf 'body{}\n' >"$GOOD/sub/style.css"

step "missing root on a fresh state dir: exit 3 naming the path"
write_config "$MISSING"
expect_exit 3 mamori init
assert_contains "$ERR" "$MISSING" "init's message names the missing root"
assert_contains "$ERR" "No such file or directory"
expect_exit 3 mamori --json init
assert_contains "$(json 'j["error"]["path"]')" "$MISSING" "init --json .error.path"
assert_eq 2 "$(json 'j["error"]["errno"]')" "init --json .error.errno (ENOENT)"

step "the failed first init left no baseline: check and status say so (exit 2)"
expect_exit 2 mamori check
assert_contains "$ERR" "no baseline"
expect_exit 2 mamori status
assert_contains "$ERR" "no baseline"

step "root that is a regular file: exit 3 naming the path"
write_config "$FILE_ROOT"
expect_exit 3 mamori init
assert_contains "$ERR" "$FILE_ROOT" "init's message names the root"
assert_contains "$ERR" "Not a directory"
assert_eq 'not a directory' "$(cat "$FILE_ROOT")" "the file named as a root must be left alone"

step "with a previous baseline, a failed init leaves it intact"
rm -rf "$STATE"
write_config "$GOOD"
expect_exit 0 mamori init
old_hash=$(root_hash)
write_config "$GOOD" "$MISSING"
expect_exit 3 mamori init
assert_contains "$ERR" "$MISSING"
write_config "$GOOD"
assert_eq "$old_hash" "$(root_hash)" "root hash after a failed init (missing second root)"
expect_exit 0 mamori check
assert_contains "$OUT" "clean"

# The root itself swapped for a file (as a botched deploy might): init must not record
# an empty baseline over the good one.
mv "$GOOD" "$SCRATCH/site.away"
printf 'oops\n' >"$GOOD"
expect_exit 3 mamori init
assert_contains "$ERR" "$GOOD"
assert_contains "$ERR" "Not a directory"
assert_eq "$old_hash" "$(root_hash)" "root hash after a failed init (root is a file)"
expect_exit 0 mamori --json status
assert_eq 4 "$(json 'j["roots"][0]["entries"]')" "entries still in the baseline (root, index.php, sub, sub/style.css)"
rm "$GOOD"
mv "$SCRATCH/site.away" "$GOOD"
expect_exit 0 mamori check
assert_contains "$OUT" "clean"

# And with the root gone altogether: the same.
mv "$GOOD" "$SCRATCH/site.away"
expect_exit 3 mamori init
assert_contains "$ERR" "$GOOD"
assert_eq "$old_hash" "$(root_hash)" "root hash after a failed init (root missing)"
mv "$SCRATCH/site.away" "$GOOD"
expect_exit 0 mamori check
