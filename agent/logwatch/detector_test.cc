#include "agent/logwatch/detector.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "agent/logwatch/default_rules.h"
#include "core/rules/rules_file.h"

namespace mamori::logwatch {
namespace {

std::string line(std::string_view ip, std::string_view request, int status = 200,
                 std::string_view ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
                 int second = 0) {
  return fmt::format(R"({} - - [27/Nov/2026:10:00:{:02d} +0000] "{}" {} 512 "-" "{}")", ip,
                     second % 60, request, status, ua);
}

class DetectorTest : public ::testing::Test {
 protected:
  // Compiling the rules is the slow part: once for every test.
  static void SetUpTestSuite() {
    auto matcher = load_matcher({});
    ASSERT_TRUE(matcher) << matcher.error().text();
    matcher_ = std::make_shared<const rules::Matcher>(std::move(*matcher));
  }
  void SetUp() override {
    auto format = logparse::LogFormat::compile("combined");
    ASSERT_TRUE(format);
    format_.emplace(std::move(*format));
  }
  Detector make(std::vector<std::string> allow = {}) {
    std::vector<logparse::Cidr> cidrs;
    for (const auto& a : allow) cidrs.push_back(*logparse::Cidr::parse(a));
    auto d = Detector::create(*format_, matcher_, std::move(cidrs));
    EXPECT_TRUE(d);
    return std::move(*d);
  }
  void feed(Detector& d, const std::string& text) {
    d.feed(text, ++line_no_, [&](const Decision& x) { decisions_.push_back(x); });
  }

  static inline std::shared_ptr<const rules::Matcher> matcher_;
  std::optional<logparse::LogFormat> format_;
  std::vector<Decision> decisions_;
  uint64_t line_no_ = 0;
};

TEST_F(DetectorTest, TheBuiltInRulesLoad) { EXPECT_GT(matcher_->rules().enabled_count(), 20u); }

TEST_F(DetectorTest, BenignWordPressTrafficIsNeverDecided) {
  auto d = make();
  for (const char* r :
       {"GET / HTTP/1.1", "GET /wp-admin/admin-ajax.php?action=heartbeat HTTP/1.1",
        "GET /wp-json/wp/v2/posts?per_page=10 HTTP/1.1", "GET /?s=select+a+theme HTTP/1.1",
        "GET /wp-content/themes/x/style.css?ver=6.1 HTTP/1.1"})
    feed(d, line("198.51.100.7", r));
  EXPECT_TRUE(decisions_.empty());
  EXPECT_EQ(d.stats().parsed, 5u);
}

TEST_F(DetectorTest, AnInjectionIsDecidedOnceWithItsRequest) {
  auto d = make();
  feed(d, line("203.0.113.9", "GET /index.php?id=1%20UNION%20SELECT%20null,@@version-- HTTP/1.1"));
  feed(d, line("203.0.113.9", "GET /index.php?id=1%20UNION%20SELECT%20null,user()-- HTTP/1.1"));
  ASSERT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(decisions_[0].ip.to_string(), "203.0.113.9");
  EXPECT_EQ(decisions_[0].rule_id, "sqli-union-select");
  EXPECT_EQ(decisions_[0].line, 1u);
  EXPECT_NE(decisions_[0].request.find("UNION"), std::string::npos);
  d.forget(decisions_[0].ip);  // the ban expired: the next offence counts again
  feed(d, line("203.0.113.9", "GET /index.php?id=1%20UNION%20SELECT%201,2,3 HTTP/1.1"));
  EXPECT_EQ(decisions_.size(), 2u);
}

TEST_F(DetectorTest, ADecoysRuleNamesTheBanOverABuiltInOneThatMatchesToo) {
  auto base = rules::parse_rules(default_rules_text(), "default.rules");
  ASSERT_TRUE(base);
  auto set = rules::parse_rules(R"([[rule]]
id = "decoy-abc"
pattern = '^/wp-config\.php\.bak(\?|$)'
action = "ban"
tags = ["decoy"]
)",
                                "decoys.rules", std::move(*base));
  ASSERT_TRUE(set) << set.error().text();
  auto m = rules::Matcher::compile(std::move(*set));
  ASSERT_TRUE(m);
  auto d = Detector::create(*format_, std::make_shared<const rules::Matcher>(std::move(*m)), {});
  ASSERT_TRUE(d);
  d->feed(line("203.0.113.5", "GET /wp-config.php.bak HTTP/1.1"), 1,
          [&](const Decision& x) { decisions_.push_back(x); });
  ASSERT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(decisions_[0].rule_id, "decoy-abc");
}

TEST_F(DetectorTest, AllowlistedAddressesAreCountedNotDecided) {
  auto d = make({"10.0.0.0/8"});
  feed(d, line("10.1.2.3", "GET /../../etc/passwd HTTP/1.1"));
  EXPECT_TRUE(decisions_.empty());
  EXPECT_GE(d.stats().allowlisted, 1u);
}

TEST_F(DetectorTest, TheMatchObserverSeesEveryRuleThatFiresAllowlistedAndLogOnlyToo) {
  auto d = make({"10.0.0.0/8"});
  std::vector<std::pair<std::string, std::string>> seen;
  d.set_match_observer([&](const logparse::IpAddress& ip, uint32_t rule) {
    seen.emplace_back(ip.to_string(), d.rules().rules[rule].id);
  });
  feed(d, line("198.51.100.7", "GET /phpinfo.php HTTP/1.1"));                // a log-only rule
  feed(d, line("10.1.2.3", "GET /?id=1%20UNION%20SELECT%20null HTTP/1.1"));  // allowlisted
  feed(d, line("198.51.100.8", "GET /about.html HTTP/1.1"));                 // nothing fires
  EXPECT_TRUE(decisions_.empty());
  const std::vector<std::pair<std::string, std::string>> want = {{"198.51.100.7", "probe-phpinfo"},
                                                                 {"10.1.2.3", "sqli-union-select"}};
  EXPECT_EQ(seen, want);
}

TEST_F(DetectorTest, ABruteForceIsDecidedAtItsThreshold) {
  auto d = make();
  int n = 0;
  while (decisions_.empty() && n < 100)
    feed(d, line("192.0.2.44", "POST /wp-login.php HTTP/1.1", 200, "Mozilla/5.0", n++));
  ASSERT_EQ(decisions_.size(), 1u) << "no decision after 100 login POSTs";
  EXPECT_GT(n, 3) << "a login or two must not ban";
  EXPECT_NE(decisions_[0].reason.find("within"), std::string::npos);
}

TEST_F(DetectorTest, GarbageIsCountedAndSkipped) {
  auto d = make();
  feed(d, std::string("\x00\x01\xff garbage", 12));
  feed(d, "not-an-ip - - [27/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"");
  feed(d, std::string(100000, 'A'));
  EXPECT_TRUE(decisions_.empty());
  EXPECT_EQ(d.stats().parsed, 0u);
  EXPECT_EQ(d.stats().lines, 3u);
}

// nginx logs a non-ASCII user agent byte as \xHH: 4,200 bytes become 16,800 characters.
// A scanner's TLS handshakes sent to port 80 are lines of the format with a request that
// is none: parsed, counted, never a format failure, and the 4th bans.
TEST_F(DetectorTest, RequestLinesThatAreNoneAreJudged) {
  auto d = make();
  const std::string tls = R"(\x16\x03\x01\x01$\x01\x00\x01 \x03\x03$\xD0T?5MDR)";
  for (int k = 0; k < 3; ++k) feed(d, line("198.51.100.9", tls, 400, "-", k));
  EXPECT_TRUE(decisions_.empty());
  feed(d, line("198.51.100.9", tls, 400, "-", 3));
  ASSERT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(decisions_[0].rule_id, "bad-request-binary");
  EXPECT_EQ(decisions_[0].request.substr(0, 3), "\x16\x03\x01");
  EXPECT_EQ(d.stats().parsed, 4u);
  EXPECT_EQ(d.stats().malformed, 4u);
  EXPECT_TRUE(d.stats().skipped.empty());
  for (int k = 0; k < 200; ++k) feed(d, line("198.51.100.10", "HELP", 400, "-", k));
  EXPECT_FALSE(d.health().unparseable());
  ASSERT_EQ(decisions_.size(), 2u);
  EXPECT_EQ(decisions_[1].rule_id, "bad-request-line");
  EXPECT_EQ(decisions_[1].line, 9u);  // the 5th HELP
}

std::string padded_ua() {
  std::string ua;
  for (int i = 0; i < 4200; ++i) ua += fmt::format("\\x{:02X}", 0x80 + i % 0x80);
  return ua;
}

TEST_F(DetectorTest, ALineTooLongToKeepIsJudgedByItsStart) {
  auto d = make();
  const std::string text =
      line("203.0.113.77", "GET /index.php?id=1%20UNION%20SELECT%20null,@@version-- HTTP/1.1", 200,
           padded_ua());
  ASSERT_GT(text.size(), 16u << 10);  // 16,9xx bytes, like the nginx line of the report
  feed(d, text);
  ASSERT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(decisions_[0].ip.to_string(), "203.0.113.77");
  EXPECT_EQ(decisions_[0].rule_id, "sqli-union-select");
  EXPECT_TRUE(decisions_[0].truncated);
  EXPECT_EQ(d.stats().truncated, 1u);
  EXPECT_EQ(d.stats().parsed, 1u);
  EXPECT_TRUE(d.stats().skipped.empty());
}

TEST_F(DetectorTest, ALineTheTailerCutIsJudgedByWhatItKept) {
  // The tailer hands over the first 16 KiB, marked: the cut falls inside the user agent.
  auto d = make();
  const std::string text =
      line("2001:db8::66", "GET /?p=1%20UNION%20SELECT%20null,user()-- HTTP/1.1", 200, padded_ua())
          .substr(0, 16 << 10);
  d.feed(
      text, 1, [&](const Decision& x) { decisions_.push_back(x); }, /*cut=*/true);
  ASSERT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(decisions_[0].ip.to_string(), "2001:db8::66");
  EXPECT_TRUE(decisions_[0].truncated);
  // Benign traffic cut the same way stays benign.
  const std::string benign = line("198.51.100.7", "GET / HTTP/1.1", 200, padded_ua());
  d.feed(
      benign.substr(0, 16 << 10), 2, [&](const Decision& x) { decisions_.push_back(x); }, true);
  EXPECT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(d.stats().parsed, 2u);
}

TEST_F(DetectorTest, TheRequestForATamperedScriptIsTheAttackers) {
  auto d = make();
  // Before: the shell was called just before the guard quarantined it.
  // No rule finds anything wrong with these requests by themselves.
  feed(d, line("198.51.100.66", "GET /blog/tools.php HTTP/1.1", 200, "Mozilla/5.0", 5));
  feed(d, line("198.51.100.7", "GET /index.php HTTP/1.1", 200, "Mozilla/5.0", 6));
  ASSERT_TRUE(decisions_.empty());
  d.note_tampered("/blog/tools.php", 1795773606 /* 10:00:06 on 2026-11-27 */,
                  Detector::Tamper::kPlanted, [&](const Decision& x) { decisions_.push_back(x); });
  ASSERT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(decisions_[0].ip.to_string(), "198.51.100.66");
  EXPECT_EQ(decisions_[0].rule_id, "guard-correlation");
  // After: the next request for it, from another address, is decided when its line comes.
  feed(d, line("198.51.100.67", "GET /blog/tools.php HTTP/1.1", 404, "Mozilla/5.0", 8));
  ASSERT_EQ(decisions_.size(), 2u);
  EXPECT_EQ(decisions_[1].ip.to_string(), "198.51.100.67");
}

constexpr int64_t kTen = 1795773600;  // 10:00:00 on 2026-11-27, the lines' minute

TEST_F(DetectorTest, AVisitorOfARestoredStaticFileIsNeverBanned) {
  // www-data appended to jquery.js once; the guard put it back. A visitor fetching it
  // every 2 s before and after is a reader, not the writer (issue 10, item 10).
  auto d = make();
  const auto note = [&](int64_t at) {
    d.note_tampered("/wp-includes/js/jquery/jquery.js", at, Detector::Tamper::kRestored,
                    [&](const Decision& x) { decisions_.push_back(x); });
  };
  for (int s = 0; s < 60; s += 2) {
    feed(d, line("198.51.100.20", "GET /wp-includes/js/jquery/jquery.js?ver=3.7 HTTP/1.1", 200,
                 "Mozilla/5.0", s));
    if (s == 30) note(kTen + 31);
  }
  // A visitor of a restored script (index.php) is not its writer either.
  feed(d, line("198.51.100.21", "GET /index.php HTTP/1.1", 200, "Mozilla/5.0", 40));
  d.note_tampered("/index.php", kTen + 41, Detector::Tamper::kRestored,
                  [&](const Decision& x) { decisions_.push_back(x); });
  feed(d, line("198.51.100.21", "GET /index.php HTTP/1.1", 200, "Mozilla/5.0", 42));
  EXPECT_TRUE(decisions_.empty()) << decisions_[0].ip.to_string() << " " << decisions_[0].request;
}

// A server logs a request when it ends: the guard put the file back while the writing
// request still ran (an attacker's script may sleep after writing), so its line comes
// after the guard's event. The first writing request for the path is still the writer;
// readers around it never are, nor a second writer.
TEST_F(DetectorTest, AWriterWhoseLineComesAfterTheRestoreIsStillTheWriters) {
  auto d = make();
  feed(d, line("198.51.100.30", "GET /index.php HTTP/1.1", 200, "Mozilla/5.0", 10));
  d.note_tampered("/index.php", kTen + 11, Detector::Tamper::kRestored,
                  [&](const Decision& x) { decisions_.push_back(x); });
  ASSERT_TRUE(decisions_.empty());
  feed(d, line("198.51.100.30", "GET /index.php HTTP/1.1", 200, "Mozilla/5.0", 12));
  feed(d, line("203.0.113.32", "POST /index.php HTTP/1.1", 200, "curl/7.88", 14));
  feed(d, line("203.0.113.33", "POST /index.php HTTP/1.1", 200, "Mozilla/5.0", 15));
  ASSERT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(decisions_[0].ip.to_string(), "203.0.113.32");
  EXPECT_EQ(decisions_[0].rule_id, "guard-correlation");
  // Past the window a writing request is unrelated.
  d.set_correlation_window(5);
  d.note_tampered("/wp-login.php", kTen + 20, Detector::Tamper::kRestored,
                  [&](const Decision& x) { decisions_.push_back(x); });
  feed(d, line("203.0.113.34", "POST /wp-login.php HTTP/1.1", 200, "Mozilla/5.0", 30));
  EXPECT_EQ(decisions_.size(), 1u);
}

TEST_F(DetectorTest, APostToTheScriptJustBeforeItsRestoreIsTheWriters) {
  auto d = make();
  feed(d, line("198.51.100.30", "GET /wp-content/themes/t/functions.php HTTP/1.1", 200,
               "Mozilla/5.0", 10));
  feed(d, line("203.0.113.31", "POST /wp-content/themes/t/functions.php HTTP/1.1", 200,
               "Mozilla/5.0", 11));
  feed(d, line("198.51.100.30", "GET /wp-content/themes/t/functions.php HTTP/1.1", 200,
               "Mozilla/5.0", 12));
  d.note_tampered("/wp-content/themes/t/functions.php", kTen + 12, Detector::Tamper::kRestored,
                  [&](const Decision& x) { decisions_.push_back(x); });
  ASSERT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(decisions_[0].ip.to_string(), "203.0.113.31");
  EXPECT_EQ(decisions_[0].rule_id, "guard-correlation");
}

TEST_F(DetectorTest, APlantedShellIsCorrelatedAfterAPlantedStaticFileIsNot) {
  auto d = make();
  const auto planted = [&](const char* path, int64_t at) {
    d.note_tampered(path, at, Detector::Tamper::kPlanted,
                    [&](const Decision& x) { decisions_.push_back(x); });
  };
  planted("/wp-content/uploads/2025/01/x.PHP", kTen + 5);
  planted("/favicon.ico", kTen + 5);
  // Every visitor's browser asks for /favicon.ico: the victim of a planted file, not
  // its author.
  feed(d, line("198.51.100.40", "GET /favicon.ico HTTP/1.1", 404, "Mozilla/5.0", 6));
  EXPECT_TRUE(decisions_.empty());
  feed(d, line("203.0.113.41", "GET /wp-content/uploads/2025/01/x.PHP?c=id HTTP/1.1", 404,
               "curl/8.0", 7));
  ASSERT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(decisions_[0].ip.to_string(), "203.0.113.41");
}

}  // namespace
}  // namespace mamori::logwatch

namespace mamori::logwatch {
namespace {

TEST_F(DetectorTest, ACorrelatedBanLinksTheGuardsEventAndEveryCallerIsAttributedOnce) {
  auto d = make();
  std::vector<Attribution> attributions;
  d.set_on_attribution([&](const Attribution& a) { attributions.push_back(a); });
  const TamperedFile shell{"/srv/www/blog/x.php", "f00d"};
  // A POST to the planted script just before the guard quarantined it.
  feed(d, line("203.0.113.50", "POST /blog/x.php HTTP/1.1", 200, "curl/8.0", 5));
  d.note_tampered(
      "/blog/x.php", kTen + 6, Detector::Tamper::kPlanted,
      [&](const Decision& x) { decisions_.push_back(x); }, shell);
  ASSERT_EQ(decisions_.size(), 1u);
  EXPECT_EQ(decisions_[0].file_path, shell.path);
  EXPECT_EQ(decisions_[0].related_event, "f00d");
  ASSERT_EQ(attributions.size(), 1u);
  EXPECT_TRUE(attributions[0].before);
  EXPECT_TRUE(attributions[0].writes);
  EXPECT_EQ(attributions[0].file.event_id, "f00d");
  EXPECT_EQ(attributions[0].method, "POST");
  // After: the shell called (404 now) by the same address and another one; the same
  // address again is not attributed twice, and is not decided twice.
  for (int i = 0; i < 3; ++i)
    feed(d, line("203.0.113.50", "GET /blog/x.php?c=id HTTP/1.1", 404, "curl/8.0", 7 + i));
  feed(d, line("203.0.113.51", "GET /blog/x.php HTTP/1.1", 404, "curl/8.0", 9));
  ASSERT_EQ(attributions.size(), 2u);
  EXPECT_FALSE(attributions[1].before);
  EXPECT_EQ(attributions[1].ip.to_string(), "203.0.113.51");
  ASSERT_EQ(decisions_.size(), 2u);
  EXPECT_EQ(decisions_[1].related_event, "f00d") << "a ban decided after links the file event too";
  EXPECT_EQ(decisions_[1].file_path, shell.path);
}

TEST_F(DetectorTest, AttributionsPerFileAreBounded) {
  auto d = make();
  size_t attributed = 0;
  d.set_on_attribution([&](const Attribution&) { ++attributed; });
  d.note_tampered(
      "/u/s.php", kTen + 1, Detector::Tamper::kPlanted,
      [&](const Decision& x) { decisions_.push_back(x); }, TamperedFile{"/w/u/s.php", "e1"});
  for (int i = 0; i < 40; ++i)
    feed(d, line("198.51.100." + std::to_string(100 + i), "GET /u/s.php HTTP/1.1", 404, "x", 2));
  EXPECT_EQ(attributed, Detector::kMaxAttributionsPerFile);
  EXPECT_EQ(decisions_.size(), 40u) << "every caller is still banned";
}

}  // namespace
}  // namespace mamori::logwatch

namespace mamori::logwatch {
namespace {

// A log in a format the detector was not told (issue 16, never blind): said once, with a
// sample; a log of over-long lines is not unparseable (they are judged by their start).
TEST_F(DetectorTest, SaysOnceWhenTheLogDoesNotFitItsFormat) {
  auto d = make();
  std::vector<std::pair<logparse::ParseHealth::Change, std::string>> changes;
  d.set_health_observer([&](logparse::ParseHealth::Change c, const logparse::ParseHealth& h) {
    changes.emplace_back(c, h.sample());
  });
  const std::string vhost =
      R"(203.0.113.9 - - [27/Nov/2026:10:00:00 +0000] www.example.org "GET / HTTP/1.1" 200 5)";
  for (int k = 0; k < 500; ++k) feed(d, vhost);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].first, logparse::ParseHealth::Change::kUnparseable);
  EXPECT_EQ(changes[0].second, vhost);
  EXPECT_TRUE(d.health().unparseable());
  for (int k = 0; k < 1000; ++k) feed(d, line("198.51.100.7", "GET / HTTP/1.1"));
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1].first, logparse::ParseHealth::Change::kParseable);

  auto longs = make();
  longs.set_health_observer([&](logparse::ParseHealth::Change c, const logparse::ParseHealth&) {
    changes.emplace_back(c, "long");
  });
  const std::string padded = line("198.51.100.7", "GET / HTTP/1.1", 200, std::string(20000, 'A'));
  for (int k = 0; k < 200; ++k) feed(longs, padded);
  EXPECT_EQ(changes.size(), 2u);
  EXPECT_EQ(longs.stats().truncated, 200u);
  EXPECT_EQ(longs.stats().parsed, 200u);
  EXPECT_FALSE(longs.health().unparseable());
}

}  // namespace
}  // namespace mamori::logwatch
