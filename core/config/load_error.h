#pragma once
// The one error type of every file mamori loads (mamori.toml, *.rules, and whatever
// else is read with core/config/toml_reader.h): where the problem is (file:line:column),
// a stable code for scripts ("config.unknown_key", "rules.pattern"), the dotted key it
// concerns ("root[1].mode") and a message for a person. `mamori --json` prints the fields
// as they are; text() is what a terminal shows.

#include <cstdint>
#include <string>

#include "core/base/result.h"

namespace mamori::config {

struct LoadError {
  std::string file;
  uint32_t line = 0;  // 1-based; 0 when the problem has no place in the text
  uint32_t column = 0;
  std::string code;  // "<domain>.<what>": config.syntax, rules.limit, ... (docs/formats/)
  std::string key;   // dotted key path, e.g. "root[1].mode"; may be empty
  std::string message;

  // "file:line:col: key: message [code]"; file and key escaped for a terminal (an
  // attacker may name a key "\e[2J"), without place or key when there is none.
  std::string text() const;
  // For callers that speak Error: "load <domain>: <text()>".
  Error to_error() const;
};

// [[nodiscard]] like Result: a dropped load error is a config silently not applied.
template <class T>
using LoadResult = BasicResult<T, LoadError>;

}  // namespace mamori::config
