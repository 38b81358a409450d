#!/usr/bin/env bash
# The state directory fills up (a 2 MiB tmpfs) while init stores ~20 MiB of
# incompressible content: init fails with exit 3 and says "No space left on device",
# and the previous baseline is untouched and still usable.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$SCRATCH/root
mkdir -p "$R/assets" "$STATE"
mount -t tmpfs -o size=2m,mode=0700 mamori-test-full "$STATE"
on_exit "umount '$STATE'"
findmnt -n "$STATE" >/dev/null || fail "tmpfs not mounted on $STATE"

printf '<?php // home\n' >"$R/index.php"
printf 'body { color: red }\n' >"$R/assets/site.css"
head -c 64K /dev/urandom >"$R/assets/logo.png"
write_config "$R"

step "a small baseline fits"
expect_exit 0 mamori init
old_hash=$(root_hash)
expect_exit 0 mamori --json status
old_entries=$(json 'j["roots"][0]["entries"]')

step "the root grows past the state dir's free space: init fails cleanly"
for i in $(seq -w 1 20); do head -c 1M /dev/urandom >"$R/assets/video-$i.bin"; done
expect_exit 3 mamori init
assert_contains "$ERR" "No space left on device" "init's message"
expect_exit 3 mamori --json init
assert_contains "$(json 'j["error"]["message"]')" "No space left on device" "init --json .error.message"

step "the old baseline is intact"
assert_eq "$old_hash" "$(root_hash)" "root hash after the failed init"
expect_exit 0 mamori --json status
assert_eq "$old_entries" "$(json 'j["roots"][0]["entries"]')" "entries after the failed init"
expect_exit 1 mamori --json check --full
assert_eq "20 0 0" "$(json '"%d %d %d" % (j["summary"]["added"], j["summary"]["removed"], j["summary"]["changed"])')" \
  "check --full against the old baseline: only the 20 new files are added"
logo_sum=$(sha256 "$R/assets/logo.png")
printf 'defaced\n' >"$R/index.php"
rm "$R/assets/logo.png"
expect_exit 0 mamori restore "$R/index.php" "$R/assets/logo.png"
assert_eq '<?php // home' "$(cat "$R/index.php")" "restore from the old baseline"
assert_eq "$logo_sum" "$(sha256 "$R/assets/logo.png")" "logo.png restored from the old baseline"

step "with room again, init works and the store holds no leftovers of the failed run"
rm "$R"/assets/video-*.bin
expect_exit 0 mamori init
expect_exit 0 mamori check --full
assert_contains "$OUT" "clean"
used_kib=$(df -k --output=used "$STATE" | tail -n 1 | tr -d ' ')
[[ $used_kib -lt 1024 ]] || fail "state dir still uses ${used_kib} KiB after the failed init was cleaned up: $(ls -la "$STATE/store")"
