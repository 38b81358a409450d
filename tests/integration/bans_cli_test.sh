#!/usr/bin/env bash
# mamori bans list|add|del|sync against real nftables, inside a network namespace this
# test creates (and removes), so the host's firewall is never touched.
source "$(dirname "$0")/lib.sh"

command -v nft >/dev/null || fail "nft not installed (tools/install-deps)"
NS=mamori-bans-$$
ip netns add "$NS"
on_exit "ip netns del $NS"
host_tables_before=$(nft list tables 2>&1 || true)

mkdir -p "$SCRATCH/www"
write_config "$SCRATCH/www"
# mamori ARGS...: the binary under test, in the namespace.
nsm() { timeout -k 5 "$MAMORI_TIMEOUT" ip netns exec "$NS" "$MAMORI" --config "$CONFIG" "$@"; }
set4() { ip netns exec "$NS" nft list set inet mamori banned4; }
set6() { ip netns exec "$NS" nft list set inet mamori banned6; }

step "add: an IPv4 ban with a TTL is an element with that timeout"
expect_exit 0 nsm bans add 192.0.2.7 --ttl 600 --reason "sqli probe" --json
assert_eq new "$(json 'j["outcome"]')"
assert_eq 600 "$(json 'j["ttl_s"]')"
assert_eq nftables "$(json 'j["backend"]')"
assert_contains "$(set4)" "192.0.2.7 timeout 10m"
chain=$(ip netns exec "$NS" nft list chain inet mamori prerouting)
assert_contains "$chain" "type filter hook prerouting priority raw; policy accept;"
assert_contains "$chain" "ip saddr @banned4 counter packets 0 bytes 0 drop"
assert_contains "$chain" "ip6 saddr @banned6 counter packets 0 bytes 0 drop"

step "add: IPv6, permanent"
expect_exit 0 nsm bans add 2001:db8::7 --permanent
assert_contains "$OUT" "2001:db8::7 banned permanently"
assert_contains "$(set6)" "elements = { 2001:db8::7 }"

step "add again: the new TTL replaces the old one"
expect_exit 0 nsm bans add 192.0.2.7 --ttl 3600 --json
assert_eq replaced "$(json 'j["outcome"]')"
assert_contains "$(set4)" "192.0.2.7 timeout 1h"
assert_not_contains "$(set4)" "timeout 10m"

step "list --json: both bans, soonest expiry first"
expect_exit 0 nsm bans list --json
assert_eq 2 "$(json 'j["count"]')"
assert_eq '["192.0.2.7", "2001:db8::7"]' "$(json '[b["ip"] for b in j["bans"]]')"
assert_eq "sqli probe" "$(json 'j["bans"][0]["reason"]')"
assert_eq manual "$(json 'j["bans"][0]["source"]')"
assert_eq true "$(json '3590 <= j["bans"][0]["expires_in_s"] <= 3600')"
assert_eq '[false, true]' "$(json '[b["permanent"] for b in j["bans"]]')"
assert_eq null "$(json 'j["bans"][1]["expires_at"]')"
expect_exit 0 nsm bans list
assert_contains "$OUT" "permanent"
assert_contains "$OUT" "2 bans"

step "bad addresses are usage errors"
for bad in 1.2.3 192.0.2.256 example.com 10.0.0.0/8 "::ffff:1.2.3.4%eth0" ""; do
  expect_exit 2 nsm bans add "$bad"
  assert_contains "$ERR" "is not an IPv4 or IPv6 address"
done
expect_exit 2 nsm bans add 192.0.2.9 --ttl 60 --permanent
expect_exit 2 nsm bans frob
expect_exit 2 nsm bans add

step "an allowlisted address is refused, unless forced"
expect_exit 2 nsm bans add 127.0.0.1
assert_contains "$ERR" "allowlist"
assert_not_contains "$(set4)" "127.0.0.1"
expect_exit 0 nsm bans add 127.0.0.5 --force --ttl 60
assert_contains "$(set4)" "127.0.0.5"

step "bans survive a lost firewall: sync applies the list again"
ip netns exec "$NS" nft flush ruleset
expect_exit 0 nsm bans sync --json
assert_eq 3 "$(json 'j["synced"]')"
assert_contains "$(set4)" "192.0.2.7 timeout"
assert_contains "$(set6)" "2001:db8::7"
[[ -s $STATE/bans.db ]] || fail "no $STATE/bans.db"

step "del: lifted at once, and again is no error"
expect_exit 0 nsm bans del 192.0.2.7 --json
assert_eq true "$(json 'j["removed"]')"
assert_not_contains "$(set4)" "192.0.2.7"
expect_exit 0 nsm bans del 192.0.2.7 --json
assert_eq false "$(json 'j["removed"]')"
expect_exit 0 nsm bans list --json
assert_eq '["127.0.0.5", "2001:db8::7"]' "$(json '[b["ip"] for b in j["bans"]]')"

step "the host's firewall was not touched"
assert_eq "$host_tables_before" "$(nft list tables 2>&1 || true)"
