#include "core/webconf/plan.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "core/config/config.h"
#include "testing/temp_dir.h"

namespace mamori::webconf {
namespace {

std::string notes(const Plan& p) {
  std::string all;
  for (const auto& n : p.notes) all += n.text() + "\n";
  return all;
}

Site site(std::vector<std::string> roots, std::vector<LogRef> logs = {},
          std::vector<std::string> fastcgi = {}) {
  Site s;
  s.from = {"/etc/nginx/sites-enabled/x", 1};
  for (auto& r : roots) s.roots.push_back({r, "", {"/etc/nginx/sites-enabled/x", 2}});
  s.access_logs = std::move(logs);
  s.fastcgi = std::move(fastcgi);
  return s;
}

TEST(Plan, WordPressSymlinkSharedAndOddRoots) {
  testing::TempDir t;
  t.mkdir("wp");
  t.mkdir("wp/wp-includes");
  t.write("wp/wp-includes/version.php", "<?php");
  t.write("wp/wp-config.php", "<?php define('DB_PASSWORD', 'x');", 0640);
  t.mkdir("wp/wp-content");
  t.mkdir("wp/wiki");
  t.mkdir("wp/wiki/includes");
  t.write("wp/wiki/LocalSettings.php", "<?php");
  t.mkdir("other");
  ASSERT_EQ(::symlink((t / "wp").c_str(), (t / "link").c_str()), 0);
  ServerConf n;
  n.server = "nginx";
  n.main_file = "/etc/nginx/nginx.conf";
  n.sites.push_back(site({t / "wp"},
                         {{t / "access.log", "combined", "combined", {"/etc/nginx/nginx.conf", 9}}},
                         {"unix:/run/php/php8.2-fpm.sock"}));
  n.sites.push_back(site({t / "link"}, {{t / "access.log", "combined", "combined", {}}}));
  n.sites.push_back(site({t / "nope"}));
  n.sites.push_back(site({"/"}));
  n.sites.push_back(site({"/var"}));
  n.sites.push_back(
      site({t / "other", t / "other"}, {{t / "other.log", "$request $status", "odd", {}}}));
  n.sites.push_back(site({"relative/dir"}));
  FpmConf f;
  f.main_file = "/etc/php/8.2/fpm/php-fpm.conf";
  f.pid_file = "/run/php/php8.2-fpm.pid";
  f.pools.push_back(
      {"www", "/run/php/php8.2-fpm.sock", "www-data", {"/etc/php/8.2/fpm/pool.d/www.conf", 1}});
  const Plan p = make_plan({n}, {f});
  const std::string all = notes(p);

  char real[PATH_MAX];
  ASSERT_NE(::realpath(t.path().c_str(), real), nullptr);
  const std::string base = real;
  ASSERT_EQ(p.roots.size(), 2u) << all;
  const auto& wp = p.roots[1].path == base + "/wp" ? p.roots[1] : p.roots[0];
  EXPECT_EQ(wp.path, base + "/wp");
  EXPECT_EQ(wp.sources.size(), 2u);  // its own server, and the one naming the symlink
  EXPECT_NE(wp.sources[1].find("a symlink to " + base + "/wp"), std::string::npos);
  EXPECT_EQ(wp.allow_new, (std::vector<std::string>{"wp-content/uploads/**", "wiki/images/**"}));
  EXPECT_EQ(wp.exclude, (std::vector<std::string>{"wp-content/cache/**", "wiki/cache/**"}));
  ASSERT_EQ(wp.apps.size(), 2u);
  EXPECT_EQ(wp.apps[0].guarded, std::vector<std::string>{"wp-config.php"});
  EXPECT_EQ(wp.apps[1].guarded, std::vector<std::string>{"wiki/LocalSettings.php"});

  EXPECT_NE(all.find("'" + t / "nope" + "' of nginx server"), std::string::npos) << all;
  EXPECT_NE(all.find("does not exist"), std::string::npos) << all;
  EXPECT_NE(all.find("root '/' of nginx server"), std::string::npos) << all;
  EXPECT_NE(all.find("is the whole file system: refused"), std::string::npos) << all;
  EXPECT_NE(
      all.find("root '/var' of nginx server (/etc/nginx/sites-enabled/x:1) is a system directory"),
      std::string::npos)
      << all;
  EXPECT_NE(all.find("is relative"), std::string::npos) << all;
  EXPECT_NE(all.find("cannot be read by mamori"), std::string::npos) << all;

  ASSERT_EQ(p.logs.size(), 2u);
  EXPECT_EQ(p.logs[0].root, base + "/wp");
  EXPECT_EQ(p.logs[0].sources.size(), 2u);
  EXPECT_FALSE(p.logs[1].usable);
  ASSERT_TRUE(p.opcache.found);
  EXPECT_EQ(p.opcache.socket, "/run/php/php8.2-fpm.sock");
  EXPECT_EQ(p.opcache.pid_file, "/run/php/php8.2-fpm.pid");

  // What it writes is a config mamori loads, with the values above.
  const std::string toml = render_toml(p);
  auto c = config::parse_config(toml, "setup.toml");
  ASSERT_TRUE(c) << c.error().text() << "\n" << toml;
  ASSERT_EQ(c->roots.size(), 2u);
  ASSERT_EQ(c->logs.size(), 1u);  // the other log's format is commented out
  EXPECT_EQ(c->logs[0].root, base + "/wp");
  EXPECT_EQ(c->opcache.mode, config::OpcacheMode::kInvalidate);
  EXPECT_NE(toml.find("# wp-config.php holds the database password: guarded"), std::string::npos)
      << toml;
}

TEST(Plan, NestedRootsMergeIntoTheOuterOne) {
  testing::TempDir t;
  t.mkdir("www");
  t.mkdir("www/blog");
  t.mkdir("www/blog/sub");
  t.mkdir("www/blog/sub/wp-includes");
  t.write("www/blog/sub/wp-includes/version.php", "<?php");
  ServerConf a;
  a.server = "apache";
  a.sites.push_back(site({t / "www/blog/sub"}));
  a.sites.push_back(site({t / "www"}));
  const Plan p = make_plan({a}, {});
  ASSERT_EQ(p.roots.size(), 1u);
  EXPECT_EQ(p.roots[0].sources.size(), 2u);
  EXPECT_EQ(p.roots[0].allow_new, std::vector<std::string>{"blog/sub/wp-content/uploads/**"});
}

TEST(Plan, TomlStringsAndCommentsCannotBreakOut) {
  EXPECT_EQ(toml_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000Ad\"");
  Plan p;
  p.notes.push_back({{"/etc/x\n[[root]]\npath = \"/\"", 1}, "odd"});
  auto c = config::parse_config(render_toml(p), "x.toml");
  ASSERT_TRUE(c) << c.error().text();
  EXPECT_TRUE(c->roots.empty());
}

TEST(Plan, SystemDirectories) {
  for (const char* d :
       {"/", "/var", "/usr", "/home", "/srv", "/usr/share", "/var/lib", "/etc/nginx", "/proc/1"})
    EXPECT_TRUE(is_system_dir(d)) << d;
  for (const char* d :
       {"/var/www", "/var/www/html", "/srv/site", "/usr/share/wordpress", "/home/u/www"})
    EXPECT_FALSE(is_system_dir(d)) << d;
}

}  // namespace
}  // namespace mamori::webconf
