#pragma once
// Reads a small regular file named by the administrator (a config, a rules file).

#include <string>

#include "core/base/result.h"

namespace mamori::fs {

// The whole content; EFBIG past `limit` bytes, EINVAL for anything but a regular file
// (a FIFO must not hang us).
Result<std::string> read_small_file(const std::string& path, size_t limit);

}  // namespace mamori::fs
