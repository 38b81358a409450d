#pragma once
// Discovery of the most requested HTML pages from an access log (docs/pages.md,
// Discovery). The log is the attacker's to write: every request line is theirs to
// choose, so
//   - only a GET answered 200 for a same-site path that looks like a page counts
//     (discoverable_target: no absolute URL, no static asset, no query unless it is one
//     numeric parameter the config names: a query may hold a token);
//   - a path counts by how many distinct client addresses requested it, never by how
//     many requests: one address that repeats a request, or requests a million distinct
//     paths, adds one to a path's clients each; a path needs min_clients of them;
//   - the table is bounded (kMaxCandidates paths); a new path when it is full evicts the
//     oldest path only one address has asked for, or is dropped when every path has two
//     or more: a flood of distinct paths churns among itself and never pushes out a path
//     that real visitors share.
//
// Pure and single-threaded: the caller locks (agent/pages/discovery.h).

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"

namespace mamori::page {

// The path (and kept query) a GET of `target`, as the request line has it, asks for, or
// nullopt when it is not a page to discover: not starting with a single '/' (an
// absolute or scheme-relative URL), longer than kMaxDiscoveredPath, a byte outside the
// URL's path characters or a bad %-escape, a '.' or '..' segment or an empty one, an
// extension other than html htm shtml xhtml php asp aspx jsp, a segment wp-admin,
// wp-includes, wp-content, wp-json or feed (no pages there), or xmlrpc.php, wp-cron.php
// or admin-ajax.php (endpoints, not pages). The fragment and the query are dropped, but
// a query of one parameter named in `keep_query` whose value is 1-12 digits is kept.
constexpr size_t kMaxDiscoveredPath = 512;
std::optional<std::string> discoverable_target(std::string_view target,
                                               const std::vector<std::string>& keep_query);

class RequestTable {
 public:
  static constexpr size_t kMaxCandidates = 1024;
  // Distinct clients are counted in a bitmap of this many bits per path (linear
  // counting: exact while few, about right up to a few thousand).
  static constexpr size_t kBits = 512;

  // `salt` keys the hash of client addresses: an attacker who does not know it cannot
  // choose addresses that fall on the same bit.
  explicit RequestTable(uint64_t salt) : salt_(salt) {}

  // One request for `path` (a discoverable_target()) by the address `client` (as logged).
  // Returns how many distinct clients the path has now when this one is new to it, else
  // 0 (also when the path was dropped).
  uint32_t note(std::string_view path, std::string_view client);

  struct Ranked {
    std::string path;
    double clients = 0;  // the estimated count of distinct addresses
    uint64_t requests = 0;
  };
  // Paths with at least `min_clients` distinct addresses, most first (then requests,
  // then path).
  std::vector<Ranked> ranked(uint32_t min_clients) const;
  // The estimate for one path (0 when it is not in the table).
  double clients(std::string_view path) const;
  void clear();
  size_t size() const { return candidates_.size(); }
  // New paths refused because every path in the full table had two clients or more.
  uint64_t dropped() const { return dropped_; }

 private:
  struct Candidate {
    std::array<uint64_t, kBits / 64> bits{};
    uint32_t set = 0;  // bits set
    uint64_t requests = 0;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static double estimate(uint32_t set);
  bool make_room();

  uint64_t salt_;
  std::unordered_map<std::string, Candidate, Hash, std::equal_to<>> candidates_;
  // Paths in the order they came, while they may have one client: who is evicted first.
  std::deque<std::string> single_;
  uint64_t dropped_ = 0;
};

// The discovered set: at most `n` paths with their score (estimated distinct clients)
// and when each joined. rank() merges a table's ranking into it: a path of the set keeps
// the larger of its new count and half its old one (so a page nobody visits any more
// fades out in a few rankings), and the n best of both are the new set.
struct DiscoveredPage {
  std::string path;
  double clients = 0;
  int64_t since_ns = 0;
};
std::vector<DiscoveredPage> rank_discovered(const std::vector<DiscoveredPage>& current,
                                            const std::vector<RequestTable::Ranked>& ranked,
                                            size_t n, int64_t now_ns);

// STATE/pages/discovered.json (0600, replaced atomically; docs/pages.md):
//   {"version": 1, "base_url": "https://www.example.com",
//    "pages": [{"path": "/", "clients": 41.2, "since_ns": N}]}
// The agent writes it when the set changes, so a restart keeps what was discovered;
// `mamori pages list` reads it. At most 256 pages; a path that is not a
// discoverable_target (with every query kept) makes the file invalid.
struct DiscoveredSet {
  std::string base_url;
  std::vector<DiscoveredPage> pages;
};
std::string discovered_path(const std::string& state_dir);
// nullopt when there is none yet.
Result<std::optional<DiscoveredSet>> load_discovered(const std::string& path);
Status save_discovered(Env& env, const std::string& path, const DiscoveredSet& set);

}  // namespace mamori::page
