#include "core/fs/tail_cursor.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/fs/admin_files.h"

namespace mamori::fs {

uint64_t tail_hash(std::string_view bytes) {
  if (bytes.size() > FileCursor::kTailBytes)
    bytes.remove_prefix(bytes.size() - FileCursor::kTailBytes);
  // A multiply-xorshift per 8-byte word: a handful of cycles per line where byte-wise
  // FNV-1a over the same tail costs about ten times more.
  uint64_t h = 0x9e3779b97f4a7c15ull ^ bytes.size();
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  uint64_t last = 0;
  if (i < bytes.size())
    std::memcpy(&last, bytes.data() + i, bytes.size() - i);  // data() may be null
  h = (h ^ last) * 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 29);
}

FileCursor cursor_after(const struct stat& st, uint64_t offset, std::string_view before) {
  if (before.size() > FileCursor::kTailBytes)
    before.remove_prefix(before.size() - FileCursor::kTailBytes);
  return {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), offset,
          static_cast<uint32_t>(before.size()), tail_hash(before)};
}

namespace {

// The `len` bytes ending at `offset`, or fewer when the file is shorter.
Result<std::string_view> read_tail(int fd, uint64_t offset, size_t len,
                                   char (&buf)[FileCursor::kTailBytes]) {
  len = std::min<uint64_t>({len, offset, FileCursor::kTailBytes});
  while (true) {
    const ssize_t n = ::pread(fd, buf, len, static_cast<off_t>(offset - len));
    if (n >= 0) return std::string_view(buf, static_cast<size_t>(n));
    if (errno != EINTR) return fail_errno("pread", "");
  }
}

}  // namespace

Result<FileCursor> cursor_at(int fd, const struct stat& st, uint64_t offset) {
  char buf[FileCursor::kTailBytes];
  const auto tail = MAMORI_TRY(read_tail(fd, offset, FileCursor::kTailBytes, buf));
  // Short only if the file shrank meanwhile: then there is nothing to fingerprint.
  if (tail.size() != std::min<uint64_t>(offset, FileCursor::kTailBytes))
    return cursor_after(st, offset, {});
  return cursor_after(st, offset, tail);
}

bool still_there(int fd, const FileCursor& c) {
  if (c.tail_len == 0) return true;
  char buf[FileCursor::kTailBytes];
  const auto tail = read_tail(fd, c.offset, c.tail_len, buf);
  return tail && tail->size() == c.tail_len && tail_hash(*tail) == c.tail_hash;
}

UniqueFd open_rotated(const std::string& path, const FileCursor& c) {
  auto fd = open_admin_read(path + ".1");
  struct stat st {};
  if (!fd || ::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode) || !c.same_file(st))
    return UniqueFd();
  return std::move(*fd);
}

}  // namespace mamori::fs
