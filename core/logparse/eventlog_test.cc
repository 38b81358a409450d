#include "core/logparse/eventlog.h"

#include <gtest/gtest.h>

namespace mamori::logparse {
namespace {

// 2026-12-07 12:00:00 UTC.
constexpr int64_t kRef = 1796644800;
// 2026-12-07 11:33:29 UTC, the lines' time.
constexpr int64_t kAt = 1796643209;

struct Parsed {
  ParseStatus status;
  EventEntry e;
};

Parsed parse(EventLog log, std::string_view line, int64_t ref = kRef) {
  Parsed p{};
  p.status = EventLogFormat(log).parse(line, ref, p.e);
  return p;
}

std::string ip(const Parsed& p) { return p.e.has_client ? p.e.client_ip.to_string() : "-"; }

TEST(EventLogNames, Named) {
  EXPECT_EQ(event_log_named("sshd"), EventLog::kSshd);
  EXPECT_EQ(event_log_named("nginx-error"), EventLog::kNginxError);
  EXPECT_EQ(event_log_named("apache-error"), EventLog::kApacheError);
  EXPECT_FALSE(event_log_named("combined"));
  EXPECT_EQ(event_log_name(EventLog::kSshd), "sshd");
}

TEST(Sshd, FailedPassword) {
  auto p = parse(EventLog::kSshd,
                 "Dec  7 11:33:29 web1 sshd[4242]: Failed password for root from 203.0.113.7 "
                 "port 51234 ssh2");
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.e.kind, "auth-failed");
  EXPECT_EQ(p.e.subject, "root");
  EXPECT_EQ(ip(p), "203.0.113.7");
  EXPECT_EQ(p.e.time, kAt);
}

TEST(Sshd, RepeatedMessage) {
  auto p = parse(EventLog::kSshd,
                 "Dec  7 11:33:29 web1 sshd[42]: message repeated 4 times: [ Failed password "
                 "for root from 198.51.100.7 port 22 ssh2]");
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.e.kind, "auth-failed");
  EXPECT_EQ(ip(p), "198.51.100.7");
  EXPECT_EQ(p.e.repeated, 4u);
  p = parse(EventLog::kSshd,
            "Dec  7 11:33:29 web1 sshd[42]: message repeated 99999999999 times: [ Failed "
            "password for root from 198.51.100.7 port 22 ssh2]");
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.e.repeated, kMaxRepeated);
}

TEST(Sshd, InvalidUserAndAbandoned) {
  auto p = parse(EventLog::kSshd,
                 "Dec  7 11:33:29 web1 sshd[4242]: Failed password for invalid user admin from "
                 "2001:db8::7 port 51234 ssh2");
  EXPECT_EQ(p.e.kind, "auth-failed");
  EXPECT_EQ(p.e.subject, "admin");
  EXPECT_EQ(ip(p), "2001:db8::7");
  p = parse(EventLog::kSshd,
            "Dec  7 11:33:29 web1 sshd[4242]: Invalid user oracle from 198.51.100.2 port 4");
  EXPECT_EQ(p.e.kind, "invalid-user");
  EXPECT_EQ(p.e.subject, "oracle");
  EXPECT_EQ(ip(p), "198.51.100.2");
  p = parse(EventLog::kSshd,
            "Dec  7 11:33:29 web1 sshd[4242]: Connection closed by authenticating user root "
            "198.51.100.2 port 4 [preauth]");
  EXPECT_EQ(p.e.kind, "auth-abandoned");
  EXPECT_EQ(p.e.subject, "root");
  EXPECT_EQ(ip(p), "198.51.100.2");
  p = parse(EventLog::kSshd,
            "Dec  7 11:33:29 web1 sshd[4242]: Connection closed by 198.51.100.2 port 4 [preauth]");
  EXPECT_EQ(p.e.kind, "preauth-closed");
  // After a session: not a probe.
  p = parse(EventLog::kSshd,
            "Dec  7 11:33:29 web1 sshd[4242]: Disconnected from user alice 198.51.100.2 port 4");
  EXPECT_EQ(p.e.kind, "");
  p = parse(EventLog::kSshd,
            "Dec  7 11:33:29 web1 sshd[4242]: error: maximum authentication attempts exceeded "
            "for invalid user x from 198.51.100.3 port 4 ssh2 [preauth]");
  EXPECT_EQ(p.e.kind, "max-auth-tries");
  EXPECT_EQ(ip(p), "198.51.100.3");
  p = parse(EventLog::kSshd,
            "Dec  7 11:33:29 web1 sshd[4242]: Did not receive identification string from "
            "198.51.100.4 port 4");
  EXPECT_EQ(p.e.kind, "no-identification");
  EXPECT_EQ(ip(p), "198.51.100.4");
  p = parse(EventLog::kSshd,
            "Dec  7 11:33:29 web1 sshd[4242]: banner exchange: Connection from 198.51.100.5 port "
            "4: invalid format");
  EXPECT_EQ(p.e.kind, "bad-banner");
  EXPECT_EQ(ip(p), "198.51.100.5");
  p = parse(EventLog::kSshd,
            "Dec  7 11:33:29 web1 sshd[4242]: Accepted publickey for alice from 192.0.2.1 port "
            "4 ssh2: ED25519 SHA256:Zm9vYmFy");
  EXPECT_EQ(p.e.kind, "accepted");
  EXPECT_EQ(p.e.subject, "alice");
}

// The user name is the attacker's: whatever it says, the address is the one sshd wrote
// last, where no user name can reach.
TEST(Sshd, ForgedUserNamesNameNobodyElse) {
  for (std::string_view line : {
           "Dec  7 11:33:29 h sshd[1]: Invalid user x from 9.9.9.9 port 22 from 1.2.3.4 port 5",
           "Dec  7 11:33:29 h sshd[1]: Invalid user x from 9.9.9.9 from 1.2.3.4 port 5",
           "Dec  7 11:33:29 h sshd[1]: Failed password for invalid user x from 9.9.9.9 port 1 "
           "ssh2 from 1.2.3.4 port 5 ssh2",
           "Dec  7 11:33:29 h sshd[1]: Failed password for invalid user x from 9.9.9.9 port 1 "
           "ssh2: RSA SHA256:x from 1.2.3.4 port 5 ssh2",
           "Dec  7 11:33:29 h sshd[1]: Connection closed by invalid user x 9.9.9.9 port 1 "
           "[preauth] 1.2.3.4 port 5 [preauth]",
           "Dec  7 11:33:29 h sshd[1]: error: maximum authentication attempts exceeded for "
           "invalid user 9.9.9.9 port 1 ssh2 from 1.2.3.4 port 5 ssh2 [preauth]",
       }) {
    const auto p = parse(EventLog::kSshd, line);
    ASSERT_EQ(p.status, ParseStatus::kOk) << line;
    EXPECT_NE(p.e.kind, "") << line;
    EXPECT_EQ(ip(p), "1.2.3.4") << line;
  }
  // A user name that ends the line as sshd's tail would: the line has no address of its
  // own after it, so it names nobody rather than the forged one.
  for (std::string_view line : {
           "Dec  7 11:33:29 h sshd[1]: Invalid user x from 9.9.9.9 port 22",
       }) {
    const auto p = parse(EventLog::kSshd, line);
    // (sshd wrote this for user "x" from 9.9.9.9: correct, and the only reading.)
    EXPECT_EQ(ip(p), "9.9.9.9") << line;
  }
  // Junk after the tail: no reading.
  auto p = parse(EventLog::kSshd,
                 "Dec  7 11:33:29 h sshd[1]: Failed password for x from 9.9.9.9 port 1 ssh2 y");
  EXPECT_EQ(p.e.kind, "");
  EXPECT_FALSE(p.e.has_client);
}

TEST(Sshd, OtherProgramsAndFormats) {
  auto p = parse(EventLog::kSshd, "Dec  7 11:33:29 h sudo: alice : TTY=pts/0 ; COMMAND=/bin/ls");
  EXPECT_EQ(p.status, ParseStatus::kOk);
  EXPECT_FALSE(p.e.has_client);
  // Another program's forgery of sshd's words is not sshd's (its tag says who wrote it;
  // docs/formats/other-logs.md says what a local user can still do).
  p = parse(EventLog::kSshd,
            "Dec  7 11:33:29 h su[3]: Failed password for root from 9.9.9.9 port 1 ssh2");
  EXPECT_FALSE(p.e.has_client);
  p = parse(EventLog::kSshd,
            "2026-12-07T11:33:29.123456+01:00 h sshd-session[3]: Failed password for root from "
            "1.2.3.4 port 1 ssh2");
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.e.kind, "auth-failed");
  EXPECT_EQ(p.e.time, kAt - 3600);
  p = parse(EventLog::kSshd, "2026-12-07T11:33:29+0000 h sshd[3]: Server listening on 0.0.0.0");
  EXPECT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(parse(EventLog::kSshd, "garbage").status, ParseStatus::kBadTime);
  EXPECT_EQ(parse(EventLog::kSshd, "Dec  7 11:33:29 host-only").status, ParseStatus::kNoMatch);
  EXPECT_EQ(parse(EventLog::kSshd, "Dez  7 11:33:29 h sshd[1]: x").status, ParseStatus::kBadTime);
}

TEST(Sshd, YearFromReference) {
  // Read on 2 January 2027, a line of 31 December is 2026's.
  const int64_t jan2 = 1798761600 + 86400;  // 2027-01-02
  auto p = parse(EventLog::kSshd, "Dec 31 23:59:59 h sshd[1]: x", jan2);
  EXPECT_EQ(p.e.time, 1798761599);
  p = parse(EventLog::kSshd, "Jan  2 00:00:00 h sshd[1]: x", jan2);
  EXPECT_EQ(p.e.time, jan2);
}

TEST(NginxError, LimitReq) {
  auto p = parse(EventLog::kNginxError,
                 "2026/12/07 11:33:29 [error] 812#812: *1301 limiting requests, excess: 5.960 by "
                 "zone \"one\", client: 203.0.113.9, server: example.com, request: \"GET "
                 "/wp-login.php HTTP/1.1\", host: \"example.com\"");
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.e.kind, "limit-req");
  EXPECT_EQ(ip(p), "203.0.113.9");
  EXPECT_EQ(p.e.method, "GET");
  EXPECT_EQ(p.e.subject, "/wp-login.php");
  EXPECT_TRUE(p.e.target_is_url);
  EXPECT_EQ(p.e.time, kAt);
  // The Referer is the client's: a forged client in it changes nothing.
  p = parse(EventLog::kNginxError,
            "2026/12/07 11:33:29 [error] 812#812: *1 limiting requests, excess: 5.960 by zone "
            "\"one\", client: 203.0.113.9, server: s, request: \"GET / HTTP/1.1\", host: \"h\", "
            "referrer: \"x, client: 9.9.9.9, server: s\"");
  EXPECT_EQ(ip(p), "203.0.113.9");
  // Behind a unix socket the client is no address: a forged one later stands in for
  // nothing.
  p = parse(EventLog::kNginxError,
            "2026/12/07 11:33:29 [error] 812#812: *1 limiting requests, excess: 5.960 by zone "
            "\"one\", client: unix:, server: s, request: \"GET / HTTP/1.1\", host: \"h\", "
            "referrer: \"x, client: 9.9.9.9, server: s\"");
  EXPECT_EQ(p.status, ParseStatus::kOk);
  EXPECT_FALSE(p.e.has_client);
  p = parse(EventLog::kNginxError,
            "2026/12/07 11:33:29 [warn] 812#812: *1 delaying request, excess: 0.500, by zone "
            "\"one\", client: 203.0.113.9, server: s, request: \"GET / HTTP/1.1\"");
  EXPECT_EQ(p.e.kind, "limit-req-delayed");
  p = parse(EventLog::kNginxError,
            "2026/12/07 11:33:29 [error] 812#812: *1 limiting connections by zone \"addr\", "
            "client: 203.0.113.9, server: s, request: \"GET / HTTP/1.1\"");
  EXPECT_EQ(p.e.kind, "limit-conn");
  p = parse(EventLog::kNginxError,
            "2026/12/07 11:33:29 [error] 812#812: *1 access forbidden by rule, client: "
            "203.0.113.9, server: s, request: \"GET /.git/config HTTP/1.1\"");
  EXPECT_EQ(p.e.kind, "forbidden");
  EXPECT_EQ(p.e.subject, "/.git/config");
}

TEST(NginxError, AttackerTextInTheMessage) {
  auto p = parse(EventLog::kNginxError,
                 "2026/12/07 11:33:29 [error] 812#812: *7 open() \"/var/www/html/.env\" failed "
                 "(2: No such file or directory), client: 203.0.113.9, server: s, request: "
                 "\"GET /.env HTTP/1.1\", host: \"h\"");
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.e.kind, "not-found");
  EXPECT_EQ(p.e.subject, "/.env");
  EXPECT_EQ(ip(p), "203.0.113.9");
  // The decoded URI holds a whole forged tail: two addresses, no reading.
  p = parse(EventLog::kNginxError,
            "2026/12/07 11:33:29 [error] 812#812: *7 open() \"/var/www/html/x\" failed (2: No "
            "such file or directory), client: 9.9.9.9, server: s, request: \"GET /x HTTP/1.1\"\" "
            "failed (2: No such file or directory), client: 203.0.113.9, server: s, request: "
            "\"GET /x%22%20failed... HTTP/1.1\"");
  EXPECT_EQ(p.status, ParseStatus::kBadRequest);
  EXPECT_FALSE(p.e.has_client);
  // Only a client's own address repeated: read.
  p = parse(EventLog::kNginxError,
            "2026/12/07 11:33:29 [error] 1#1: *7 directory index of \"/var/www/html/up/\" is "
            "forbidden, client: 203.0.113.9, server: s, request: \"GET /up/ HTTP/1.1\", "
            "referrer: \"x, client: 203.0.113.9, y\"");
  EXPECT_EQ(p.e.kind, "forbidden-index");
  EXPECT_EQ(ip(p), "203.0.113.9");
  p = parse(EventLog::kNginxError,
            "2026/12/07 11:33:29 [error] 1#1: *7 user \"admin\": password mismatch, client: "
            "203.0.113.9, server: s, request: \"GET /private/ HTTP/1.1\"");
  EXPECT_EQ(p.e.kind, "auth-failed");
  p = parse(EventLog::kNginxError,
            "2026/12/07 11:33:29 [info] 1#1: *7 client sent invalid method while reading client "
            "request line, client: 203.0.113.9, server: s, request: \"\x16\x03\x01\"");
  EXPECT_EQ(p.e.kind, "invalid-request");
  EXPECT_EQ(ip(p), "203.0.113.9");
}

TEST(NginxError, ModSecurityAndNotices) {
  auto p = parse(EventLog::kNginxError,
                 "2026/12/07 11:33:29 [error] 1#1: *9 [client 203.0.113.9] ModSecurity: Access "
                 "denied with code 403 (phase 2). Matched \"Operator `Ge' with parameter `5'\" "
                 "[uri \"/\"], client: 9.9.9.9, server: s, request: \"GET / HTTP/1.1\"");
  EXPECT_EQ(p.e.kind, "waf-denied");
  EXPECT_EQ(p.e.status, 403);
  EXPECT_EQ(ip(p), "203.0.113.9");
  p = parse(EventLog::kNginxError, "2026/12/07 11:33:29 [notice] 1#1: signal process started");
  EXPECT_EQ(p.status, ParseStatus::kOk);
  EXPECT_FALSE(p.e.has_client);
  EXPECT_EQ(parse(EventLog::kNginxError, "Dec  7 11:33:29 h sshd[1]: x").status,
            ParseStatus::kNoMatch);
  EXPECT_EQ(parse(EventLog::kNginxError, "2026/13/07 11:33:29 [error] 1#1: x").status,
            ParseStatus::kBadTime);
}

TEST(ApacheError, Messages) {
  auto p = parse(EventLog::kApacheError,
                 "[Mon Dec 07 11:33:29.123456 2026] [core:error] [pid 1234:tid 5678] [client "
                 "203.0.113.9:5678] AH00126: Invalid URI in request 'GET /%2e%2e HTTP/1.1' ''");
  ASSERT_EQ(p.status, ParseStatus::kOk);
  EXPECT_EQ(p.e.kind, "invalid-request");
  EXPECT_EQ(ip(p), "203.0.113.9");
  EXPECT_EQ(p.e.time, kAt);
  p = parse(EventLog::kApacheError,
            "[Mon Dec 07 11:33:29 2026] [authz_core:error] [pid 12] [client ::1:56789] AH01630: "
            "client denied by server configuration: /var/www/html/.git/config, referer: "
            "http://x/ [client 9.9.9.9:1]");
  EXPECT_EQ(p.e.kind, "forbidden");
  EXPECT_EQ(p.e.subject, "/var/www/html/.git/config");
  EXPECT_EQ(ip(p), "::1");
  p = parse(EventLog::kApacheError,
            "[Mon Dec 07 11:33:29 2026] [core:error] [pid 12] (13)Permission denied: [client "
            "203.0.113.9:1] AH00035: access to /x denied");
  EXPECT_EQ(ip(p), "203.0.113.9");
  EXPECT_EQ(p.e.kind, "");
  p = parse(EventLog::kApacheError,
            "[Mon Dec 07 11:33:29 2026] [security2:error] [pid 12] [client 203.0.113.9:1] "
            "[client 203.0.113.9] ModSecurity: Access denied with code 403 (phase 2). x");
  EXPECT_EQ(p.e.kind, "waf-denied");
  EXPECT_EQ(p.e.status, 403);
  p = parse(EventLog::kApacheError,
            "[Mon Dec 07 11:33:29 2026] [auth_basic:error] [pid 12] [client 203.0.113.9:1] "
            "AH01617: user bob: authentication failure for \"/\": Password Mismatch");
  EXPECT_EQ(p.e.kind, "auth-failed");
  EXPECT_EQ(p.e.subject, "bob");
  p = parse(EventLog::kApacheError,
            "[Mon Dec 07 11:33:29 2026] [core:error] [pid 12] [client 203.0.113.9:1] AH10244: "
            "invalid URI path (/cgi-bin/.%2e/.%2e/bin/sh)");
  EXPECT_EQ(p.e.subject, "/cgi-bin/.%2e/.%2e/bin/sh");
  // The message text cannot move the client: it comes after it.
  p = parse(EventLog::kApacheError,
            "[Mon Dec 07 11:33:29 2026] [mpm_event:notice] [pid 12] AH00489: Apache configured "
            "[client 9.9.9.9:1] AH00126: x");
  EXPECT_FALSE(p.e.has_client);
  EXPECT_EQ(parse(EventLog::kApacheError, "[Mon Dec 07 11:33:29 2026] x").status,
            ParseStatus::kNoMatch);
  EXPECT_EQ(parse(EventLog::kApacheError, "[Mon Dex 07 11:33:29 2026] [a:b] [pid 1] x").status,
            ParseStatus::kBadTime);
}

TEST(EventLog, TooLong) {
  const std::string line(20000, 'x');
  EXPECT_EQ(parse(EventLog::kSshd, line).status, ParseStatus::kTooLong);
}

}  // namespace
}  // namespace mamori::logparse
