#!/usr/bin/env bash
# `cmake --install` (into a DESTDIR, with the default prefix and with --prefix /usr)
# installs the binary, the web console, systemd units whose ExecStart names that very
# binary, and the man page mamori(8) that the units' Documentation= names, which man(1)
# renders without warnings.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(dirname "$(dirname "$MAMORI")")  # build/PRESET/bin/mamori -> build/PRESET
[[ -f $BUILD/CMakeCache.txt ]] || fail "$MAMORI is not in a CMake build tree ($BUILD has no CMakeCache.txt)"
command -v man >/dev/null || fail "man(1) is missing: tools/install-deps installs man-db"

check_install() {  # PREFIX [cmake --install args...]
  local prefix=$1 dest=$SCRATCH/dest$RANDOM
  shift
  DESTDIR=$dest cmake --install "$BUILD" "$@" >"$SCRATCH/install.log" 2>&1 ||
    fail "cmake --install $* failed: $(tail -n 20 "$SCRATCH/install.log")"
  [[ -x $dest$prefix/sbin/mamori ]] || fail "no $prefix/sbin/mamori installed: $(cat "$SCRATCH/install.log")"
  local unit exec
  for unit in mamori-agent.service mamori-check.service mamori-check.timer; do
    [[ -f $dest$prefix/lib/systemd/system/$unit ]] || fail "$unit is not installed in $prefix/lib/systemd/system"
  done
  for unit in mamori-agent.service mamori-check.service; do
    exec=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$dest$prefix/lib/systemd/system/$unit")
    assert_eq "$prefix/sbin/mamori" "$exec" "$unit ExecStart with prefix $prefix"
    [[ -x $dest$exec ]] || fail "$unit runs $exec, which the install did not put there"
    grep -q '^Documentation=man:mamori(8) ' "$dest$prefix/lib/systemd/system/$unit" || fail "$unit names no man:mamori(8)"
    local doc
    doc=$(sed -n 's/^Documentation=.* file:\(.*\)$/\1/p' "$dest$prefix/lib/systemd/system/$unit")
    [[ -f $dest$doc ]] || fail "$unit names $doc, which was not installed"
    if grep -q '@' "$dest$prefix/lib/systemd/system/$unit"; then fail "$unit has an unconfigured @VARIABLE@"; fi
  done
  # The web console, when the build has one (MAMORI_CONSOLE, on by default).
  if [[ -f $BUILD/console/index.html ]]; then
    [[ -f $dest$prefix/share/mamori/console/index.html ]] ||
      fail "the console is not installed in $prefix/share/mamori/console: $(cat "$SCRATCH/install.log")"
  fi
  local page=$dest$prefix/share/man/man8/mamori.8
  [[ -f $page ]] || fail "no man page at $prefix/share/man/man8/mamori.8"
  local text warnings
  text=$(MANWIDTH=80 man -l "$page" 2>/dev/null)
  assert_contains "$text" "mamori - keep web sites standing" "man -l renders the page"
  assert_contains "$text" "EXIT STATUS"
  assert_contains "$text" "--quarantine-new"
  warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  assert_eq "" "$warnings" "groff warnings rendering mamori(8)"
  # As systemd's Documentation=man:mamori(8) finds it: by name, in section 8.
  text=$(MANWIDTH=80 man -M "$dest$prefix/share/man" 8 mamori 2>/dev/null) || fail "man 8 mamori does not find the page"
  assert_contains "$text" "MAMORI(8)"
}

step "the default prefix"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")
check_install "$prefix"
step "--prefix /usr at install time"
check_install /usr --prefix /usr
echo "PASS"
