#!/usr/bin/env bash
# `mamori restore --all` is "undo every change": a web shell www-data planted (a file,
# a directory of them, a symlink) must not stay behind with exit 0. Without
# --quarantine-new it is named and left, and the exit status (1) says the tree still
# differs; with it, each goes into the evidence store (its bytes kept, exportable),
# except what allow_new lets stay (an upload), and deny_new still refuses a script
# under uploads. The web server then serves none of it.
# shellcheck disable=SC2016  # PHP in single quotes is meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SITE=$SCRATCH/site
mkdir -p "$SITE/wp-content/uploads/2024" "$SITE/wp-includes"
printf '<?php\necho "hello";\n' >"$SITE/index.php"
printf '<?php // core\n' >"$SITE/wp-includes/load.php"
chown -R www-data:www-data "$SITE"
chmod 0711 "$SCRATCH"
write_config "$SITE"
sed -i '/^mode = "restore"$/a allow_new = ["wp-content/uploads/**"]' "$CONFIG"
expect_exit 0 mamori -q init

SHELL_PHP='<?php system($_GET["c"]); ?>'
plant() {  # as the web server's user
  runuser -u www-data -- bash -c '
    set -e
    cd "$1"
    printf "%s\n" "$2" >>index.php
    printf "%s\n" "$2" >wp-includes/class-shell.php
    mkdir -p wp-includes/kit/deep
    printf "%s\n" "$2" >wp-includes/kit/deep/x.php
    printf "kit\n" >wp-includes/kit/readme.txt
    ln -s /etc/passwd wp-includes/pw.txt
    printf "\xff\xd8\xff photo\n" >wp-content/uploads/2024/cat.jpg
    printf "%s\n" "$2" >wp-content/uploads/2024/up.php
  ' _ "$SITE" "$SHELL_PHP"
}
NEW=(wp-includes/class-shell.php wp-includes/kit wp-includes/pw.txt wp-content/uploads/2024/up.php)

step "restore --all without --quarantine-new: the shells are named, left, and the exit is 1"
plant
expect_exit 1 mamori restore --all
for p in "${NEW[@]}"; do assert_contains "$OUT" "left     $SITE/$p"; done
assert_contains "$OUT" "not in the baseline left in place"
[[ -f $SITE/wp-includes/class-shell.php ]] || fail "restore without --quarantine-new removed a file"
expect_exit 1 mamori restore --all --json
# Every entry is named: kit, kit/deep, kit/deep/x.php, kit/readme.txt; cat.jpg is an
# upload allow_new lets stay, as the agent would, so it is not left over.
assert_eq 7 "$(json 'j["left"]')" "left entries without --quarantine-new"
assert_eq "[\"$SITE/wp-content/uploads/2024/cat.jpg\"]" "$(json '[a["path"] for a in j["allowed"]]')" "allowed without --quarantine-new"

step "restore --all --quarantine-new: every shell goes to the evidence store, the upload stays"
expect_exit 0 mamori restore --all --quarantine-new --json
assert_eq "[\"$SITE/wp-content/uploads/2024/cat.jpg\"]" "$(json '[a["path"] for a in j["allowed"]]')" "allowed"
assert_eq 0 "$(json 'j["left"]')" "left"
got=$(json '" ".join(sorted(q["path"] for q in j["quarantined"]))')
want=$(for p in "${NEW[@]}"; do echo "$SITE/$p"; done | LC_ALL=C sort | tr '\n' ' ')
assert_eq "${want% }" "$got" "quarantined"
for p in "${NEW[@]}"; do [[ ! -e $SITE/$p && ! -L $SITE/$p ]] || fail "$p is still in the tree"; done
[[ -f $SITE/wp-content/uploads/2024/cat.jpg ]] || fail "the allowed upload was quarantined"
assert_same_file /dev/stdin "$SITE/index.php" <<<$'<?php\necho "hello";'
expect_exit 0 mamori check  # only the allowed upload differs: listed, not a change
assert_contains "$OUT" "wp-content/uploads/2024/cat.jpg"
assert_not_contains "$OUT" "class-shell.php"

step "the quarantined bytes are evidence"
expect_exit 0 mamori --json evidence list
list=$OUT
# The three shells have the same bytes: kept once (evidence de-duplicates by content).
shell_sha=$(printf '%s\n' "$SHELL_PHP" | sha256sum | cut -d' ' -f1)
id=$(json "[i['mamori']['evidence']['id'] for i in j['items'] if i['file']['hash']['sha256'] == '$shell_sha'][0]")
expect_exit 0 mamori evidence export "$id" --output "$SCRATCH/shell.kept"
assert_same_file /dev/stdin "$SCRATCH/shell.kept" <<<"$SHELL_PHP"
n=$(json 'len([i for i in j["items"] if i["mamori"]["evidence"]["reason"] == "quarantined"])' "$list")
assert_eq 3 "$n" "evidence items: the shell (once for its three copies), readme.txt, pw.txt's target"
echo "PASS"
