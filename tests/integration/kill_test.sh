#!/usr/bin/env bash
# init killed with SIGKILL at assorted moments while it records a large tree: the
# previous baseline stays whole (same root hash, check works against it and never
# reports damage) - or, when the kill comes after the commit, the new one is whole -
# and the next init cleans up after the dead one.
# shellcheck source-path=SCRIPTDIR source=lib.sh
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

# How long a whole init of this tree takes here, measured on a throwaway state dir, so
# the kills land at the same fractions of the work on a fast machine and a slow one.
probe=$SCRATCH/probe.toml
sed "s|^state_dir = .*|state_dir = \"$SCRATCH/state.probe\"|" "$CONFIG" >"$probe"
t0=$(date +%s%N)
expect_exit 0 "$MAMORI" --config "$probe" --json init
full_ms=$((($(date +%s%N) - t0) / 1000000))
# Same tree, same root path: the hash a complete init must seal.
full_hash=$(json 'j["root_hash"]')
rm -rf "$SCRATCH/state.probe"
echo "a whole init takes ${full_ms} ms"

# The moments to kill at, in seconds: fixed fractions of a whole init and random ones;
# printed so a failure can be replayed. Denser early: init commits before it compresses
# what it stored (docs/formats/store.md), so the later moments fall after the commit.
moments=()
for pct in 2 5 10 15 20 30 45 60 80 $((RANDOM % 100)) $((RANDOM % 100)); do
  ms=$((full_ms * pct / 100 + 1))
  moments+=("$((ms / 1000)).$(printf '%03d' $((ms % 1000)))")
done
echo "kill moments: ${moments[*]}"

killed=0 committed=0 finished=0
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
  # Killed before its transaction committed: the first baseline, whole. Killed after
  # (while exiting): the new one, whole. Nothing in between.
  now_hash=$(root_hash)
  if [[ $now_hash == "$full_hash" ]]; then
    committed=$((committed + 1))
    expect_exit 0 mamori check
    rm -rf "$STATE"
    cp -a "$SCRATCH/state.first" "$STATE"
    continue
  fi
  killed=$((killed + 1))
  assert_eq "$first_hash" "$now_hash" "root hash after init was killed at ${t}s (neither the old baseline nor the complete new one)"
  expect_exit 1 mamori --json check
  assert_eq "$ADDED 0 0 0" \
    "$(json '"%d %d %d %d" % (j["summary"]["added"], j["summary"]["removed"], j["summary"]["changed"], j["summary"]["errors"])')" \
    "check after a kill at ${t}s: added removed changed errors"
done
echo "killed mid-way: $killed, killed after committing: $committed, finished before the kill: $finished"
# Both kinds must have been seen: kills before the commit (the old baseline whole) and,
# among those after it, kills while init compresses what it stored raw.
[[ $killed -ge 3 && $((killed + committed)) -ge 5 ]] ||
  fail "only $killed of ${#moments[@]} inits were killed before their commit and $committed after it: the tree is too small to test this"

step "the old store and catalog are whole; the next init works"
expect_exit 1 mamori check --full
expect_exit 0 mamori --json init
new_hash=$(json 'j["root_hash"]')
assert_eq "$new_hash" "$(root_hash)" "root hash printed by init and by status"
assert_ne "$first_hash" "$new_hash" "the tree changed, so must the root hash"
assert_eq "$full_hash" "$new_hash" "root hash of a complete init, here and in the throwaway state dir"
expect_exit 0 mamori check --full
assert_contains "$OUT" "clean"
expect_exit 0 mamori --json status
assert_eq $((ADDED + 5)) "$(json 'j["roots"][0]["entries"]')" "entries after a complete init"
