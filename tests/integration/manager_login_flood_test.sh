#!/usr/bin/env bash
# A login flood from 100 addresses (127.0.1.1-100, all loopback), a new user name each
# try (past the per-name throttle), against the real `mamori manager` (docs/manager.md,
# The HTTP API): the password checks run on their own thread, bounded, so the thread that
# serves the agents and the API stays responsive.
#   - during the flood a cheap API request (GET /api/v1/agents, API token) is answered in
#     under 1 s every time (p50, p99, max printed), and a connected agent is never lost;
#   - the flood is answered 401 (checked, wrong) or 429 (throttled, or over the bound),
#     never with an error or a hang;
#   - a right password from a fresh address logs in once the flood is over.
source "$(dirname "$0")/lib.sh"

loopback_manager_config "heartbeat = 1
lost_after = 3"

step "a user, an API token, an enrollment token; the manager"
printf 'operator password\n' | expect_exit 0 mamori manager user add olga --role operator
expect_exit 0 mamori manager apitoken create ping --role viewer --json
APITOKEN=$(json 'j["token"]')
"$MAMORI" --config "$CONFIG" manager >>"$MLOG" 2>&1 &
MANAGER_PID=$!
on_exit 'stop_pid $MANAGER_PID "the manager"'
_listening() { grep -q 'listening on' "$MLOG"; }
WAIT_SECONDS=20 WAIT_EXPLAIN='cat "$MLOG"' wait_for "the manager to listen" _listening
FP=$(grep -o 'fingerprint [0-9a-f]*' "$MLOG" | head -1 | cut -d' ' -f2)
expect_exit 0 mamori manager token create --group web --uses 1
TOKEN=$(echo "$OUT" | grep -o 'mamori-token-v1\.[A-Za-z0-9_-]*' | head -n 1)

step "100 addresses x 5 wrong logins at once, while an agent heartbeats and the API is pinged"
PYTHONPATH=$(dirname "$0") MANAGER_SCHEMA= expect_exit 0 /usr/bin/python3 - "$PORT" "$FP" "$APITOKEN" "$TOKEN" <<'PYEOF'
import http.client, json, sys, threading, time
import manager_client as mc

port, fp, apitoken, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
URL = "https://127.0.0.1:%d" % port

def die(msg):
    print("FAIL:", msg); sys.exit(1)

def request(method, path, body=None, bearer=None, source="127.0.0.1", answer=None):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=mc.tls_context(), timeout=30,
                                    source_address=(source, 0))
    c.connect(); mc.check_fp(c.sock, fp)
    h = {"Content-Type": "application/json"}
    if bearer: h["Authorization"] = "Bearer " + bearer
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse(); text = r.read(); c.close()
    if answer is not None: answer.append(json.loads(text))
    return r.status

t = mc.decode_token(token)
st, text = mc.enroll(URL, fp, t["secret"])
if st != 200: die("enroll: %d %s" % (st, text))
m = json.loads(text); m.update({"url": URL, "fp": fp})
ws = mc.connect(m); mc.hello(ws, m)

stop = threading.Event()
def heartbeats():
    while not stop.is_set():
        mc.send(ws, {"v": 1, "type": "heartbeat", "time_ns": time.time_ns(), "healthy": True})
        stop.wait(0.5)
pings = []
def pinger():
    while not stop.is_set():
        t0 = time.monotonic()
        st = request("GET", "/api/v1/agents", bearer=apitoken)
        pings.append((time.monotonic() - t0) * 1000)
        if st != 200: die("ping answered %d" % st)
        stop.wait(0.1)
answers = {}
lock = threading.Lock()
def flood(n):
    for i in range(5):
        try:
            st = request("POST", "/api/v1/login", {"name": "user%d-%d" % (n, i), "password": "wrong password %d" % i},
                         source="127.0.1.%d" % n)
        except Exception as e:
            st = "error: %s" % e
        with lock:
            answers[st] = answers.get(st, 0) + 1

helpers = [threading.Thread(target=heartbeats), threading.Thread(target=pinger)]
for h in helpers: h.start()
time.sleep(0.5)
attackers = [threading.Thread(target=flood, args=(n,)) for n in range(1, 101)]
t0 = time.monotonic()
for a in attackers: a.start()
for a in attackers: a.join()
took = time.monotonic() - t0
stop.set()
for h in helpers: h.join()

print("flood: 500 logins in %.1f s: %s" % (took, json.dumps(answers, sort_keys=True)))
if set(answers) - {401, 429}: die("answers other than 401 and 429: %r" % answers)
if not answers.get(401): die("no login was checked at all")
pings.sort()
p = lambda q: pings[min(len(pings) - 1, int(q * len(pings) + 0.999) - 1)]
print("GET /api/v1/agents during the flood (%d requests): p50 %.0f ms, p99 %.0f ms, max %.0f ms"
      % (len(pings), p(0.5), p(0.99), pings[-1]))
if len(pings) < 5: die("too few pings: %d" % len(pings))
if pings[-1] >= 1000: die("the API stalled %.0f ms during the flood" % pings[-1])
if not answers.get(429): die("nothing was refused: the bound was never reached")
# Still connected: the agent was never lost.
got = []
request("GET", "/api/v1/agents", bearer=apitoken, answer=got)
if got[0]["agents"][0]["status"] != "online": die("the agent is %s" % got[0]["agents"][0]["status"])
got = []
request("GET", "/api/v1/events?action=agent-lost", bearer=apitoken, answer=got)
if got[0]["events"]: die("agent-lost events: %r" % got[0]["events"])
print("ok")
PYEOF
assert_contains "$OUT" "ok"
echo "$OUT" | grep -E '^(flood|GET)'

step "after the flood, the right password from a fresh address logs in"
PYTHONPATH=$(dirname "$0") MANAGER_SCHEMA= expect_exit 0 /usr/bin/python3 - "$PORT" "$FP" <<'PYEOF'
import http.client, json, sys
import manager_client as mc
port, fp = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPSConnection("127.0.0.1", port, context=mc.tls_context(), timeout=30,
                                source_address=("127.0.2.1", 0))
c.connect(); mc.check_fp(c.sock, fp)
c.request("POST", "/api/v1/login", body=json.dumps({"name": "olga", "password": "operator password"}),
          headers={"Content-Type": "application/json"})
r = c.getresponse(); r.read()
print(r.status)
PYEOF
assert_eq 200 "$OUT" "olga's login"
echo "PASS"
