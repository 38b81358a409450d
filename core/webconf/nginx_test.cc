#include "core/webconf/nginx.h"

#include <gtest/gtest.h>

namespace mamori::webconf {
namespace {

TEST(NginxParse, WordsQuotesEscapesComments) {
  auto d = parse_nginx(
      "user www-data; # the workers\n"
      "http {\n"
      "  log_format main '$remote_addr \"$request\"' \"x\\\"y\" a\\;b;\n"
      "  map $x ${y}z { default 1; }\n"
      "}\n",
      "n.conf");
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0].name, "user");
  EXPECT_EQ((*d)[0].args, std::vector<std::string>{"www-data"});
  const auto& http = (*d)[1];
  ASSERT_TRUE(http.has_block);
  ASSERT_EQ(http.block.size(), 2u);
  EXPECT_EQ(http.block[0].args,
            (std::vector<std::string>{"main", "$remote_addr \"$request\"", "x\"y", "a\\;b"}));
  EXPECT_EQ(http.block[0].from.line, 3u);
  EXPECT_EQ(http.block[1].args, (std::vector<std::string>{"$x", "${y}z"}));
  EXPECT_TRUE(http.block[1].has_block);
}

TEST(NginxParse, ErrorsNameFileAndLine) {
  for (const auto& [text, line, what] : std::vector<std::tuple<std::string, int, std::string>>{
           {"a b", 1, "not terminated"},
           {"http {\n a b;\n", 3, "end of file"},
           {"}\n", 1, "unexpected '}'"},
           {"a 'b\n\n", 1, "unterminated"},
           {"a 'b'c;", 1, "after a quoted string"},
           {"\n;", 2, "unexpected ';'"}}) {
    auto d = parse_nginx(text, "x.conf");
    ASSERT_FALSE(d) << text;
    EXPECT_EQ(d.error().path, "x.conf:" + std::to_string(line)) << text;
    EXPECT_NE(d.error().detail.find(what), std::string::npos) << d.error().detail;
  }
}

TEST(NginxParse, DeepNestingIsRefused) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "a {";
  auto d = parse_nginx(text, "deep.conf");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().detail.find("nested deeper"), std::string::npos);
}

TEST(NginxRead, SitesWithIncludesFormatsAndInheritance) {
  MemConfSource src;
  src.files["/etc/nginx/nginx.conf"] =
      "user www-data;\nerror_log /var/log/nginx/error.log;\n"
      "http {\n"
      "  log_format main '$remote_addr - $remote_user [$time_local] \"$request\" '\n"
      "                  '$status $body_bytes_sent';\n"
      "  access_log /var/log/nginx/access.log;\n"
      "  root /srv/default;\n"
      "  include sites-enabled/*;\n"
      "}\n";
  src.files["/etc/nginx/sites-enabled/a"] =
      "server { server_name a.example; root /var/www/a; access_log /var/log/nginx/a.log main;\n"
      "  location ~ \\.php$ { fastcgi_pass unix:/run/php/php8.2-fpm.sock; }\n"
      "  location /pma { root /usr/share; }\n}\n";
  src.files["/etc/nginx/sites-enabled/b"] = "server { listen 8080; }\n";
  src.files["/etc/nginx/sites-enabled/c"] = "server { access_log off; root /var/www/c; }\n";
  auto c = read_nginx(src, "/etc/nginx/nginx.conf");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->user, "www-data");
  EXPECT_EQ(c->files.size(), 4u);
  ASSERT_EQ(c->sites.size(), 3u);
  const auto& a = c->sites[0];
  EXPECT_EQ(a.names, "a.example");
  ASSERT_EQ(a.roots.size(), 2u);
  EXPECT_EQ(a.roots[0].path, "/var/www/a");
  EXPECT_EQ(a.roots[1].path, "/usr/share");
  EXPECT_EQ(a.roots[1].context, "location /pma");
  ASSERT_EQ(a.access_logs.size(), 1u);
  EXPECT_EQ(a.access_logs[0].path, "/var/log/nginx/a.log");
  EXPECT_EQ(a.access_logs[0].format,
            "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent");
  EXPECT_EQ(a.access_logs[0].from.text(), "/etc/nginx/sites-enabled/a:1");
  EXPECT_EQ(a.fastcgi, std::vector<std::string>{"unix:/run/php/php8.2-fpm.sock"});
  ASSERT_EQ(a.error_logs.size(), 1u);
  EXPECT_EQ(a.error_logs[0].path, "/var/log/nginx/error.log");
  const auto& b = c->sites[1];  // inherits http's root and log
  ASSERT_EQ(b.roots.size(), 1u);
  EXPECT_EQ(b.roots[0].path, "/srv/default");
  ASSERT_EQ(b.access_logs.size(), 1u);
  EXPECT_EQ(b.access_logs[0].format, "combined");
  EXPECT_TRUE(c->sites[2].access_logs.empty());
}

TEST(NginxRead, IncludeLoopMissingFileAndBadFileAreProblems) {
  MemConfSource src;
  src.files["/n/nginx.conf"] =
      "include a.conf;\ninclude missing.conf;\ninclude bad.conf;\n"
      "http { server { root /w; } }\n";
  src.files["/n/a.conf"] = "include b.conf;\n";
  src.files["/n/b.conf"] = "include a.conf;\ninclude nginx.conf;\n";
  src.files["/n/bad.conf"] = "oops {\n";
  auto c = read_nginx(src, "/n/nginx.conf");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->sites.size(), 1u);
  std::string all;
  for (const auto& p : c->problems) all += p.text() + "\n";
  EXPECT_NE(
      all.find("/n/b.conf:1: include loop: /n/nginx.conf -> /n/a.conf -> /n/b.conf -> /n/a.conf"),
      std::string::npos)
      << all;
  EXPECT_NE(all.find("/n/b.conf:2: include loop"), std::string::npos) << all;
  EXPECT_NE(all.find("missing.conf"), std::string::npos) << all;
  EXPECT_NE(all.find("/n/bad.conf:2: unexpected end of file"), std::string::npos) << all;
}

TEST(NginxRead, IncludeDepthIsBounded) {
  MemConfSource src;
  // Each file includes the next: 40 distinct files, no loop.
  for (int i = 0; i < 40; ++i)
    src.files["/n/" + std::to_string(i) + ".conf"] =
        "include " + std::to_string(i + 1) + ".conf;\n";
  src.files["/n/40.conf"] = "";
  auto c = read_nginx(src, "/n/0.conf");
  ASSERT_TRUE(c);
  ASSERT_FALSE(c->problems.empty());
  EXPECT_NE(c->problems.back().message.find("nested deeper than 16"), std::string::npos);
  EXPECT_LE(c->files.size(), 18u);
}

TEST(NginxRead, LogsThatAreNoFilesAreProblems) {
  MemConfSource src;
  src.files["/n.conf"] =
      "http { server { root /w; access_log syslog:server=unix:/dev/log; "
      "access_log /var/log/$host.log; access_log /l combined; } }";
  auto c = read_nginx(src, "/n.conf");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->sites.size(), 1u);
  ASSERT_EQ(c->sites[0].access_logs.size(), 1u);
  EXPECT_EQ(c->sites[0].access_logs[0].path, "/l");
  EXPECT_EQ(c->problems.size(), 2u);
}

TEST(NginxRead, UnreadableMainFileFails) {
  MemConfSource src;
  EXPECT_FALSE(read_nginx(src, "/nope.conf"));
  src.files["/bad.conf"] = "http {";
  EXPECT_FALSE(read_nginx(src, "/bad.conf"));
}

}  // namespace
}  // namespace mamori::webconf
