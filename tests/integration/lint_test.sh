#!/usr/bin/env bash
# tools/lint outside a git checkout (a tarball, a machine without git): it lints the
# project's sources, not build trees or node_modules, and does not flag core/fs for the
# raw calls that only core/fs may make; a real breach is still found, and so are a clock
# read outside core/base, a std::mutex and a file that is not clang-formatted; and a
# clang-tidy step that cannot run fails loudly instead of passing on nothing.
# (The binary argument is unused: this checks the source tree the test belongs to.)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TREE=$SCRATCH/tree
mkdir -p "$TREE"
tar -C "$REPO" --exclude=./build --exclude=./.git -cf - . | tar -C "$TREE" -xf -
[[ -f $TREE/core/fs/beneath.cc && -x $TREE/tools/lint ]] || fail "the source tree was not copied"
git -C "$TREE" rev-parse --is-inside-work-tree >/dev/null 2>&1 && fail "$TREE is inside a git work tree"
# What a build or a web console's dependencies leave behind: not the project's code.
mkdir -p "$TREE/build/dev/gen" "$TREE/web/node_modules/pkg"
for f in "$TREE/build/dev/gen/gen.cc" "$TREE/web/node_modules/pkg/x.cc"; do
  printf 'int f() { return ::unlink("x"); }\nvoid g() { system("x"); }\n' >"$f"
done

step "no git: the sources are linted, build/ and node_modules are not, core/fs is not flagged"
expect_exit 0 "$TREE/tools/lint" --no-tidy
assert_not_contains "$OUT" "core/fs"
assert_not_contains "$OUT" "build/"

step "a real breach is still found"
printf '#include <unistd.h>\nint f() { return ::unlink("x"); }\n' >"$TREE/cli/planted.cc"
expect_exit 1 "$TREE/tools/lint" --no-tidy
assert_contains "$OUT" "raw path call outside core/fs in cli/planted.cc"
rm "$TREE/cli/planted.cc"

step "a clock read outside core/base, a bare std::mutex and unformatted code are each named"
printf '#include <chrono>\nauto t() { return std::chrono::steady_clock::now(); }\n' >"$TREE/agent/clocky.cc"
printf '#include <mutex>\nstruct S {\n  std::mutex mu;\n};\n' >"$TREE/agent/locky.h"
printf 'int   badly_formatted( int x ){return x;}\n' >"$TREE/cli/ugly.cc"
expect_exit 1 "$TREE/tools/lint" --no-tidy
assert_contains "$OUT" "agent/clocky.cc:2:"
assert_contains "$OUT" "a clock read outside core/base"
assert_contains "$OUT" "agent/locky.h:3:"
assert_contains "$OUT" "use Mutex, MutexLock and CondVar"
assert_contains "$OUT" "not clang-formatted"
assert_contains "$OUT" "cli/ugly.cc"
rm "$TREE/agent/clocky.cc" "$TREE/agent/locky.h" "$TREE/cli/ugly.cc"
expect_exit 0 "$TREE/tools/lint" --no-tidy

step "clang-tidy that cannot run fails loudly"
expect_exit 1 "$TREE/tools/lint"
assert_contains "$OUT" "compile_commands.json"
echo "PASS"
