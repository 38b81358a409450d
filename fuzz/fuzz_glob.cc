// Exclude patterns come from the config and paths from attackers: compiling and matching
// must never crash, and never take more than polynomial time (libFuzzer's -timeout).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/fs/glob.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // First line: the pattern; the rest: the path.
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto nl = in.find('\n');
  const std::string pattern(in.substr(0, nl));
  const std::string path(nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1));
  if (auto m = mamori::fs::PathMatcher::compile({pattern})) (void)m->matches(path);
  (void)mamori::fs::glob_match(pattern, path);
  return 0;
}
