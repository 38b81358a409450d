#pragma once
// Files and directories the administrator names outside any protected root: the config,
// rules files, the state directory. (Paths inside a root go through beneath.h.)

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::fs {

// The whole content; EFBIG past `limit` bytes, EINVAL for anything but a regular file
// (a FIFO must not hang us).
Result<std::string> read_small_file(const std::string& path, size_t limit);

// Creates `path` and any missing parents with mode 0700 (like mkdir -p, but private).
Status make_private_dirs(const std::string& path);

// mamori's state (the catalog, bans, evidence) must be readable by root alone, even when
// the directory already existed with a looser mode (made by hand, or by an older release
// with umask 022). Creates `path` as make_private_dirs() does, then makes it 0700 if
// group or others had any access; returns the mode it had then (for the caller to
// report), nullopt when it was private already. Never follows a symlink at `path`.
Result<std::optional<mode_t>> make_private_dir(const std::string& path);

// Makes the regular file `path` 0600 if group or others had any access (creating it empty
// with mode 0600 when missing and `create`); returns the mode it had when it changed it.
// A missing file without `create` is nothing to do. Never follows a symlink.
Result<std::optional<mode_t>> make_private_file(const std::string& path, bool create);

// Opens `path` for appending (O_APPEND, created 0600, never through a symlink), making
// its parent directories as make_private_dirs() does.
Result<UniqueFd> open_private_append(const std::string& path);

// Opens an existing file for reading (never through a symlink, never blocking on a FIFO).
Result<UniqueFd> open_admin_read(const std::string& path);

// Replaces `path` with `content` so that readers see the old file or the new one, never
// a part: a temporary file in the same directory (created with `mode`, then fchmod()ed to
// it despite the umask), fsync, rename over `path`, fsync of the directory. The directory
// must exist (ENOENT otherwise) and `path` is never followed if it is a symlink (it is
// replaced). On failure the temporary is removed and `path` is left as it was.
Status write_file_atomic(Env& env, const std::string& path, std::string_view content, mode_t mode);

// Creates `path` holding `content` unless it exists: a temporary file (mode `mode`,
// fsynced) is hard-linked to `path`, so a concurrent creator and a reader see no file or
// the whole of one, never a part, and the first creator wins. True when this call
// created it, false when `path` already existed (left untouched). The directory must
// exist; the temporary is always removed.
Result<bool> create_file_exclusive(Env& env, const std::string& path, std::string_view content,
                                   mode_t mode);

// Removes `path` (never following a symlink: the link itself goes). A missing file, or a
// missing directory, counts as done. The removal is not fsynced.
Status remove_file(const std::string& path);

}  // namespace mamori::fs
