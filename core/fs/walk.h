#pragma once
// Walks a root fd-first and never follows a symlink: each directory is opened relative
// to its parent's fd with O_NOFOLLOW | O_DIRECTORY, so a directory swapped for a symlink
// mid-walk fails instead of leading out of the tree. FIFOs, sockets and devices are
// lstat()ed, never opened. Entries come depth-first, children sorted by name bytes.

#include <sys/stat.h>

#include <functional>
#include <string>

#include "core/base/result.h"
#include "core/fs/glob.h"

namespace mamori::fs {

struct WalkEntry {
  std::string path;  // relative to the root; "" is the root itself
  struct stat st {};
  std::string link_target;  // symlinks only
  std::string xattrs;       // encoded tracked xattrs (xattr.h)
  // A directory whose contents could not be listed (or were not, past the depth limit):
  // what lies beneath is unknown, not gone.
  bool incomplete = false;
  // A directory not entered because it lies deeper than max_depth (incomplete too).
  bool too_deep = false;
};

// How deep a walk goes by default: a directory with more than this many components
// below the walk's start is reported (too_deep) and not entered. No legitimate web tree
// comes close; an attacker's chain does, so the agent quarantines what lies deeper.
inline constexpr size_t kMaxWalkDepth = 200;

struct WalkOptions {
  const PathMatcher* exclude = nullptr;
  // Deeper directories are reported and not entered: an attacker-made chain of 100,000
  // nested directories must not exhaust file descriptors or the stack.
  size_t max_depth = kMaxWalkDepth;
};

// Walks the directory `dir_fd`, which is `dir_path` relative to the root ("" for the root
// itself; paths reported and matched against excludes are relative to the root). Calls
// on_entry for every entry not excluded, the directory itself first; on_error for each
// entry that could not be read (the walk goes on). Fails only when `dir_fd` itself
// cannot be read.
Status walk(int dir_fd, std::string_view dir_path, const WalkOptions& options,
            const std::function<void(WalkEntry&&)>& on_entry,
            const std::function<void(Error&&)>& on_error);

}  // namespace mamori::fs
