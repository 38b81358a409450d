// Control requests come over a root-only socket, but a parser is a parser: any bytes
// must give a request object or a clean error, never a crash or an exception.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/control/control.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto r = mamori::control::parse_request(in)) {
    if (!r->is_object() || !(*r)["cmd"].is_string()) std::abort();
  }
  return 0;
}
