#pragma once
// Path patterns for excludes and policies, relative to a root, in the way of .gitignore:
//   '*' and '?' match within one name, "[a-z]" and "[!0-9]" are classes, '\' escapes,
//   "**/" matches zero or more directories, a trailing "/**" everything inside a
//   directory (not the directory itself). A pattern without '/' matches a name at any
//   depth ("*.log"); a leading '/' anchors it at the root.

#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"

namespace mamori::fs {

bool glob_match(std::string_view pattern, std::string_view path);

class PathMatcher {
 public:
  PathMatcher() = default;
  // Fails on an empty pattern or an unterminated '[' class.
  static Result<PathMatcher> compile(const std::vector<std::string>& patterns);
  bool matches(std::string_view rel) const;
  bool empty() const { return anchored_.empty() && anywhere_.empty(); }

 private:
  std::vector<std::string> anchored_;  // matched against the whole relative path
  std::vector<std::string> anywhere_;  // matched against the last component
};

}  // namespace mamori::fs
