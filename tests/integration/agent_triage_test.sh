#!/usr/bin/env bash
# Triage by the real-time agent (docs/scan.md, "What is scanned when"), with fanotify:
#   - a baselined PHP file overwritten with a web shell is restored at once, and its
#     file-restored event names the YARA rule; preserve mode keeps the tampered copy and
#     `mamori evidence show` (text and --json) gives the verdict with it;
#   - a web shell dropped as a new file is quarantined, the rule in its event and in its
#     evidence;
#   - with [lookup] against a local VirusTotal-like server (vt_server.py, which counts
#     requests), each of those files' SHA-256 (never the file) is asked and a file-lookup
#     event names the guard's event in mamori.related_event; per_minute holds (what is
#     over waits in STATE/lookup.json, across a restart of the agent, and is asked with
#     its related event once the limit allows);
#   - alert mode scans a changed file where it is;
#   - every event passes `mamori events --check`; the API key is nowhere.
# shellcheck disable=SC2016,SC2119  # Python filters in single quotes are meant literally; helpers called without arguments
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SAMPLES=$(cd "$(dirname "$0")/../../core/scan/testdata" && pwd)
KEY=vt-triage-key-93c1e
SITE=$SCRATCH/site
mkdir -p "$SITE/wp/inc" "$SITE/uploads" "$SCRATCH/vt" "$STATE"
printf '<?php require "wp/load.php";\n' >"$SITE/index.php"
printf '<?php // load\n' >"$SITE/wp/load.php"
printf '<?php // settings\n' >"$SITE/wp/inc/settings.php"
printf '<?php // functions\n' >"$SITE/wp/inc/functions.php"

SHELL_A=$SAMPLES/match/eval_base64.php   # mamori_php_eval_decoded
SHELL_B=$SAMPLES/match/system_get.php    # mamori_php_exec_request_input
SHELL_C=$SAMPLES/match/shell_family.php
SHELL_D=$SAMPLES/match/create_function.php
: >"$SCRATCH/vt/known"
for f in "$SHELL_A" "$SHELL_B" "$SHELL_C" "$SHELL_D"; do
  echo "$(sha256 "$f") 31 2 27 0 trojan.php/webshell" >>"$SCRATCH/vt/known"
done
printf '%s\n' "$KEY" >"$SCRATCH/vt.key"
chmod 600 "$SCRATCH/vt.key"

port_file=$SCRATCH/.vt-port
/usr/bin/python3 "$(dirname "$0")/vt_server.py" "$SCRATCH/vt/out" --port-file "$port_file" \
  --key "$KEY" --known "$SCRATCH/vt/known" >/dev/null 2>>"$SCRATCH/vt.log" &
VT_PID=$!
on_exit "stop_pid $VT_PID 'the VirusTotal-like server'"
_vt_listening_or_gone() { [[ -s $port_file ]] || ! kill -0 "$VT_PID" 2>/dev/null; }
WAIT_EXPLAIN='cat "$SCRATCH/vt.log"' wait_for "the VirusTotal-like server to listen" _vt_listening_or_gone
[[ -s $port_file ]] || fail "the server exited before it listened: $(cat "$SCRATCH/vt.log")"
VT_URL=http://127.0.0.1:$(cat "$port_file")
REQUESTS=$SCRATCH/vt/out/requests.jsonl
requests() { if [[ -e $REQUESTS ]]; then wc -l <"$REQUESTS"; else echo 0; fi; }
asked() { [[ -e $REQUESTS ]] && grep -q "/api/v3/files/$1\"" "$REQUESTS"; }

triage_config() {  # MODE PER_MINUTE
  write_config "$SITE"
  MODE=$1 agent_config 'backend = "fanotify"'
  {
    echo "[lookup]"
    echo "api_key_file = \"$SCRATCH/vt.key\""
    echo "base_url = \"$VT_URL\""
    echo "per_minute = $2"
  } >>"$CONFIG"
}

has_event() { [[ -n $(events "$1") ]]; }
await_event() {  # WHAT FILTER: waits (at most 10 s) for an event matching FILTER; prints it
  WAIT_EXPLAIN='echo "--- last events:"; tail -n 20 "$EVENTS"; echo "--- agent log:"; cat "$AGENT_LOG"' \
    wait_for "an event: $1 (filter: $2)" has_event "$2"
  events "$2" | tail -n 1
}
on() { printf 'e["event"]["action"] == "%s" and e.get("mamori", {}).get("path") == "%s"' "$1" "$2"; }
lookup_of() { printf 'e["event"]["action"] == "file-lookup" and e.get("mamori", {}).get("related_event") == "%s"' "$1"; }
restored() { cmp -s <(printf '<?php // load\n') "$SITE/wp/load.php"; }

triage_config preserve 2
expect_exit 0 mamori -q init

step "a baselined file overwritten with a web shell: restored, the YARA rule in its event"
start_agent
cp "$SHELL_A" "$SITE/wp/load.php"
wait_for "wp/load.php restored" restored
ev=$(await_event "file-restored wp/load.php" "$(on file-restored wp/load.php)")
assert_eq '["mamori_php_eval_decoded"]' "$(json 'j["mamori"]["scan"]["rules"]' "$ev")" "the rule in the event"
assert_eq "$(sha256 "$SHELL_A")" "$(json 'j["file"]["hash"]["sha256"]' "$ev")" "the web shell's digest"
RESTORED_ID=$(json 'j["event"]["id"]' "$ev")
EVIDENCE_ID=$(json 'j["mamori"]["evidence"]["id"]' "$ev")

step "mamori evidence shows the verdict with the kept copy"
expect_exit 0 mamori evidence show "$EVIDENCE_ID"
assert_contains "$OUT" "yara          mamori_php_eval_decoded" "evidence show"
expect_exit 0 mamori --json evidence show "$EVIDENCE_ID"
assert_eq '["mamori_php_eval_decoded"]' "$(json 'j["mamori"]["scan"]["rules"]')" "evidence show --json"
assert_eq "$RESTORED_ID" "$(json 'j["event"]["id"]')" "the evidence names the event"
expect_exit 0 mamori evidence list
assert_contains "$OUT" "[yara: mamori_php_eval_decoded]" "evidence list"
expect_exit 0 mamori evidence export "$EVIDENCE_ID" --output "$SCRATCH/kept.php"
assert_same_file "$SHELL_A" "$SCRATCH/kept.php" "the kept copy"

step "its hash (only the hash) is looked up; the verdict joins the incident"
lk=$(await_event "file-lookup of the restore" "$(lookup_of "$RESTORED_ID")")
assert_eq "$(sha256 "$SHELL_A") true 31 2 false" \
  "$(json '"%s %s %s %s %s" % (j["file"]["hash"]["sha256"], json.dumps(j["mamori"]["lookup"]["found"]), j["mamori"]["lookup"]["malicious"], j["mamori"]["lookup"]["suspicious"], json.dumps(j["mamori"]["lookup"]["cached"]))' "$lk")" \
  "the file-lookup event"
assert_eq "mamori.triage" "$(json 'j["event"]["dataset"]' "$lk")" "its dataset"
assert_eq 1 "$(requests)" "requests sent"
assert_eq '["GET"] [0] [true]' \
  "$(python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps(sorted({x["method"] for x in r})), json.dumps(sorted({x["body_bytes"] for x in r})),
      json.dumps(sorted({x["key_ok"] for x in r})))' "$REQUESTS")" "methods, bodies, key of every request"

expect_exit 0 mamori events --path "$SITE/wp/load.php"
assert_contains "$OUT" "(2 events): $SITE/wp/load.php" "mamori events: the look-up in the restore's incident"
assert_contains "$OUT" "file-lookup" "mamori events"

step "three web shells dropped as new files: quarantined with their rules; the minute's second request only"
cp "$SHELL_B" "$SITE/wp/inc/cmd.php"
ev_b=$(await_event "file-quarantined cmd.php" "$(on file-quarantined wp/inc/cmd.php)")
assert_eq '["mamori_php_exec_request_input"]' "$(json 'j["mamori"]["scan"]["rules"]' "$ev_b")" "the rule in the quarantine event"
expect_exit 0 mamori --json evidence show "$(json 'j["mamori"]["evidence"]["id"]' "$ev_b")"
assert_eq '["mamori_php_exec_request_input"]' "$(json 'j["mamori"]["scan"]["rules"]')" "the rule in its evidence"
ID_B=$(json 'j["event"]["id"]' "$ev_b")
await_event "file-lookup of cmd.php" "$(lookup_of "$ID_B")" >/dev/null
cp "$SHELL_C" "$SITE/wp/c.php"
ID_C=$(json 'j["event"]["id"]' "$(await_event "file-quarantined c.php" "$(on file-quarantined wp/c.php)")")
cp "$SHELL_D" "$SITE/uploads/d.php"
ID_D=$(json 'j["event"]["id"]' "$(await_event "file-quarantined d.php" "$(on file-quarantined uploads/d.php)")")
# The worker took both in (each submission wakes it) and may not ask them this minute.
waiting_two() { [[ $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["queue"]))' "$STATE/lookup.json") == 2 ]]; }
WAIT_ON=$STATE wait_for "two hashes waiting in lookup.json" waiting_two
assert_eq 2 "$(requests)" "requests sent (per_minute = 2)"
assert_eq "" "$(events "$(lookup_of "$ID_C")")" "no verdict yet for c.php"

step "a restart keeps what waits and the minute's count"
stop_agent
start_agent
# The start's first round opens the queue: still two waiting, nothing sent.
await_event "agent-started" 'e["event"]["action"] == "agent-started"' >/dev/null
waiting_two || fail "the restart lost the queue: $(cat "$STATE/lookup.json")"
assert_eq 2 "$(requests)" "requests sent after the restart"

step "a limit that allows more: what waited is asked, each verdict naming its own event"
stop_agent
triage_config preserve 100
start_agent
await_event "file-lookup of c.php" "$(lookup_of "$ID_C")" >/dev/null
await_event "file-lookup of d.php" "$(lookup_of "$ID_D")" >/dev/null
assert_eq 4 "$(requests)" "requests sent"
asked "$(sha256 "$SHELL_C")" || fail "c.php's hash was not asked"

step "the same web shell again: restored, and its verdict from the cache (no request)"
cp "$SHELL_A" "$SITE/wp/load.php"
wait_for "wp/load.php restored" restored
ev=$(await_event "the second file-restored" "$(on file-restored wp/load.php) and e[\"event\"][\"id\"] != \"$RESTORED_ID\"")
lk=$(await_event "its file-lookup" "$(lookup_of "$(json 'j["event"]["id"]' "$ev")")")
assert_eq true "$(json 'json.dumps(j["mamori"]["lookup"]["cached"])' "$lk")" "from the cache"
assert_eq 4 "$(requests)" "requests sent"
stop_agent

step "alert mode: a changed file is scanned where it is"
triage_config alert 100
start_agent
cp "$SHELL_B" "$SITE/wp/inc/settings.php"
ev=$(await_event "file-changed settings.php" "$(on file-changed wp/inc/settings.php)")
assert_eq '["mamori_php_exec_request_input"]' "$(json 'j["mamori"]["scan"]["rules"]' "$ev")" "the rule in the alert"
cmp -s "$SHELL_B" "$SITE/wp/inc/settings.php" || fail "alert mode changed the file"
stop_agent

step "a key file others can read stops the agent's start, naming it"
chmod 644 "$SCRATCH/vt.key"
expect_exit 3 mamori agent
assert_contains "$ERR" "$SCRATCH/vt.key" "the error names the key file"
assert_contains "$ERR" "chmod 600" "and says what to do"
chmod 600 "$SCRATCH/vt.key"

step "every event is well-formed; the key is nowhere"
check_events
assert_not_contains "$(cat "$EVENTS" "$AGENT_LOG" "$STATE/lookup.json")" "$KEY" "the API key"
