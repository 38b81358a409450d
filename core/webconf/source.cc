#include "core/webconf/source.h"

#include <fnmatch.h>
#include <glob.h>

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "core/fs/admin_files.h"

namespace mamori::webconf {

bool has_glob_chars(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

std::string resolve_against(const std::string& dir, const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  if (dir.empty() || dir == "/") return "/" + path;
  return dir + "/" + path;
}

std::string parent_dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::vector<std::string> IncludeGuard::files_for(const Origin& from, const std::string& pattern,
                                                 uint32_t depth) {
  if (depth + 1 > limits_.max_include_depth) {
    problems_.push_back({from, fmt::format("includes nested deeper than {}: '{}' not read",
                                           limits_.max_include_depth, pattern)});
    return {};
  }
  auto files = source_.glob(pattern);
  if (!files) {
    problems_.push_back({from, files.error().message()});
    return {};
  }
  return std::move(*files);
}

IncludeGuard::Verdict IncludeGuard::check(const Origin& from, const std::string& file) {
  if (std::find(stack.begin(), stack.end(), file) != stack.end()) {
    std::string chain;
    for (const auto& s : stack) chain += s + " -> ";
    problems_.push_back({from, "include loop: " + chain + file + " (not read again)"});
    return Verdict::kSkip;
  }
  if (files_.size() >= limits_.max_files || total_ > limits_.max_total_bytes) {
    problems_.push_back(
        {from, fmt::format("more than {} files or {} MiB of configuration: '{}' not read",
                           limits_.max_files, limits_.max_total_bytes >> 20, file)});
    return Verdict::kStop;
  }
  return Verdict::kRead;
}

Result<std::string> IncludeGuard::read(const std::string& file) {
  auto text = MAMORI_TRY(source_.read(file));
  total_ += text.size();
  files_.push_back(file);
  return text;
}

Origin error_origin(const Error& e) {
  Origin o;
  const size_t colon = e.path.rfind(':');
  o.file = colon == std::string::npos ? e.path : e.path.substr(0, colon);
  if (colon != std::string::npos)
    o.line = static_cast<uint32_t>(std::strtoul(e.path.c_str() + colon + 1, nullptr, 10));
  return o;
}

Result<std::string> RealConfSource::read(const std::string& path) {
  return fs::read_small_file(path, kMaxConfFileBytes);
}

Result<std::vector<std::string>> RealConfSource::glob(const std::string& pattern) {
  if (!has_glob_chars(pattern)) return std::vector<std::string>{pattern};
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), GLOB_ERR, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0) {
    for (size_t i = 0; i < g.gl_pathc && out.size() < kMaxGlobMatches; ++i)
      out.emplace_back(g.gl_pathv[i]);
  }
  const size_t total = rc == 0 ? g.gl_pathc : 0;
  ::globfree(&g);
  if (rc != 0 && rc != GLOB_NOMATCH) return fail_msg("glob", pattern, "cannot read a directory");
  if (total > kMaxGlobMatches) return fail_msg("glob", pattern, "names more than 1000 files");
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::string> MemConfSource::read(const std::string& path) {
  const auto it = files.find(path);
  if (it == files.end()) return fail("open", path, ENOENT);
  if (it->second.size() > kMaxConfFileBytes) return fail("read", path, EFBIG);
  return it->second;
}

Result<std::vector<std::string>> MemConfSource::glob(const std::string& pattern) {
  if (!has_glob_chars(pattern)) return std::vector<std::string>{pattern};
  std::vector<std::string> out;
  for (const auto& [path, text] : files) {
    if (::fnmatch(pattern.c_str(), path.c_str(), FNM_PATHNAME | FNM_PERIOD) != 0) continue;
    if (out.size() == kMaxGlobMatches)
      return fail_msg("glob", pattern, "names more than 1000 files");
    out.push_back(path);
  }
  return out;
}

}  // namespace mamori::webconf
