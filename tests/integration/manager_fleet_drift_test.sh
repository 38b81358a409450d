#!/usr/bin/env bash
# shellcheck disable=SC2016  # WAIT_EXPLAIN and on_exit strings are eval'ed later
# Fleet drift: `mamori manager drift` tells which node of a group serves something else
# than the others, and which files. Three agents of one group guard one site at one path,
# as nodes of a fleet do: each runs in a mount namespace of its own where its copy of the
# site (written separately: other inodes, other mtimes) is bind-mounted on
# $SCRATCH/site.
#   - copies of one release agree: no drift (exit 0), whatever the mtimes;
#   - a release deployed (`mamori deploy`) on one node only: that node is named with every
#     file the release changed, added or removed, a directory's mode, a name that is not
#     UTF-8 (--json: path_hex), a file changed among 1,200 uploads (paged answers); the
#     same through POST /api/v1/drift;
#   - a stopped node is listed as not compared; the same release on the other nodes: no
#     drift again.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/fleet_lib.sh"

command -v unshare >/dev/null && command -v nsenter >/dev/null ||
  fail "unshare and nsenter (util-linux) are needed"

step "the manager"
loopback_manager_config "heartbeat = 1"
MPORT=$PORT
manager() { mamori manager "$@"; }
"$MAMORI" --config "$CONFIG" manager >>"$MLOG" 2>&1 &
MANAGER_PID=$!
on_exit "stop_pid $MANAGER_PID 'the manager'"
WAIT_SECONDS=30 WAIT_EXPLAIN='cat "$MLOG"' wait_for "the manager to listen" \
  grep -q 'listening on' "$MLOG"
FLEET_MANAGER_CONFIG=$CONFIG
expect_exit 0 manager token create --group web --uses 3
grep -o 'mamori-token-v1\.[A-Za-z0-9_-]*' <<<"$OUT" | head -n 1 >"$SCRATCH/token"
chmod 0600 "$SCRATCH/token"

SITE=$SCRATCH/site # every node's root path; each node mounts its own copy here
mkdir -p "$SITE"
write_release() {  # DIR: the site as released, written file by file
  local d=$1 n
  mkdir -p "$d/wp-admin" "$d/wp-includes" "$d/wp-content/plugins/akismet" "$d/wp-content/uploads/2026"
  echo "<?php require __DIR__ . '/wp-blog-header.php';" >"$d/index.php"
  echo "<?php // admin" >"$d/wp-admin/admin.php"
  echo "<?php \$wp_version = '6.1.1';" >"$d/wp-includes/version.php"
  echo "<?php // akismet 5.0" >"$d/wp-content/plugins/akismet/akismet.php"
  for n in $(seq 1 1200); do echo "jpeg $n" >"$d/wp-content/uploads/2026/img$n.jpg"; done
  chmod 0755 "$d/wp-content"
}
# in_namespace I CMD...: CMD where agent I's copy is mounted on $SITE. One command that
# execs: in the background, $! is CMD's own pid (nsenter's target, stop_pid's).
# nsenter takes the target's root and directory too (--root --wd): the mount namespace's
# own root is the host's, not the chroot a test may run in.
IN_NAMESPACE=(unshare -m --propagation private bash -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' _)
in_namespace() { "${IN_NAMESPACE[@]}" "$SCRATCH/a$1/www" "$SITE" "${@:2}"; }

step "three nodes of group web, one release each written on its own, one root path"
for i in 1 2 3; do
  d=$SCRATCH/a$i
  mkdir -p "$d"
  write_release "$d/www"
  # Other mtimes on every node: a copy made at another time.
  find "$d/www" -exec touch -d "@$((1700000000 + i * 86400))" {} +
  fleet_agent_config "$i" "https://127.0.0.1:$MPORT" "$SCRATCH/token" "$SITE"
  expect_exit 0 in_namespace "$i" "$MAMORI" --config "${ACONF[i]}" init
  "${IN_NAMESPACE[@]}" "$d/www" "$SITE" "$MAMORI" --config "${ACONF[i]}" agent >>"$d/agent.log" 2>&1 &
  APID[i]=$!
  on_exit "stop_pid ${APID[i]} 'agent $i'"
  WAIT_SECONDS=60 WAIT_EXPLAIN="cat $d/agent.log" wait_for "agent $i to be ready" \
    grep -q 'ready: guarding' "$d/agent.log"
done
three_online() { [[ $(fleet_online_count) == 3 ]]; }
WAIT_SECONDS=30 WAIT_EXPLAIN='fleet_agents_json' wait_for "three agents online" three_online

step "copies of one release agree: no drift, whatever their mtimes"
t0=$(date +%s%N)
expect_exit 0 manager drift --group web
echo "  drift of an agreeing group took $((($(date +%s%N) - t0) / 1000000)) ms"
assert_contains "$OUT" "3 node(s) agree" "the three nodes agree"
assert_contains "$OUT" "no drift" "the verdict"
expect_exit 0 manager drift --group web --json
assert_eq "False 3 0" "$(json '"%s %d %d" % (j["drift"], len(j["roots"][0]["reference"]["agents"]), len(j["roots"][0]["drifted"]))')" "--json"
assert_eq "$SITE" "$(json 'j["roots"][0]["root"]')" "the root compared"

step "a release deployed on web3 only: web3 and each of its files are named"
cat >"$SCRATCH/release.sh" <<'EOF'
set -e
cd "$1"
echo "<?php // akismet 5.1" >wp-content/plugins/akismet/akismet.php
echo "<?php // new in 5.1" >wp-content/plugins/akismet/class.php
rm wp-admin/admin.php
chmod 0775 wp-content
echo "<?php // caf\xe9" >"$(printf 'caf\xe9.php')"
echo "resized" >wp-content/uploads/2026/img777.jpg
EOF
expect_exit 0 nsenter --mount --root --wd --target "${APID[3]}" \
  "$MAMORI" --config "${ACONF[3]}" deploy -- bash "$SCRATCH/release.sh" "$SITE"
t0=$(date +%s%N)
expect_exit 1 manager drift --group web --json
echo "  drift naming 6 differences took $((($(date +%s%N) - t0) / 1000000)) ms"
python3 - "$OUT" <<'PYEOF' || fail "drift did not name web3's release exactly: $OUT"
import json, sys
j = json.loads(sys.argv[1])
assert j["drift"] is True
(root,) = j["roots"]
assert sorted(a["name"] for a in root["reference"]["agents"]) == ["web1", "web2"], root
(node,) = root["drifted"]
assert node["name"] == "web3" and not node["truncated"] and node["error"] == "", node
got = [(d["kind"], d["type"], d.get("path_hex") or d["path"]) for d in node["differences"]]
want = [
    ("added", "file", b"caf\xe9.php".hex()),
    ("missing", "file", "wp-admin/admin.php"),
    ("changed", "dir", "wp-content"),
    ("added", "file", "wp-content/plugins/akismet/class.php"),
    ("changed", "file", "wp-content/plugins/akismet/akismet.php"),
    ("changed", "file", "wp-content/uploads/2026/img777.jpg"),
]
assert sorted(got, key=lambda x: x[2]) == sorted(want, key=lambda x: x[2]), got
PYEOF
expect_exit 1 manager drift --group web
assert_contains "$OUT" "web3 (" "the text names the node"
assert_contains "$OUT" 'caf\xe9.php' "the odd name, escaped"
assert_contains "$OUT" "wp-content/uploads/2026/img777.jpg" "the file among 1,200"
expect_exit 2 manager drift --agent "$(fleet_field web3 agent_key)"
expect_exit 2 manager drift --group nosuchgroup

step "the console's way: POST /api/v1/drift answers the same, for a viewer"
expect_exit 0 manager apitoken create drift-viewer --role viewer --json
APITOKEN=$(json 'j["token"]')
api_drift() {  # BODY [CURL-ARGS...]: the HTTP status, the body in $SCRATCH/api.json
  curl -sk -o "$SCRATCH/api.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --max-time 60 -d "$1" "${@:2}" "https://127.0.0.1:$MPORT/api/v1/drift"
}
assert_eq 200 "$(api_drift '{"group": "web"}' -H "Authorization: Bearer $APITOKEN")" "POST /api/v1/drift"
assert_eq "web3 6" "$(json '"%s %d" % (j["roots"][0]["drifted"][0]["name"], len(j["roots"][0]["drifted"][0]["differences"]))' "$(cat "$SCRATCH/api.json")")" "the API's drift"
assert_eq 401 "$(api_drift '{"group": "web"}')" "no credential"
assert_eq 400 "$(api_drift '{}' -H "Authorization: Bearer $APITOKEN")" "neither group nor all"
assert_eq 404 "$(api_drift '{"group": "nosuchgroup"}' -H "Authorization: Bearer $APITOKEN")" "no such group"

step "a stopped node is not compared; the release on the others: no drift again"
stop_pid "${APID[1]}" "agent 1" || fail "agent 1 did not stop"
WAIT_SECONDS=10 wait_for "web1 stopped" fleet_is_status web1 stopped
expect_exit 0 nsenter --mount --root --wd --target "${APID[2]}" \
  "$MAMORI" --config "${ACONF[2]}" deploy -- bash "$SCRATCH/release.sh" "$SITE"
expect_exit 0 manager drift --group web
assert_contains "$OUT" "2 node(s) agree" "web2 and web3"
assert_contains "$OUT" "not compared: web1" "the stopped node"
expect_exit 0 manager drift --group web --json
assert_eq "stopped" "$(json 'j["offline"][0]["status"]')" "the stopped node, --json"

