#include "core/decoy/decoy.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace mamori::decoy {
namespace {

using nlohmann::json;

enum class Template { kWpConfig, kSqlDump, kDotEnv, kPhpConfig };

// One decoy a site gets: the names it may take, most tempting first, and what it holds.
struct Candidate {
  std::array<std::string_view, 3> names;
  Template what;
};

constexpr std::array<Candidate, 3> kWordPress = {{
    {{"wp-config.php.bak", "wp-config.php.old", "wp-config.php.save"}, Template::kWpConfig},
    {{"backup.sql", "db-backup.sql", "site-backup.sql"}, Template::kSqlDump},
    {{".env", ".env.backup", ".env.old"}, Template::kDotEnv},
}};
constexpr std::array<Candidate, 3> kGeneric = {{
    {{".env", ".env.backup", ".env.old"}, Template::kDotEnv},
    {{"backup.sql", "db-backup.sql", "site-backup.sql"}, Template::kSqlDump},
    {{"config.php.bak", "config.php.old", "config.inc.php.bak"}, Template::kPhpConfig},
}};

bool exists_under(int root_fd, std::string_view rel) {
  struct stat st {};
  return ::fstatat(root_fd, std::string(rel).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 ||
         errno != ENOENT;  // unreadable: as good as taken
}

// The characters an URL prefix may hold: nothing that needs quoting in a rule's pattern
// or in TOML.
bool is_url_prefix(std::string_view p) {
  if (p.empty() || p.front() != '/' || p.size() > 256 || p.find("//") != std::string_view::npos)
    return false;
  return std::all_of(p.begin(), p.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' ||
           c == '-' || c == '_' || c == '.' || c == '~';
  });
}

std::string wp_config(const Decoy& d, const std::string& db, const RandomText& random) {
  std::string keys;
  for (const char* k : {"AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY", "AUTH_SALT",
                        "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"})
    keys += fmt::format("define( '{}', {:>{}}'{}' );\n", k, "", 17 - std::string_view(k).size(),
                        random(64));
  return fmt::format(
      "<?php\n"
      "/**\n"
      " * The base configuration for WordPress\n"
      " *\n"
      " * @package WordPress\n"
      " */\n\n"
      "// ** Database settings - You can get this info from your web host ** //\n"
      "define( 'DB_NAME', '{}' );\n"
      "define( 'DB_USER', '{}' );\n"
      "define( 'DB_PASSWORD', '{}' );\n"
      "define( 'DB_HOST', 'localhost' );\n"
      "define( 'DB_CHARSET', 'utf8mb4' );\n"
      "define( 'DB_COLLATE', '' );\n\n"
      "{}\n"
      "$table_prefix = 'wp_';\n\n"
      "define( 'WP_DEBUG', false );\n\n"
      "if ( ! defined( 'ABSPATH' ) ) {{\n"
      "\tdefine( 'ABSPATH', __DIR__ . '/' );\n"
      "}}\n\n"
      "require_once ABSPATH . 'wp-settings.php';\n",
      db, d.user, d.password, keys);
}

std::string sql_dump(const Decoy& d, const std::string& db, const RandomText& random) {
  return fmt::format(
      "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n"
      "--\n"
      "-- Host: localhost    Database: {db}\n"
      "-- ------------------------------------------------------\n"
      "-- Server version\t8.0.36\n\n"
      "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{db}` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;\n"
      "CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{password}';\n"
      "GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'localhost';\n"
      "USE `{db}`;\n\n"
      "DROP TABLE IF EXISTS `wp_users`;\n"
      "CREATE TABLE `wp_users` (\n"
      "  `ID` bigint unsigned NOT NULL AUTO_INCREMENT,\n"
      "  `user_login` varchar(60) NOT NULL DEFAULT '',\n"
      "  `user_pass` varchar(255) NOT NULL DEFAULT '',\n"
      "  `user_email` varchar(100) NOT NULL DEFAULT '',\n"
      "  PRIMARY KEY (`ID`)\n"
      ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\n"
      "LOCK TABLES `wp_users` WRITE;\n"
      "INSERT INTO `wp_users` VALUES (1,'{user}','$P$B{hash}','{user}@localhost');\n"
      "UNLOCK TABLES;\n\n"
      "-- Dump completed\n",
      fmt::arg("db", db), fmt::arg("user", d.user), fmt::arg("password", d.password),
      fmt::arg("hash", random(30)));
}

std::string dot_env(const Decoy& d, const std::string& db, const RandomText& random) {
  return fmt::format(
      "APP_ENV=production\n"
      "APP_DEBUG=false\n"
      "APP_KEY=base64:{key}\n\n"
      "DB_CONNECTION=mysql\n"
      "DB_HOST=127.0.0.1\n"
      "DB_PORT=3306\n"
      "DB_DATABASE={db}\n"
      "DB_USERNAME={user}\n"
      "DB_PASSWORD={password}\n\n"
      "MAIL_MAILER=smtp\n"
      "MAIL_HOST=localhost\n"
      "MAIL_PORT=587\n"
      "MAIL_USERNAME={user}\n"
      "MAIL_PASSWORD={password}\n",
      fmt::arg("key", random(43)), fmt::arg("db", db), fmt::arg("user", d.user),
      fmt::arg("password", d.password));
}

std::string php_config(const Decoy& d, const std::string& db) {
  return fmt::format(
      "<?php\n"
      "// Database connection\n"
      "$db_host = 'localhost';\n"
      "$db_name = '{}';\n"
      "$db_user = '{}';\n"
      "$db_pass = '{}';\n",
      db, d.user, d.password);
}

std::string content_of(Template what, const Decoy& d, const RandomText& random) {
  const std::string db = "wp_" + random(5);
  switch (what) {
    case Template::kWpConfig:
      return wp_config(d, db, random);
    case Template::kSqlDump:
      return sql_dump(d, db, random);
    case Template::kDotEnv:
      return dot_env(d, db, random);
    case Template::kPhpConfig:
      return php_config(d, db);
  }
  return {};
}

// What Vectorscan would read as an operator, escaped (the URL's other characters are
// checked by is_url_prefix and the names above).
std::string regex_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view(".^$|?*+()[]{}\\").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string_view site_kind_name(SiteKind kind) {
  return kind == SiteKind::kWordPress ? "wordpress" : "generic";
}

std::string random_text(size_t n) {
  static constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    uint8_t buf[64];
    const ssize_t got = ::getrandom(buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) std::abort();  // a kernel without getrandom: nothing to plant with
    for (ssize_t i = 0; i < got && out.size() < n; ++i)
      if (buf[i] < 252) out += kAlphabet[buf[i] % kAlphabet.size()];  // 252 = 7 * 36: unbiased
  }
  return out;
}

SiteKind detect_site(int root_fd) {
  return exists_under(root_fd, "wp-config.php") || exists_under(root_fd, "wp-includes/version.php")
             ? SiteKind::kWordPress
             : SiteKind::kGeneric;
}

Result<std::vector<Decoy>> plan(int root_fd, const std::string& root, std::string_view url_prefix,
                                size_t count, const std::vector<std::string>& taken,
                                const RandomText& random) {
  if (!is_url_prefix(url_prefix))
    return tl::unexpected(Error{"decoys", std::string(url_prefix), 0,
                                "the URL prefix must be an absolute path of [A-Za-z0-9._~/-]"});
  const SiteKind kind = detect_site(root_fd);
  const auto& candidates = kind == SiteKind::kWordPress ? kWordPress : kGeneric;
  std::vector<Decoy> out;
  for (const Candidate& c : candidates) {
    if (out.size() >= count) break;
    for (std::string_view name : c.names) {
      if (std::find(taken.begin(), taken.end(), name) != taken.end()) break;  // planted once
      if (exists_under(root_fd, name)) continue;
      Decoy d;
      d.root = root;
      d.rel = std::string(name);
      d.url = std::string(url_prefix) + (url_prefix.back() == '/' ? "" : "/") + d.rel;
      d.token = random(12);
      d.user = (kind == SiteKind::kWordPress ? "wp_" : "app_") + random(6);
      d.password = random(20);
      d.content = content_of(c.what, d, random);
      out.push_back(std::move(d));
      break;
    }
  }
  return out;
}

std::string rules_text(const std::vector<Decoy>& decoys) {
  std::string out =
      "# Written by 'mamori decoys plant': one rule per decoy file (docs/decoys.md).\n"
      "# Replaced at each plant; do not edit.\n";
  for (const Decoy& d : decoys)
    out += fmt::format(
        "\n[[rule]]\n"
        "id = \"decoy-{}\"\n"
        "description = \"Asked for the decoy file {}: no visitor has a reason to\"\n"
        "pattern = '^{}(\\?|$)'\n"
        "case_sensitive = true\n"
        "action = \"ban\"\n"
        "severity = \"critical\"\n"
        "tags = [\"decoy\"]\n",
        d.token, d.url, regex_escape(d.url));
  return out;
}

json to_json(const std::vector<Decoy>& decoys) {
  json list = json::array();
  for (const Decoy& d : decoys)
    list.push_back({{"root", d.root},
                    {"path", d.rel},
                    {"url", d.url},
                    {"token", d.token},
                    {"user", d.user},
                    {"password", d.password}});
  return {{"v", 1}, {"decoys", std::move(list)}};
}

Result<std::vector<Decoy>> from_json(const json& j) {
  const auto bad = [](const std::string& why) {
    return tl::unexpected(Error{"decoys", "decoys.json", 0, why});
  };
  if (!j.is_object() || j.value("v", 0) != 1 || !j.contains("decoys") || !j["decoys"].is_array())
    return bad("not a version-1 record of decoys");
  std::vector<Decoy> out;
  for (const auto& e : j["decoys"]) {
    Decoy d;
    for (auto [key, field] : {std::pair{"root", &d.root},
                              {"path", &d.rel},
                              {"url", &d.url},
                              {"token", &d.token},
                              {"user", &d.user},
                              {"password", &d.password}}) {
      if (!e.is_object() || !e.contains(key) || !e[key].is_string())
        return bad(fmt::format("decoy {}: \"{}\" must be a string", out.size(), key));
      *field = e[key].get<std::string>();
    }
    if (!is_url_prefix(d.url)) return bad(fmt::format("decoy {}: a bad url", out.size()));
    if (d.token.size() != 12 || !std::all_of(d.token.begin(), d.token.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        }))
      return bad(fmt::format("decoy {}: a bad token", out.size()));
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<Decoy>> load_record(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return std::vector<Decoy>{};
    return fail_errno("open", path);
  }
  std::stringstream text;
  text << in.rdbuf();
  auto list = from_json(nlohmann::json::parse(text.str(), nullptr, false));
  if (!list) return fail_msg("read", path, list.error().message());
  return list;
}

}  // namespace mamori::decoy
