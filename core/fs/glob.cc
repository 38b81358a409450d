#include "core/fs/glob.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/fs/beneath.h"

namespace mamori::fs {
namespace {

// Matches a "[...]" class at p (p[0] == '['); sets `len` to the class's length in the
// pattern. Returns false with len == 0 for an unterminated class.
bool match_class(std::string_view p, char c, size_t& len) {
  size_t i = 1;
  bool negate = false;
  if (i < p.size() && (p[i] == '!' || p[i] == '^')) {
    negate = true;
    ++i;
  }
  bool hit = false;
  bool first = true;
  for (; i < p.size() && (first || p[i] != ']'); first = false) {
    char lo = p[i];
    if (lo == '\\' && i + 1 < p.size()) lo = p[++i];
    char hi = lo;
    if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
      hi = p[i + 2];
      if (hi == '\\' && i + 3 < p.size()) hi = p[++i + 2];
      i += 2;
    }
    if (static_cast<unsigned char>(c) >= static_cast<unsigned char>(lo) &&
        static_cast<unsigned char>(c) <= static_cast<unsigned char>(hi))
      hit = true;
    ++i;
  }
  if (i >= p.size()) {
    len = 0;
    return false;
  }
  len = i + 1;
  return hit != negate;
}

// Backtracking glob matching, memoised on (pattern position, path position): without the
// memo a pattern like "*a*a*a*a*a*b" takes exponential time on a long path.
class Matcher {
 public:
  // `memo` is scratch reused across calls (every entry of a walk is matched).
  Matcher(std::string_view p, std::string_view s, std::vector<int8_t>& memo)
      : p_(p), s_(s), memo_(memo) {
    memo_.assign((p.size() + 1) * (s.size() + 1), kUnknown);
  }

  bool run() { return match(0, 0); }

 private:
  static constexpr int8_t kUnknown = -1;

  bool match(size_t pi, size_t si) {
    int8_t& m = memo_[pi * (s_.size() + 1) + si];
    if (m == kUnknown) m = compute(pi, si) ? 1 : 0;
    return m == 1;
  }

  bool compute(size_t pi, size_t si) {
    const std::string_view p = p_.substr(pi), s = s_.substr(si);
    if (p.empty()) return s.empty();
    if (p.starts_with("**")) {
      if (p.size() == 2) return true;
      if (p[2] == '/') {
        if (match(pi + 3, si)) return true;
        for (size_t i = 0; i < s.size(); ++i)
          if (s[i] == '/' && match(pi + 3, si + i + 1)) return true;
        return false;
      }
      return match(pi + 1, si);  // "**x" is "*x"
    }
    switch (p[0]) {
      case '*':
        for (size_t k = 0;; ++k) {
          if (match(pi + 1, si + k)) return true;
          if (k == s.size() || s[k] == '/') return false;
        }
      case '?':
        return !s.empty() && s[0] != '/' && match(pi + 1, si + 1);
      case '[': {
        if (s.empty() || s[0] == '/') return false;
        size_t len = 0;
        const bool hit = match_class(p, s[0], len);
        return len != 0 && hit && match(pi + len, si + 1);
      }
      case '\\':
        if (p.size() > 1) return !s.empty() && s[0] == p[1] && match(pi + 2, si + 1);
        [[fallthrough]];
      default:
        return !s.empty() && s[0] == p[0] && match(pi + 1, si + 1);
    }
  }

  std::string_view p_, s_;
  std::vector<int8_t>& memo_;
};

bool has_unterminated_class(std::string_view p) {
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
      continue;
    }
    if (p[i] == '[') {
      size_t len = 0;
      match_class(p.substr(i), 'a', len);
      if (len == 0) return true;
      i += len - 1;
    }
  }
  return false;
}

void fold_ascii(std::string& s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
}

// The first `n` '/'-separated components of `pattern`, or nullopt when it has fewer.
// "**" components are kept: "a/**/b" leads to "a", then to "a/**" (any directory below a).
std::optional<std::string_view> first_components(std::string_view pattern, size_t n) {
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    const size_t slash = pattern.find('/', at);
    if (i + 1 == n) return slash == std::string_view::npos ? pattern : pattern.substr(0, slash);
    if (slash == std::string_view::npos) return std::nullopt;
    at = slash + 1;
  }
  return std::nullopt;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view path) {
  thread_local std::vector<int8_t> memo;
  return Matcher(pattern, path, memo).run();
}

Result<PathMatcher> PathMatcher::compile(const std::vector<std::string>& patterns,
                                         MatchCase match_case) {
  PathMatcher m;
  m.fold_ = match_case == MatchCase::kFold;
  for (std::string p : patterns) {
    if (p.empty()) return fail_msg("exclude pattern", p, "empty pattern");
    if (has_unterminated_class(p)) return fail_msg("exclude pattern", p, "unterminated '['");
    if (m.fold_) fold_ascii(p);
    if (p.size() > 1 && p.back() == '/') p.pop_back();  // "cache/" means the directory
    if (p.size() > 3 && p.ends_with("/**")) {
      std::string dir = p.substr(0, p.size() - 3);
      if (dir[0] == '/') dir.erase(0, 1);
      if (!dir.empty()) m.dirs_.push_back(std::move(dir));
    }
    if (p[0] == '/') {
      m.anchored_.push_back(p.substr(1));
    } else if (p.find('/') == std::string::npos) {
      m.anywhere_.push_back(p);
    } else {
      m.anchored_.push_back(p);
    }
  }
  return m;
}

bool PathMatcher::matches(std::string_view rel) const {
  if (fold_) {
    thread_local std::string folded;
    folded.assign(rel);
    fold_ascii(folded);
    rel = folded;
  }
  for (const auto& p : anchored_)
    if (glob_match(p, rel)) return true;
  if (!anywhere_.empty()) {
    const auto name = basename(rel);
    for (const auto& p : anywhere_)
      if (glob_match(p, name)) return true;
  }
  return false;
}

bool PathMatcher::leads_to(std::string_view rel) const {
  if (rel.empty() || dirs_.empty()) return false;
  std::string folded;
  if (fold_) {
    folded.assign(rel);
    fold_ascii(folded);
    rel = folded;
  }
  const size_t depth = 1 + static_cast<size_t>(std::count(rel.begin(), rel.end(), '/'));
  for (const auto& dir : dirs_) {
    const auto prefix = first_components(dir, depth);
    if (prefix && glob_match(*prefix, rel)) return true;
    // A "**" stands for any number of directories: every directory below what comes
    // before it may lead to DIR ("**/uploads/**": any directory at all).
    if (const size_t star = dir.find("**");
        star != std::string::npos && glob_match(dir.substr(0, star) + "**", rel))
      return true;
  }
  return false;
}

}  // namespace mamori::fs
