#include "core/page/record.h"

#include <sys/file.h>

#include <algorithm>
#include <cerrno>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/base/json_depth.h"
#include "core/fs/admin_files.h"
#include "core/hash/sha256.h"

namespace mamori::page {
namespace {

// A record holds at most Limits::max_elements per content (2000 of at most ~2 KiB):
// larger is damage.
constexpr size_t kMaxRecordBytes = 32 << 20;

nlohmann::json elements_json(const std::vector<Element>& v) {
  auto a = nlohmann::json::array();
  for (const auto& e : v) {
    nlohmann::json j = {{"kind", e.kind}, {"value", e.value}, {"origin", e.origin}};
    if (!e.snippet.empty()) j["snippet"] = e.snippet;
    a.push_back(std::move(j));
  }
  return a;
}

bool read_elements(const nlohmann::json& a, std::vector<Element>& out) {
  if (!a.is_array()) return false;
  for (const auto& j : a) {
    if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string() || !j.contains("value") ||
        !j["value"].is_string() || !j.contains("origin") || !j["origin"].is_string() ||
        (j.contains("snippet") && !j["snippet"].is_string()))
      return false;
    out.push_back({j["kind"].get<std::string>(), j["value"].get<std::string>(),
                   j["origin"].get<std::string>(), j.value("snippet", std::string())});
  }
  return true;
}

bool read_content(const nlohmann::json& j, ActiveContent& c) {
  if (!j.is_object() || !j.contains("elements") || !read_elements(j["elements"], c.elements))
    return false;
  std::sort(c.elements.begin(), c.elements.end());
  if (j.contains("truncated")) {
    if (!j["truncated"].is_boolean()) return false;
    c.truncated = j["truncated"].get<bool>();
  }
  return true;
}

template <class T>
bool get(const nlohmann::json& j, const char* key, T& out) {
  if (!j.contains(key)) return true;  // optional
  const auto& v = j[key];
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return false;
  } else {
    if (!v.is_number_integer()) return false;
  }
  out = v.get<T>();
  return true;
}

}  // namespace

std::vector<Element> new_elements(const ActiveContent& baseline, const ActiveContent& now) {
  std::vector<Element> out;
  for (const auto& e : now.elements)
    if (!std::binary_search(baseline.elements.begin(), baseline.elements.end(), e))
      out.push_back(e);
  return out;
}

Result<OriginAllowlist> OriginAllowlist::compile(const std::vector<std::string>& entries,
                                                 std::string_view page_url) {
  OriginAllowlist a;
  for (const auto& entry : entries) {
    if (auto problem = allow_origin_problem(entry); !problem.empty())
      return fail_msg("allow_origins", entry, problem);
    if (entry == "self") {
      a.exact_.push_back(origin_of(page_url));
    } else if (const size_t star = entry.find("://*."); star != std::string::npos) {
      std::string suffix = entry.substr(star + 4);
      if (suffix.ends_with("/")) suffix.pop_back();
      a.suffixes_.push_back(entry.substr(0, star + 3) + "\n" + suffix);
    } else {
      a.exact_.push_back(origin_of(entry));
    }
  }
  return a;
}

bool OriginAllowlist::allows(const Element& e) const {
  if (e.origin == kInlineOrigin || e.origin.empty()) return false;
  if (std::find(exact_.begin(), exact_.end(), e.origin) != exact_.end()) return true;
  for (const auto& s : suffixes_) {
    const size_t nl = s.find('\n');
    const std::string_view scheme = std::string_view(s).substr(0, nl);   // "https://"
    const std::string_view suffix = std::string_view(s).substr(nl + 1);  // ".example.com[:p]"
    if (!e.origin.starts_with(scheme)) continue;
    const std::string_view host = std::string_view(e.origin).substr(scheme.size());
    if (host.size() > suffix.size() && host.ends_with(suffix)) return true;
  }
  return false;
}

std::string record_json(const PageRecord& r) {
  nlohmann::json j = {
      {"version", 1},
      {"url", r.url},
      {"baseline",
       {{"taken_ns", r.baseline_ns},
        {"by", r.baseline_by},
        {"truncated", r.baseline.truncated},
        {"elements", elements_json(r.baseline.elements)}}},
      {"current",
       {{"fetched_ns", r.current_ns},
        {"truncated", r.current.truncated},
        {"elements", elements_json(r.current.elements)}}},
      {"reported", elements_json(r.reported)},
      {"error", r.error},
      {"error_ns", r.error_ns},
  };
  return j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<PageRecord> parse_record(std::string_view text, const std::string& path) {
  const auto bad = [&](std::string what) {
    return fail_msg("read page record", path, "not a page record (version 1): " + what);
  };
  if (!json_depth_within(text)) return bad("nested too deeply");
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not JSON");
  if (!j.contains("version") || j["version"] != 1) return bad("version");
  PageRecord r;
  if (!j.contains("url") || !j["url"].is_string()) return bad("url");
  r.url = j["url"].get<std::string>();
  if (!j.contains("baseline") || !read_content(j["baseline"], r.baseline) ||
      !get(j["baseline"], "taken_ns", r.baseline_ns) || !get(j["baseline"], "by", r.baseline_by))
    return bad("baseline");
  if (j.contains("current") &&
      (!read_content(j["current"], r.current) || !get(j["current"], "fetched_ns", r.current_ns)))
    return bad("current");
  if (j.contains("reported") && !read_elements(j["reported"], r.reported)) return bad("reported");
  if (!get(j, "error", r.error) || !get(j, "error_ns", r.error_ns)) return bad("error");
  return r;
}

std::string records_dir(const std::string& state_dir) { return state_dir + "/pages"; }

std::string record_path(const std::string& state_dir, std::string_view url) {
  return records_dir(state_dir) + "/" + hash::sha256(url).hex().substr(0, 32) + ".json";
}

Result<std::optional<PageRecord>> load_record(const std::string& path) {
  auto text = fs::read_small_file(path, kMaxRecordBytes);
  if (!text) {
    if (text.error().errnum == ENOENT) return std::optional<PageRecord>();
    return tl::unexpected(std::move(text).error());
  }
  return std::optional<PageRecord>(MAMORI_TRY(parse_record(*text, path)));
}

Status save_record(Env& env, const std::string& path, const PageRecord& r) {
  MAMORI_TRY(fs::make_private_dirs(path.substr(0, path.rfind('/'))));
  return fs::write_file_atomic(env, path, record_json(r), 0600);
}

Result<UniqueFd> lock_records(const std::string& state_dir) {
  const std::string dir = records_dir(state_dir);
  MAMORI_TRY(fs::make_private_dirs(dir));
  const std::string path = dir + "/lock";
  auto fd = MAMORI_TRY(fs::open_private_append(path));
  while (::flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) return fail_errno("flock", path);
  return fd;
}

}  // namespace mamori::page
