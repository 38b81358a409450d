#include "core/fs/glob.h"

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

bool match(std::string_view p, std::string_view s) {
  while (!p.empty()) {
    if (p.starts_with("**")) {
      if (p.size() == 2) return true;
      if (p[2] == '/') {
        const auto rest = p.substr(3);
        if (match(rest, s)) return true;
        for (size_t i = 0; i < s.size(); ++i)
          if (s[i] == '/' && match(rest, s.substr(i + 1))) return true;
        return false;
      }
      p.remove_prefix(1);  // "**x" is "*x"
      continue;
    }
    switch (p[0]) {
      case '*': {
        const auto rest = p.substr(1);
        for (size_t k = 0;; ++k) {
          if (match(rest, s.substr(k))) return true;
          if (k == s.size() || s[k] == '/') return false;
        }
      }
      case '?':
        if (s.empty() || s[0] == '/') return false;
        break;
      case '[': {
        if (s.empty() || s[0] == '/') return false;
        size_t len = 0;
        const bool hit = match_class(p, s[0], len);
        if (len == 0) return false;
        if (!hit) return false;
        p.remove_prefix(len);
        s.remove_prefix(1);
        continue;
      }
      case '\\':
        if (p.size() > 1) p.remove_prefix(1);
        [[fallthrough]];
      default:
        if (s.empty() || s[0] != p[0]) return false;
    }
    p.remove_prefix(1);
    s.remove_prefix(1);
  }
  return s.empty();
}

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

}  // namespace

bool glob_match(std::string_view pattern, std::string_view path) { return match(pattern, path); }

Result<PathMatcher> PathMatcher::compile(const std::vector<std::string>& patterns) {
  PathMatcher m;
  for (std::string p : patterns) {
    if (p.empty()) return fail_msg("exclude pattern", p, "empty pattern");
    if (has_unterminated_class(p)) return fail_msg("exclude pattern", p, "unterminated '['");
    if (p.size() > 1 && p.back() == '/') p.pop_back();  // "cache/" means the directory
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
  for (const auto& p : anchored_)
    if (match(p, rel)) return true;
  if (!anywhere_.empty()) {
    const auto name = basename(rel);
    for (const auto& p : anywhere_)
      if (match(p, name)) return true;
  }
  return false;
}

}  // namespace mamori::fs
