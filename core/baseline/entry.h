#pragma once
// What a baseline records about one filesystem entry, and how two records differ.

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs/walk.h"
#include "core/hash/sha256.h"

namespace mamori::baseline {

using hash::Digest;

enum class FileType : uint8_t {
  kRegular = 1,
  kDirectory = 2,
  kSymlink = 3,
  kFifo = 4,
  kSocket = 5,
  kCharDevice = 6,
  kBlockDevice = 7,
};
std::string_view type_name(FileType t);
mode_t type_bits(FileType t);  // S_IF* for mknod

struct Entry {
  std::string path;  // relative to its root; "" is the root directory itself
  FileType type = FileType::kRegular;
  uint32_t mode = 0;  // permission bits, set-id and sticky (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint64_t rdev = 0;  // devices
  Digest sha256;      // regular files
  // The stat cache: not part of what the baseline means, only lets a check skip
  // re-hashing a file whose inode, size, mtime and ctime are all unchanged (ctime cannot
  // be set from user space, so a write always moves it).
  uint64_t ino = 0;
  int64_t ctime_ns = 0;

  const std::string& link_target() const;  // symlinks; "" otherwise
  const std::string& xattrs() const;       // encoded tracked xattrs (core/fs/xattr.h)
  void set_link_target(std::string target);
  void set_xattrs(std::string encoded);

 private:
  // Few entries have either, and a tree of 200,000 entries is held in memory: two empty
  // strings each would be 13 MB of the ~250-bytes-per-file budget.
  struct Extra {
    std::string link_target;
    std::string xattrs;
  };
  void set_extra(std::string target, std::string encoded);
  std::shared_ptr<const Extra> extra_;  // null when both are empty
};

// Fills everything but sha256 from a walk.
Entry from_walk(fs::WalkEntry&& w);
// Fills the stat-derived fields (type, mode, owner, size, times, inode).
void apply_stat(Entry& e, const struct stat& st);

// Attributes that can differ between a baseline entry and the file now.
enum Attr : uint32_t {
  kAttrType = 1u << 0,
  kAttrContent = 1u << 1,
  kAttrMode = 1u << 2,
  kAttrOwner = 1u << 3,
  kAttrMtime = 1u << 4,
  kAttrLinkTarget = 1u << 5,
  kAttrXattrs = 1u << 6,
  kAttrDevice = 1u << 7,
};
std::vector<std::string_view> attr_names(uint32_t attrs);

// Everything but content. Directory times and sizes change whenever a child does and
// are not compared: the child's own change is what gets reported.
uint32_t diff_metadata(const Entry& base, const Entry& now);
// True when the stat cache says a regular file's content cannot have changed.
bool stat_cache_matches(const Entry& base, const Entry& now);

}  // namespace mamori::baseline
