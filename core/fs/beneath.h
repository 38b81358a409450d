#pragma once
// The one module that turns paths inside a watched root into file descriptors.
// Every lookup is resolved beneath the root's directory fd with openat2
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) and O_NOFOLLOW, so
// a symlink an attacker planted anywhere on the path fails the call instead of being
// followed out of the tree. Relative paths use '/' and never start with '/'; "" is the
// root itself.

#include <fcntl.h>
#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::fs {

// Opens a root directory named by the administrator (the path itself may be a symlink,
// as /var/www/html often is). Fails with ENOTDIR for anything but a directory.
Result<UniqueFd> open_root(const std::string& path);

// Opens `rel` beneath `root_fd`. O_NOFOLLOW | O_CLOEXEC are always added; add O_NONBLOCK
// where a FIFO may lurk.
Result<UniqueFd> open_beneath(int root_fd, std::string_view rel, int flags, mode_t mode = 0);

// The directory that holds `rel`, opened beneath the root, and the last component's name.
struct Parent {
  UniqueFd dir;
  std::string name;
};
Result<Parent> open_parent(int root_fd, std::string_view rel);

// lstat() of `rel` beneath the root (symlinks are not followed, not even the last one).
Result<struct stat> stat_beneath(int root_fd, std::string_view rel);

// The rest of an open file's content, EFBIG past `limit` bytes.
Result<std::string> read_fd(int fd, size_t limit, std::string_view display);

// Target of the symlink `name` in `dir_fd`.
Result<std::string> read_link_at(int dir_fd, const std::string& name, std::string_view display);

// True when `rel` is a canonical relative path: no leading or trailing '/', no empty,
// "." or ".." component, no NUL byte.
bool is_canonical_relative(std::string_view rel);

// "dir/name" with "" meaning the root.
std::string join(std::string_view dir, std::string_view name);
// `path` relative to the directory `root` (both absolute, resolved, no trailing '/' but
// "/" itself): "" for the root itself, nullopt when `path` is not beneath it.
std::optional<std::string> relative_to(std::string_view root, std::string_view path);

// The last component and everything before it ("" for a top-level name).
std::string_view dirname(std::string_view rel);
std::string_view basename(std::string_view rel);

}  // namespace mamori::fs
