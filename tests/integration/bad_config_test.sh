#!/usr/bin/env bash
# Broken configs: every one exits 2 with file:line:col, the offending key and a stable
# code, as text on stderr and as {"error": {...}} with --json. An unreadable config (a
# missing file, a FIFO, a directory) exits 2 without hanging.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MAMORI_TIMEOUT=10  # a config that is a FIFO must not block the read
C=$SCRATCH/bad.toml
SITE=$SCRATCH/site
mkdir -p "$SITE/blog"

# config_case NAME CODE KEYS LINES TOML: KEYS the key (or "a|b" the keys) the error may
# name, "" for errors that belong to no key; LINES likewise the lines it may point at.
config_case() {
  local name=$1 code=$2 key=$3 lines=$4 text=$5
  step "$name"
  printf '%s\n' "$text" >"$C"
  for args in "status" "init"; do
    # shellcheck disable=SC2086
    expect_exit 2 timeout -k 2 10 "$MAMORI" --config "$C" $args
  done
  local text_err=$ERR
  assert_contains "$text_err" "[$code]" "text names the code"
  expect_exit 2 timeout -k 2 10 "$MAMORI" --config "$C" --json check
  local fields got_code got_file got_key line col
  fields=$(json '"\x1f".join(str(j["error"][k]) for k in ("code", "file", "key", "line", "column"))')
  IFS=$'\x1f' read -r got_code got_file got_key line col <<<"$fields"
  assert_eq "$code" "$got_code" "--json .error.code"
  assert_eq "$C" "$got_file" "--json .error.file"
  [[ "|$key|" == *"|$got_key|"* ]] || fail "--json .error.key is '$got_key', want ${key//|/ or }"
  # The key as --json gives it (root[1].mode), or its own name quoted ('mode').
  if [[ -n $got_key && $text_err != *"$got_key"* && $text_err != *"'${got_key##*.}'"* ]]; then
    fail "the text message does not name the key $got_key: $text_err"
  fi
  [[ "|$lines|" == *"|$line|"* ]] || fail "--json .error.line is $line, want ${lines//|/ or } (the offending line)"
  [[ $col -ge 1 ]] || fail "--json .error.column is $col, want >= 1"
  assert_contains "$text_err" "$C:$line:$col:" "text names file:line:col"
  [[ ! -e $STATE ]] || fail "a bad config must not create the state dir"
}

failures=()
run() { ("$@") || failures+=("$2"); }  # every case runs; the test fails at the end

run config_case "unknown key" config.unknown_key stat_dir 2 "state_dir = \"$STATE\"
stat_dir = \"/var/lib/other\""

run config_case "unknown key inside [[root]]" config.unknown_key "root[1].excludes" 5 "state_dir = \"$STATE\"

[[root]]
path = \"$SITE\"
excludes = [\"*.log\"]"

run config_case "wrong type (jobs)" config.type jobs 2 "state_dir = \"$STATE\"
jobs = \"four\""

run config_case "wrong type (exclude)" config.type "root[1].exclude" 5 "state_dir = \"$STATE\"

[[root]]
path = \"$SITE\"
exclude = \"*.log\""

run config_case "out of range (compression_level)" config.value compression_level 2 "state_dir = \"$STATE\"
compression_level = 99"

run config_case "bad mode value" config.value "root[1].mode" 5 "state_dir = \"$STATE\"

[[root]]
path = \"$SITE\"
mode = \"fix\""

run config_case "relative root path" config.value "root[1].path" 4 "state_dir = \"$STATE\"

[[root]]
path = \"var/www/html\""

run config_case "root path with .." config.value "root[1].path" 4 "state_dir = \"$STATE\"

[[root]]
path = \"$SITE/../etc\""

run config_case "relative state_dir" config.value state_dir 1 "state_dir = \"var/lib/mamori\"

[[root]]
path = \"$SITE\""

run config_case "overlapping roots" config.value "root[2].path" "6|7" "state_dir = \"$STATE\"

[[root]]
path = \"$SITE\"

[[root]]
path = \"$SITE/blog\""

run config_case "the same root twice" config.value "root[1].path|root[2].path" "3|4|6|7" "state_dir = \"$STATE\"

[[root]]
path = \"$SITE\"

[[root]]
path = \"$SITE/\""

run config_case "state_dir inside a root" config.value state_dir "1|3|4" "state_dir = \"$SITE/.mamori\"

[[root]]
path = \"$SITE\""

run config_case "TOML syntax error" config.syntax "" 3 "state_dir = \"$STATE\"
jobs = 2
compression_level = = 3"

run config_case "TOML duplicate key" config.syntax "" 3 "state_dir = \"$STATE\"
jobs = 2
jobs = 3"

# Configs that cannot be read at all: exit 2, naming the file; no line to point at.
io_case() {  # NAME PATH DETAIL
  step "$1"
  expect_exit 2 timeout -k 2 10 "$MAMORI" --config "$2" check
  assert_contains "$ERR" "$2" "text names the file"
  assert_contains "$ERR" "$3"
  assert_contains "$ERR" "[config.io]"
  expect_exit 2 timeout -k 2 10 "$MAMORI" --config "$2" --json status
  assert_eq "config.io" "$(json 'j["error"]["code"]')" "--json .error.code"
  assert_eq "$2" "$(json 'j["error"]["file"]')" "--json .error.file"
  assert_eq 0 "$(json 'j["error"]["line"]')" "--json .error.line"
}
run io_case "missing config file" "$SCRATCH/no-such.toml" "No such file or directory"
mkfifo "$SCRATCH/fifo.toml"
run io_case "config that is a FIFO" "$SCRATCH/fifo.toml" "not a regular file"
mkdir "$SCRATCH/dir.toml"
run io_case "config that is a directory" "$SCRATCH/dir.toml" "dir.toml"

step "a good config next to them works (the cases above failed for their own reason)"
write_config "$SITE"
expect_exit 0 mamori init

if [[ ${#failures[@]} -gt 0 ]]; then
  fail "${#failures[@]} case(s) failed: $(printf '[%s] ' "${failures[@]}")"
fi
