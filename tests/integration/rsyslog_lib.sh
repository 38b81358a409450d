# shellcheck shell=bash
# shellcheck disable=SC2016  # on_exit hooks and WAIT_EXPLAIN are eval'ed later
# A private rsyslog collector for the integration tests: its own rsyslogd (not the
# system's; /dev/log is left alone) listening on a unix socket, UDP, TCP and TLS on
# 127.0.0.1, with its config, certificates, work files and output inside DIR. Sourced
# after lib.sh, never run alone.
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/rsyslog_lib.sh"
#   start_rsyslog "$SCRATCH/rsyslog"
#   ... address = "tls://localhost:$RSYSLOG_TLS_PORT", ca_file = "$RSYSLOG_CA" ...
#   wait_for_syslog 'file-restored' 2     # two lines of $RSYSLOG_OUT contain it
#
# start_rsyslog exports
#   RSYSLOG_SOCKET    unix datagram socket (address "unix:$RSYSLOG_SOCKET")
#   RSYSLOG_UDP_PORT, RSYSLOG_TCP_PORT, RSYSLOG_TLS_PORT   on 127.0.0.1
#   RSYSLOG_CA        PEM CA that signed the TLS listener's certificate, which is valid
#                     for DNS:localhost and IP:127.0.0.1
#   RSYSLOG_OUT       every message received, one line each:
#                       INPUT PRI HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
#                     INPUT is unix, udp, tcp or tls; rsyslog writes "-" for an absent
#                     field and escapes control characters as #ooo (octal)
#   RSYSLOG_LOG       rsyslogd's own messages (errors about bad frames, TLS failures)
#   RSYSLOG_PID
# and stops rsyslogd at exit (on_exit). rsyslog's limits are its defaults (8096-byte
# maxMessageSize), as on a real collector.

RSYSLOG_PID=""

# rsyslog and its OpenSSL stream driver from Debian, when missing (tools/install-deps
# lists them too).
rsyslog_install() {
  local want=()
  command -v rsyslogd >/dev/null || want+=(rsyslog)
  compgen -G '/usr/lib/*/rsyslog/lmnsd_ossl.so' >/dev/null || want+=(rsyslog-openssl)
  command -v openssl >/dev/null || want+=(openssl)
  [[ ${#want[@]} -eq 0 ]] && return 0
  echo "installing ${want[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${want[@]}" >"$SCRATCH/apt.log" 2>&1; then
    apt-get update -q >>"$SCRATCH/apt.log" 2>&1
    apt-get install -y -q --no-install-recommends "${want[@]}" >>"$SCRATCH/apt.log" 2>&1 ||
      { cat "$SCRATCH/apt.log" >&2; fail "could not install ${want[*]}"; }
  fi
}

# _rsyslog_ports: three distinct free ports on 127.0.0.1 (UDP, TCP, TLS), each free for
# both protocols; all are held open while choosing, so they differ.
_rsyslog_ports() {
  python3 -c '
import socket
held, ports = [], []
while len(ports) < 3:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    held += [t, u]
    ports.append(port)
print(*ports)
'
}

# _rsyslog_certs DIR: a CA and a server certificate it signed (localhost, 127.0.0.1).
_rsyslog_certs() {
  local dir=$1
  {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=mamori test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" &&
      printf '%s\n' 'subjectAltName = DNS:localhost, IP:127.0.0.1' \
        'basicConstraints = CA:FALSE' 'extendedKeyUsage = serverAuth' >"$dir/server.ext" &&
      openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem"
  } >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; fail "could not make the TLS certificates"; }
}

# start_rsyslog DIR: writes the config into DIR, starts rsyslogd in the foreground (-n)
# in the background and waits until every listener is up, at most 30 s.
start_rsyslog() {
  local dir=$1
  rsyslog_install
  mkdir -p "$dir/work"
  dir=$(realpath "$dir")
  _rsyslog_certs "$dir"
  local ports
  read -ra ports <<<"$(_rsyslog_ports)"
  export RSYSLOG_SOCKET=$dir/log.sock RSYSLOG_UDP_PORT=${ports[0]} \
    RSYSLOG_TCP_PORT=${ports[1]} RSYSLOG_TLS_PORT=${ports[2]} RSYSLOG_CA=$dir/ca.pem \
    RSYSLOG_OUT=$dir/out.log RSYSLOG_LOG=$dir/rsyslogd.log
  _RSYSLOG_DIR=$dir
  cat >"$dir/rsyslog.conf" <<EOF
# written by rsyslog_lib.sh for $TEST_NAME
# processInternalMessages: rsyslogd's own messages stay here (by default a second instance
# sends them to the system's /dev/log or journal).
global(
  workDirectory="$dir/work"
  processInternalMessages="on"
  defaultNetstreamDriverCAFile="$dir/ca.pem"
  defaultNetstreamDriverCertFile="$dir/server.pem"
  defaultNetstreamDriverKeyFile="$dir/server.key"
)
# Not the system socket: only our own, parsed by the regular RFC 5424/3164 parsers
# (the special local parser would take the RFC 5424 header for text).
module(load="imuxsock" sysSock.use="off")
input(type="imuxsock" socket="$dir/log.sock" useSpecialParser="off" parseHostname="on"
      ruleset="received")
module(load="imudp")
input(type="imudp" name="udp" address="127.0.0.1" port="${ports[0]}" ruleset="received")
module(load="imtcp")
input(type="imtcp" name="tcp" address="127.0.0.1" port="${ports[1]}" ruleset="received")
input(type="imtcp" name="tls" address="127.0.0.1" port="${ports[2]}" ruleset="received"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")

template(name="mamori_test" type="string"
         string="%$.input% %pri% %hostname% %app-name% %procid% %msgid% %structured-data% %msg%\n")
ruleset(name="received") {
  if \$inputname == "imuxsock" then set \$.input = "unix"; else set \$.input = \$inputname;
  action(type="omfile" file="$dir/out.log" template="mamori_test" flushOnTXEnd="on")
}
# rsyslogd's own messages (start, errors) go to the default ruleset.
action(type="omfile" file="$dir/rsyslogd.log" flushOnTXEnd="on")
EOF
  rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" >"$dir/rsyslogd.stderr" 2>&1 &
  RSYSLOG_PID=$!
  export RSYSLOG_PID
  on_exit "stop_rsyslog"
  WAIT_ON=$dir WAIT_SECONDS=30 WAIT_EXPLAIN='cat "$_RSYSLOG_DIR/rsyslogd.stderr" "$RSYSLOG_LOG"' \
    wait_for "rsyslogd to listen" _rsyslog_ready_or_gone
  kill -0 "$RSYSLOG_PID" 2>/dev/null ||
    fail "rsyslogd exited at start: $(cat "$dir/rsyslogd.stderr" "$RSYSLOG_LOG" 2>/dev/null)"
}

# Ready once it says it started (after binding every input) and the listeners are there.
_rsyslog_ready() {
  grep -q 'rsyslogd.*start' "$RSYSLOG_LOG" 2>/dev/null && [[ -S $RSYSLOG_SOCKET ]] &&
    [[ -n $(ss -Hlun "sport = :$RSYSLOG_UDP_PORT") ]] &&
    [[ -n $(ss -Hltn "sport = :$RSYSLOG_TCP_PORT") ]] &&
    [[ -n $(ss -Hltn "sport = :$RSYSLOG_TLS_PORT") ]]
}
_rsyslog_ready_or_gone() { _rsyslog_ready || ! kill -0 "$RSYSLOG_PID" 2>/dev/null; }

# stop_rsyslog: SIGTERM and wait for the exit.
stop_rsyslog() {
  [[ -n $RSYSLOG_PID ]] || return 0
  local pid=$RSYSLOG_PID
  RSYSLOG_PID=""
  stop_pid "$pid" rsyslogd
}

# wait_for_syslog TEXT [COUNT]: waits (at most ${WAIT_SECONDS:-10} s) until COUNT
# (default 1) lines of $RSYSLOG_OUT contain TEXT (a fixed string).
wait_for_syslog() {
  WAIT_ON=$_RSYSLOG_DIR WAIT_EXPLAIN='cat "$RSYSLOG_OUT" "$RSYSLOG_LOG"' \
    wait_for "${2:-1} message(s) with '$1' at rsyslog" _syslog_has "$1" "${2:-1}"
}
_syslog_has() { (($(grep -cF -- "$1" "$RSYSLOG_OUT" 2>/dev/null || true) >= $2)); }
