#!/usr/bin/env bash
# mamori run as an unprivileged user over a tree with a chmod 000 file and a chmod 000
# directory: init baselines the rest and exits 3 naming both; check exits 3 and never
# calls what it could not look at "removed".
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

USER_ID=65534
chmod 755 "$SCRATCH"  # the user must reach the root, the state dir and the config
R=$SCRATCH/root
mkdir -p "$R/open/deeper" "$R/locked/sub" "$STATE"
printf 'public\n' >"$R/ok.txt"
printf 'nested\n' >"$R/open/deeper/page.php"
printf 'secret\n' >"$R/secret.txt"
printf 'a\n' >"$R/locked/a.txt"
printf 'b\n' >"$R/locked/sub/b.txt"
chown -R "$USER_ID:$USER_ID" "$R" "$STATE"
write_config "$R"
chmod 644 "$CONFIG"

as_user() { setpriv --reuid="$USER_ID" --regid="$USER_ID" --clear-groups -- "$@"; }
umamori() { as_user timeout -k 5 "$MAMORI_TIMEOUT" "$MAMORI" --config "$CONFIG" "$@"; }
# Sanity: the user can read what it owns, and chmod 000 locks it out (no CAP_DAC_*).
expect_exit 0 as_user cat "$R/ok.txt"
chmod 000 "$R/secret.txt" "$R/locked"
expect_exit 1 as_user cat "$R/secret.txt"

changes_text() {  # "path change attributes" per line, relative to the root, sorted
  json '"\n".join(sorted("%s %s %s" % (c["path"], c["change"], ",".join(c["attributes"])) for c in j["changes"]))' |
    sed "s|$R/||"
}

step "init as the user: exit 3, both unreadable entries named, the rest baselined"
expect_exit 3 umamori init
assert_contains "$ERR" "secret.txt" "init warns about the unreadable file"
assert_contains "$ERR" "locked" "init warns about the unreadable directory"
assert_contains "$ERR" "Permission denied"
assert_contains "$OUT" "baseline sealed" "the readable rest is still sealed"
expect_exit 0 umamori --json status
assert_eq "$(stat -c %u "$STATE/catalog.db")" "$USER_ID" "the catalog belongs to the user that made it"
# root, ok.txt, open, open/deeper, open/deeper/page.php, locked (its own metadata only)
assert_eq 6 "$(json 'j["roots"][0]["entries"]')" "entries baselined"

step "check as the user: exit 3, nothing under the locked directory reported removed"
expect_exit 3 umamori --json check
changes=$(changes_text)
assert_not_contains "$changes" "locked/" "children of the unreadable directory"
assert_not_contains "$changes" "removed" "nothing may be reported removed"
assert_contains "$(json '" ".join(e["path"] for e in j["errors"])')" "locked" "check --json .errors names the directory"
# What could be read was baselined: a change to it is found.
printf 'defaced\n' >"$R/open/deeper/page.php"
expect_exit 3 umamori --json check
assert_contains "$(changes_text)" "open/deeper/page.php changed content,mtime"
expect_exit 3 umamori restore --all
assert_eq nested "$(cat "$R/open/deeper/page.php")" "restore by the user of a readable file"

step "baseline everything, then lock the file and the directory: check never says removed"
chmod 644 "$R/secret.txt"
chmod 755 "$R/locked"
expect_exit 0 umamori init
chmod 000 "$R/secret.txt" "$R/locked"
expect_exit 3 umamori --json check
assert_eq "locked changed mode
secret.txt changed mode" "$(changes_text)" "changes seen through chmod 000"
assert_eq 0 "$(json 'j["summary"]["removed"]')" "summary.removed"
errors=$(json '"\n".join(e["path"] for e in j["errors"])')
assert_contains "$errors" "secret.txt" "check --json .errors names the unreadable file"
assert_contains "$errors" "locked" "check --json .errors names the unreadable directory"
expect_exit 3 umamori check
assert_not_contains "$OUT" "removed  " "text check"
assert_contains "$ERR" "locked"

step "restore as the user puts the modes back, and then everything is readable and clean"
expect_exit 0 umamori restore --all
assert_eq "644 755" "$(stat -c %a "$R/secret.txt" "$R/locked" | tr '\n' ' ' | sed 's/ $//')" "modes after restore"
expect_exit 0 umamori check
assert_contains "$OUT" "clean"
