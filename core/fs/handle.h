#pragma once
// A file's identity that survives renames and is reported for any of its names: the
// filesystem's id and the kernel's file handle (name_to_handle_at, the same bytes
// fanotify reports with FAN_REPORT_FID). Used as a map key.

#include <sys/statfs.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/base/result.h"

namespace mamori::fs {

// fsid, handle type and handle bytes, concatenated.
std::string handle_key(const fsid_t& fsid, int type, std::span<const uint8_t> bytes);

// handle_key() of `rel` beneath `root_fd` (not following a symlink); `fsid` is the
// root's filesystem's (fstatfs).
Result<std::string> handle_key_of(int root_fd, std::string_view rel, const fsid_t& fsid);

// The absolute path an open fd stands for now (/proc/self/fd); "" when it has no name
// left (deleted: read from the inode's link count, never from the text, since
// " (deleted)" is also a name anyone can give a file) or the path is not absolute.
std::string path_of_fd(int fd);

}  // namespace mamori::fs
