#include "core/decoy/decoy.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <random>

#include <gtest/gtest.h>

#include "core/base/unique_fd.h"
#include "core/rules/matcher.h"
#include "core/rules/rules_file.h"
#include "testing/temp_dir.h"

namespace mamori::decoy {
namespace {

// Seeded: the same text for the same seed, different text for each call.
RandomText seeded(uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  return [rng](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += "abcdefghijklmnopqrstuvwxyz0123456789"[(*rng)() % 36];
    return s;
  };
}

class DecoyTest : public ::testing::Test {
 protected:
  void touch(const std::string& rel) {
    const std::string path = dir_ / rel;
    ::mkdir(path.substr(0, path.rfind('/')).c_str(), 0755);
    std::ofstream(path) << "x";
  }
  UniqueFd root() { return UniqueFd(::open(dir_.path().c_str(), O_PATH | O_DIRECTORY)); }
  std::vector<Decoy> plan_here(size_t count = 3, const std::vector<std::string>& taken = {},
                               uint64_t seed = 1) {
    auto fd = root();
    auto d = plan(fd.get(), dir_.path(), "/", count, taken, seeded(seed));
    EXPECT_TRUE(d) << d.error().message();
    return d ? *d : std::vector<Decoy>{};
  }
  static std::vector<std::string> names(const std::vector<Decoy>& ds) {
    std::vector<std::string> out;
    for (const auto& d : ds) out.push_back(d.rel);
    return out;
  }
  testing::TempDir dir_;
};

TEST_F(DecoyTest, AWordPressTreeGetsWordPressNamesNeverOneItUses) {
  touch("wp-includes/version.php");
  touch("wp-config.php.bak");  // the site has one: never overwritten, never claimed
  auto ds = plan_here();
  EXPECT_EQ(detect_site(root().get()), SiteKind::kWordPress);
  EXPECT_EQ(names(ds), (std::vector<std::string>{"wp-config.php.old", "backup.sql", ".env"}));
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds[0].url, "/wp-config.php.old");
  EXPECT_EQ(ds[0].root, dir_.path());
  // Each file holds its own credentials, and they are in the file.
  for (const auto& d : ds) {
    EXPECT_NE(d.content.find(d.user), std::string::npos) << d.rel;
    EXPECT_NE(d.content.find(d.password), std::string::npos) << d.rel;
    EXPECT_EQ(d.token.size(), 12u);
  }
  EXPECT_NE(ds[0].password, ds[1].password);
  EXPECT_NE(ds[0].token, ds[1].token);
  EXPECT_EQ(ds[0].content.rfind("<?php\n", 0), 0u);
  EXPECT_NE(ds[0].content.find("define( 'DB_PASSWORD', '" + ds[0].password + "' );"),
            std::string::npos);
}

TEST_F(DecoyTest, AnotherSiteGetsGenericNamesAndAPlantedKindIsNotPlantedTwice) {
  EXPECT_EQ(detect_site(root().get()), SiteKind::kGeneric);
  EXPECT_EQ(names(plan_here()), (std::vector<std::string>{".env", "backup.sql", "config.php.bak"}));
  EXPECT_EQ(names(plan_here(3, {"backup.sql"})),
            (std::vector<std::string>{".env", "config.php.bak"}));
  EXPECT_EQ(names(plan_here(1)), (std::vector<std::string>{".env"}));
  // Two nodes (two seeds) never share a credential.
  EXPECT_NE(plan_here(1, {}, 1)[0].password, plan_here(1, {}, 2)[0].password);
}

TEST_F(DecoyTest, TheUrlPrefixIsCheckedAndJoined) {
  auto fd = root();
  auto ds = plan(fd.get(), dir_.path(), "/blog", 1, {}, seeded(3));
  ASSERT_TRUE(ds);
  EXPECT_EQ((*ds)[0].url, "/blog/.env");
  for (const char* bad : {"", "blog", "/a b", "/a'", "//x", "/a\"b"})
    EXPECT_FALSE(plan(fd.get(), dir_.path(), bad, 1, {}, seeded(3))) << bad;
}

TEST_F(DecoyTest, TheRulesBanTheExactUrlOnly) {
  touch("wp-config.php");
  auto ds = plan_here();
  auto set = rules::parse_rules(rules_text(ds), "decoys.rules");
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->rules.size(), 3u);
  EXPECT_EQ(set->rules[0].id, "decoy-" + ds[0].token);
  EXPECT_EQ(set->rules[0].action, rules::Action::kBan);
  EXPECT_EQ(set->rules[0].tags, (std::vector<std::string>{"decoy"}));
  auto m = rules::Matcher::compile(std::move(*set));
  ASSERT_TRUE(m) << m.error().message;
  auto scratch = m->make_scratch();
  ASSERT_TRUE(scratch);
  const auto hits = [&](std::string_view target) {
    std::vector<uint32_t> matched;
    rules::Request r;
    r.method = "GET";
    r.target = target;
    EXPECT_TRUE(m->match(r, *scratch, matched));
    return matched.size();
  };
  EXPECT_EQ(hits("/wp-config.php.bak"), 1u);
  EXPECT_EQ(hits("/wp-config.php.bak?download=1"), 1u);
  EXPECT_EQ(hits("/.env"), 1u);
  EXPECT_EQ(hits("/wp-config.php.bak2"), 0u);
  EXPECT_EQ(hits("/old/wp-config.php.bak"), 0u);
  EXPECT_EQ(hits("/WP-CONFIG.PHP.BAK"), 0u) << "the web server would not serve it either";
  EXPECT_EQ(hits("/wp-config.php"), 0u);
  EXPECT_EQ(hits("/wp-configxphp.bak"), 0u) << "the dot is a dot";
}

TEST_F(DecoyTest, TheRecordRoundTripsAndRefusesWhatWouldBreakTheRules) {
  auto ds = plan_here();
  auto back = from_json(to_json(ds));
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_EQ(back->size(), ds.size());
  EXPECT_EQ((*back)[1].url, ds[1].url);
  EXPECT_EQ((*back)[1].password, ds[1].password);
  EXPECT_EQ(rules_text(*back), rules_text(ds));
  auto j = to_json(ds);
  j["decoys"][0]["url"] = "/x'\n[[rule]]";
  EXPECT_FALSE(from_json(j));
  j = to_json(ds);
  j["decoys"][0]["token"] = "a\"b";
  EXPECT_FALSE(from_json(j));
  EXPECT_FALSE(from_json(nlohmann::json::array()));
  EXPECT_FALSE(from_json({{"v", 3}, {"decoys", nlohmann::json::array()}}));
  EXPECT_FALSE(from_json({{"v", 2}, {"decoys", nlohmann::json::array()}}))
      << "version 2 has urls, sites and credential_log";
}

// Rules parsed and compiled, and a matcher for one request at a time.
class Rules {
 public:
  explicit Rules(const std::string& text) {
    auto set = rules::parse_rules(text, "decoys.rules");
    EXPECT_TRUE(set) << set.error().message;
    if (!set) return;
    for (const auto& r : set->rules) ids_.push_back(r.id);
    auto m = rules::Matcher::compile(std::move(*set));
    EXPECT_TRUE(m) << m.error().message;
    if (!m) return;
    matcher_.emplace(std::move(*m));
    auto s = matcher_->make_scratch();
    EXPECT_TRUE(s);
    if (s) scratch_.emplace(std::move(*s));
  }
  // The ids of the rules that `method target` with `status` meets.
  std::vector<std::string> hits(std::string_view target, std::string_view method = "GET",
                                int status = 404) {
    std::vector<uint32_t> matched;
    rules::Request r;
    r.method = method;
    r.target = target;
    r.status = status;
    EXPECT_TRUE(matcher_->match(r, *scratch_, matched));
    std::vector<std::string> out;
    for (uint32_t i : matched) out.push_back(ids_[i]);
    return out;
  }
  const std::vector<std::string>& ids() const { return ids_; }

 private:
  std::vector<std::string> ids_;
  std::optional<rules::Matcher> matcher_;
  std::optional<rules::Matcher::Scratch> scratch_;
};

TEST_F(DecoyTest, AWordPressTreeGetsTrapsAPluginAndTheFakePathsItLacks) {
  touch("wp-includes/version.php");
  touch("wp-content/index.php");
  touch("adminer.php");  // the site has it: never a decoy
  auto fd = root();
  auto p = plan_urls(fd.get(), dir_.path(), "/", seeded(4));
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->site.kind, SiteKind::kWordPress);
  EXPECT_TRUE(p->site.plugin);
  EXPECT_EQ(p->site.robots, Robots::kPlugin) << "no robots.txt: WordPress's virtual one";
  std::vector<std::string> urls;
  for (const auto& u : p->urls) urls.push_back(std::string(url_kind_name(u.kind)) + " " + u.url);
  ASSERT_EQ(urls.size(), 5u);
  EXPECT_EQ(urls[0].rfind("robots-trap /", 0), 0u);
  EXPECT_EQ(urls[1].rfind("link-trap /", 0), 0u);
  EXPECT_EQ(std::vector<std::string>(urls.begin() + 2, urls.end()),
            (std::vector<std::string>{"fake-path /.git/config", "fake-path /phpmyadmin/",
                                      "fake-path /installer.php"}));
  EXPECT_NE(p->urls[0].url, p->urls[1].url);
  EXPECT_EQ(p->urls[0].url.back(), '/');
  EXPECT_EQ(rule_id(p->urls[0]), "decoy-trap-" + p->urls[0].token);
  EXPECT_EQ(rule_id(p->urls[2]), "decoy-url-" + p->urls[2].token);
  ASSERT_EQ(::symlink("/etc/passwd", (dir_ / "robots.txt").c_str()), 0);
  auto linked = plan_urls(fd.get(), dir_.path(), "/", seeded(4));
  ASSERT_TRUE(linked);
  EXPECT_EQ(linked->site.robots, Robots::kNone);
  for (const auto& u : linked->urls)
    EXPECT_EQ(u.kind, UrlKind::kFakePath) << "no trap that crawlers are not told of";
  const std::string group = robots_group(p->urls);
  EXPECT_EQ(group,
            "User-agent: *\nDisallow: " + p->urls[0].url + "\nDisallow: " + p->urls[1].url + "\n");
}

TEST_F(DecoyTest, AnotherSiteGetsARobotsTxtAndNoLink) {
  touch(".git/config");  // a checkout served from its work tree: not ours to trap
  auto fd = root();
  auto p = plan_urls(fd.get(), dir_.path(), "/shop", seeded(5));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->site.kind, SiteKind::kGeneric);
  EXPECT_FALSE(p->site.plugin);
  EXPECT_EQ(p->site.robots, Robots::kCreate);
  ASSERT_EQ(p->urls.size(), 4u);
  EXPECT_EQ(p->urls[0].kind, UrlKind::kRobotsTrap);
  EXPECT_EQ(p->urls[0].url.rfind("/shop/", 0), 0u);
  EXPECT_EQ(p->urls[1].url, "/shop/adminer.php");
  EXPECT_EQ(p->urls[3].url, "/shop/install.php");
  touch("robots.txt");
  EXPECT_EQ(plan_urls(fd.get(), dir_.path(), "/", seeded(5))->site.robots, Robots::kAppend);
  ::unlink((dir_ / "robots.txt").c_str());
  ASSERT_EQ(::symlink("/etc/passwd", (dir_ / "robots.txt").c_str()), 0);
  auto linked = plan_urls(fd.get(), dir_.path(), "/", seeded(5));
  EXPECT_EQ(linked->site.robots, Robots::kNone) << "never written through a symlink";
  EXPECT_EQ(linked->urls[0].kind, UrlKind::kFakePath) << "no trap nobody is told of";
  EXPECT_FALSE(plan_urls(fd.get(), dir_.path(), "shop", seeded(5)));
}

TEST_F(DecoyTest, AWordPressWhoseContentLivesElsewhereGetsNoPlugin) {
  touch("wp-config.php");
  ASSERT_EQ(::symlink("/var/lib/wordpress/wp-content", (dir_ / "wp-content").c_str()), 0);
  auto fd = root();
  auto p = plan_urls(fd.get(), dir_.path(), "/", seeded(6));
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->site.plugin);
  EXPECT_EQ(p->site.robots, Robots::kCreate);
  for (const auto& u : p->urls) EXPECT_NE(u.kind, UrlKind::kLinkTrap);
}

TEST_F(DecoyTest, TheUrlRulesBanTheTrapsAndTheFakePathsOnlyWhenTheSiteLacksThem) {
  std::vector<UrlDecoy> urls = {
      {"/r", UrlKind::kRobotsTrap, "/private-abcd1234/", "aaaaaaaaaaaa"},
      {"/r", UrlKind::kFakePath, "/adminer.php", "bbbbbbbbbbbb"},
      {"/r", UrlKind::kFakePath, "/phpmyadmin/", "cccccccccccc"},
      {"/r", UrlKind::kFakePath, "/.git/config", "dddddddddddd"},
  };
  Rules r(url_rules_text(urls));
  ASSERT_EQ(r.ids(),
            (std::vector<std::string>{"decoy-trap-aaaaaaaaaaaa", "decoy-url-bbbbbbbbbbbb",
                                      "decoy-url-cccccccccccc", "decoy-url-dddddddddddd"}));
  using V = std::vector<std::string>;
  EXPECT_EQ(r.hits("/private-abcd1234/"), V{"decoy-trap-aaaaaaaaaaaa"});
  EXPECT_EQ(r.hits("/private-abcd1234"), V{"decoy-trap-aaaaaaaaaaaa"});
  EXPECT_EQ(r.hits("/private-abcd1234/db.sql", "GET", 200), V{"decoy-trap-aaaaaaaaaaaa"})
      << "a trap bans whatever the answer";
  EXPECT_EQ(r.hits("/private-abcd1234?x=1"), V{"decoy-trap-aaaaaaaaaaaa"});
  EXPECT_EQ(r.hits("/private-abcd12345/"), V{});
  EXPECT_EQ(r.hits("/private-abcd1234x"), V{});
  EXPECT_EQ(r.hits("/adminer.php"), V{"decoy-url-bbbbbbbbbbbb"});
  EXPECT_EQ(r.hits("/adminer.php", "GET", 403), V{"decoy-url-bbbbbbbbbbbb"});
  EXPECT_EQ(r.hits("/adminer.php", "GET", 200), V{}) << "the site serves one now: no decoy";
  EXPECT_EQ(r.hits("/adminer.php", "GET", 302), V{});
  EXPECT_EQ(r.hits("/phpmyadmin/index.php"), V{"decoy-url-cccccccccccc"});
  EXPECT_EQ(r.hits("/phpmyadmin"), V{"decoy-url-cccccccccccc"});
  EXPECT_EQ(r.hits("/phpmyadmin2/"), V{});
  EXPECT_EQ(r.hits("/.git/config"), V{"decoy-url-dddddddddddd"});
  EXPECT_EQ(r.hits("/.git/HEAD"), V{});
  EXPECT_EQ(r.hits("/index.php"), V{});
}

TEST_F(DecoyTest, TheCredentialRulesMatchOnlyThePluginsLineForTheirToken) {
  touch("wp-config.php");
  auto ds = plan_here(2);
  Rules r(credential_rules_text(ds));
  const std::string id0 = "decoy-credential-" + ds[0].token;
  ASSERT_EQ(r.ids(), (std::vector<std::string>{id0, "decoy-credential-" + ds[1].token}));
  using V = std::vector<std::string>;
  const std::string line = "/wp-login.php?mamori-decoy-credential=" + ds[0].token;
  EXPECT_EQ(r.hits(line, "POST", 200), V{id0});
  EXPECT_EQ(r.hits("/xmlrpc.php?mamori-decoy-credential=" + ds[0].token, "POST", 200), V{id0});
  EXPECT_EQ(r.hits(line, "GET", 200), V{}) << "the plugin writes POST only";
  EXPECT_EQ(r.hits(line + "x", "POST", 200), V{});
  EXPECT_EQ(r.hits("/wp-login.php", "POST", 200), V{}) << "an ordinary login";
  EXPECT_EQ(r.hits("/wp-login.php?mamori-decoy-credential=aaaaaaaaaaaa", "POST", 200), V{});
}

TEST_F(DecoyTest, ThePluginHoldsHashesNeverThePasswords) {
  touch("wp-includes/version.php");
  touch("wp-content/index.php");
  auto ds = plan_here();
  auto fd = root();
  auto p = plan_urls(fd.get(), dir_.path(), "/", seeded(7));
  ASSERT_TRUE(p);
  Decoy other = ds[0];  // another root's: not in this plugin
  other.root = "/elsewhere";
  other.user = "wp_zzzzzz";
  other.password = "zzzzzzzzzzzzzzzzzzzz";
  std::vector<Decoy> all = ds;
  all.push_back(other);
  const std::string php = plugin_text(p->site, all, p->urls, "/var/log/mamori-decoys/c'.log");
  EXPECT_EQ(php.rfind("<?php\n", 0), 0u);
  for (const auto& d : ds) {
    EXPECT_EQ(php.find(d.password), std::string::npos) << d.rel;
    EXPECT_NE(php.find("'" + sha256_hex(d.password) + "' => '" + d.token + "'"), std::string::npos);
    EXPECT_NE(php.find("'" + sha256_hex(d.user) + "' => '" + d.token + "'"), std::string::npos);
  }
  EXPECT_EQ(php.find(sha256_hex(other.password)), std::string::npos);
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_NE(php.find("add_filter( 'authenticate', 'mamori_decoy_authenticate', 1, 3 );"),
            std::string::npos);
  EXPECT_NE(php.find("'/var/log/mamori-decoys/c\\'.log'"), std::string::npos) << "quoted";
  EXPECT_NE(php.find("'robots_txt'"), std::string::npos);
  EXPECT_NE(php.find("Disallow: " + p->urls[0].url), std::string::npos);
  EXPECT_NE(php.find("<a href=\"" + p->urls[1].url + "\" rel=\"nofollow\""), std::string::npos);
  // With a robots.txt file of the site, the trap is in it, not in the plugin's filter.
  Site site = p->site;
  site.robots = Robots::kAppend;
  EXPECT_EQ(plugin_text(site, ds, p->urls, "/l").find("'robots_txt'"), std::string::npos);
}

TEST_F(DecoyTest, TheVersion2RecordRoundTripsAndAVersion1RecordStillLoads) {
  touch("wp-config.php");
  touch("wp-content/index.php");
  auto fd = root();
  Record rec;
  rec.files = plan_here();
  auto p = plan_urls(fd.get(), dir_.path(), "/", seeded(8));
  ASSERT_TRUE(p);
  rec.urls = p->urls;
  rec.sites = {p->site};
  rec.credential_log = "/var/log/mamori-decoys/credentials.log";
  auto back = record_from_json(to_json(rec));
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(to_json(*back), to_json(rec));
  EXPECT_EQ(to_json(rec)["urls"][0]["rule"], rule_id(rec.urls[0]));
  // What version 1 wrote: files only.
  nlohmann::json v1 = {{"v", 1}, {"decoys", to_json(rec)["decoys"]}};
  auto old = record_from_json(v1);
  ASSERT_TRUE(old) << old.error().message();
  EXPECT_EQ(old->files.size(), 3u);
  EXPECT_TRUE(old->urls.empty());
  EXPECT_TRUE(old->credential_log.empty());
  // What would break the rules or the plugin is refused.
  for (auto [key, value] : {std::pair{"url", "/x'\n[[rule]]"}, {"token", "short"}, {"kind", "x"}}) {
    auto j = to_json(rec);
    j["urls"][0][key] = value;
    EXPECT_FALSE(record_from_json(j)) << key;
  }
  auto j = to_json(rec);
  j["credential_log"] = "relative.log";
  EXPECT_FALSE(record_from_json(j));
  j = to_json(rec);
  j["sites"][0]["robots"] = "maybe";
  EXPECT_FALSE(record_from_json(j));
  // load(): none yet, then what was written.
  const std::string path = dir_ / "decoys.json";
  auto none = load(path);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->files.empty() && none->urls.empty());
  std::ofstream(path) << to_json(rec).dump();
  auto loaded = load(path);
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded->urls.size(), rec.urls.size());
  ASSERT_TRUE(load_record(path));
  EXPECT_EQ(load_record(path)->size(), 3u);
  std::ofstream(path) << "{";
  EXPECT_FALSE(load(path));
}

}  // namespace
}  // namespace mamori::decoy
