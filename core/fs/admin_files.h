#pragma once
// Files and directories the administrator names outside any protected root: the config,
// rules files, the state directory. (Paths inside a root go through beneath.h.)

#include <string>

#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::fs {

// The whole content; EFBIG past `limit` bytes, EINVAL for anything but a regular file
// (a FIFO must not hang us).
Result<std::string> read_small_file(const std::string& path, size_t limit);

// Creates `path` and any missing parents with mode 0700 (like mkdir -p, but private).
Status make_private_dirs(const std::string& path);

// Opens `path` for appending (O_APPEND, created 0600, never through a symlink), making
// its parent directories as make_private_dirs() does.
Result<UniqueFd> open_private_append(const std::string& path);

}  // namespace mamori::fs
