#pragma once
// Puts an entry in place so that readers see either the old one or the new one, never a
// missing or half-written file: the new inode is built under a temporary name in the
// same directory, given its metadata, fsync()ed, then renamed over the old name with
// renameat2(). On failure the temporary is removed and the old entry is left untouched.
// All names are single components inside `dir_fd` (a directory opened beneath a root).

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/base/env.h"
#include "core/base/result.h"

namespace mamori::fs {

struct InodeMeta {
  mode_t mode = 0;  // permission bits with suid/sgid/sticky (07777)
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t mtime_ns = 0;
  std::string xattrs;  // encoded (xattr.h)
};

// Applies owner, mode, tracked xattrs and (if set_mtime) mtime to an open file or
// directory. Owner goes first: chown() clears set-id bits and file capabilities.
Status apply_meta(int fd, const InodeMeta& meta, bool set_mtime, std::string_view display);
// The same for the entry `name` in `dir_fd`, without following it (symlinks, FIFOs).
Status apply_meta_at(int dir_fd, const std::string& name, const InodeMeta& meta, bool set_mtime,
                     std::string_view display);
// As apply_meta_at, but only on an inode with no other name: a non-directory with more
// than one link may be a file from outside the root hard-linked in (a root 0600 secret),
// and giving it the baseline's owner and mode would change that file. Then it fails with
// EMLINK and changes nothing; the caller replaces the entry instead. The link count is
// read from the same descriptor the changes go through, so a swap of the name in
// between cannot redirect them.
Status apply_meta_own_at(int dir_fd, const std::string& name, const InodeMeta& meta, bool set_mtime,
                         std::string_view display);

// When the new inode and the rename reach the disk. kNow: fsync() the file before the
// rename and the directory after it (batch commands). kDeferred: no fsync at all, so the
// real-time guard puts a file back in microseconds; it calls syncfs() once per batch,
// and a crash before that is caught by the start-up verify.
enum class Sync { kNow, kDeferred };

// `fill` writes the content into the new file's fd (opened O_RDWR, positioned at 0).
Status replace_file(Env& env, int dir_fd, const std::string& name, const InodeMeta& meta,
                    const std::function<Status(int fd)>& fill, std::string_view display,
                    Sync sync = Sync::kNow);
// How replace_or_rewrite_file() put the content in place.
enum class Written {
  kReplaced,          // a new inode renamed over the old one (atomic)
  kRewrittenInPlace,  // the existing inode truncated and rewritten (not atomic)
};
std::string_view written_name(Written w);  // "replaced" | "rewritten-in-place"

// As replace_file, but when no temporary can be created because the filesystem has no
// inode or quota left (ENOSPC, EDQUOT: uploads filled it), the content is rewritten into
// the inode `name` already is, so tampered content never stays live for want of an
// inode: opened beneath `dir_fd` without following it, truncated, filled, given `meta`,
// fsync()ed. Readers may then see a partial file for the moment of the write, which is
// why it is only the fallback. Refused (the create's error is returned) when `name` is
// not a regular file or has other names (st_nlink > 1): writing would change another
// file, maybe outside the root.
Result<Written> replace_or_rewrite_file(Env& env, int dir_fd, const std::string& name,
                                        const InodeMeta& meta,
                                        const std::function<Status(int fd)>& fill,
                                        std::string_view display, Sync sync = Sync::kNow);
Status replace_symlink(Env& env, int dir_fd, const std::string& name, const std::string& target,
                       const InodeMeta& meta, std::string_view display);
// FIFOs and device nodes (mode carries the S_IF* type). Sockets cannot be recreated.
Status replace_node(Env& env, int dir_fd, const std::string& name, mode_t type, dev_t rdev,
                    const InodeMeta& meta, std::string_view display);
// Creates directory `name` with `meta`, or fixes the metadata of the one already there.
Status ensure_directory(int dir_fd, const std::string& name, const InodeMeta& meta,
                        std::string_view display);

Status sync_dir(Env& env, int dir_fd, std::string_view display);

}  // namespace mamori::fs
