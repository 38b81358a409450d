#!/usr/bin/env bash
# mamori gc: after accepting new versions of files, the old contents leave the store;
# everything still in the baseline stays restorable, byte for byte.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$SCRATCH/root
mkdir -p "$R/plugin"
for i in $(seq 20); do
  python3 -c "import os, sys; sys.stdout.buffer.write(os.urandom(20000))" >"$R/plugin/f$i.bin"
done
printf '<?php // v1\n' >"$R/index.php"
write_config "$R"
expect_exit 0 mamori init

step "nothing to collect right after init"
expect_exit 0 mamori --json gc
assert_eq 0 "$(json 'j["objects_removed"]')" "objects removed"

step "a plugin update is accepted; gc drops the 20 old contents"
for i in $(seq 20); do
  python3 -c "import os, sys; sys.stdout.buffer.write(os.urandom(20000))" >"$R/plugin/f$i.bin"
done
expect_exit 0 mamori accept "$R/plugin"
expect_exit 0 mamori --json status
assert_eq 20 "$(json 'j["store"]["reclaimable_objects"]')" "status counts the 20 old contents as reclaimable"
expect_exit 0 mamori status
assert_contains "$OUT" "'mamori gc' reclaims them"
before=$(du -sb "$STATE/store" | cut -f1)
expect_exit 0 mamori --json gc
assert_eq 20 "$(json 'j["objects_removed"]')" "objects removed"
after=$(du -sb "$STATE/store" | cut -f1)
((after < before - 300000)) || fail "the store did not shrink: $before -> $after bytes"
expect_exit 0 mamori check --full
expect_exit 0 mamori --json status
assert_eq 0 "$(json 'j["store"]["reclaimable_objects"]')" "nothing reclaimable after gc"

step "what remains is restorable byte for byte"
cp "$R/plugin/f7.bin" "$SCRATCH/f7"
rm -rf "$R/plugin"
printf 'defaced\n' >"$R/index.php"
expect_exit 0 mamori restore --all
assert_same_file "$SCRATCH/f7" "$R/plugin/f7.bin" "f7.bin after gc and restore"
assert_eq '<?php // v1' "$(cat "$R/index.php")" "index.php"
expect_exit 0 mamori check
