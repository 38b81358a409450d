#include "core/webconf/conf.h"

#include <fmt/format.h>

namespace mamori::webconf {

std::string Origin::text() const {
  if (file.empty()) return "";
  return line == 0 ? file : fmt::format("{}:{}", file, line);
}

std::string Problem::text() const {
  const std::string at = where.text();
  return at.empty() ? message : at + ": " + message;
}

}  // namespace mamori::webconf
