#pragma once
// Honeytoken files: decoys planted inside the real site (ARCHITECTURE.md, attacker
// intelligence). What a scanner or an intruder looks for first on a web server is a
// forgotten backup of the site's configuration or database; mamori plants files with
// such names, each holding fake credentials unique to this node, served by the real web
// server and guarded like every other file. No visitor has a reason to ask for one, so a
// request for it is a near-certain attack: the access-log rules made here ban on first
// touch, and a credential used later (e.g. on the SSH honeypot) names the file it came
// from by its token.
//
// Names follow what the site is (a WordPress tree gets wp-config.php.bak, not
// config.php.bak) and are never one the site already uses. Pure functions: the caller
// writes the files (cli/commands/decoys.cc) and gives the randomness.
//
// Threads: no state.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/result.h"

namespace mamori::decoy {

enum class SiteKind { kWordPress, kGeneric };
std::string_view site_kind_name(SiteKind kind);

// `n` characters of [a-z0-9], unpredictable in production (getrandom), seeded in tests.
using RandomText = std::function<std::string(size_t n)>;
// The production RandomText: getrandom(2).
std::string random_text(size_t n);

struct Decoy {
  std::string root;   // the guarded [[root]] it lies under
  std::string rel;    // its path under the root: a top-level name
  std::string url;    // where the web server serves it: url_prefix + rel
  std::string token;  // 12 characters, unique to this file, inside its credentials
  std::string user;   // the fake credential it holds
  std::string password;
  std::string content;
};

// What the tree under `root_fd` is: WordPress when wp-config.php or
// wp-includes/version.php is there.
SiteKind detect_site(int root_fd);

// Up to `count` decoys for the root at `root` (open as `root_fd`), served under
// `url_prefix` ("/" for a document root), with names that do not exist there and are not
// in `taken` (decoys planted before). Fails only when `url_prefix` is not an absolute
// URL path.
Result<std::vector<Decoy>> plan(int root_fd, const std::string& root, std::string_view url_prefix,
                                size_t count, const std::vector<std::string>& taken,
                                const RandomText& random);

// The access-log rules (docs/formats/rules.md) that ban whoever asks for one of
// `decoys`: one signature per file, anchored on its exact URL (a query string allowed),
// severity critical, tag "decoy", id "decoy-" + its token.
std::string rules_text(const std::vector<Decoy>& decoys);

// Decoy URLs: paths with no file behind them, which the web server answers as it answers
// any unknown path (404, never a catch-all 200, so a scanner cannot tell them apart).
//   kRobotsTrap  a random path listed only as a Disallow: line of robots.txt: good
//                crawlers obey it; whoever asks for it read robots.txt for targets.
//   kLinkTrap    a random path behind a link no human sees (WordPress: the mu-plugin's
//                invisible rel="nofollow" link in wp_footer), Disallowed as well.
//   kFakePath    an admin or installer path scanners probe (/adminer.php, /phpmyadmin/,
//                ...) that the site lacks at plant time.
enum class UrlKind { kRobotsTrap, kLinkTrap, kFakePath };
std::string_view url_kind_name(UrlKind kind);  // "robots-trap" | "link-trap" | "fake-path"

struct UrlDecoy {
  std::string root;
  UrlKind kind = UrlKind::kFakePath;
  std::string url;    // url_prefix + path; a directory ends in '/' ("/private-k3v9x0q2/")
  std::string token;  // 12 characters of [a-z0-9]
};
// "decoy-trap-" + token for the traps, "decoy-url-" + token for the fake paths.
std::string rule_id(const UrlDecoy& u);

// How the robots.txt trap is published on a root.
enum class Robots {
  kNone,    // not at all (robots.txt is there but is no regular file)
  kPlugin,  // WordPress's virtual robots.txt, by the mu-plugin's robots_txt filter
  kAppend,  // a group appended to the site's robots.txt
  kCreate,  // a robots.txt created with that group alone
};
std::string_view robots_name(Robots r);  // "none" | "plugin" | "appended" | "created"

// Where the WordPress must-use plugin goes, under a root.
inline constexpr std::string_view kPluginRel = "wp-content/mu-plugins/mamori-decoys.php";

// What one root gets besides its files.
struct Site {
  std::string root;
  SiteKind kind = SiteKind::kGeneric;
  Robots robots = Robots::kNone;
  bool plugin = false;  // kPluginRel written (WordPress with a real wp-content/ directory)
};

struct UrlPlan {
  Site site;
  std::vector<UrlDecoy> urls;
};

// The URL decoys for the root at `root` (open as `root_fd`) served under `url_prefix`:
// a robots.txt trap (unless robots.txt is there and no regular file), a link trap (with
// the plugin and a robots.txt trap only), and the fake paths of its kind that it lacks. Fails only
// on a bad `url_prefix`.
Result<UrlPlan> plan_urls(int root_fd, const std::string& root, std::string_view url_prefix,
                          const RandomText& random);

// The robots.txt group that Disallows the traps among `urls` ("" when there is none):
// "User-agent: *" and one "Disallow:" per trap, a group of its own (RFC 9309 merges groups
// for the same agent), to append to a robots.txt or to be one.
std::string robots_group(const std::vector<UrlDecoy>& urls);

// The rules (docs/formats/rules.md) of the URL decoys: each bans its URL and anything
// under it (a query string allowed), severity critical, tag "decoy"; the fake paths only
// when the answer is 403, 404 or 410 (a path the site later serves is not a decoy).
std::string url_rules_text(const std::vector<UrlDecoy>& urls);

// The rules that ban whoever used the credentials of one of `decoys` on wp-login.php
// (or xmlrpc.php): the plugin writes, to the credential log, a combined-format line
// `ADDR - - [TIME] "POST /wp-login.php?mamori-decoy-credential=TOKEN HTTP/1.1" 200 0 ...`;
// the rule "decoy-credential-" + TOKEN matches it, method POST, tag "decoy-credential",
// severity critical.
std::string credential_rules_text(const std::vector<Decoy>& decoys);

// The WordPress must-use plugin for one root: `decoys` are the root's files (their users'
// and passwords' SHA-256, never the passwords, with their tokens), `urls` its URL decoys
// (the robots_txt filter when `site.robots` is kPlugin; the wp_footer link), and
// `credential_log` where it appends (at most 1 MiB, then renamed to .1).
std::string plugin_text(const Site& site, const std::vector<Decoy>& decoys,
                        const std::vector<UrlDecoy>& urls, const std::string& credential_log);

// The SHA-256 of `s`, in lower-case hex (what the plugin compares).
std::string sha256_hex(std::string_view s);

// Everything planted (STATE/decoys.json, version 2; a version-1 record, files only, loads
// as one without URLs, sites or credential log).
struct Record {
  std::vector<Decoy> files;
  std::vector<UrlDecoy> urls;
  std::vector<Site> sites;
  std::string credential_log;  // the log the plugins append to; "" = none
};

// The record of planted decoys (STATE/decoys.json), without the files' content.
nlohmann::json to_json(const Record& record);
nlohmann::json to_json(const std::vector<Decoy>& decoys);
Result<Record> record_from_json(const nlohmann::json& j);
Result<std::vector<Decoy>> from_json(const nlohmann::json& j);
// The record at `path`; empty when the file does not exist (nothing planted yet).
Result<Record> load(const std::string& path);
// Its files only.
Result<std::vector<Decoy>> load_record(const std::string& path);

}  // namespace mamori::decoy
