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

#include "core/hash/sha256.h"

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

bool is_token(std::string_view t) {
  return t.size() == 12 && std::all_of(t.begin(), t.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
         });
}

std::string join_url(std::string_view prefix, std::string_view path) {
  return std::string(prefix) + (prefix.back() == '/' ? "" : "/") + std::string(path);
}

// The paths scanners probe for a forgotten admin tool or installer, per site kind; the
// name checked under the root is the path's first component.
struct FakePath {
  std::string_view path;   // as served, under the URL prefix
  std::string_view probe;  // what must not exist under the root
};
constexpr std::array<FakePath, 4> kWordPressFakes = {{
    {".git/config", ".git"},
    {"adminer.php", "adminer.php"},
    {"phpmyadmin/", "phpmyadmin"},
    {"installer.php", "installer.php"},  // Duplicator's installer, left behind after a move
}};
constexpr std::array<FakePath, 4> kGenericFakes = {{
    {".git/config", ".git"},
    {"adminer.php", "adminer.php"},
    {"phpmyadmin/", "phpmyadmin"},
    {"install.php", "install.php"},
}};

// Words a forgotten directory has, for the traps' names.
constexpr std::array<std::string_view, 8> kTrapWords = {"private",  "backup",  "old",    "staging",
                                                        "internal", "archive", "export", "dev"};

std::string trap_path(const RandomText& random) {
  const std::string pick = random(1);
  const size_t i = static_cast<size_t>(pick[0]) % kTrapWords.size();
  return fmt::format("{}-{}/", kTrapWords[i], random(8));
}

// A PHP single-quoted string literal of `s` (which holds no NUL).
std::string php_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

// `url` as a rule's pattern: the exact path, or (a directory) it and anything under it,
// a query string allowed.
std::string url_pattern(std::string_view url) {
  if (url.size() > 1 && url.back() == '/')
    return "^" + regex_escape(url.substr(0, url.size() - 1)) + "(/|\\?|$)";
  return "^" + regex_escape(url) + "(\\?|$)";
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

std::string_view url_kind_name(UrlKind kind) {
  switch (kind) {
    case UrlKind::kRobotsTrap:
      return "robots-trap";
    case UrlKind::kLinkTrap:
      return "link-trap";
    case UrlKind::kFakePath:
      return "fake-path";
  }
  return "";
}

std::string rule_id(const UrlDecoy& u) {
  return (u.kind == UrlKind::kFakePath ? "decoy-url-" : "decoy-trap-") + u.token;
}

std::string_view robots_name(Robots r) {
  switch (r) {
    case Robots::kNone:
      return "none";
    case Robots::kPlugin:
      return "plugin";
    case Robots::kAppend:
      return "appended";
    case Robots::kCreate:
      return "created";
  }
  return "";
}

Result<UrlPlan> plan_urls(int root_fd, const std::string& root, std::string_view url_prefix,
                          const RandomText& random) {
  if (!is_url_prefix(url_prefix))
    return tl::unexpected(Error{"decoys", std::string(url_prefix), 0,
                                "the URL prefix must be an absolute path of [A-Za-z0-9._~/-]"});
  UrlPlan out;
  out.site.root = root;
  out.site.kind = detect_site(root_fd);
  struct stat st {};
  // The plugin goes where WordPress looks by default (WP_CONTENT_DIR = ABSPATH/wp-content);
  // a wp-content that is a symlink or missing means the content lives elsewhere.
  out.site.plugin = out.site.kind == SiteKind::kWordPress &&
                    ::fstatat(root_fd, "wp-content", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISDIR(st.st_mode);
  if (::fstatat(root_fd, "robots.txt", &st, AT_SYMLINK_NOFOLLOW) == 0)
    out.site.robots = S_ISREG(st.st_mode) ? Robots::kAppend : Robots::kNone;
  else if (errno != ENOENT)
    out.site.robots = Robots::kNone;  // unreadable: leave it alone
  else
    out.site.robots = out.site.plugin ? Robots::kPlugin : Robots::kCreate;

  const auto add = [&](UrlKind kind, std::string_view path) {
    out.urls.push_back({root, kind, join_url(url_prefix, path), random(12)});
  };
  const auto fresh_trap = [&] {
    for (;;) {  // a name the site has is never a trap (a chance in 36^8, but cheap to check)
      std::string t = trap_path(random);
      if (!exists_under(root_fd, t.substr(0, t.size() - 1))) return t;
    }
  };
  if (out.site.robots != Robots::kNone) add(UrlKind::kRobotsTrap, fresh_trap());
  // A link crawlers are not told to leave alone (no robots.txt of ours) is no trap.
  if (out.site.plugin && out.site.robots != Robots::kNone) add(UrlKind::kLinkTrap, fresh_trap());
  for (const FakePath& f : out.site.kind == SiteKind::kWordPress ? kWordPressFakes : kGenericFakes)
    if (!exists_under(root_fd, f.probe)) add(UrlKind::kFakePath, f.path);
  return out;
}

std::string robots_group(const std::vector<UrlDecoy>& urls) {
  std::string lines;
  for (const UrlDecoy& u : urls)
    if (u.kind != UrlKind::kFakePath) lines += "Disallow: " + u.url + "\n";
  return lines.empty() ? "" : "User-agent: *\n" + lines;
}

std::string url_rules_text(const std::vector<UrlDecoy>& urls) {
  std::string out;
  for (const UrlDecoy& u : urls) {
    const bool fake = u.kind == UrlKind::kFakePath;
    out += fmt::format(
        "\n[[rule]]\n"
        "id = \"{}\"\n"
        "description = \"Asked for the decoy URL {} ({}): no visitor has a reason to\"\n"
        "pattern = '{}'\n"
        "case_sensitive = true\n"
        "{}"
        "action = \"ban\"\n"
        "severity = \"critical\"\n"
        "tags = [\"decoy\"]\n",
        rule_id(u), u.url, url_kind_name(u.kind), url_pattern(u.url),
        fake ? "status = [403, 404, 410]\n" : "");
  }
  return out;
}

std::string credential_rules_text(const std::vector<Decoy>& decoys) {
  std::string out;
  for (const Decoy& d : decoys)
    out += fmt::format(
        "\n[[rule]]\n"
        "id = \"decoy-credential-{0}\"\n"
        "description = \"Logged in with the credentials of the decoy file {1}\"\n"
        "pattern = '^/(wp-login|xmlrpc)\\.php\\?mamori-decoy-credential={0}$'\n"
        "case_sensitive = true\n"
        "method = \"POST\"\n"
        "action = \"ban\"\n"
        "severity = \"critical\"\n"
        "tags = [\"decoy-credential\"]\n",
        d.token, d.url);
  return out;
}

std::string sha256_hex(std::string_view s) { return hash::sha256(s).hex(); }

std::string plugin_text(const Site& site, const std::vector<Decoy>& decoys,
                        const std::vector<UrlDecoy>& urls, const std::string& credential_log) {
  std::string hashes;
  for (const Decoy& d : decoys) {
    if (d.root != site.root) continue;
    hashes += fmt::format("    '{}' => '{}',\n", sha256_hex(d.user), d.token);
    hashes += fmt::format("    '{}' => '{}',\n", sha256_hex(d.password), d.token);
  }
  std::string link_url;
  for (const UrlDecoy& u : urls)
    if (u.root == site.root && u.kind == UrlKind::kLinkTrap) link_url = u.url;
  std::vector<UrlDecoy> robots;
  for (const UrlDecoy& u : urls)
    if (u.root == site.root) robots.push_back(u);
  const std::string group = site.robots == Robots::kPlugin ? robots_group(robots) : "";

  std::string out = fmt::format(
      R"PHP(<?php
/*
 * Plugin Name: mamori decoys
 * Description: Decoys of mamori (docs/decoys.md). Written by 'mamori decoys plant' and guarded: do not edit.
 */

if ( ! defined( 'ABSPATH' ) ) {{
	exit;
}}

// The SHA-256 of each decoy file's fake user and password, and the file's token.
function mamori_decoy_tokens() {{
	return array(
{hashes}	);
}}

// A submitted user or password that is a decoy's: one line per decoy file, in nginx's
// combined format, to the log mamori's agent follows.
function mamori_decoy_authenticate( $user, $username, $password ) {{
	$tokens = mamori_decoy_tokens();
	$used   = array();
	foreach ( array( $username, $password ) as $value ) {{
		if ( is_string( $value ) && '' !== $value ) {{
			$hash = hash( 'sha256', $value );
			if ( isset( $tokens[ $hash ] ) ) {{
				$used[ $tokens[ $hash ] ] = true;
			}}
		}}
	}}
	if ( $used ) {{
		mamori_decoy_log( array_keys( $used ) );
	}}
	return $user;
}}
add_filter( 'authenticate', 'mamori_decoy_authenticate', 1, 3 );

function mamori_decoy_log( $tokens ) {{
	$log  = {log};
	$addr = isset( $_SERVER['REMOTE_ADDR'] ) ? (string) $_SERVER['REMOTE_ADDR'] : '';
	if ( false === filter_var( $addr, FILTER_VALIDATE_IP ) ) {{
		return;
	}}
	$script = ( defined( 'XMLRPC_REQUEST' ) && XMLRPC_REQUEST ) ? 'xmlrpc.php' : 'wp-login.php';
	$agent  = isset( $_SERVER['HTTP_USER_AGENT'] ) ? substr( (string) $_SERVER['HTTP_USER_AGENT'], 0, 512 ) : '-';
	$agent  = preg_replace_callback(
		'/[\x00-\x1f"\\\\\x7f-\xff]/',
		function ( $m ) {{
			return sprintf( '\x%02X', ord( $m[0] ) );
		}},
		$agent
	);
	$time  = gmdate( 'd/M/Y:H:i:s' ) . ' +0000';
	$lines = '';
	foreach ( $tokens as $token ) {{
		$lines .= $addr . ' - - [' . $time . '] "POST /' . $script . '?mamori-decoy-credential=' . $token . ' HTTP/1.1" 200 0 "-" "' . $agent . "\"\n";
	}}
	clearstatcache( true, $log );
	$size = @filesize( $log );
	if ( false !== $size && $size > 1048576 ) {{
		@rename( $log, $log . '.1' );
	}}
	@file_put_contents( $log, $lines, FILE_APPEND | LOCK_EX );
}}
)PHP",
      fmt::arg("hashes", hashes), fmt::arg("log", php_quote(credential_log)));
  if (!group.empty())
    out += fmt::format(R"PHP(
// WordPress's virtual robots.txt (no robots.txt file): the traps, Disallowed.
add_filter(
	'robots_txt',
	function ( $output ) {{
		return rtrim( (string) $output, "\n" ) . "\n\n" . {};
	}},
	100
);
)PHP",
                       php_quote(group));
  if (!link_url.empty())
    out += fmt::format(R"PHP(
// A link no human sees or follows; crawlers are told not to (rel, robots.txt).
add_action(
	'wp_footer',
	function () {{
		echo '<a href="{}" rel="nofollow" style="display:none" aria-hidden="true" tabindex="-1">Archive</a>';
	}}
);
)PHP",
                       link_url);
  return out;
}

json to_json(const std::vector<Decoy>& decoys) { return to_json(Record{decoys, {}, {}, {}}); }

json to_json(const Record& record) {
  json files = json::array();
  for (const Decoy& d : record.files)
    files.push_back({{"root", d.root},
                     {"path", d.rel},
                     {"url", d.url},
                     {"token", d.token},
                     {"user", d.user},
                     {"password", d.password}});
  json urls = json::array();
  for (const UrlDecoy& u : record.urls)
    urls.push_back({{"root", u.root},
                    {"kind", url_kind_name(u.kind)},
                    {"url", u.url},
                    {"token", u.token},
                    {"rule", rule_id(u)}});
  json sites = json::array();
  for (const Site& s : record.sites)
    sites.push_back({{"root", s.root},
                     {"kind", site_kind_name(s.kind)},
                     {"robots", robots_name(s.robots)},
                     {"plugin", s.plugin}});
  return {{"v", 2},
          {"decoys", std::move(files)},
          {"urls", std::move(urls)},
          {"sites", std::move(sites)},
          {"credential_log", record.credential_log}};
}

Result<Record> record_from_json(const json& j) {
  const auto bad = [](const std::string& why) {
    return tl::unexpected(Error{"decoys", "decoys.json", 0, why});
  };
  const int v = j.is_object() ? j.value("v", 0) : 0;
  if ((v != 1 && v != 2) || !j.contains("decoys") || !j["decoys"].is_array())
    return bad("not a version-1 or version-2 record of decoys");
  const auto str = [](const json& e, const char* key) -> const std::string* {
    return e.is_object() && e.contains(key) && e[key].is_string()
               ? e[key].get_ptr<const std::string*>()
               : nullptr;
  };
  Record out;
  for (const auto& e : j["decoys"]) {
    Decoy d;
    for (auto [key, field] : {std::pair{"root", &d.root},
                              {"path", &d.rel},
                              {"url", &d.url},
                              {"token", &d.token},
                              {"user", &d.user},
                              {"password", &d.password}}) {
      const std::string* s = str(e, key);
      if (!s) return bad(fmt::format("decoy {}: \"{}\" must be a string", out.files.size(), key));
      *field = *s;
    }
    if (!is_url_prefix(d.url)) return bad(fmt::format("decoy {}: a bad url", out.files.size()));
    if (!is_token(d.token)) return bad(fmt::format("decoy {}: a bad token", out.files.size()));
    out.files.push_back(std::move(d));
  }
  if (v == 1) return out;
  if (!j.contains("urls") || !j["urls"].is_array() || !j.contains("sites") ||
      !j["sites"].is_array() || !str(j, "credential_log"))
    return bad("a version-2 record needs \"urls\", \"sites\" and \"credential_log\"");
  for (const auto& e : j["urls"]) {
    const std::string *root = str(e, "root"), *kind = str(e, "kind"), *url = str(e, "url"),
                      *token = str(e, "token");
    const size_t n = out.urls.size();
    if (!root || !kind || !url || !token)
      return bad(
          fmt::format("url {}: \"root\", \"kind\", \"url\" and \"token\" must be strings", n));
    UrlDecoy u{*root, UrlKind::kFakePath, *url, *token};
    if (*kind == "robots-trap")
      u.kind = UrlKind::kRobotsTrap;
    else if (*kind == "link-trap")
      u.kind = UrlKind::kLinkTrap;
    else if (*kind != "fake-path")
      return bad(fmt::format("url {}: an unknown kind", n));
    if (!is_url_prefix(u.url)) return bad(fmt::format("url {}: a bad url", n));
    if (!is_token(u.token)) return bad(fmt::format("url {}: a bad token", n));
    out.urls.push_back(std::move(u));
  }
  for (const auto& e : j["sites"]) {
    const std::string *root = str(e, "root"), *kind = str(e, "kind"), *robots = str(e, "robots");
    const size_t n = out.sites.size();
    if (!root || !kind || !robots || !e.contains("plugin") || !e["plugin"].is_boolean())
      return bad(fmt::format("site {}: a bad entry", n));
    Site s;
    s.root = *root;
    s.kind = *kind == "wordpress" ? SiteKind::kWordPress : SiteKind::kGeneric;
    s.plugin = e["plugin"].get<bool>();
    bool known = false;
    for (Robots r : {Robots::kNone, Robots::kPlugin, Robots::kAppend, Robots::kCreate})
      if (*robots == robots_name(r)) s.robots = r, known = true;
    if (!known) return bad(fmt::format("site {}: an unknown robots", n));
    out.sites.push_back(std::move(s));
  }
  out.credential_log = j["credential_log"].get<std::string>();
  if (!out.credential_log.empty() && out.credential_log.front() != '/')
    return bad("the credential log must be an absolute path");
  return out;
}

Result<std::vector<Decoy>> from_json(const json& j) {
  auto r = MAMORI_TRY(record_from_json(j));
  return std::move(r.files);
}

Result<Record> load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return Record{};
    return fail_errno("open", path);
  }
  std::stringstream text;
  text << in.rdbuf();
  auto record = record_from_json(nlohmann::json::parse(text.str(), nullptr, false));
  if (!record) return fail_msg("read", path, record.error().message());
  return record;
}

Result<std::vector<Decoy>> load_record(const std::string& path) {
  auto r = MAMORI_TRY(load(path));
  return std::move(r.files);
}

}  // namespace mamori::decoy
