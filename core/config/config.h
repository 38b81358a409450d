#pragma once
// mamori.toml: what to protect and where mamori keeps its state. Loading reports every
// problem as file:line:col with a stable code, so both people and scripts can act on it.
// Format and keys: etc/mamori.toml (commented) and docs/config.md.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "core/base/result.h"

namespace mamori::config {

enum class Mode { kAlert, kRestore, kPreserve };
std::string_view mode_name(Mode mode);

struct RootConfig {
  std::string path;                  // absolute, no trailing '/'
  Mode mode = Mode::kRestore;
  std::vector<std::string> exclude;  // glob patterns relative to path (core/fs/glob.h)
};

struct Config {
  std::string source;                // the file it came from, for messages
  std::string state_dir = "/var/lib/mamori";
  unsigned jobs = 0;                 // hashing threads; 0 = one per core
  int compression_level = 1;         // zstd level for the content store (-7..19)
  std::vector<RootConfig> roots;
};

struct ConfigError {
  std::string file;
  uint32_t line = 0;    // 1-based; 0 when the problem has no place in the text
  uint32_t column = 0;
  std::string code;     // stable: config.syntax, config.unknown_key, config.type, ...
  std::string key;      // dotted key path, e.g. "root[1].mode"; may be empty
  std::string message;

  // "file:line:col: message [code]"
  std::string text() const;
  Error to_error() const;
};

template <class T>
using ConfigResult = tl::expected<T, ConfigError>;

ConfigResult<Config> parse_config(std::string_view text, std::string_view source_name);
ConfigResult<Config> load_config(const std::string& path);

}  // namespace mamori::config
