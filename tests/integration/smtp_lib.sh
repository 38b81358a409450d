# shellcheck shell=bash
# shellcheck disable=SC2016  # on_exit hooks are eval'ed later: single quotes are meant
# A real SMTP server for the integration tests: smtp_server.py (aiosmtpd, Debian's
# python3-aiosmtpd) on a loopback port of its own, storing every accepted message as
# DIR/NNNN.eml with the envelope prepended as X-Test-Mail-From, X-Test-Rcpt-To,
# X-Test-Auth-User and X-Test-TLS headers. Sourced after lib.sh, never run alone.
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/smtp_lib.sh"
#   start_smtp "$SCRATCH/mail" --auth mamori s3cret   # sets SMTP_PORT, SMTP_MAILDIR
#   smtp_wait_mail 1                                   # waits for DIR/0001.eml
#
# --tls CERT KEY offers STARTTLS with that pair (made, self-signed for 127.0.0.1, when
# both files are missing: CERT is then the CA file to trust). The server is stopped at
# exit (on_exit).

SMTP_PORT=""
SMTP_MAILDIR=""
SMTP_PID=""
# Debian's interpreter: it has aiosmtpd whatever python3 comes first on PATH.
SMTP_PYTHON=${SMTP_PYTHON:-/usr/bin/python3}

# start_smtp DIR [--auth USER PASS] [--tls CERT KEY] [--smtps]
start_smtp() {
  local dir=$1
  shift
  "$SMTP_PYTHON" -c 'import aiosmtpd' 2>/dev/null ||
    fail "python3-aiosmtpd is missing: install Debian's 'python3-aiosmtpd' (tools/install-deps)"
  mkdir -p "$dir"
  local port_file=$SCRATCH/.smtp-port.$$.$RANDOM
  "$SMTP_PYTHON" "$(dirname "${BASH_SOURCE[0]}")/smtp_server.py" "$dir" --port-file "$port_file" "$@" \
    >/dev/null 2>>"$SCRATCH/smtp.log" &
  SMTP_PID=$!
  on_exit "stop_pid $SMTP_PID 'the SMTP server'"  # this instance's pid: a test may start several
  WAIT_EXPLAIN='cat "$SCRATCH/smtp.log"' wait_for "the SMTP server to listen" \
    _smtp_listening_or_gone "$port_file"
  [[ -s $port_file ]] || fail "the SMTP server exited before it listened: $(cat "$SCRATCH/smtp.log")"
  SMTP_PORT=$(cat "$port_file")
  SMTP_MAILDIR=$dir
  export SMTP_PORT SMTP_MAILDIR
}
_smtp_listening_or_gone() { [[ -s $1 ]] || ! kill -0 "$SMTP_PID" 2>/dev/null; }

stop_smtp() {
  [[ -n $SMTP_PID ]] || return 0
  local pid=$SMTP_PID
  SMTP_PID=""
  stop_pid "$pid" "the SMTP server"
}

# smtp_wait_mail N: waits until message N (1-based) is stored, at most ${WAIT_SECONDS:-10} s.
smtp_wait_mail() {
  WAIT_ON=$SMTP_MAILDIR wait_for "mail $1 to arrive in $SMTP_MAILDIR" \
    test -e "$SMTP_MAILDIR/$(printf '%04d' "$1").eml"
}

# smtp_mail N: the stored message N.
smtp_mail() { cat "$SMTP_MAILDIR/$(printf '%04d' "$1").eml"; }
