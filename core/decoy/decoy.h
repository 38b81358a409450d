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

// The record of planted decoys (STATE/decoys.json), without their content.
nlohmann::json to_json(const std::vector<Decoy>& decoys);
Result<std::vector<Decoy>> from_json(const nlohmann::json& j);
// The record at `path`; none when the file does not exist (nothing planted yet).
Result<std::vector<Decoy>> load_record(const std::string& path);

}  // namespace mamori::decoy
