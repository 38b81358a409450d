#pragma once
// The one cursor for readers of a growing text file that others rotate (logrotate's
// rename + create, or copytruncate): the access-log tailer (agent/logwatch/tailer.h),
// and any reader of events.jsonl. (The outbox's own consumers read its segments by
// sequence number instead: core/outbox/cursor.h.)
//
// Where a reader of a growing text file stopped, with a fingerprint of the bytes just
// before that point, so that a later look can tell "the same file, grown" from "the same
// inode, truncated and written again" (logrotate's copytruncate): a file whose new
// content already reaches past the offset is caught by the fingerprint, not by its size.
//
// The fingerprint covers the (at most kTailBytes) bytes that end at `offset`; cursors are
// saved across restarts, so tail_hash() must never change.

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::fs {

struct FileCursor {
  static constexpr size_t kTailBytes = 64;

  uint64_t dev = 0, ino = 0, offset = 0;
  uint32_t tail_len = 0;   // bytes fingerprinted, ending at `offset`; 0 at offset 0
  uint64_t tail_hash = 0;  // tail_hash() of those bytes

  bool same_file(const struct stat& st) const {
    return dev == static_cast<uint64_t>(st.st_dev) && ino == static_cast<uint64_t>(st.st_ino);
  }
  bool operator==(const FileCursor&) const = default;
};

// A hash of up to kTailBytes bytes, eight at a time (it runs once per line).
uint64_t tail_hash(std::string_view bytes);

// The cursor at `offset` of the file `st`, where `before` are bytes that end at `offset`
// (only the last kTailBytes of them count).
FileCursor cursor_after(const struct stat& st, uint64_t offset, std::string_view before);

// The cursor at `offset` of the open file `fd` (described by `st`), reading the tail
// from it: for starting at the end of a file.
Result<FileCursor> cursor_at(int fd, const struct stat& st, uint64_t offset);

// Whether `fd` (the cursor's file) still holds the fingerprinted bytes before c.offset.
// False when it is shorter or they differ; a read error counts as "no".
bool still_there(int fd, const FileCursor& c);

// The file the cursor was in, after a rotation while its reader was stopped: PATH.1
// (logrotate's name) opened when it is that file (same device and inode), else an
// invalid fd. Never through a symlink.
UniqueFd open_rotated(const std::string& path, const FileCursor& c);

}  // namespace mamori::fs
