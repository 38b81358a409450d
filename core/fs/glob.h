#pragma once
// Path patterns for excludes and policies, relative to a root, in the way of .gitignore:
//   '*' and '?' match within one name, "[a-z]" and "[!0-9]" are classes, '\' escapes,
//   "**/" matches zero or more directories, a trailing "/**" everything inside a
//   directory (not the directory itself: see leads_to()). A pattern without '/' matches a
//   name at any depth ("*.log"); a leading '/' anchors it at the root.
// Case: exact by default (excludes, allow_new). MatchCase::kFold folds ASCII letters in the
//   pattern and the path, for deny lists: "*.php" must also catch "x.PHP" and "x.pHp",
//   which Apache and case-insensitive handler maps execute just the same.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"

namespace mamori::fs {

bool glob_match(std::string_view pattern, std::string_view path);

enum class MatchCase : uint8_t { kExact, kFold };

class PathMatcher {
 public:
  PathMatcher() = default;
  // Fails on an empty pattern or an unterminated '[' class.
  static Result<PathMatcher> compile(const std::vector<std::string>& patterns,
                                     MatchCase match_case = MatchCase::kExact);
  bool matches(std::string_view rel) const;
  // True when `rel` names DIR or an ancestor of DIR for some pattern "DIR/**": the
  // directories that must exist before anything the pattern covers can. allow_new uses it
  // so that "wp-content/uploads/**" also lets WordPress create wp-content/uploads (and a
  // missing wp-content) on its first upload. Only meaningful for directories: a file
  // named like DIR is not inside it.
  bool leads_to(std::string_view rel) const;
  bool empty() const { return anchored_.empty() && anywhere_.empty(); }

 private:
  std::vector<std::string> anchored_;  // matched against the whole relative path
  std::vector<std::string> anywhere_;  // matched against the last component
  std::vector<std::string> dirs_;      // DIR of every anchored "DIR/**"
  bool fold_ = false;
};

}  // namespace mamori::fs
