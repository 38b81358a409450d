#!/usr/bin/env bash
# `mamori scan --lookup` against a local server that answers like VirusTotal's v3
# GET /api/v3/files/{sha256} (vt_server.py): each file's stats are printed beside the
# YARA results, at most 4 requests go in a minute (the rest are queued and the output
# says so), the limit holds across runs, a 429 pauses the look-ups, only GETs without a
# body ever reach the server (no file is uploaded), and the key appears nowhere.
# shellcheck source-path=SCRIPTDIR source=lib.sh
# shellcheck disable=SC2016,SC2119  # WAIT_EXPLAIN is eval'ed later; write_config with no root
source "$(dirname "$0")/lib.sh"

SAMPLES=$(cd "$(dirname "$0")/../../core/scan/testdata" && pwd)
KEY=vt-test-key-5f2a9c
mkdir -p "$SCRATCH/site" "$SCRATCH/vt" "$STATE"
for f in eval_base64.php system_get.php assert_post.php backtick.php create_function.php; do
  cp "$SAMPLES/match/$f" "$SCRATCH/site/"
done
echo 'nothing to see here' >"$SCRATCH/site/readme.txt"  # unknown to the server: 404
: >"$SCRATCH/vt/known"
for f in "$SCRATCH"/site/*.php; do
  echo "$(sha256sum <"$f" | cut -d' ' -f1) 5 1 60 2 trojan.php/x" >>"$SCRATCH/vt/known"
done
printf '%s\n' "$KEY" >"$SCRATCH/vt.key"
chmod 600 "$SCRATCH/vt.key"

# Started once for the whole test: it counts requests across runs. Its 7th request is
# answered 429 QuotaExceededError.
port_file=$SCRATCH/.vt-port
/usr/bin/python3 "$(dirname "$0")/vt_server.py" "$SCRATCH/vt/out" --port-file "$port_file" \
  --key "$KEY" --known "$SCRATCH/vt/known" --status-at 7:429 >/dev/null 2>>"$SCRATCH/vt.log" &
VT_PID=$!
on_exit "stop_pid $VT_PID 'the VirusTotal-like server'"
_vt_listening_or_gone() { [[ -s $port_file ]] || ! kill -0 "$VT_PID" 2>/dev/null; }
WAIT_EXPLAIN='cat "$SCRATCH/vt.log"' wait_for "the VirusTotal-like server to listen" _vt_listening_or_gone
[[ -s $port_file ]] || fail "the server exited before it listened: $(cat "$SCRATCH/vt.log")"
VT_URL=http://127.0.0.1:$(cat "$port_file")
REQUESTS=$SCRATCH/vt/out/requests.jsonl
requests() { [[ -e $REQUESTS ]] && wc -l <"$REQUESTS" || echo 0; }

lookup_config() {  # [PER_MINUTE]
  write_config
  {
    echo "[lookup]"
    echo "api_key_file = \"$SCRATCH/vt.key\""
    echo "base_url = \"$VT_URL\""
    if [[ -n ${1:-} ]]; then echo "per_minute = $1"; fi
  } >>"$CONFIG"
}

step "six files, the default 4 a minute: four asked, two queued and said so"
lookup_config
expect_exit 1 mamori scan --lookup "$SCRATCH/site"
assert_eq 4 "$(requests)" "requests sent"
assert_eq 6 "$(grep -c ': virustotal: ' <<<"$OUT")" "one virustotal line per file"
assert_eq 2 "$(grep -c ': virustotal: queued' <<<"$OUT")" "files queued"
assert_contains "$ERR" "2 queued for later" "the summary"
known=$(grep -c ': virustotal: 5 malicious, 1 suspicious, 60 undetected, 2 harmless (trojan.php/x)' <<<"$OUT" || true)
unknown=$(grep -c ': virustotal: unknown to VirusTotal' <<<"$OUT" || true)
assert_eq 4 "$((known + unknown))" "files answered"
# The YARA lines are still there, beside the look-ups.
assert_contains "$OUT" "$SCRATCH/site/system_get.php: mamori_php_exec_request_input (critical)"
assert_not_contains "$OUT$ERR" "$KEY" "the key"
assert_eq 600 "$(stat -c %a "$STATE/lookup.json")" "the state file's mode"
assert_not_contains "$(cat "$STATE/lookup.json")" "$KEY" "the key in the state file"

step "at once again: the limit holds across runs; answers come from the cache"
expect_exit 1 mamori scan --lookup --json "$SCRATCH/site"
assert_eq 4 "$(requests)" "requests sent"
assert_eq 0 "$(json 'j["lookup"]["sent"]')" "sent this run"
assert_eq 2 "$(json 'j["lookup"]["queued"]')" "still queued"
assert_eq 4 "$(json 'j["lookup"]["known"] + j["lookup"]["unknown"]')" "from the cache"
assert_eq 6 "$(json 'len(j["lookups"])')" "a look-up per file"

step "a higher limit: the queue is asked; a 429 pauses the rest"
lookup_config 100
expect_exit 1 mamori scan --lookup --json "$SCRATCH/site"
assert_eq 6 "$(requests)" "requests sent"
assert_eq 6 "$(json 'j["lookup"]["known"] + j["lookup"]["unknown"]')" "every file answered"
assert_eq 1 "$(json 'j["lookup"]["unknown"]')" "readme.txt: unknown"
assert_eq '["unknown"]' \
  "$(json '[l["status"] for l in j["lookups"] if l["path"].endswith("/readme.txt")]')" "its status"
assert_eq 5 "$(json '[l["malicious"] for l in j["lookups"] if l["path"].endswith("/eval_base64.php")][0]')" \
  "the dropper's engines"
# A new file: the 7th request gets 429; it stays queued and the look-ups pause.
cp "$SAMPLES/match/chr_chain.php" "$SCRATCH/site/"
expect_exit 1 mamori scan --lookup "$SCRATCH/site"
assert_eq 7 "$(requests)" "requests sent"
assert_contains "$OUT" "$SCRATCH/site/chr_chain.php: virustotal: queued: VirusTotal asked to wait" \
  "the file refused with 429"
assert_contains "$ERR" "1 queued for later" "the summary"
expect_exit 1 mamori scan --lookup "$SCRATCH/site"
assert_eq 7 "$(requests)" "no request during the pause"

step "only GETs of the look-up path, with the key, and no body: nothing uploaded"
assert_eq '[["GET", 0, true]]' "$(python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps(sorted({(r["method"], r["body_bytes"], r["key_ok"]) for r in rows})))
' "$REQUESTS")" "methods, body sizes, key"
bad_paths=$(python3 -c '
import json, re, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if not re.fullmatch(r"/api/v3/files/[0-9a-f]{64}", r["path"]) or r["content_length"]:
        print(r)
' "$REQUESTS")
assert_eq "" "$bad_paths" "requests other than GET /api/v3/files/SHA256"

step "the key must be private; no [lookup] means no look-up"
chmod 644 "$SCRATCH/vt.key"
expect_exit 2 mamori scan --lookup "$SCRATCH/site"
assert_contains "$ERR" "chmod 600" "the reason"
assert_not_contains "$OUT$ERR" "$KEY" "the key"
chmod 600 "$SCRATCH/vt.key"
write_config
expect_exit 2 mamori scan --lookup "$SCRATCH/site"
assert_contains "$ERR" "--lookup needs [lookup] api_key_file" "the reason"
assert_eq 7 "$(requests)" "requests sent"

step "one look-up run at a time: a second one is refused while the queue is locked"
lookup_config
expect_exit 2 flock "$STATE/lookup.json.lock" "$MAMORI" --config "$CONFIG" scan --lookup "$SCRATCH/site"
assert_contains "$ERR" "another process is using the look-up queue" "the reason"
assert_eq 7 "$(requests)" "requests sent"

step "a refused key stops the look-ups and is not printed"
rm -f "$STATE/lookup.json"
printf 'wrong-key-0000\n' >"$SCRATCH/wrong.key"
chmod 600 "$SCRATCH/wrong.key"
lookup_config
sed -i "s|$SCRATCH/vt.key|$SCRATCH/wrong.key|" "$CONFIG"
expect_exit 1 mamori scan --lookup "$SCRATCH/site/readme.txt" "$SCRATCH/site/system_get.php"
assert_contains "$ERR" "the API key was refused (HTTP 401 WrongCredentialsError)" "the error"
assert_not_contains "$OUT$ERR" "wrong-key-0000" "the key"
assert_contains "$OUT" "$SCRATCH/site/readme.txt: virustotal: queued: not asked, the look-ups stopped on an error"
assert_eq 8 "$(requests)" "one request, then stop"
