#include "core/base/result.h"

#include <cstring>

#include "core/base/quote.h"

namespace mamori {

std::string Error::message() const {
  std::string out = op;
  if (!path.empty()) out += " " + quote(path);
  if (!detail.empty()) out += ": " + detail;
  if (errnum != 0) {
    out += ": ";
    out += std::strerror(errnum);
  }
  return out;
}

}  // namespace mamori
