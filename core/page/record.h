#pragma once
// What the page monitor keeps of one URL (STATE/pages/<hash of the URL>.json,
// docs/pages.md "The record"): the baseline of its active content, the content of the
// last fetch, the new elements already reported (so each is reported once, also across
// restarts), and the last fetch's error. The agent's page monitor writes it after each
// fetch; `mamori pages accept` makes `current` the baseline. Both hold lock_records()
// around their read-modify-write, so neither loses the other's change.
//
// Also: which new elements count (new_elements) and the per-page origin allowlist.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "core/page/active_content.h"

namespace mamori::page {

struct PageRecord {
  std::string url;
  ActiveContent baseline;
  int64_t baseline_ns = 0;
  std::string baseline_by;  // "first-fetch" or "accept"
  ActiveContent current;    // the last successful fetch: every user agent's, merged
  int64_t current_ns = 0;
  std::vector<Element> reported;  // new elements reported since the baseline
  std::string error;              // the last fetch's failure; "" when it succeeded
  int64_t error_ns = 0;
};

// The elements of `now` whose identity (kind, value) `baseline` lacks, in order.
std::vector<Element> new_elements(const ActiveContent& baseline, const ActiveContent& now);

// [[page]] allow_origins: "self" (the page's own origin), an origin
// ("https://cdn.example.com", default ports dropped), a wildcard of subdomains
// ("https://*.example.com": not example.com itself), or a scheme alone ("data:").
// Inline code (kInlineOrigin) is never allowed by origin: its hash is its identity.
class OriginAllowlist {
 public:
  static Result<OriginAllowlist> compile(const std::vector<std::string>& entries,
                                         std::string_view page_url);
  bool allows(const Element& e) const;

 private:
  std::vector<std::string> exact_;
  std::vector<std::string> suffixes_;  // "https://" + ".example.com"
};

// The JSON document (version 1) and back; parse_record checks every field's type.
std::string record_json(const PageRecord& r);
Result<PageRecord> parse_record(std::string_view text, const std::string& path);

// STATE/pages and a URL's record in it.
std::string records_dir(const std::string& state_dir);
std::string record_path(const std::string& state_dir, std::string_view url);
// nullopt when there is no record yet.
Result<std::optional<PageRecord>> load_record(const std::string& path);
// Atomically (fs::write_file_atomic), 0600, making STATE/pages (0700) when missing.
Status save_record(Env& env, const std::string& path, const PageRecord& r);
// An exclusive flock() on STATE/pages/lock, held until the fd closes; waits for it.
Result<UniqueFd> lock_records(const std::string& state_dir);

}  // namespace mamori::page
