#!/usr/bin/env bash
# The manager's REST API (docs/manager.md "Users and API access", docs/openapi.yaml)
# against the real `mamori manager` on loopback, spoken to over TLS with the certificate
# pinned by its fingerprint (manager_client.py's context): every endpoint refuses
# unauthenticated (401) and wrong-role (403) requests; login and logout; a missing or
# wrong CSRF token (403); the session cookie's attributes; an API token that works until
# revoked; the live event stream (refused without credentials or from another site's
# page; each event once, in order; resumed with after=); keep-alive; a ban, its lift
# and a command made through the API reach the connected agent
# and the command's answer is listed; a command unanswered when its channel ended comes
# again at the next hello; events paged with a cursor, each exactly once, and newest
# first with before=; the audit log; login throttling.
source "$(dirname "$0")/lib.sh"

loopback_manager_config

step "users and an API token from the CLI"
printf 'admin password 1\n' | expect_exit 0 mamori manager user add root-admin --role admin
printf 'viewer password 1\n' | expect_exit 0 mamori manager user add vic --role viewer
printf 'operator password\n' | expect_exit 0 mamori manager user add olga --role operator
printf 'short\n' | expect_exit 2 mamori manager user add shorty
expect_exit 0 mamori manager apitoken create ci --role viewer --json
APITOKEN=$(json 'j["token"]')
APITOKEN_ID=$(json 'j["id"]')

"$MAMORI" --config "$CONFIG" manager >>"$MLOG" 2>&1 &
MANAGER_PID=$!
stop_manager() { stop_pid "$MANAGER_PID" "the manager" || fail "the manager did not stop"; }
on_exit stop_manager
_listening() { grep -q 'listening on' "$MLOG"; }
WAIT_SECONDS=20 WAIT_EXPLAIN='cat "$MLOG"' wait_for "the manager to listen" _listening
FP=$(grep -o 'fingerprint [0-9a-f]*' "$MLOG" | head -1 | cut -d' ' -f2)

step "the API, by a pinned-TLS client"
PYTHONPATH=$(dirname "$0") MANAGER_SCHEMA= expect_exit 0 /usr/bin/python3 - "$PORT" "$FP" "$APITOKEN" "$APITOKEN_ID" "$CONFIG" "$MAMORI" <<'PYEOF'
import http.client, json, subprocess, sys
import manager_client as mc

port, fp, apitoken, apitoken_id, config, mamori = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
URL = "https://127.0.0.1:%s" % port

def die(msg):
    print("FAIL:", msg); sys.exit(1)

def req(method, path, body=None, cookie=None, csrf=None, bearer=None, raw=False):
    c = http.client.HTTPSConnection("127.0.0.1", int(port), context=mc.tls_context(), timeout=10)
    c.connect(); mc.check_fp(c.sock, fp)
    h = {"Content-Type": "application/json"}
    if cookie: h["Cookie"] = "mamori_session=" + cookie
    if csrf: h["X-CSRF-Token"] = csrf
    if bearer: h["Authorization"] = "Bearer " + bearer
    c.request(method, path, body=None if body is None else json.dumps(body), headers=h)
    r = c.getresponse(); text = r.read().decode()
    j = json.loads(text) if text else None
    if r.status >= 400 and not ("error" in j and "code" in j["error"] and "message" in j["error"]):
        die("%s %s: error body %r" % (method, path, text))
    return (r.status, j, r) if raw else (r.status, j)

def expect(st, want, what):
    if st != want: die("%s: status %s, expected %s" % (what, st, want))

def login(name, pw):
    st, j, r = req("POST", "/api/v1/login", {"name": name, "password": pw}, raw=True)
    expect(st, 200, "login " + name)
    sc = r.getheader("Set-Cookie")
    for attr in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/api"):
        if attr not in sc: die("cookie lacks %s: %s" % (attr, sc))
    cookie = sc.split(";")[0].split("=", 1)[1]
    if len(cookie) < 43: die("short session cookie: " + sc)
    return cookie, j["csrf_token"]

ROUTES = [("GET", "/api/v1/agents", "viewer"), ("GET", "/api/v1/agents/x", "viewer"),
          ("GET", "/api/v1/events", "viewer"), ("GET", "/api/v1/events/live", "viewer"),
          ("GET", "/api/v1/tokens", "viewer"),
          ("POST", "/api/v1/tokens", "operator"), ("DELETE", "/api/v1/tokens/999", "operator"),
          ("GET", "/api/v1/users", "admin"), ("POST", "/api/v1/users", "admin"),
          ("DELETE", "/api/v1/users/nobody", "admin"), ("GET", "/api/v1/audit", "admin"),
          ("GET", "/api/v1/bans", "viewer"), ("POST", "/api/v1/bans", "operator"),
          ("DELETE", "/api/v1/bans/192.0.2.99", "operator"), ("GET", "/api/v1/commands", "viewer"),
          ("GET", "/api/v1/decoys", "viewer"),
          ("POST", "/api/v1/commands", "operator"), ("POST", "/api/v1/logout", "viewer")]
RANK = {"viewer": 0, "operator": 1, "admin": 2}

# 401 without credentials, with a made-up cookie and a made-up token
for m, p, _ in ROUTES:
    for kw in ({}, {"cookie": "A" * 43}, {"bearer": "mamori-api-v1." + "B" * 43}):
        expect(req(m, p, {}, **kw)[0], 401, "%s %s %r" % (m, p, kw))

sessions = {n: login(n, pw) for n, pw in (("vic", "viewer password 1"), ("olga", "operator password"), ("root-admin", "admin password 1"))}
roles = {"vic": "viewer", "olga": "operator", "root-admin": "admin"}
# 403 for a role too weak; never 401/403 for a strong enough one
for m, p, need in ROUTES:
    if p == "/api/v1/logout": continue
    for user, (cookie, csrf) in sessions.items():
        st = req(m, p, {}, cookie=cookie, csrf=csrf)[0]
        if RANK[roles[user]] < RANK[need]: expect(st, 403, "%s %s as %s" % (m, p, user))
        elif st in (401, 403): die("%s %s as %s: %s" % (m, p, user, st))

cookie, csrf = sessions["root-admin"]
# CSRF: missing or wrong → 403, nothing changes
expect(req("POST", "/api/v1/users", {"name": "eve", "password": "eve password 12", "role": "admin"}, cookie=cookie)[0], 403, "no CSRF")
expect(req("POST", "/api/v1/users", {"name": "eve", "password": "eve password 12", "role": "admin"}, cookie=cookie, csrf=csrf[:-1] + ("A" if csrf[-1] != "A" else "B"))[0], 403, "wrong CSRF")
st, j = req("GET", "/api/v1/users", cookie=cookie)
if any(u["name"] == "eve" for u in j["users"]): die("a request without CSRF made a user")
expect(req("POST", "/api/v1/users", {"name": "eve", "password": "eve password 12", "role": "viewer"}, cookie=cookie, csrf=csrf)[0], 201, "user with CSRF")
expect(req("DELETE", "/api/v1/users/eve", cookie=cookie, csrf=csrf)[0], 200, "delete eve")
st, j = req("DELETE", "/api/v1/users/root-admin", cookie=cookie, csrf=csrf)
expect(st, 409, "deleting the last admin")
if j["error"]["code"] != "last-admin": die("the last admin's refusal: %r" % j)

# an enrollment token from the API, an agent, 250 events
st, j = req("POST", "/api/v1/tokens", {"group": "web", "uses": 1}, cookie=cookie, csrf=csrf)
expect(st, 201, "token create")
t = mc.decode_token(j["token"])
if t["fp"] != fp: die("the token's fingerprint")
st, text = mc.enroll(URL, fp, t["secret"])
expect(st, 200, "enroll")
m = json.loads(text); m.update({"url": URL, "fp": fp})
ws = mc.connect(m); mc.hello(ws, m)
# the live stream: refused without credentials or from another site's page
import ssl, websocket
def live(query="", headers=(), origin=None):
    kw = {"origin": origin} if origin else {"suppress_origin": True}
    sock = websocket.create_connection("wss://127.0.0.1:%s/api/v1/events/live%s" % (port, query), header=list(headers), timeout=10,
                                       sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": False}, **kw)
    mc.check_fp(sock.sock, fp)
    return sock
def live_refused(status, **kw):
    try:
        live(**kw).close()
    except websocket.WebSocketBadStatusException as e:
        if e.status_code != status: die("live stream: %s, expected %s" % (e.status_code, status))
        return
    die("live stream opened (%r), expected %s" % (kw, status))
live_refused(401)
live_refused(401, headers=["Cookie: mamori_session=" + "A" * 43])
live_refused(403, headers=["Cookie: mamori_session=" + sessions["vic"][0]], origin="https://evil.example")
stream = live("?agent=" + m["agent_key"], headers=["Cookie: mamori_session=" + sessions["vic"][0]], origin=URL)
everything = live(headers=["Authorization: Bearer " + apitoken])
for start in range(1, 251, 50):
    mc.send(ws, {"v": 1, "type": "events", "events": [mc.event(s) for s in range(start, start + 50)]})
    mc.recv_ack(ws)

# every stored event comes down the streams once, in order, from the moment they opened
def drain(sock, want):
    got, last = [], 0
    sock.settimeout(10)
    while len(got) < want:
        msg = json.loads(sock.recv())
        rows = [e["row"] for e in msg["events"]]
        if rows != sorted(rows) or (rows and rows[0] <= last) or msg["next"] != rows[-1]: die("live rows out of order: %r" % rows)
        last = rows[-1]
        got += [e["event"]["event"]["id"] for e in msg["events"]]
    return got
if drain(stream, 250) != ["ev-%d" % i for i in range(1, 251)]: die("the live stream's events")
if len(drain(everything, 250)) != 250: die("the unfiltered live stream")
stream.close(); everything.close()
# resumed with after=: only what came after
st, j = req("GET", "/api/v1/events?agent=%s&limit=200" % m["agent_key"], bearer=apitoken)
resumed = live("?agent=%s&after=%d" % (m["agent_key"], j["next"]), headers=["Authorization: Bearer " + apitoken])
if drain(resumed, 50) != ["ev-%d" % i for i in range(201, 251)]: die("the resumed live stream")
resumed.close()

# fleet control through the API, seen by the connected agent: a ban, its lift, a command
oc, ocsrf = sessions["olga"]
def next_command(what):
    c = mc.recv(ws)
    if c.get("type") != "command": die("%s: expected a command, got %r" % (what, c))
    return c
for bad in ({"address": "not-an-ip"}, {"address": "192.0.2.7", "ttl_s": -1}, {"address": "192.0.2.7", "ttl_s": "1h"},
            {"address": "192.0.2.7", "reason": "x" * 1025}, {},
            {"address": "127.0.0.2"}):  # [manager] never_ban (by default, loopback)
    expect(req("POST", "/api/v1/bans", bad, cookie=oc, csrf=ocsrf)[0], 400, "bad ban %r" % bad)
st, j = req("POST", "/api/v1/bans", {"address": "2001:DB8::0:7", "ttl_s": 3600, "reason": "seen probing"}, cookie=oc, csrf=ocsrf)
expect(st, 201, "ban")
if j["address"] != "2001:db8::7" or not j["expires_at_ns"]: die("ban answer %r" % j)
c = next_command("the ban")
r = c["request"]
if r.get("cmd") != "ban" or r.get("addresses") != ["2001:db8::7"] or r.get("origin") != "manager": die("ban command %r" % c)
mc.send(ws, {"v": 1, "type": "result", "command_id": c["command_id"], "answer": {"v": 2, "ok": True}})
st, j = req("GET", "/api/v1/bans", bearer=apitoken)
expect(st, 200, "bans")
if [b["address"] for b in j["bans"]] != ["2001:db8::7"] or j["bans"][0]["reason"] != "seen probing": die("bans %r" % j)
expect(req("DELETE", "/api/v1/bans/192.0.2.99", cookie=oc, csrf=ocsrf)[0], 404, "unban of an address not banned")
expect(req("DELETE", "/api/v1/bans/2001:db8::7", cookie=oc, csrf=ocsrf)[0], 200, "unban")
c = next_command("the lift")
if c["request"].get("cmd") != "unban" or c["request"].get("addresses") != ["2001:db8::7"]: die("unban command %r" % c)
mc.send(ws, {"v": 1, "type": "result", "command_id": c["command_id"], "answer": {"v": 2, "ok": True}})
if req("GET", "/api/v1/bans", bearer=apitoken)[1]["bans"]: die("a lifted ban is still listed")
# The decoys page's figures: none touched here; the window is bounded (1-366 days).
st, j = req("GET", "/api/v1/decoys", bearer=apitoken)
expect(st, 200, "decoys")
if j["decoys"] != [] or j["days"] != 30 or not j["complete"] or j["until"] - j["since"] != 30 * 86400 * 10**9: die("decoys %r" % j)
for days in ("0", "367", "x", "-1"):
    expect(req("GET", "/api/v1/decoys?days=" + days, bearer=apitoken)[0], 400, "decoys over %s days" % days)
expect(req("GET", "/api/v1/decoys?days=366", bearer=apitoken)[0], 200, "decoys over 366 days")
for bad in ({"command": "verify"}, {"command": "verify", "agent": m["agent_key"], "all": True},
            {"command": "reboot", "all": True}, {"command": "mode", "args": ["*"], "all": True},
            {"command": "mode", "args": ["*", "chaos"], "all": True}, {"command": "verify", "args": "x", "all": True}):
    expect(req("POST", "/api/v1/commands", bad, cookie=oc, csrf=ocsrf)[0], 400, "bad command %r" % bad)
expect(req("POST", "/api/v1/commands", {"command": "verify", "group": "no-such-group"}, cookie=oc, csrf=ocsrf)[0], 404, "no such group")
st, j = req("POST", "/api/v1/commands", {"command": "mode", "args": ["*", "preserve"], "group": "web"}, cookie=oc, csrf=ocsrf)
expect(st, 201, "command")
if j["count"] != 1 or j["commands"][0]["agent_key"] != m["agent_key"]: die("command answer %r" % j)
row_id = j["commands"][0]["id"]
c = next_command("the mode command")
if c["request"].get("cmd") != "mode" or c["request"].get("mode") != "preserve": die("mode command %r" % c)
mc.send(ws, {"v": 1, "type": "result", "command_id": c["command_id"], "answer": {"v": 2, "ok": True}})
mc.send(ws, {"v": 1, "type": "heartbeat", "time_ns": 1, "healthy": True})
import time
deadline = time.time() + 10
while True:
    st, j = req("GET", "/api/v1/commands?agent=%s" % m["agent_key"], bearer=apitoken)
    expect(st, 200, "commands")
    rows = {x["id"]: x for x in j["commands"]}
    if row_id in rows and rows[row_id]["state"] == "ok": break
    if time.time() > deadline: die("the mode command never became ok: %r" % j)
    time.sleep(0.1)
if rows[row_id]["request"]["cmd"] != "mode" or not rows[row_id]["answered_at_ns"]: die("command row %r" % rows[row_id])
if len(j["commands"]) != 3: die("expected the ban, the lift and the mode command: %r" % j)
# a command sent on a channel that ends before the answer is sent again at the next hello
st, j = req("POST", "/api/v1/commands", {"command": "verify", "agent": m["agent_key"]}, cookie=oc, csrf=ocsrf)
expect(st, 201, "verify command")
first = next_command("the verify command")
ws.close()
ws = mc.connect(m); mc.hello(ws, m, next_sequence=251)
while True:
    c = next_command("the verify command, again")
    if c["command_id"] == first["command_id"]: break
mc.send(ws, {"v": 1, "type": "result", "command_id": c["command_id"], "answer": {"v": 2, "ok": True}})
deadline = time.time() + 10
while req("GET", "/api/v1/commands?agent=%s" % m["agent_key"], bearer=apitoken)[1]["commands"][-1]["state"] != "ok":
    if time.time() > deadline: die("the verify sent again was never answered ok")
    time.sleep(0.1)
ws.close()
# cursor paging: every stored event once
seen, after, pages = [], 0, 0
while True:
    st, j = req("GET", "/api/v1/events?agent=%s&limit=64&after=%d" % (m["agent_key"], after), bearer=apitoken)
    expect(st, 200, "events page"); pages += 1
    seen += [e["event"]["event"]["id"] for e in j["events"]]
    if "next" not in j: break
    after = j["next"]
if sorted(seen) != sorted("ev-%d" % i for i in range(1, 251)) or len(seen) != 250: die("paging: %d events" % len(seen))
if pages != 4: die("expected 4 pages, got %d" % pages)
# newest first (the console's timeline), paged down with before=: the same events, reversed
newest, before = [], 0
while True:
    st, j = req("GET", "/api/v1/events?agent=%s&limit=100&order=newest%s" % (m["agent_key"], "&before=%d" % before if before else ""), bearer=apitoken)
    expect(st, 200, "newest events page")
    newest += [e["event"]["event"]["id"] for e in j["events"]]
    if "next" not in j: break
    before = j["next"]
if newest != seen[::-1]: die("newest first: %r... is not the pages reversed" % newest[:3])
st, j = req("GET", "/api/v1/agents/" + m["agent_key"], bearer=apitoken)
expect(st, 200, "agent")
if j["events_24h"] != 0 and j["group"] != "web": die("agent: %r" % j)

# keep-alive: one connection, several requests (as the console makes them)
c = http.client.HTTPSConnection("127.0.0.1", int(port), context=mc.tls_context(), timeout=10)
c.connect(); mc.check_fp(c.sock, fp)
for i in range(5):
    c.request("GET", "/api/v1/agents", headers={"Authorization": "Bearer " + apitoken})
    r = c.getresponse(); r.read()
    expect(r.status, 200, "request %d on one connection" % i)
    if (r.getheader("Connection") or "").lower() == "close": die("keep-alive refused: %r" % r.getheaders())
c.close()
# the API token until revoked
expect(req("GET", "/api/v1/agents", bearer=apitoken)[0], 200, "api token")
expect(req("GET", "/api/v1/users", bearer=apitoken)[0], 403, "viewer api token on users")
subprocess.run([mamori, "--config", config, "manager", "apitoken", "revoke", apitoken_id], check=True, stdout=subprocess.DEVNULL)
expect(req("GET", "/api/v1/agents", bearer=apitoken)[0], 401, "revoked api token")

# logout ends the session
vc, vcsrf = sessions["vic"]
expect(req("POST", "/api/v1/logout", cookie=vc, csrf=vcsrf)[0], 200, "logout")
expect(req("GET", "/api/v1/agents", cookie=vc)[0], 401, "after logout")

# throttling: 5 free failures, then 429 with Retry-After, even with the right password
for i in range(5):
    expect(req("POST", "/api/v1/login", {"name": "olga", "password": "wrong %d password" % i})[0], 401, "bad password")
st, j, r = req("POST", "/api/v1/login", {"name": "olga", "password": "operator password"}, raw=True)
expect(st, 429, "throttled login")
if not r.getheader("Retry-After"): die("no Retry-After")
expect(req("POST", "/api/v1/login", {"name": "nobody", "password": "x" * 12})[0], 429, "another name from the same address")

# the audit log
st, j = req("GET", "/api/v1/audit?limit=1000", cookie=cookie)
expect(st, 200, "audit")
acts = [(a["action"], a["result"]) for a in j["audit"]]
for want in [("user-add", "ok"), ("apitoken-create", "ok"), ("login", "ok"), ("login-failed", "bad-credentials"),
             ("login-failed", "throttled"), ("user-del", "ok"), ("token-create", "ok"), ("apitoken-revoke", "ok"), ("logout", "ok"),
             ("ban", "ok"), ("unban", "ok"), ("unban", "not-banned"), ("command", "ok")]:
    if want not in acts: die("audit lacks %r: %r" % (want, acts))
if not any(a["action"] == "login" and a["address"] == "127.0.0.1" for a in j["audit"]): die("audit: no address")
print("ok")
PYEOF
assert_contains "$OUT" "ok"
echo "PASS"
