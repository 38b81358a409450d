#!/usr/bin/env bash
# Prefix escalation end to end (issue 10, item 13), in network namespaces this test
# creates: nginx serves a site over IPv6 in "srv"; an attacker ("att") rotates through
# addresses of one /64. With [ban] prefix_offenders = 3, the third address banned makes
# the agent ban the whole 2001:db8:77:1::/64: an address of it that never sent a request
# cannot connect, while the next /64 and a normal client still can. `mamori bans list`
# shows the prefix, `mamori bans del` of it lets the /64 back.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/netns_lib.sh"

chmod 0755 "$SCRATCH"
SRV=mamori-psrv-$$ ATT=mamori-patt-$$
netns_add "$SRV" "$ATT"
netns_link "$SRV" 2001:db8:77::1/48 "$ATT" \
  2001:db8:77:1::2/48 2001:db8:77:1::3/48 2001:db8:77:1::4/48 2001:db8:77:1::99/48 2001:db8:77:2::5/48

step "a site on IPv6, an agent with prefix escalation reading nginx's log"
mkdir -p "$SCRATCH/www" "$SCRATCH/web"
chmod 0755 "$SCRATCH/www" "$SCRATCH/web"
echo "<html>the shop</html>" >"$SCRATCH/www/index.html"
chmod 0644 "$SCRATCH/www/index.html"
write_config "$SCRATCH/www"
agent_config
log_ban_config "$SCRATCH/www" "prefix_offenders = 3" "prefix_window = 600"
mamori -q init
AGENT_NETNS=$SRV start_agent
start_nginx_in "$SRV" <<<"server { listen [2001:db8:77::1]:80; root $SCRATCH/www; }"
connects() {  # SOURCE-ADDRESS
  in_ns "$ATT" curl -s -o /dev/null --interface "$1" --connect-timeout 2 'http://[2001:db8:77::1]/'
}
WAIT_ON=$SCRATCH/web WAIT_EXPLAIN='cat "$SCRATCH/web/error.log"' wait_for "nginx to answer" connects 2001:db8:77:2::5
connects 2001:db8:77:1::99 || fail "the /64 could not connect before any attack"
prefix_banned() {
  events 'e["event"]["action"] == "ip-banned" and e.get("mamori", {}).get("ban", {}).get("prefix") == "2001:db8:77:1::/64"' | grep . >/dev/null
}

step "three addresses of one /64 probe: each is banned, and the third bans the /64"
probe() {
  in_ns "$ATT" curl -s -o /dev/null --interface "$1" --max-time 2 \
    'http://[2001:db8:77::1]/item.php?id=1%20UNION%20SELECT%20null,@@version--' || true
}
for a in 2001:db8:77:1::2 2001:db8:77:1::3; do
  probe "$a"
  WAIT_EXPLAIN='events | tail -n 2' wait_for "the ban of $a" banned "$a"
done
! prefix_banned || fail "two offenders already banned the /64"
connects 2001:db8:77:1::99 || fail "an address of the /64 was cut off after two offenders"
probe 2001:db8:77:1::4
WAIT_EXPLAIN='events | tail -n 3' wait_for "the ban of 2001:db8:77:1::/64" prefix_banned
ev=$(events 'e["event"]["action"] == "ip-banned" and e["rule"]["name"] == "prefix-escalation"')
assert_contains "$ev" '"prefix_offenders": 3' "the offenders in the event"
assert_contains "$(in_ns "$SRV" nft list set inet mamori banned6net)" "2001:db8:77:1::/64" "the nft interval set"

step "an address of the /64 that never sent a request is dropped; the next /64 is not"
! connects 2001:db8:77:1::99 || fail "2001:db8:77:1::99 still connects: the prefix ban does not hold"
connects 2001:db8:77:2::5 || fail "the next /64 was cut off too"
expect_exit 0 mamori bans list --json
assert_contains "$OUT" '"ip": "2001:db8:77:1::/64"' "bans list shows the prefix"

step "bans del of the prefix lets the /64 back (its banned addresses stay banned)"
expect_exit 0 in_ns "$SRV" "$MAMORI" --config "$CONFIG" bans del 2001:db8:77:1::/64
connects 2001:db8:77:1::99 || fail "the /64 is still cut off after bans del"
! connects 2001:db8:77:1::2 || fail "an offender of the /64 was let back with it"
