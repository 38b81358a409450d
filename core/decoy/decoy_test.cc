#include "core/decoy/decoy.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
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
  EXPECT_FALSE(from_json({{"v", 2}, {"decoys", nlohmann::json::array()}}));
}

}  // namespace
}  // namespace mamori::decoy
