#!/usr/bin/env bash
# `mamori logs test`: an access log with benign traffic, an SQL-injection probe, a
# wp-login brute force and garbage is replayed; exactly the attackers would be banned,
# with their rule, line and request; --allow, --rules overrides, bad rules and a missing
# file give the documented exit codes; a log in another format than --format says exits 3
# and says why (issue 16, never blind). No config, no root needed.
source "$(dirname "$0")/lib.sh"

LOG=$SCRATCH/access.log
{
  for i in $(seq 0 59); do
    printf '198.51.100.7 - - [27/Nov/2026:10:00:%02d +0000] "GET /page%d.html HTTP/1.1" 200 512 "-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"\n' "$i" "$i"
  done
  printf '203.0.113.9 - - [27/Nov/2026:10:01:00 +0000] "GET /item.php?id=1%%20UNION%%20SELECT%%20null,@@version-- HTTP/1.1" 200 12 "-" "curl/8.0"\n'
  for i in $(seq 0 14); do
    printf '2001:db8::44 - - [27/Nov/2026:10:02:%02d +0000] "POST /wp-login.php HTTP/1.1" 200 1024 "-" "Mozilla/5.0"\n' "$i"
  done
  printf '\x00\x01\xff garbage\n'
  printf '192.0.2.1 - - [27/Nov/2026:10:03:00 +0000] "GET /truncated'
} >"$LOG"

step "the two attackers and nobody else, with their rules"
expect_exit 1 "$MAMORI" logs test --json "$LOG"
assert_eq 78 "$(json 'j["lines"]')" "lines"
assert_eq '["2001:db8::44", "203.0.113.9"]' "$(json 'sorted(b["ip"] for b in j["bans"])')" "banned"
assert_contains "$(json '[b["rule"] for b in j["bans"] if b["ip"] == "203.0.113.9"][0]')" "sqli" "the probe's rule"
assert_contains "$(json '[b["rule"] for b in j["bans"] if b["ip"] == "2001:db8::44"][0]')" "wp-login" "the brute force's rule"
assert_eq 61 "$(json '[b["line"] for b in j["bans"] if b["ip"] == "203.0.113.9"][0]')" "the probe's line"
assert_contains "$(json '[b["request"] for b in j["bans"] if b["ip"] == "203.0.113.9"][0]')" "UNION" "the request"
assert_eq 2 "$(json 'sum(j["skipped"].values())')" "garbage and the truncated last line, skipped"

step "text output, and --allow keeps an address out"
expect_exit 1 "$MAMORI" logs test --allow 2001:db8::/32 "$LOG"
assert_contains "$OUT" "BAN 203.0.113.9" "the text report"
assert_not_contains "$OUT" "2001:db8::44" "an allowlisted address"
assert_contains "$OUT" "1 address(es) would be banned" "the summary"

step "an override turns a rule into log-only; a clean log exits 0"
cat >"$SCRATCH/site.rules" <<'EOF'
[[override]]
id = "sqli-union-select"
action = "log"
EOF
expect_exit 1 "$MAMORI" logs test --json --rules "$SCRATCH/site.rules" --allow 2001:db8::/32 "$LOG"
assert_eq '[]' "$(json '[b["ip"] for b in j["bans"] if b["rule"] == "sqli-union-select"]')" "bans by the overridden rule"
head -n 60 "$LOG" >"$SCRATCH/benign.log"
expect_exit 0 "$MAMORI" logs test "$SCRATCH/benign.log"

step "bad input: a rules file with a bad pattern (file:line), a bad CIDR, a missing log"
cat >"$SCRATCH/bad.rules" <<'EOF'
[[rule]]
id = "broken"
field = "target"
pattern = '''(unclosed'''
action = "ban"
EOF
expect_exit 2 "$MAMORI" logs test --rules "$SCRATCH/bad.rules" "$LOG"
assert_contains "$ERR" "$SCRATCH/bad.rules:4" "the bad pattern's place"
expect_exit 2 "$MAMORI" logs test --allow 10.0.0.1/8 "$LOG"
expect_exit 3 "$MAMORI" logs test "$SCRATCH/nope.log"

step "an attack in a line too long to keep (issue 10, item 9) is judged by its first 16 KiB"
# nginx logs each non-ASCII byte of a header as \xHH: a 4,200-byte user agent makes the
# probe's line 16.9 KB, over the 16 KiB line limit.
python3 - "$SCRATCH/long.log" <<'PY'
import sys
ua = "".join("\\x%02X" % (0x80 + i % 0x80) for i in range(4200))
benign = '198.51.100.7 - - [27/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "Mozilla/5.0"\n'
probe = ('203.0.113.50 - - [27/Nov/2026:10:00:01 +0000] '
         '"GET /item.php?id=1%20UNION%20SELECT%20null,@@version-- HTTP/1.1" 200 12 "-" "' + ua + '"\n')
assert len(probe) > 16 * 1024, len(probe)
open(sys.argv[1], "w").write(benign + probe + benign)
PY
expect_exit 1 "$MAMORI" logs test --json "$SCRATCH/long.log"
assert_eq '["203.0.113.50"]' "$(json 'sorted(b["ip"] for b in j["bans"])')" "banned from the long line"
assert_contains "$(json 'j["bans"][0]["rule"]')" "sqli" "the long line's rule"
assert_eq 1 "$(json 'j["truncated"]')" "over-long lines counted"
assert_eq 0 "$(json 'sum(j["skipped"].values())')" "nothing skipped"
expect_exit 1 "$MAMORI" logs test "$SCRATCH/long.log"
assert_contains "$OUT" "1 too long (judged by their first 16384 bytes)" "the text summary"

step "a log that does not fit --format exits 3 and says why; the right Apache format reads it"
# Apache's '%h %l %u %t %v "%r" %>s %b': %t (it holds a space) before the unquoted %v.
# Read as combined, no line fits: that must not look like a quiet log.
VHOST=$SCRATCH/vhost.log
{
  for i in $(seq 0 149); do
    printf '198.51.100.%d - - [27/Nov/2026:10:00:%02d +0000] www.example.org "GET /page%d.html HTTP/1.1" 200 512\n' "$((i % 200))" "$((i % 60))" "$i"
  done
  printf '203.0.113.9 - - [27/Nov/2026:10:01:00 +0000] www.example.org "GET /item.php?id=1%%20UNION%%20SELECT%%20null,@@version-- HTTP/1.1" 200 12\n'
} >"$VHOST"
expect_exit 3 "$MAMORI" logs test "$VHOST"
assert_contains "$ERR" "does not fit --format 'combined'" "the reason, on stderr"
assert_contains "$ERR" "151 of 151 lines refused (no-match 151)" "the counts"
assert_contains "$ERR" "www.example.org" "a refused line"
expect_exit 3 "$MAMORI" logs test --json --quiet "$VHOST"
assert_eq true "$(json 'j["unparseable"]')" "--json: unparseable"
assert_eq 151 "$(json 'j["unparsed"]')" "--json: unparsed"
assert_eq no-match "$(json 'j["sample"]["reason"]')" "--json: the sample's reason"
assert_contains "$ERR" "does not fit" "said with --json and --quiet too"
expect_exit 1 "$MAMORI" logs test --json --format '%h %l %u %t %v "%r" %>s %b' "$VHOST"
assert_eq false "$(json 'j["unparseable"]')" "the right format: parseable"
assert_eq 151 "$(json 'j["parsed"]')" "every line parsed (none bad-time)"
assert_eq '["203.0.113.9"]' "$(json 'sorted(b["ip"] for b in j["bans"])')" "the probe banned"
expect_exit 1 "$MAMORI" logs test --format '%h %l %u %t %v "%r" %>s %b' "$VHOST"
assert_not_contains "$ERR" "does not fit" "no warning for the right format"

step "a few refused lines in a good log are not an alarm; more than 10 % are"
head -n 95 "$VHOST" >"$SCRATCH/mixed.log"
head -n 10 "$LOG" >>"$SCRATCH/mixed.log"   # 10 of 105 lines in another format: 9.5 %
expect_exit 0 "$MAMORI" logs test --format '%h %l %u %t %v "%r" %>s %b' "$SCRATCH/mixed.log"
head -n 12 "$LOG" >>"$SCRATCH/mixed.log"   # 22 of 117: 18.8 %
expect_exit 3 "$MAMORI" logs test --format '%h %l %u %t %v "%r" %>s %b' "$SCRATCH/mixed.log"
assert_contains "$ERR" "22 of 117 lines refused" "the share"
