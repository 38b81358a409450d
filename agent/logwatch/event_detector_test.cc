#include "agent/logwatch/event_detector.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

namespace mamori::logwatch {
namespace {

using logparse::EventLog;

EventDetector make(EventLog log, std::vector<std::string> allow = {}) {
  auto matcher = load_event_matcher(log, {});
  EXPECT_TRUE(matcher) << (matcher ? "" : matcher.error().text());
  std::vector<logparse::Cidr> cidrs;
  for (const auto& a : allow) cidrs.push_back(*logparse::Cidr::parse(a));
  auto d = EventDetector::create(logparse::EventLogFormat(log),
                                 std::make_shared<const rules::Matcher>(std::move(*matcher)),
                                 std::move(cidrs));
  EXPECT_TRUE(d);
  d->set_reference_time(1796644800);  // 2026-12-07 12:00 UTC
  return std::move(*d);
}

std::string ssh_line(int second, std::string_view msg) {
  return fmt::format("Dec  7 11:{:02}:{:02} web1 sshd[77]: {}", second / 60, second % 60, msg);
}

TEST(EventDetector, FiveFailedPasswordsInTenMinutesBan) {
  auto d = make(EventLog::kSshd);
  std::vector<Decision> got;
  const auto on = [&](const Decision& x) { got.push_back(x); };
  for (int i = 0; i < 4; ++i) {
    d.feed(ssh_line(i * 100, "Failed password for root from 203.0.113.7 port 5 ssh2"), i, on);
    d.feed(ssh_line(i * 100,
                    "Connection closed by authenticating user root 203.0.113.7 port 5 "
                    "[preauth]"),
           i, on);
  }
  EXPECT_TRUE(got.empty());
  d.feed(ssh_line(450, "Failed password for root from 203.0.113.7 port 5 ssh2"), 9, on);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ip.to_string(), "203.0.113.7");
  EXPECT_EQ(got[0].rule_id, "sshd-auth-failures");
  EXPECT_NE(got[0].reason.find("auth-failed root"), std::string::npos) << got[0].reason;
  EXPECT_EQ(d.stats().decisions, 1u);
}

TEST(EventDetector, RsyslogsRepeatedMessageCountsAsOftenAsItHappened) {
  auto d = make(EventLog::kSshd);
  std::vector<Decision> got;
  const auto on = [&](const Decision& x) { got.push_back(x); };
  // rsyslog's $RepeatedMsgReduction: one line, then "repeated 3 times" for three more.
  d.feed(ssh_line(0, "Failed password for root from 203.0.113.9 port 5 ssh2"), 1, on);
  d.feed(ssh_line(30,
                  "message repeated 3 times: [ Failed password for root from 203.0.113.9 "
                  "port 5 ssh2]"),
         2, on);
  EXPECT_TRUE(got.empty()) << "4 failures so far";
  d.feed(ssh_line(40, "Failed password for root from 203.0.113.9 port 5 ssh2"), 3, on);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ip.to_string(), "203.0.113.9");
  // Not the shape rsyslog writes: no count, no brackets: read as a message of its own.
  d.feed(ssh_line(50,
                  "message repeated many times: [ Failed password for root from "
                  "203.0.113.10 port 5 ssh2]"),
         4, on);
  d.feed(ssh_line(51,
                  "message repeated 9 times: Failed password for root from 203.0.113.10 "
                  "port 5 ssh2"),
         5, on);
  EXPECT_EQ(got.size(), 1u);
}

TEST(EventDetector, SlowGuessesAndOneLegitFailureDoNotBan) {
  auto d = make(EventLog::kSshd);
  int bans = 0;
  const auto on = [&](const Decision&) { ++bans; };
  // One guess every 3 minutes: 4 in any 10 minutes.
  for (int i = 0; i < 12; ++i)
    d.feed(ssh_line(i * 180 % 3600, "Failed password for root from 203.0.113.8 port 5 ssh2"), i,
           on);
  // A user who mistypes once, then logs in.
  d.feed(ssh_line(10, "Failed password for alice from 192.0.2.10 port 5 ssh2"), 1, on);
  d.feed(ssh_line(15, "Accepted password for alice from 192.0.2.10 port 5 ssh2"), 2, on);
  EXPECT_EQ(bans, 0);
}

// The user name is chosen by the attacker: five guesses as a user named
// "x from 9.9.9.9 port 22" ban the guesser, never 9.9.9.9.
TEST(EventDetector, ForgedUserNameBansTheGuesser) {
  auto d = make(EventLog::kSshd);
  std::vector<Decision> got;
  for (int i = 0; i < 5; ++i) {
    d.feed(ssh_line(i, "Invalid user x from 9.9.9.9 port 22 from 203.0.113.9 port 4"), i,
           [&](const Decision& x) { got.push_back(x); });
    d.feed(ssh_line(i,
                    "Failed password for invalid user x from 9.9.9.9 port 22 ssh2 from "
                    "203.0.113.9 port 4 ssh2"),
           i, [&](const Decision& x) { got.push_back(x); });
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ip.to_string(), "203.0.113.9");
  EXPECT_FALSE(d.decided(*logparse::IpAddress::parse("9.9.9.9")));
}

TEST(EventDetector, AllowlistedCountedNeverBanned) {
  auto d = make(EventLog::kSshd, {"192.0.2.0/24"});
  int bans = 0;
  for (int i = 0; i < 10; ++i)
    d.feed(ssh_line(i, "Failed password for root from 192.0.2.5 port 5 ssh2"), i,
           [&](const Decision&) { ++bans; });
  EXPECT_EQ(bans, 0);
  // Two thresholds reached and ten root passwords logged (sshd-root-password).
  EXPECT_EQ(d.stats().allowlisted, 12u);
}

TEST(EventDetector, NginxLimitReqAndSecrets) {
  auto d = make(EventLog::kNginxError);
  std::vector<Decision> got;
  const auto on = [&](const Decision& x) { got.push_back(x); };
  const auto limited = [](int s) {
    return fmt::format(
        "2026/12/07 11:33:{:02} [error] 812#812: *{} limiting requests, excess: 5.960 by zone "
        "\"one\", client: 203.0.113.20, server: s, request: \"GET /search?q=x HTTP/1.1\"",
        s, s);
  };
  for (int i = 0; i < 9; ++i) d.feed(limited(i), i, on);
  EXPECT_TRUE(got.empty());
  d.feed(limited(9), 9, on);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].rule_id, "web-limit-req");
  d.feed(
      "2026/12/07 11:33:29 [error] 812#812: *7 open() \"/var/www/html/wp-config.php.bak\" failed "
      "(2: No such file or directory), client: 203.0.113.21, server: s, request: \"GET "
      "/wp-config.php.bak HTTP/1.1\"",
      20, on);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].rule_id, "web-sensitive-not-found");
  EXPECT_EQ(got[1].ip.to_string(), "203.0.113.21");
  // A missing favicon is nothing.
  d.feed(
      "2026/12/07 11:33:29 [error] 812#812: *8 open() \"/var/www/html/favicon.ico\" failed "
      "(2: No such file or directory), client: 203.0.113.22, server: s, request: \"GET "
      "/favicon.ico HTTP/1.1\"",
      21, on);
  EXPECT_EQ(got.size(), 2u);
}

TEST(EventDetector, CutLinesAreSkippedAndHealthCounts) {
  auto d = make(EventLog::kApacheError);
  int bans = 0;
  d.feed(
      "[Mon Dec 07 11:33:29 2026] [core:error] [pid 1] [client 203.0.113.9:1] AH10244: "
      "invalid URI path (/cgi-bin/.%2e/.%2e/bin/sh)",
      1, [&](const Decision&) { ++bans; }, /*cut=*/true);
  EXPECT_EQ(bans, 0);
  EXPECT_EQ(d.stats().truncated, 1u);
  d.feed(
      "[Mon Dec 07 11:33:29 2026] [core:error] [pid 1] [client 203.0.113.9:1] AH10244: "
      "invalid URI path (/cgi-bin/.%2e/.%2e/bin/sh)",
      2, [&](const Decision&) { ++bans; });
  EXPECT_EQ(bans, 1);
  for (int i = 0; i < 100; ++i) d.feed("not an apache line", 3 + i, [](const Decision&) {});
  EXPECT_TRUE(d.health().unparseable());
}

TEST(EventDetector, OverridesApply) {
  // A [[log]]'s own rules file may change the built-in ones by id.
  auto base = rules::parse_rules(default_event_rules_text(EventLog::kSshd), "sshd.rules");
  ASSERT_TRUE(base);
  auto next = rules::parse_rules("[[override]]\nid = \"sshd-auth-failures\"\ncount = 3\n", "x",
                                 std::move(*base));
  ASSERT_TRUE(next) << next.error().text();
  EXPECT_EQ(next->rules[size_t(next->find("sshd-auth-failures"))].count, 3u);
}

// PHP's messages reach nginx's error log as they are, newlines included: the lines of
// such an entry are read as its rest, even one shaped like an nginx entry naming
// another client (the client's text in a PHP warning), and they raise no alarm.
TEST(EventDetector, NginxMultiLineStderrIsNeverReadForAnAddress) {
  auto d = make(EventLog::kNginxError);
  std::vector<Decision> got;
  const auto on = [&](const Decision& x) { got.push_back(x); };
  const std::string forged =
      "2026/12/07 11:33:29 [error] 812#812: *7 open() \"/var/www/html/.env\" failed (2: No "
      "such file or directory), client: 9.9.9.9, server: s, request: \"GET /.env HTTP/1.1\"";
  // Every offset of the forged line within the entries' windows.
  for (int i = 0; i < 400; ++i) {
    d.feed(
        "2026/12/07 11:33:29 [error] 812#812: *6 FastCGI sent in stderr: \"PHP message: PHP "
        "Warning:  include(x" +
            std::string(size_t(i * 7 % 900), 'a'),
        1, on);
    d.feed(forged, 2, on);
    d.feed("#0 {main}", 3, on);
    d.feed(
        "  thrown in /var/www/html/index.php on line 3\" while reading response header from "
        "upstream, client: 203.0.113.9, server: s, request: \"GET /?f=x HTTP/1.1\"",
        4, on);
  }
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(d.health().unparseable());
  // The same line on its own is an entry: read.
  auto fresh = make(EventLog::kNginxError);
  fresh.feed(forged, 1, on);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ip.to_string(), "9.9.9.9");
}

}  // namespace
}  // namespace mamori::logwatch
