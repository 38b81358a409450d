#!/usr/bin/env bash
# `mamori scan`: every sample of core/scan/testdata/match is found with its rule, nothing
# in WordPress is; symlinks and FIFOs inside a tree are never opened; --rules adds a
# user directory (a bad file names its line); --max-bytes cuts a file and says so; the
# exit codes are the documented ones. No config needed.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

SAMPLES=$(cd "$(dirname "$0")/../../core/scan/testdata" && pwd)
n_samples=$(find "$SAMPLES/match" -type f | wc -l)

step "every sample matches, each with the rule its name says"
cp -r "$SAMPLES/match" "$SCRATCH/site"
expect_exit 1 mamori scan --json "$SCRATCH/site"
assert_eq "$n_samples" "$(json 'j["matched"]')" "files matched"
assert_eq "$n_samples" "$(json 'j["files"]')" "files scanned"
assert_eq '["mamori_php_eval_decoded"]' \
  "$(json '[m["rule"] for r in j["results"] if r["path"].endswith("/eval_base64.php") for m in r["matches"]]')" \
  "the dropper's rule"
assert_eq "high" \
  "$(json '[m["severity"] for r in j["results"] if r["path"].endswith("/eval_base64.php") for m in r["matches"]][0]')" \
  "its severity"
expect_exit 1 mamori scan "$SCRATCH/site/system_get.php"
assert_eq "$SCRATCH/site/system_get.php: mamori_php_exec_request_input (critical)" "$OUT" "the text line"

step "ordinary code and the whole WordPress tree: nothing, exit 0"
expect_exit 0 mamori scan "$SAMPLES/clean"
if [[ -d /usr/share/wordpress ]]; then
  expect_exit 0 mamori scan --json /usr/share/wordpress
  assert_eq 0 "$(json 'j["matched"]')" "WordPress files matched"
fi

step "a tree's symlinks and FIFOs are skipped, never followed or opened"
mkdir -p "$SCRATCH/outside" "$SCRATCH/tree/sub"
cp "$SAMPLES/match/system_get.php" "$SCRATCH/outside/shell.php"
echo '<?php echo "hello";' >"$SCRATCH/tree/index.php"
ln -s "$SCRATCH/outside/shell.php" "$SCRATCH/tree/link.php"
ln -s "$SCRATCH/outside" "$SCRATCH/tree/sub/dir"
mkfifo "$SCRATCH/tree/sub/fifo.php"
expect_exit 0 mamori scan --json "$SCRATCH/tree"
assert_eq 1 "$(json 'j["files"]')" "files scanned"
assert_eq 3 "$(json 'j["skipped"]')" "skipped: two symlinks and a FIFO"
# A file name with a newline and an escape cannot forge lines of the report.
cp "$SAMPLES/match/assert_post.php" "$SCRATCH/tree/$(printf 'a\nb\033[2J.php')"
expect_exit 1 mamori scan "$SCRATCH/tree"
assert_eq 1 "$(printf '%s\n' "$OUT" | wc -l)" "one line for the one match"
assert_contains "$OUT" 'a\nb\x1b[2J.php: mamori_php_exec_request_input' "the name, escaped"

step "user rules beside the builtin ones; a bad file names its line"
mkdir -p "$SCRATCH/rules"
# shellcheck disable=SC2016  # YARA's $a, not the shell's
printf 'rule site_marker : site\n{\n  strings: $a = "zzq-site-marker"\n  condition: $a\n}\n' \
  >"$SCRATCH/rules/site.yar"
echo 'zzq-site-marker' >"$SCRATCH/tree/index.php"
expect_exit 1 mamori scan --json --rules "$SCRATCH/rules" "$SCRATCH/tree/index.php"
assert_eq '["site_marker"]' "$(json '[m["rule"] for m in j["results"][0]["matches"]]')" "the user rule"
assert_eq "$SCRATCH/rules/site.yar" "$(json 'j["results"][0]["matches"][0]["namespace"]')" "its namespace"
expect_exit 0 mamori scan --no-builtin-rules --rules "$SCRATCH/rules" "$SAMPLES/match/system_get.php"
printf 'rule broken\n{\n  condition: no_such_thing\n}\n' >"$SCRATCH/rules/zz_bad.yar"
expect_exit 2 mamori scan --rules "$SCRATCH/rules" "$SCRATCH/tree"
assert_contains "$ERR" "zz_bad.yar" "the bad file"
assert_contains "$ERR" "line 3" "its line"
mkdir -p "$SCRATCH/empty"
expect_exit 2 mamori scan --no-builtin-rules --rules "$SCRATCH/empty" "$SCRATCH/tree"
assert_contains "$ERR" "no rules" "no rule at all"

step "--max-bytes: a shell past the cap is not seen, and the result says the file was cut"
{
  head -c 4096 /dev/zero | tr '\0' ' '
  cat "$SAMPLES/match/eval_base64.php"
} >"$SCRATCH/big.php"
expect_exit 1 mamori scan "$SCRATCH/big.php"
expect_exit 0 mamori scan --json --max-bytes 1000 "$SCRATCH/big.php"
assert_eq 1 "$(json 'j["truncated"]')" "files cut at the cap"

step "a missing path is an error: exit 2"
expect_exit 2 mamori scan "$SCRATCH/nope"
assert_contains "$ERR" "nope" "the path"
expect_exit 2 mamori scan
