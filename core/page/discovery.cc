#include "core/page/discovery.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/base/json_depth.h"
#include "core/fs/admin_files.h"
#include "core/page/url.h"

namespace mamori::page {
namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 pchar without '%' (checked apart) plus '/'.
bool is_path_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~!$&'()*+,;=:@/").find(c) != std::string_view::npos;
}

bool is_page_extension(std::string_view ext) {
  static constexpr std::string_view kPages[] = {"html", "htm", "shtml", "xhtml",
                                                "php",  "asp", "aspx",  "jsp"};
  const std::string lower = ascii_lower(ext);
  return std::find(std::begin(kPages), std::end(kPages), lower) != std::end(kPages);
}

bool is_excluded_segment(std::string_view seg) {
  static constexpr std::string_view kNoPages[] = {"wp-admin",    "wp-includes",   "wp-content",
                                                  "wp-json",     "feed",          "xmlrpc.php",
                                                  "wp-cron.php", "admin-ajax.php"};
  const std::string lower = ascii_lower(seg);
  return std::find(std::begin(kNoPages), std::end(kNoPages), lower) != std::end(kNoPages);
}

// The query kept: "name=digits" with `name` listed.
bool kept_query(std::string_view q, const std::vector<std::string>& keep) {
  const size_t eq = q.find('=');
  if (eq == std::string_view::npos) return false;
  const std::string_view name = q.substr(0, eq), value = q.substr(eq + 1);
  if (value.empty() || value.size() > 12 ||
      value.find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  return std::find(keep.begin(), keep.end(), name) != keep.end();
}

constexpr size_t kMaxDiscoveredBytes = 1 << 20;
constexpr size_t kMaxDiscoveredPages = 256;

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::optional<std::string> discoverable_target(std::string_view target,
                                               const std::vector<std::string>& keep_query) {
  if (const size_t hash = target.find('#'); hash != std::string_view::npos)
    target = target.substr(0, hash);
  std::string_view path = target, query;
  if (const size_t q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (path.empty() || path[0] != '/' || path.starts_with("//") || path.size() > kMaxDiscoveredPath)
    return std::nullopt;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%') {
      if (i + 2 >= path.size() || !is_hex(path[i + 1]) || !is_hex(path[i + 2])) return std::nullopt;
      i += 2;
    } else if (!is_path_char(path[i])) {
      return std::nullopt;
    }
  }
  // Segments: none empty (but the last, "/dir/"), none "." or "..", none excluded.
  std::string_view last;
  for (size_t start = 1; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(start, end - start);
    if (seg.empty() && end != path.size()) return std::nullopt;
    if (seg == "." || seg == ".." || is_excluded_segment(seg)) return std::nullopt;
    // %2e and %2f would be '.' and '/' to a server that decodes them: refused as such.
    const std::string lower = ascii_lower(seg);
    if (lower.find("%2e") != std::string::npos || lower.find("%2f") != std::string::npos ||
        lower.find("%5c") != std::string::npos)
      return std::nullopt;
    last = seg;
    start = end + 1;
  }
  if (const size_t dot = last.rfind('.');
      dot != std::string_view::npos && !is_page_extension(last.substr(dot + 1)))
    return std::nullopt;
  std::string out(path);
  if (!query.empty() && kept_query(query, keep_query)) {
    out += '?';
    out += query;
  }
  return out;
}

uint32_t RequestTable::note(std::string_view path, std::string_view client) {
  auto it = candidates_.find(path);
  if (it == candidates_.end()) {
    if (path.size() > kMaxDiscoveredPath) return 0;
    if (candidates_.size() >= kMaxCandidates && !make_room()) {
      ++dropped_;
      return 0;
    }
    it = candidates_.emplace(std::string(path), Candidate{}).first;
    single_.push_back(it->first);
  }
  Candidate& c = it->second;
  ++c.requests;
  const uint64_t h = mix(std::hash<std::string_view>{}(client) ^ salt_) % kBits;
  uint64_t& word = c.bits[h / 64];
  const uint64_t bit = uint64_t{1} << (h % 64);
  if (word & bit) return 0;
  word |= bit;
  return ++c.set;
}

bool RequestTable::make_room() {
  while (!single_.empty()) {
    std::string path = std::move(single_.front());
    single_.pop_front();
    auto it = candidates_.find(path);
    // Shared by two addresses since: it stays (and leaves the queue).
    if (it == candidates_.end() || it->second.set > 1) continue;
    candidates_.erase(it);
    return true;
  }
  return false;
}

double RequestTable::estimate(uint32_t set) {
  // Linear counting: with z of m bits still zero, about m ln(m / z) distinct values.
  const double m = kBits, z = static_cast<double>(kBits - set);
  return z < 1 ? m * std::log(m) : m * std::log(m / z);
}

std::vector<RequestTable::Ranked> RequestTable::ranked(uint32_t min_clients) const {
  std::vector<Ranked> out;
  for (const auto& [path, c] : candidates_)
    if (c.set >= min_clients) out.push_back({path, estimate(c.set), c.requests});
  std::sort(out.begin(), out.end(), [](const Ranked& a, const Ranked& b) {
    if (a.clients != b.clients) return a.clients > b.clients;
    if (a.requests != b.requests) return a.requests > b.requests;
    return a.path < b.path;
  });
  return out;
}

double RequestTable::clients(std::string_view path) const {
  auto it = candidates_.find(path);
  return it == candidates_.end() ? 0 : estimate(it->second.set);
}

void RequestTable::clear() {
  candidates_.clear();
  single_.clear();
}

std::vector<DiscoveredPage> rank_discovered(const std::vector<DiscoveredPage>& current,
                                            const std::vector<RequestTable::Ranked>& ranked,
                                            size_t n, int64_t now_ns) {
  std::map<std::string, DiscoveredPage, std::less<>> all;
  for (const auto& p : current) all[p.path] = {p.path, p.clients / 2, p.since_ns};
  for (const auto& r : ranked) {
    auto [it, fresh] = all.try_emplace(r.path, DiscoveredPage{r.path, r.clients, now_ns});
    if (!fresh) it->second.clients = std::max(it->second.clients, r.clients);
  }
  std::vector<DiscoveredPage> out;
  out.reserve(all.size());
  for (auto& [path, p] : all) out.push_back(std::move(p));
  // The set's own pages win a tie: a newcomer must do better to replace one.
  auto in_current = [&](const std::string& path) {
    return std::any_of(current.begin(), current.end(),
                       [&](const DiscoveredPage& p) { return p.path == path; });
  };
  std::stable_sort(out.begin(), out.end(), [&](const DiscoveredPage& a, const DiscoveredPage& b) {
    if (a.clients != b.clients) return a.clients > b.clients;
    return in_current(a.path) && !in_current(b.path);
  });
  if (out.size() > n) out.resize(n);
  std::sort(out.begin(), out.end(),
            [](const DiscoveredPage& a, const DiscoveredPage& b) { return a.path < b.path; });
  return out;
}

std::string discovered_path(const std::string& state_dir) {
  return state_dir + "/pages/discovered.json";
}

Result<std::optional<DiscoveredSet>> load_discovered(const std::string& path) {
  auto text = fs::read_small_file(path, kMaxDiscoveredBytes);
  if (!text) {
    if (text.error().errnum == ENOENT) return std::optional<DiscoveredSet>();
    return tl::unexpected(std::move(text).error());
  }
  const auto bad = [&](std::string what) {
    return fail_msg("read discovered pages", path, "not a discovered set (version 1): " + what);
  };
  if (!json_depth_within(*text)) return bad("nested too deeply");
  const auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not JSON");
  if (!j.contains("version") || j["version"] != 1) return bad("version");
  if (!j.contains("base_url") || !j["base_url"].is_string()) return bad("base_url");
  if (!j.contains("pages") || !j["pages"].is_array() || j["pages"].size() > kMaxDiscoveredPages)
    return bad("pages");
  DiscoveredSet set;
  set.base_url = j["base_url"].get<std::string>();
  for (const auto& p : j["pages"]) {
    if (!p.is_object() || !p.contains("path") || !p["path"].is_string() || !p.contains("clients") ||
        !p["clients"].is_number() || !p.contains("since_ns") || !p["since_ns"].is_number_integer())
      return bad("a page");
    DiscoveredPage d{p["path"].get<std::string>(), p["clients"].get<double>(),
                     p["since_ns"].get<int64_t>()};
    // The query kept when it was discovered, whatever its name.
    std::vector<std::string> keep;
    if (const size_t q = d.path.find('?'); q != std::string::npos)
      keep.push_back(d.path.substr(q + 1, d.path.find('=', q) - q - 1));
    if (discoverable_target(d.path, keep) != d.path) return bad("path " + d.path);
    set.pages.push_back(std::move(d));
  }
  return std::optional<DiscoveredSet>(std::move(set));
}

Status save_discovered(Env& env, const std::string& path, const DiscoveredSet& set) {
  auto pages = nlohmann::json::array();
  for (const auto& p : set.pages)
    pages.push_back({{"path", p.path}, {"clients", p.clients}, {"since_ns", p.since_ns}});
  const nlohmann::json j = {{"version", 1}, {"base_url", set.base_url}, {"pages", pages}};
  MAMORI_TRY(fs::make_private_dirs(path.substr(0, path.rfind('/'))));
  return fs::write_file_atomic(env, path, j.dump(1, ' ', false) + "\n", 0600);
}

}  // namespace mamori::page
