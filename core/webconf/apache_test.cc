#include "core/webconf/apache.h"

#include <gtest/gtest.h>

#include "core/webconf/php_fpm.h"

namespace mamori::webconf {
namespace {

TEST(ApacheEnvvars, ExportLines) {
  auto v = parse_envvars(
      "unset HOME\nexport APACHE_RUN_USER=www-data\n"
      "export APACHE_LOG_DIR=/var/log/apache2$SUFFIX\n  export X=\"a b\"\n"
      "export Y=$(whoami)\n");
  EXPECT_EQ(v["APACHE_RUN_USER"], "www-data");
  EXPECT_EQ(v["APACHE_LOG_DIR"], "/var/log/apache2");
  EXPECT_EQ(v["X"], "a b");
  EXPECT_EQ(v.count("Y"), 0u);
}

TEST(ApacheParse, SectionsContinuationsQuotes) {
  std::map<std::string, std::string> vars{{"D", "/var/log/apache2"}};
  std::vector<Problem> problems;
  auto d = parse_apache(
      "# comment\nLogFormat \"%h %l \\\"%r\\\" %>s\" mine\n"
      "<VirtualHost *:80>\n  DocumentRoot /var/www/a\n  CustomLog ${D}/a.log \\\n    mine\n"
      "  ErrorLog ${NOPE}/e.log\n</VirtualHost>\n",
      "a.conf", vars, problems);
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0].args, (std::vector<std::string>{"%h %l \"%r\" %>s", "mine"}));
  const auto& v = (*d)[1];
  EXPECT_EQ(v.name, "VirtualHost");
  ASSERT_EQ(v.block.size(), 3u);
  EXPECT_EQ(v.block[1].args, (std::vector<std::string>{"/var/log/apache2/a.log", "mine"}));
  EXPECT_EQ(v.block[1].from.line, 5u);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].text(), "a.conf:7: ${NOPE} is not defined (envvars, Define)");
}

TEST(ApacheParse, Errors) {
  std::map<std::string, std::string> vars;
  std::vector<Problem> problems;
  for (const auto& [text, at] : std::vector<std::pair<std::string, std::string>>{
           {"<VirtualHost *:80>\nDocumentRoot /x\n", "x.conf:1"},
           {"</VirtualHost>\n", "x.conf:1"},
           {"<A>\n</B>\n", "x.conf:2"},
           {"X \"unterminated\n", "x.conf:1"},
           {"<VirtualHost *:80\n", "x.conf:1"}}) {
    auto d = parse_apache(text, "x.conf", vars, problems);
    ASSERT_FALSE(d) << text;
    EXPECT_EQ(d.error().path, at) << text << " " << d.error().message();
  }
}

TEST(ApacheRead, DebianLayoutTwoSites) {
  MemConfSource src;
  src.files["/etc/apache2/apache2.conf"] =
      "User ${APACHE_RUN_USER}\nErrorLog ${APACHE_LOG_DIR}/error.log\n"
      "IncludeOptional mods-enabled/*.load\n"
      "LogFormat \"%v:%p %h %l %u %t \\\"%r\\\" %>s %O \\\"%{Referer}i\\\" "
      "\\\"%{User-Agent}i\\\"\" vhost_combined\n"
      "LogFormat \"%h %l %u %t \\\"%r\\\" %>s %O \\\"%{Referer}i\\\" \\\"%{User-Agent}i\\\"\" "
      "combined\n"
      "IncludeOptional conf-enabled/*.conf\nIncludeOptional sites-enabled/*.conf\n";
  src.files["/etc/apache2/conf-enabled/other.conf"] =
      "CustomLog ${APACHE_LOG_DIR}/other_vhosts_access.log vhost_combined\n";
  src.files["/etc/apache2/conf-enabled/php8.2-fpm.conf"] =
      "<IfModule proxy_fcgi_module>\n<FilesMatch \".+\\.ph(?:ar|p|tml)$\">\n"
      "  SetHandler \"proxy:unix:/run/php/php8.2-fpm.sock|fcgi://localhost\"\n"
      "</FilesMatch>\n</IfModule>\n";
  src.files["/etc/apache2/sites-enabled/a.conf"] =
      "<VirtualHost *:80>\n ServerName a.example\n DocumentRoot /var/www/a\n"
      " CustomLog ${APACHE_LOG_DIR}/a.log combined\n</VirtualHost>\n";
  src.files["/etc/apache2/sites-enabled/b.conf"] =
      "<VirtualHost *:80>\n ServerName b.example\n ServerAlias www.b.example\n"
      " DocumentRoot \"/var/www/b\"\n <Directory /var/www/b>\n  AllowOverride None\n </Directory>\n"
      "</VirtualHost>\n";
  auto c = read_apache(src, "/etc/apache2/apache2.conf",
                       {{"APACHE_RUN_USER", "www-data"}, {"APACHE_LOG_DIR", "/var/log/apache2"}});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->user, "www-data");
  ASSERT_EQ(c->sites.size(), 2u);
  const auto& a = c->sites[0];
  EXPECT_EQ(a.names, "a.example");
  ASSERT_EQ(a.roots.size(), 1u);
  EXPECT_EQ(a.roots[0].path, "/var/www/a");
  ASSERT_EQ(a.access_logs.size(), 1u);
  EXPECT_EQ(a.access_logs[0].path, "/var/log/apache2/a.log");
  EXPECT_EQ(a.access_logs[0].format_name, "combined");
  EXPECT_EQ(a.access_logs[0].format.substr(0, 12), "%h %l %u %t ");
  EXPECT_EQ(a.fastcgi, std::vector<std::string>{"unix:/run/php/php8.2-fpm.sock"});
  ASSERT_EQ(a.error_logs.size(), 1u);
  EXPECT_EQ(a.error_logs[0].path, "/var/log/apache2/error.log");
  const auto& b = c->sites[1];  // no CustomLog of its own: the main server's
  EXPECT_EQ(b.names, "b.example www.b.example");
  ASSERT_EQ(b.access_logs.size(), 1u);
  EXPECT_EQ(b.access_logs[0].path, "/var/log/apache2/other_vhosts_access.log");
  EXPECT_EQ(b.access_logs[0].format_name, "vhost_combined");
}

TEST(ApacheRead, LoopPipesAndUnknownNicknames) {
  MemConfSource src;
  src.files["/a/apache2.conf"] =
      "Include x.conf\nDocumentRoot /w\n"
      "CustomLog \"|/usr/bin/rotatelogs /l 86400\" combined\n"
      "CustomLog /l2 nosuch\n";
  src.files["/a/x.conf"] = "Include apache2.conf\n";
  auto c = read_apache(src, "/a/apache2.conf", {});
  ASSERT_TRUE(c);
  ASSERT_EQ(c->sites.size(), 1u);  // no VirtualHost: the main server
  std::string all;
  for (const auto& p : c->problems) all += p.text() + "\n";
  EXPECT_NE(all.find("include loop"), std::string::npos) << all;
  EXPECT_NE(all.find("pipe to a program"), std::string::npos) << all;
  EXPECT_NE(all.find("LogFormat 'nosuch'"), std::string::npos) << all;
}

TEST(PhpFpm, PoolsIncludesAndPid) {
  MemConfSource src;
  src.files["/etc/php/8.2/fpm/php-fpm.conf"] =
      "[global]\npid = /run/php/php8.2-fpm.pid\ninclude=/etc/php/8.2/fpm/pool.d/*.conf\n";
  src.files["/etc/php/8.2/fpm/pool.d/www.conf"] =
      "; comment\n[www]\nuser = www-data\nlisten = /run/php/php8.2-fpm.sock\n";
  src.files["/etc/php/8.2/fpm/pool.d/tcp.conf"] =
      "[tcp]\nuser = \"site\"\nlisten = 127.0.0.1:9000\n[$pool]\n";
  src.files["/etc/php/8.2/fpm/pool.d/self.conf"] = "include=/etc/php/8.2/fpm/pool.d/self.conf\n";
  auto c = read_php_fpm(src, "/etc/php/8.2/fpm/php-fpm.conf");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->pid_file, "/run/php/php8.2-fpm.pid");
  ASSERT_GE(c->pools.size(), 2u);
  EXPECT_EQ(c->pools[0].name, "tcp");
  EXPECT_EQ(c->pools[0].user, "site");
  EXPECT_TRUE(fpm_listens_on(c->pools[0], "localhost:9000"));
  EXPECT_FALSE(fpm_listens_on(c->pools[0], "127.0.0.1:9001"));
  const auto www = std::find_if(c->pools.begin(), c->pools.end(),
                                [](const FpmPool& p) { return p.name == "www"; });
  ASSERT_NE(www, c->pools.end());
  EXPECT_TRUE(fpm_listens_on(*www, "unix:/run/php/php8.2-fpm.sock"));
  ASSERT_FALSE(c->problems.empty());
  EXPECT_NE(c->problems[0].message.find("include loop"), std::string::npos);
}

TEST(PhpFpm, APoolNamedLikeTheVariableDoesNotLoop) {
  MemConfSource src;
  src.files["/f.conf"] = "[$pool$pool]\nlisten = /run/$pool.sock\n";
  auto c = read_php_fpm(src, "/f.conf");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->pools.size(), 1u);
  EXPECT_EQ(c->pools[0].listen, "/run/$pool$pool.sock");
}

}  // namespace
}  // namespace mamori::webconf
