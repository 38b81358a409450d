#include "core/page/discovery.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/fs/admin_files.h"
#include "testing/temp_dir.h"

namespace mamori::page {
namespace {

const std::vector<std::string> kKeep = {"p", "page_id"};

std::string target(std::string_view t) { return discoverable_target(t, kKeep).value_or("(none)"); }

TEST(Discovery, OnlySameSitePagesCount) {
  EXPECT_EQ(target("/"), "/");
  EXPECT_EQ(target("/about/"), "/about/");
  EXPECT_EQ(target("/2026/12/opening-hours/"), "/2026/12/opening-hours/");
  EXPECT_EQ(target("/index.php"), "/index.php");
  EXPECT_EQ(target("/shop/Cart.HTML"), "/shop/Cart.HTML");
  EXPECT_EQ(target("/caf%C3%A9/"), "/caf%C3%A9/");
  // Queries are dropped (a token may be in one), but one numeric kept parameter.
  EXPECT_EQ(target("/?p=12"), "/?p=12");
  EXPECT_EQ(target("/?page_id=7#comments"), "/?page_id=7");
  EXPECT_EQ(target("/?s=hello"), "/");
  EXPECT_EQ(target("/?p=12&token=abc"), "/");
  EXPECT_EQ(target("/?p=abc"), "/");
  EXPECT_EQ(target("/reset/?key=0123456789abcdef&login=admin"), "/reset/");
  EXPECT_EQ(target("/?p=1234567890123"), "/");  // 13 digits: not an id
  // Never another site, never a static file, never an endpoint.
  for (const char* t : {"http://evil.example/",
                        "https://evil.example/x.html",
                        "//evil.example/",
                        "evil.example/",
                        "",
                        "*",
                        "/style.css",
                        "/app.js",
                        "/logo.png",
                        "/favicon.ico",
                        "/robots.txt",
                        "/sitemap.xml",
                        "/wp-content/uploads/a.html",
                        "/wp-admin/",
                        "/wp-json/wp/v2/posts",
                        "/feed/",
                        "/xmlrpc.php",
                        "/wp-cron.php",
                        "/wp-admin/admin-ajax.php",
                        "/a/../b/",
                        "/a/./b",
                        "/a//b",
                        "/%2e%2e/etc/passwd",
                        "/a%2fb",
                        "/a%zz",
                        "/a%4",
                        "/a b",
                        "/a\\b",
                        "/a\"b",
                        "/a<b>",
                        "/\x01",
                        "/\xc3\xa9"})
    EXPECT_FALSE(discoverable_target(t, kKeep)) << t;
  EXPECT_FALSE(discoverable_target("/" + std::string(kMaxDiscoveredPath, 'a'), kKeep));
}

TEST(Discovery, PathsCountByDistinctClientsNotRequests) {
  RequestTable t(42);
  for (int i = 0; i < 1000; ++i) t.note("/attacker/", "203.0.113.9");
  t.note("/", "192.0.2.1");
  t.note("/", "192.0.2.2");
  t.note("/", "192.0.2.3");
  t.note("/about/", "192.0.2.1");
  t.note("/about/", "192.0.2.2");
  EXPECT_EQ(t.ranked(3).size(), 1u);
  EXPECT_EQ(t.ranked(3)[0].path, "/");
  EXPECT_NEAR(t.ranked(3)[0].clients, 3, 0.1);
  EXPECT_EQ(t.ranked(1).size(), 3u);
  EXPECT_EQ(t.ranked(1)[2].path, "/attacker/");
  EXPECT_NEAR(t.clients("/attacker/"), 1, 0.01);
  // Many distinct visitors: about right.
  for (int i = 0; i < 300; ++i) t.note("/popular/", fmt::format("198.51.{}.{}", i / 200, i % 200));
  EXPECT_NEAR(t.clients("/popular/"), 300, 30);
}

TEST(Discovery, AFloodOfDistinctPathsNeverPushesOutSharedOnes) {
  RequestTable t(7);
  for (int i = 0; i < 20; ++i)
    for (int c = 0; c < 3; ++c) t.note(fmt::format("/post-{}/", i), fmt::format("192.0.2.{}", c));
  // One address, two million distinct paths: the table stays bounded, the shared pages stay.
  for (int i = 0; i < 2'000'000; ++i) t.note(fmt::format("/junk-{}/", i), "203.0.113.9");
  EXPECT_LE(t.size(), RequestTable::kMaxCandidates);
  const auto r = t.ranked(3);
  ASSERT_EQ(r.size(), 20u);
  for (const auto& p : r) EXPECT_TRUE(p.path.starts_with("/post-")) << p.path;
  // A table full of paths that two addresses share refuses new paths instead.
  RequestTable full(7);
  for (size_t i = 0; i < RequestTable::kMaxCandidates; ++i) {
    full.note(fmt::format("/a-{}/", i), "203.0.113.1");
    full.note(fmt::format("/a-{}/", i), "203.0.113.2");
  }
  full.note("/new/", "192.0.2.1");
  EXPECT_EQ(full.dropped(), 1u);
  EXPECT_EQ(full.clients("/new/"), 0);
  full.clear();
  EXPECT_EQ(full.size(), 0u);
}

TEST(Discovery, RankingKeepsTheBestAndFadesTheForgotten) {
  std::vector<DiscoveredPage> set = {{"/", 100, 1}, {"/old/", 40, 1}};
  // This round: /old/ had no visitor, /new/ had 30: /old/ keeps 20, /new/ comes in.
  auto next = rank_discovered(set, {{"/", 90, 500}, {"/new/", 30, 40}}, 2, 9);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].path, "/");
  EXPECT_EQ(next[0].clients, 90);
  EXPECT_EQ(next[0].since_ns, 1);
  EXPECT_EQ(next[1].path, "/new/");
  EXPECT_EQ(next[1].since_ns, 9);
  // A tie keeps the page already in the set.
  next = rank_discovered({{"/a/", 10, 1}}, {{"/b/", 5, 1}}, 1, 2);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].path, "/a/");
  EXPECT_TRUE(rank_discovered(set, {}, 0, 1).empty());
}

TEST(Discovery, TheSetSurvivesARestartAndADamagedOneIsRefused) {
  testing::TempDir dir;
  RealEnv env;
  const std::string path = discovered_path(dir.path());
  auto none = load_discovered(path);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  DiscoveredSet set{"https://www.example.com", {{"/", 12.5, 7}, {"/?p=3", 4, 8}}};
  ASSERT_TRUE(save_discovered(env, path, set));
  auto back = load_discovered(path);
  ASSERT_TRUE(back && *back);
  EXPECT_EQ((*back)->base_url, "https://www.example.com");
  ASSERT_EQ((*back)->pages.size(), 2u);
  EXPECT_EQ((*back)->pages[1].path, "/?p=3");
  EXPECT_EQ((*back)->pages[0].clients, 12.5);
  EXPECT_EQ((*back)->pages[0].since_ns, 7);
  for (
      const char* text :
      {"", "{", "[]", R"({"version": 2, "base_url": "", "pages": []})",
       R"({"version": 1, "base_url": "x", "pages": [{"path": "http://evil.example/", "clients": 1, "since_ns": 1}]})",
       R"({"version": 1, "base_url": "x", "pages": [{"path": "/", "clients": "1", "since_ns": 1}]})"}) {
    ASSERT_TRUE(fs::write_file_atomic(env, path, text, 0600));
    EXPECT_FALSE(load_discovered(path)) << text;
  }
}

}  // namespace
}  // namespace mamori::page
