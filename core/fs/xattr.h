#pragma once
// The extended attributes that carry security meaning: security.* (SELinux labels, file
// capabilities, IMA) and POSIX ACLs (system.posix_acl_*). They are kept as one encoded
// string, sorted by name, so two sets compare with ==. Format: docs/formats/catalog.md.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/result.h"

namespace mamori::fs {

using XattrList = std::vector<std::pair<std::string, std::string>>;

bool is_tracked_xattr(std::string_view name);

std::string encode_xattrs(XattrList list);  // sorts by name
// Fails on a malformed encoding (a corrupted catalog).
Result<XattrList> decode_xattrs(std::string_view encoded);

// Reads the tracked xattrs of an open regular file or directory.
Result<std::string> read_xattrs_fd(int fd, std::string_view display);
// Reads them for entry `name` of `dir_fd` without following it (symlinks, FIFOs, devices).
Result<std::string> read_xattrs_at(int dir_fd, const std::string& name, std::string_view display);

// Makes the tracked xattrs exactly `encoded`: sets those listed, removes the others.
Status write_xattrs_fd(int fd, std::string_view encoded, std::string_view display);
Status write_xattrs_at(int dir_fd, const std::string& name, std::string_view encoded,
                       std::string_view display);
// The same through an O_PATH fd of anything but a symlink (its inode, via /proc/self/fd).
Status write_xattrs_opath(int fd, std::string_view encoded, std::string_view display);

}  // namespace mamori::fs
