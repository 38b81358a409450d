#!/usr/bin/env bash
# An address-rotating flood through `mamori logs test` (the agent's detector): 2,000,000
# lines, every one from a new address, IPv4 and IPv6 alternating, each making threshold
# counters (404s: three rules each) and every 8th a POST of a 4 KiB path that the guard
# correlation remembers (detector.h, kRecentRequests/kRecentBytes). Memory must stay
# within its documented bounds (docs/formats/access-logs.md, Memory): the peak RSS of the
# 2M-line run is that of a 200k-line run (every bound is reached by then) within 16 MiB,
# and below 256 MiB. Two slow attackers hidden in the middle of the flood are still
# banned: an IPv4 address guessing HTTP passwords, one 401 every 40 s (the 20th in 15
# minutes bans), and an IPv6 address sending a TLS handshake every 100 s (the 4th in 10
# minutes bans), each after a first two requests close together. Between two of their
# later requests the flood brings 120,000 and 300,000 new (rule, address) pairs, more than
# the cap of 100,000: a plain least-recently-used cap forgets them; a pair counting two
# requests is spared (core/rules/threshold.h). No root needed.
source "$(dirname "$0")/lib.sh"

TIME=/usr/bin/time
[[ -x $TIME ]] || fail "no $TIME (Debian package time; tools/install-deps installs it)"

# flood LINES FILE: the flood, 1,000 lines a second of log time, the attackers in the middle.
flood() {
  python3 - "$1" "$2" <<'EOF'
import sys, datetime
n, path = int(sys.argv[1]), sys.argv[2]
t0 = datetime.datetime(2026, 12, 7, 0, 0, 0)
ua = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0 " + "x" * 400
long_path = "/" + "p" * 4000
tls = r"\x16\x03\x01\x01$\x01\x00\x01 \x03\x03$\xD0T?5MDR\xE1\xE1\x91\x99\x08\xA5=\xD5\xD9\x82w"
middle = n // 2
# (line index, line): the attackers' requests, inserted among the flood's
extra = {}
# http-401-sustained (20 in 900 s): two 5 s apart, then one every 40 s
for k, at in enumerate([0] + [5_000 + k * 40_000 for k in range(19)]):
    extra.setdefault(middle + at, []).append(("203.0.113.50", '"GET /private/ HTTP/1.1" 401 381 "-" "curl/8.0"'))
# bad-request-binary (4 in 600 s): two 10 s apart, then one every 100 s
for at in (7_000, 17_000, 117_000, 217_000):
    extra.setdefault(middle + at, []).append(("2001:db8:bad::50", '"%s" 400 157 "-" "-"' % tls))
def stamp(i):
    t = t0 + datetime.timedelta(seconds=i // 1000)
    return t.strftime("%d/%b/%Y:%H:%M:%S +0000")
with open(path, "w") as f:
    for i in range(n):
        if i % 2:
            ip = "2001:db8:%x:%x::1" % (i >> 16, i & 0xffff)
        else:
            ip = "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)
        if i % 8 == 1:
            req = '"POST %s HTTP/1.1" 404 162 "-" "%s"' % (long_path, ua)
        else:
            req = '"GET /missing/%d.html HTTP/1.1" 404 162 "-" "%s"' % (i, ua)
        f.write('%s - - [%s] %s\n' % (ip, stamp(i), req))
        for ip2, req2 in extra.get(i, ()):
            f.write('%s - - [%s] %s\n' % (ip2, stamp(i), req2))
EOF
}

# replay FILE: `mamori logs test --json` under /usr/bin/time; RSS_KIB, $OUT
replay() {
  expect_exit "${2:-1}" "$TIME" -f 'rss %M' -o "$SCRATCH/time" "$MAMORI" logs test --json "$1"
  RSS_KIB=$(awk '/^rss/ {print $2}' "$SCRATCH/time")
}

step "a 200,000-line flood: every bound reached"
flood 200000 "$SCRATCH/small.log"
replay "$SCRATCH/small.log" "0|1"
small=$RSS_KIB
echo "peak RSS $((small / 1024)) MiB"

step "a 2,000,000-line flood: the same memory, the slow attackers banned, no one else"
flood 2000000 "$SCRATCH/flood.log"
assert_eq 2000024 "$(wc -l <"$SCRATCH/flood.log")" "lines written"
replay "$SCRATCH/flood.log"
big=$RSS_KIB
echo "peak RSS $((big / 1024)) MiB ($(json 'round(j["lines_per_second"])') lines/s)"
rm -f -- "$SCRATCH/flood.log" "$SCRATCH/small.log"
assert_eq 2000024 "$(json 'j["parsed"]')" "every line parsed"
assert_eq '["2001:db8:bad::50", "203.0.113.50"]' "$(json 'sorted(b["ip"] for b in j["bans"])')" "banned"
assert_eq "bad-request-binary" "$(json '[b["rule"] for b in j["bans"] if b["ip"] == "2001:db8:bad::50"][0]')" "the IPv6 attacker's rule"
assert_eq "http-401-sustained" "$(json '[b["rule"] for b in j["bans"] if b["ip"] == "203.0.113.50"][0]')" "the IPv4 attacker's rule"
((big <= small + 16 * 1024)) || fail "peak RSS grew with the flood: $((small / 1024)) MiB for 200k lines, $((big / 1024)) MiB for 2M"
((big <= 256 * 1024)) || fail "peak RSS $((big / 1024)) MiB, over the 256 MiB bound"
echo "PASS: $TEST_NAME"
