#!/usr/bin/env bash
# init killed with SIGKILL at assorted moments while it records a large tree: the
# previous baseline stays whole (same root hash, check works against it and never
# reports damage), and the next init cleans up after the dead one.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

R=$SCRATCH/root
mkdir -p "$R/css"
printf '<?php // home\n' >"$R/index.php"
printf '<?php define("DB", "x");\n' >"$R/wp-config.php"
printf 'a { color: blue }\n' >"$R/css/site.css"
write_config "$R"

step "first baseline of a small tree"
expect_exit 0 mamori init
first_hash=$(root_hash)
cp -a "$STATE" "$SCRATCH/state.first"

step "the tree grows: 20,000 small files and 30 MiB of media"
python3 - "$R" <<'EOF'
import os, sys
root = sys.argv[1]
for i in range(20000):
    d = os.path.join(root, "bulk", "d%02d" % (i // 1000))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.php" % i), "w") as f:
        f.write("<?php // generated file %d\n" % i)
os.makedirs(os.path.join(root, "media"))
for i in range(30):
    with open(os.path.join(root, "media", "m%02d.bin" % i), "wb") as f:
        f.write(os.urandom(1 << 20))
EOF
ADDED=$((20000 + 20 + 1 + 30 + 1))  # files, bulk/dNN, bulk, media files, media

# The moments to kill at, in seconds: fixed ones spread over a whole init (about half a
# second here), and random ones; printed so a failure can be replayed.
moments=(0.01 0.03 0.06 0.1 0.15 0.2 0.3 0.45)
for _ in 1 2 3 4; do moments+=("0.$(printf '%03d' $((RANDOM % 600)))"); done
echo "kill moments: ${moments[*]}"

killed=0 finished=0
for t in "${moments[@]}"; do
  step "init killed with SIGKILL after ${t}s"
  rc=0
  # In a subshell whose stderr is dropped: bash's own "Killed" notice is noise here.
  (timeout -s KILL "$t" "$MAMORI" --config "$CONFIG" --quiet init >"$SCRATCH/init.out" 2>&1; exit $?) 2>/dev/null || rc=$?
  if [[ $rc -eq 0 ]]; then
    # Finished before the kill: nothing to learn from this one; start over from the
    # first baseline.
    finished=$((finished + 1))
    rm -rf "$STATE"
    cp -a "$SCRATCH/state.first" "$STATE"
    continue
  fi
  [[ $rc -eq 137 ]] || fail "init killed after ${t}s: expected exit 137 (SIGKILL), got $rc: $(cat "$SCRATCH/init.out")"
  killed=$((killed + 1))
  assert_eq "$first_hash" "$(root_hash)" "root hash after init was killed at ${t}s"
  expect_exit 1 mamori --json check
  assert_eq "$ADDED 0 0 0" \
    "$(json '"%d %d %d %d" % (j["summary"]["added"], j["summary"]["removed"], j["summary"]["changed"], j["summary"]["errors"])')" \
    "check after a kill at ${t}s: added removed changed errors"
done
echo "killed mid-way: $killed, finished before the kill: $finished"
[[ $killed -ge 4 ]] || fail "only $killed of ${#moments[@]} inits were killed before they finished: the tree is too small to test this"

step "the old store and catalog are whole; the next init works"
expect_exit 1 mamori check --full
expect_exit 0 mamori --json init
new_hash=$(json 'j["root_hash"]')
assert_eq "$new_hash" "$(root_hash)" "root hash printed by init and by status"
assert_ne "$first_hash" "$new_hash" "the tree changed, so must the root hash"
expect_exit 0 mamori check --full
assert_contains "$OUT" "clean"
expect_exit 0 mamori --json status
assert_eq $((ADDED + 5)) "$(json 'j["roots"][0]["entries"]')" "entries after a complete init"
