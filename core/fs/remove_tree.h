#pragma once
// Removes a directory and everything beneath it, however deep, in constant descriptors
// and stack: an attacker's chain of 100,000 nested directories must neither exhaust the
// process's descriptors nor its stack, and must not be left in place because it is deep.
//
// The walk holds one descriptor (the directory being emptied) besides the caller's
// `parent_fd`. It goes down by name (openat O_NOFOLLOW | O_DIRECTORY, so a symlink is
// never followed) and back up through "..", checking each ".." by device and inode
// against the directory it came down from: a directory renamed elsewhere meanwhile (to
// lead the removal into the root, say) stops the removal with ESTALE instead of
// emptying whatever it now stands in. Only (device, inode) pairs are remembered per
// level, never descriptors or names.

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/base/result.h"

namespace mamori::fs {

struct RemoveTreeOptions {
  // Entries removed by one call, at most. An attacker who keeps adding entries while
  // they are removed must not keep the caller busy forever: past it the call fails with
  // EAGAIN, what is left stays, and the caller tries again later.
  uint64_t max_entries = 1'000'000;
  // Empty the directory but leave it in place (it belongs to someone else, e.g. the
  // baseline).
  bool keep_top = false;
  // Called for each non-directory just before it is unlinked: `dir_fd` and `name` name
  // it (the caller may open it, e.g. to keep its content), `st` is its lstat and `path`
  // its path for display (the top's `display`, then the names beneath it; past 4 KiB
  // the middle is elided as "/…").
  std::function<void(int dir_fd, const std::string& name, const struct stat& st,
                     const std::string& path)>
      before_unlink;
};

struct RemoveTreeReport {
  uint64_t files = 0;        // non-directories removed
  uint64_t directories = 0;  // directories removed, the top included
  size_t max_depth = 0;      // deepest level reached below the top
};

// Removes the directory `name` in `parent_fd` and its whole tree. Succeeds when it is
// gone (also when it was gone already). On failure what was removed stays removed and
// the rest stays in place; the report says how far it got.
Status remove_tree(int parent_fd, const std::string& name, std::string_view display,
                   const RemoveTreeOptions& options, RemoveTreeReport& report);

}  // namespace mamori::fs
