// Feeds arbitrary bytes to the config loader: it must return a value or a LoadError,
// never crash, hang or throw.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = mamori::config::parse_config(text, "fuzz.toml");
  if (!c) (void)c.error().text();
  return 0;
}
