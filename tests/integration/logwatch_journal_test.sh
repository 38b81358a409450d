#!/usr/bin/env bash
# sshd's messages read from the systemd journal ([[log]] source = "journal",
# docs/formats/other-logs.md), where a local user cannot forge them, end to end: a real
# systemd-journald of the test's (in a mount namespace of its own: its sockets and
# journal files in $SCRATCH, never the host's) receives a real sshd's messages through
# /dev/log, and the agent in network namespace "srv" reads its journal directory:
#   - 5 password guesses for root from 10.77.1.2 ban it in nftables;
#   - the same "Failed password for root from 10.77.2.2" lines, ten of them, sent by a
#     local user (nobody, through logger to the same /dev/log, tagged sshd) ban nobody:
#     one log-forged event names the user; in auth.log (rsyslog) those lines would be
#     indistinguishable from sshd's (other-logs.md);
#   - the agent restarted resumes after its saved cursor: the old failures are not read
#     twice, a new guesser is banned.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/netns_lib.sh"

for tool in sshpass ssh ssh-keygen logger setpriv unshare; do
  command -v "$tool" >/dev/null || fail "$tool not installed (tools/install-deps)"
done
[[ -x /usr/sbin/sshd ]] || fail "sshd not installed (tools/install-deps: openssh-server)"
JOURNALD=/lib/systemd/systemd-journald
[[ -x $JOURNALD ]] || fail "systemd-journald not installed (the systemd package)"

chmod 0755 "$SCRATCH"
SRV=mamori-jsrv-$$ ATT=mamori-jatt-$$ CLI=mamori-jcli-$$
netns_add "$SRV" "$ATT" "$CLI"
netns_link "$SRV" 10.78.1.1/24 "$ATT" 10.78.1.2/24 10.78.1.3/24
netns_link "$SRV" 10.78.2.1/24 "$CLI" 10.78.2.2/24

step "systemd-journald of the test's: /run/systemd/journal and /run/log/journal in \$SCRATCH"
JRUN=$SCRATCH/journal-run   # its sockets: dev-log (syslog), socket (native), stdout
JDIR=$SCRATCH/journal-log   # its files: JDIR/MACHINE-ID/system.journal
mkdir -p "$JRUN" "$JDIR"
chmod 0755 "$JRUN"
# journald will not start without the cgroup hierarchy, which a chroot may lack: mounted
# in its namespace then (never the host's).
unshare -m --propagation private sh -c '
  mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup || exit 1
  mkdir -p /run/systemd /run/log || exit 1
  mount --bind "$1" /run/systemd || exit 1
  mount --bind "$2" /run/log || exit 1
  mkdir -p /run/systemd/journal /run/log/journal || exit 1
  exec "$3"' _ "$JRUN" "$JDIR" "$JOURNALD" >"$SCRATCH/journald.out" 2>&1 &
JOURNALD_PID=$!
on_exit "stop_pid $JOURNALD_PID systemd-journald"
journald_up() { [[ -S $JRUN/journal/dev-log ]] && compgen -G "$JDIR/journal/*/system.journal" >/dev/null; }
WAIT_ON=$SCRATCH WAIT_EXPLAIN='cat "$SCRATCH/journald.out"' wait_for "journald's socket and journal" journald_up
# journald keeps its files readable only by root and the journal's group: as on a host.

step "an agent in srv reading sshd's messages from that journal"
mkdir -p "$SCRATCH/www"
chmod 0755 "$SCRATCH/www"
echo "<html>the shop</html>" >"$SCRATCH/www/index.html"
write_config "$SCRATCH/www"
agent_config
cat >>"$CONFIG" <<EOF
[[log]]
source = "journal"
path = "$JDIR/journal"
format = "sshd"

[ban]
backend = "nftables"
ttl = 600
EOF
mamori -q init
AGENT_NETNS=$SRV start_agent

step "sshd in srv on 10.78.1.1:2222 and 10.78.2.1:2222, its /dev/log journald's"
start_sshd_in "$SRV" "$JRUN/journal/dev-log" 10.78.1.1 10.78.2.1
journal() { journalctl -D "$JDIR/journal" --no-pager -o "${1:-short-iso}" SYSLOG_IDENTIFIER=sshd; }
sshd_listening() { journal | grep -q "Server listening on 10.78.2.1 port 2222"; }
WAIT_ON=$JDIR/journal WAIT_EXPLAIN='cat "$SCRATCH/sshd.stderr"; journal' \
  wait_for "sshd to listen (said in the journal)" sshd_listening

guess() {  # NS SOURCE USER PASSWORD: one password guess at 10.78.1.1; true when refused
  ssh_guess "$1" "$2" 10.78.1.1 "$3" "$4"
}

step "a local user (nobody) forges ten of sshd's failures for 10.78.2.2: nobody banned, one log-forged"
for i in $(seq 10); do
  setpriv --reuid=65534 --regid=65534 --clear-groups logger -u "$JRUN/journal/dev-log" \
    -p auth.info -t "sshd[$((4000 + i))]" "Failed password for root from 10.78.2.2 port $((40000 + i)) ssh2"
done
forged() { [[ -n $(events 'e["event"]["action"] == "log-forged"') ]]; }
WAIT_EXPLAIN='journal; tail -n 5 "$AGENT_LOG"' wait_for "the log-forged event" forged
ev=$(events 'e["event"]["action"] == "log-forged"')
assert_eq 1 "$(wc -l <<<"$ev")" "log-forged events (one a minute)"
assert_contains "$ev" '"id": "65534"' "the forging user in the event"
assert_contains "$ev" "Failed password for root from 10.78.2.2 port 40001 ssh2" "the first forged line"
# The ten forged lines are in the journal tagged sshd, as sshd's would be.
assert_eq 10 "$(journal | grep -c 'Failed password for root from 10.78.2.2 port')" \
  "forged lines in the journal"

step "5 password guesses for root from 10.78.1.2: banned, its next connection dropped"
for i in 1 2 3 4 5; do guess "$ATT" 10.78.1.2 root "guess$i" || fail "guess $i was accepted"; done
WAIT_EXPLAIN='journal | tail -n 12; tail -n 5 "$AGENT_LOG"' wait_for "the ban of 10.78.1.2" banned 10.78.1.2
ban=$(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "10.78.1.2"' | head -n 1)
assert_contains "$ban" '"rule": {"name": "sshd-auth-failures"}' "the rule in the ban event"
assert_contains "$ban" "Failed password for root from 10.78.1.2 port" "sshd's line in the ban"
assert_contains "$ban" "\"path\": \"journal:$JDIR/journal\"" "the journal in the ban event"
assert_contains "$(in_ns "$SRV" nft list set inet mamori banned4)" "10.78.1.2" "the nft set"
! banned 10.78.2.2 || fail "the address in the forged lines was banned"

step "restarted, the agent resumes after its cursor: one guess more from 10.78.1.3 is not a ban"
stop_agent
# Four failures from 10.78.1.3 while the agent is down, one after it is back: five in the
# sshd rule's window, read once each. Nothing it read before counts again.
for i in 1 2 3 4; do guess "$ATT" 10.78.1.3 admin "g$i" || fail "guess $i was accepted"; done
AGENT_NETNS=$SRV start_agent
guess "$ATT" 10.78.1.3 admin g5 || fail "guess 5 was accepted"
WAIT_EXPLAIN='journal | tail -n 12; tail -n 5 "$AGENT_LOG"' wait_for "the ban of 10.78.1.3" banned 10.78.1.3
assert_eq 1 "$(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "10.78.1.2"' | wc -l)" \
  "bans of 10.78.1.2 after the restart (its failures read once)"
assert_eq 1 "$(events 'e["event"]["action"] == "log-forged"' | wc -l)" "log-forged after the restart"
! banned 10.78.2.2 || fail "the address in the forged lines was banned"

step "the events are well-formed; status names the journal"
check_events
assert_contains "$(mamori status --json)" "journal:$JDIR/journal" "the journal in status"
echo "PASS"
