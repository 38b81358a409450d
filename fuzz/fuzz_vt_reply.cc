// VirusTotal's replies are network input (core/scan/lookup.h): whatever the status and
// the body, interpreting them must never crash, throw or keep unbounded strings.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/scan/lookup.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first byte picks the HTTP status; the rest is the body.
  if (size == 0) return 0;
  static constexpr long kStatus[] = {200, 404, 429, 401, 403, 500, 503, 302};
  const long status = kStatus[data[0] % (sizeof kStatus / sizeof kStatus[0])];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto a = mamori::scan::interpret_vt_reply(status, body, false);
  if (a && (a->verdict.name.size() > 256 || a->verdict.label.size() > 256)) __builtin_trap();
  return 0;
}
