#!/usr/bin/env python3
"""The manager's answers against docs/formats/api.schema.json, the schema the console's
TypeScript types are generated from (web/tools/schema-types.mjs): signs in and asks
every GET the console makes (and a drift walk, a test alert, a command, an error),
validating each body against its definition. Exits 1 naming the first that does not.

  api_schema_check.py URL FINGERPRINT USER PASSWORD
"""
import http.client
import json
import os
import sys
import time

import jsonschema

import manager_client as mc

url, fp, user, password = sys.argv[1:5]
host, port = mc.host_port(url)
here = os.path.dirname(os.path.abspath(__file__))
schema = json.load(open(os.path.join(here, "../../docs/formats/api.schema.json")))
conn = None


def ask(method, path, body=None, headers=None):
    global conn
    if conn is None:
        conn = http.client.HTTPSConnection(host, port, context=mc.tls_context(), timeout=60)
        conn.connect()
        mc.check_fp(conn.sock, fp)
    h = dict(headers or {})
    if body is not None:
        h["Content-Type"] = "application/json"
    conn.request(method, path, json.dumps(body) if body is not None else None, h)
    r = conn.getresponse()
    return r, json.loads(r.read() or b"null")


def check(definition, status, method, path, body=None, headers=None):
    r, answer = ask(method, path, body, headers)
    if r.status != status:
        sys.exit("FAIL: %s %s: %d, not %d: %r" % (method, path, r.status, status, answer))
    try:
        jsonschema.validate(answer, {"$ref": "#/$defs/" + definition, "$defs": schema["$defs"]})
    except jsonschema.ValidationError as e:
        sys.exit("FAIL: %s %s is not a %s: %s at %s" % (method, path, definition, e.message, list(e.absolute_path)))
    return r, answer


r, session = check("Session", 200, "POST", "/api/v1/login", {"name": user, "password": password})
auth = {"Cookie": r.getheader("Set-Cookie").split(";")[0], "X-CSRF-Token": session["csrf_token"]}
_, agents = check("AgentList", 200, "GET", "/api/v1/agents", headers=auth)
key = agents["agents"][0]["agent_key"]
now = time.time_ns()
checks = [
    ("Agent", 200, "GET", "/api/v1/agents/" + key),
    ("Error", 404, "GET", "/api/v1/agents/no-such-agent"),
    ("EventPage", 200, "GET", "/api/v1/events?limit=1000"),
    ("EventPage", 200, "GET", "/api/v1/events?order=newest&limit=5&agent=" + key),
    ("Histogram", 200, "GET", "/api/v1/events/histogram?buckets=96&since=%d" % (now - 86400 * 10**9)),
    ("Histogram", 200, "GET", "/api/v1/events/histogram?buckets=10&agent=" + key),
    ("Error", 400, "GET", "/api/v1/events/histogram?buckets=501"),
    ("BanList", 200, "GET", "/api/v1/bans"),
    ("BanList", 200, "GET", "/api/v1/bans?state=past"),
    ("DecoyList", 200, "GET", "/api/v1/decoys"),
    ("DecoyList", 200, "GET", "/api/v1/decoys?days=366"),
    ("Error", 400, "GET", "/api/v1/decoys?days=0"),
    ("TokenList", 200, "GET", "/api/v1/tokens"),
    ("UserList", 200, "GET", "/api/v1/users"),
    ("AuditPage", 200, "GET", "/api/v1/audit?order=newest&limit=5"),
    ("CommandPage", 200, "GET", "/api/v1/commands?limit=1000"),
    ("SinkList", 200, "GET", "/api/v1/sinks"),
]
for definition, status, method, path in checks:
    check(definition, status, method, path, headers=auth)
check("DriftReport", 200, "POST", "/api/v1/drift", {"all": True}, auth)
check("SinkList", 200, "POST", "/api/v1/sinks/test", {}, auth)
check("CommandsQueued", 201, "POST", "/api/v1/commands",
      {"command": "verify", "args": [], "agent": key, "reason": "schema check"}, auth)
check("TokenCreated", 201, "POST", "/api/v1/tokens", {"group": "schema", "uses": 1}, auth)
print("every answer matches docs/formats/api.schema.json (%d asked)" % (len(checks) + 6))
