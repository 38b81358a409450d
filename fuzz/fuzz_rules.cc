// Feeds arbitrary bytes to the rules parser, and what parses to the Vectorscan compiler
// and matcher: each must return a value or a LoadError, never crash, hang or throw.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/rules/matcher.h"
#include "core/rules/rules_file.h"
#include "core/rules/threshold.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mamori::rules;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto set = parse_rules(text, "fuzz.rules");
  if (!set) {
    (void)set.error().text();
    return 0;
  }
  // Compiling is slow for big sets; the parser is what takes hostile bytes.
  if (set->rules.size() > 16) return 0;
  Thresholds thresholds(*set, 4);
  auto matcher = Matcher::compile(std::move(*set));
  if (!matcher) {
    (void)matcher.error().text();
    return 0;
  }
  auto scratch = matcher->make_scratch();
  if (!scratch) return 0;
  Request r{"POST", "/wp-login.php?x=1' or 1=1--", "POST /wp-login.php HTTP/1.1", "sqlmap/1.7", "-",
            404};
  std::vector<uint32_t> matched;
  for (int i = 0; i < 3; ++i) {
    if (!matcher->match(r, *scratch, matched)) return 0;
    for (const uint32_t m : matched) (void)thresholds.hit(m, ipv4_mapped(0xc0000201), i * 7);
  }
  return 0;
}
