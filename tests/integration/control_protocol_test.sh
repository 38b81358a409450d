#!/usr/bin/env bash
# The control protocol against a running agent (docs/formats/control.md): a client of
# version 1 (no "v", as the CLI and scripts spoke before versioning) and one of version 2
# each get correct answers in their own version; unknown commands, unknown fields, a
# future version and a root the agent does not guard are answered as documented; and
# every answer the agent gives validates against docs/formats/protocol.schema.json.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCHEMA=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/docs/formats/protocol.schema.json
VALIDATE=$(dirname "$SCHEMA")/../../tests/proto/validate.py
WP=$SCRATCH/wp
copy_wordpress "$WP"
write_config "$WP"
agent_config
expect_exit 0 mamori -q init
start_agent

MESSAGES=$SCRATCH/messages.jsonl
# ask DEF REQUEST: sends REQUEST (one line) on the socket, prints the answer, and keeps
# {"def": DEF, "message": answer} for the schema check at the end.
ask() {
  local answer
  answer=$(control_request "$2")
  python3 -c 'import json,sys; print(json.dumps({"def": sys.argv[1], "message": json.loads(sys.argv[2])}))' \
    "$1" "$answer" >>"$MESSAGES"
  printf '%s\n' "$answer"
}

step "version 1: no \"v\"; answered as version 1, errors as text"
a=$(ask StatusAnswer '{"cmd":"status"}')
assert_eq "1 True fanotify|inotify" "$(json '"%s %s %s" % (j["v"], j["ok"], "fanotify|inotify" if j["backend"] in ("fanotify","inotify") else j["backend"])' "$a")" "v1 status"
assert_eq "$WP restore" "$(json '"%s %s" % (j["roots"][0]["path"], j["roots"][0]["mode"])' "$a")" "v1 status root"
a=$(ask StatusAnswer "{\"cmd\":\"mode\",\"root\":\"$WP\",\"mode\":\"alert\"}")
assert_eq "True alert" "$(json '"%s %s" % (j["ok"], j["roots"][0]["mode"])' "$a")" "v1 mode with \"root\""
assert_contains "$(events)" '"mode-changed"' "the mode change is an event"
a=$(ask ErrorAnswer '{"cmd":"reboot"}')
assert_eq "1 False str" "$(json '"%s %s %s" % (j["v"], j["ok"], type(j["error"]).__name__)' "$a")" "v1 unknown command"
assert_contains "$a" 'unknown command \"reboot\"' "names the command"
assert_contains "$a" 'deploy-paths' "names the supported ones"
a=$(ask HealAnswer '{"cmd":"heal"}')
assert_eq "True True" "$(json '"%s %s" % (j["ok"], j["heal"]["healthy"])' "$a")" "v1 heal without action"

step "version 2: \"v\":2, errors with a stable code"
a=$(ask StatusAnswer "{\"v\":2,\"cmd\":\"mode\",\"roots\":[\"$WP/\"],\"mode\":\"restore\",\"colour\":\"blue\"}")
assert_eq "2 True restore" "$(json '"%s %s %s" % (j["v"], j["ok"], j["roots"][0]["mode"])' "$a")" "v2 mode, unknown field ignored"
a=$(ask ErrorAnswer '{"v":2,"cmd":"reboot"}')
assert_eq "unknown-command reboot 14 True" "$(json '"%s %s %d %s" % (j["error"]["code"], j["error"]["command"], len(j["error"]["supported"]), "site" in j["error"]["supported"])' "$a")" "v2 unknown command"
a=$(ask ErrorAnswer '{"v":2,"cmd":"evidence","id":999999}')
assert_eq "bad-argument evidence" "$(json '"%s %s" % (j["error"]["code"], j["error"]["command"])' "$a")" "v2 evidence of an id never kept"
a=$(ask PathAnswer "{\"v\":2,\"cmd\":\"restore\",\"root\":\"$WP\",\"path\":\"index.php\"}")
assert_eq "True 0" "$(json '"%s %s" % (j["ok"], j["entries"])' "$a")" "v2 restore of an intact path"
a=$(ask ErrorAnswer "{\"v\":2,\"cmd\":\"accept\",\"root\":\"$WP\",\"path\":\"../etc\"}")
assert_eq "bad-argument accept" "$(json '"%s %s" % (j["error"]["code"], j["error"]["command"])' "$a")" "v2 accept of a path out of the root"
a=$(ask ErrorAnswer '{"v":3,"cmd":"status"}')
assert_eq "2 unsupported-version" "$(json '"%s %s" % (j["v"], j["error"]["code"])' "$a")" "a future version"
a=$(ask ErrorAnswer '{"v":2,"cmd":"verify","roots":["/nonexistent"]}')
assert_eq "unknown-root verify" "$(json '"%s %s" % (j["error"]["code"], j["error"]["command"])' "$a")" "v2 unknown root"
a=$(ask ErrorAnswer '{"v":2,"cmd":"heal","action":"fail"}')
assert_eq "bad-argument" "$(json 'j["error"]["code"]' "$a")" "v2 heal fail without reason"
a=$(ask ErrorAnswer 'not json')
assert_eq "1 False" "$(json '"%s %s" % (j["v"], j["ok"])' "$a")" "garbage: a version-1 error"
ask PingAnswer '{"v":2,"cmd":"ping"}' >/dev/null
ask StatusAnswer '{"v":2,"cmd":"verify"}' >/dev/null
a=$(ask StatusAnswer "{\"v\":2,\"cmd\":\"pause\",\"roots\":\"*\",\"pid\":$$}")
assert_contains "$a" '"attribution"' "pause answers the attribution"
a=$(ask DeployPathsAnswer '{"v":2,"cmd":"deploy-paths"}')
ask StatusAnswer '{"v":2,"cmd":"resume","roots":"*"}' >/dev/null
a=$(ask HealAnswer '{"v":2,"cmd":"heal","action":"status"}')

step "the CLI speaks version 2 and reads the typed answers"
expect_exit 0 mamori status --json
assert_eq "True restore" "$(json '"%s %s" % (j["agent"]["running"], j["agent"]["roots"][0]["mode"])' "$OUT")" "status --json"
python3 -c 'import json,sys; a=json.loads(sys.argv[1])["agent"]; a.pop("running"); print(json.dumps({"def": "StatusDocument", "message": a}))' "$OUT" >>"$MESSAGES"
expect_exit 0 mamori --json mode "$WP" alert
python3 -c 'import json,sys; print(json.dumps({"def": "StatusAnswer", "message": json.loads(sys.argv[1])}))' "$OUT" >>"$MESSAGES"
expect_exit 0 mamori mode "$WP" restore

step "every answer validates against the committed schema"
expect_exit 0 python3 "$VALIDATE" "$SCHEMA" "$MESSAGES"
assert_contains "$OUT" "of $(wc -l <"$MESSAGES") messages valid" "all checked"
echo "PASS $TEST_NAME"
