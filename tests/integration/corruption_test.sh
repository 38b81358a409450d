#!/usr/bin/env bash
# mamori's own state damaged or tampered with: a catalog row changed behind its back,
# a flipped byte in a pack file, a truncated catalog. Every command notices (exit 4),
# says what is wrong, trusts nothing and writes nothing from it; nothing crashes.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v sqlite3 >/dev/null || fail "sqlite3 is missing: run tools/install-deps"

R=$SCRATCH/root
mkdir -p "$R/lib"
printf '<?php require "lib/app.php";\n' >"$R/index.php"
# ~150 KiB of text: compressed with zstd in the pack, so a flipped byte lands in a frame.
seq -f 'function f%g() { return 42; }' 1 6000 >"$R/lib/app.php"
printf 'intact\n' >"$R/lib/other.php"
cp -a "$R" "$SCRATCH/orig"
write_config "$R"
catalog=$STATE/catalog.db
list_dir() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'; }

# The three parts are independent (each starts from a fresh state dir) and all run;
# the test fails at the end if any did.
part_a() {
  step "(a) a catalog row changed with sqlite3: check, restore and accept refuse (exit 4)"
  rm -rf "$STATE"
  expect_exit 0 mamori init
  sealed=$(root_hash)
  sqlite3 "$catalog" "UPDATE entries SET mode = 511 WHERE path = 'index.php'"
  assert_eq 1 "$(sqlite3 "$catalog" "SELECT count(*) FROM entries WHERE path = 'index.php' AND mode = 511")" \
    "the test's own tampering took effect"
  expect_exit 4 mamori check
  assert_contains "$ERR" "root hash mismatch"
  assert_contains "$ERR" "$catalog"
  expect_exit 4 mamori --json check
  assert_contains "$(json 'j["error"]["message"]')" "root hash mismatch" "check --json .error.message"
  expect_exit 4 mamori check --full
  expect_exit 4 mamori restore --all
  assert_contains "$ERR" "root hash mismatch"
  assert_eq 644 "$(stat -c %a "$R/index.php")" "restore must not apply the forged mode 0777"
  expect_exit 4 mamori accept --all
  assert_eq "$sealed" "$(sqlite3 "$catalog" "SELECT CAST(value AS TEXT) FROM meta WHERE key = 'root_hash'")" \
    "a refused accept must not reseal the tampered catalog"
  step "init starts over from the files, as the message says"
  expect_exit 0 mamori init
  expect_exit 0 mamori check
  assert_contains "$OUT" "clean"
  assert_eq "$sealed" "$(root_hash)" "a fresh init of the same tree seals the same root hash"
}

part_b() {
  step "(b) one byte flipped inside a stored object"
  rm -rf "$STATE"
  cp -a "$SCRATCH/orig/lib/app.php" "$SCRATCH/orig/lib/other.php" "$R/lib/"
  expect_exit 0 mamori init
  expect_exit 0 mamori check --full
  # Find lib/app.php's object in the packs and flip a byte in the middle of its payload.
  flipped=$(python3 - "$STATE/store" "$(sha256 "$R/lib/app.php")" <<'EOF'
import glob, os, struct, sys
store, want = sys.argv[1], bytes.fromhex(sys.argv[2])
for pack in sorted(glob.glob(os.path.join(store, "pack-*.mpk"))):
    data = bytearray(open(pack, "rb").read())
    assert data[:8] == b"MAMORIPK", pack
    off = 16
    while off + 56 <= len(data):
        assert data[off:off + 4] == b"MOBJ", (pack, off)
        stored = struct.unpack_from("<Q", data, off + 16)[0]
        if bytes(data[off + 24:off + 56]) == want:
            at = off + 56 + stored // 2
            with open(pack, "r+b") as f:
                f.seek(at)
                f.write(bytes([data[at] ^ 0x55]))
            print("%s@%d" % (os.path.basename(pack), at))
            sys.exit(0)
        off += 56 + stored
sys.exit("object not found in any pack")
EOF
  )
  echo "flipped a byte at $flipped"
  expect_exit 4 mamori check --full
  assert_contains "$ERR" "$(sha256 "$R/lib/app.php")" "check --full names the damaged object"
  expect_exit 4 mamori --json check --full
  assert_contains "$(json 'j["error"]["message"]')" "failed verification" "check --json --full .error.message"

  printf '<?php /* defaced */\n' >"$R/lib/app.php"
  expect_exit 4 mamori diff "$R/lib/app.php"
  # restore must fail, and must not put anything but the original in place.
  expect_exit 3\|4 mamori restore "$R/lib/app.php"
  assert_contains "$ERR" "lib/app.php"
  if ! cmp -s "$SCRATCH/orig/lib/app.php" "$R/lib/app.php"; then
    assert_eq '<?php /* defaced */' "$(cat "$R/lib/app.php")" "after a failed restore the file is either the original or left as it was"
  fi
  assert_eq "app.php other.php" "$(list_dir "$R/lib")" "no temporary file left behind"
  rm "$R/lib/app.php"
  expect_exit 3\|4 mamori restore --all
  [[ ! -e $R/lib/app.php ]] || assert_same_file "$SCRATCH/orig/lib/app.php" "$R/lib/app.php" "app.php after a failed restore of a removed file"
  assert_eq "other.php" "$(list_dir "$R/lib")" "no temporary file left behind"
  # Undamaged objects still restore.
  printf 'changed\n' >"$R/lib/other.php"
  expect_exit 0 mamori restore "$R/lib/other.php"
  assert_same_file "$SCRATCH/orig/lib/other.php" "$R/lib/other.php" "an undamaged object restores"
}

part_c() {
  step "(c) catalog.db truncated to 100 bytes: every command exits 4, clearly, no crash"
  rm -rf "$STATE"
  cp -a "$SCRATCH/orig/lib/app.php" "$SCRATCH/orig/lib/other.php" "$R/lib/"
  expect_exit 0 mamori init
  truncate -s 100 "$catalog"
  for cmd in "status" "--json status" "check" "check --full" "diff $R/index.php" "restore --all" "accept --all"; do
    # shellcheck disable=SC2086
    expect_exit 4 mamori $cmd
    [[ $cmd == --json* ]] && ERR=$(json 'j["error"]["message"]')
    assert_contains "$ERR" "$catalog" "mamori $cmd names the damaged catalog"
  done
  # init may refuse (4) or report it cannot write (3), but must not crash or hang.
  expect_exit 3\|4 mamori init
  assert_contains "$ERR" "$catalog"
  assert_eq 100 "$(stat -c %s "$catalog")" "the damaged catalog is left for inspection"
}

failures=()
for part in part_a part_b part_c; do ("$part") || failures+=("$part"); done
[[ ${#failures[@]} -eq 0 ]] || fail "failed: ${failures[*]}"
