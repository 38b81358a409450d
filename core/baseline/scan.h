#pragma once
// Reads the current state of a root: walks it (metadata of every entry) and hashes the
// regular files asked for, on all the executor's threads, optionally putting their
// content into the store in the same read.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/env.h"
#include "core/base/parallel.h"
#include "core/base/result.h"
#include "core/baseline/entry.h"
#include "core/fs/glob.h"
#include "core/fs/walk.h"
#include "core/store/store.h"

namespace mamori::baseline {

// Shared with a progress display on another thread.
struct Progress {
  std::atomic<uint64_t> files_total{0}, bytes_total{0};
  std::atomic<uint64_t> files_done{0}, bytes_done{0};
};

// A deque, not a vector: a tree of 200,000 entries must not briefly exist twice while a
// vector doubles (peak memory is a budget: ~250 bytes per file).
using EntryList = std::deque<Entry>;

// What every scan of one root needs. The root fd and the objects referred to must
// outlive the scan.
struct ScanContext {
  int root_fd = -1;
  const fs::PathMatcher* exclude = nullptr;  // null: nothing excluded
  Executor& executor;
  const Clock& clock;
  Progress* progress = nullptr;  // null: nobody watches
};

struct Tree {
  EntryList entries;                    // sorted by path bytes
  std::vector<std::string> incomplete;  // directories whose contents are unknown, sorted
  std::vector<std::string> too_deep;    // of those, the ones past the depth limit, sorted
  std::vector<Error> errors;
  // True when `path` lies beneath a directory that could not be read: whether it still
  // exists is unknown, so it must not be reported as removed.
  bool unknown(std::string_view path) const;
};

// Reads `start` ("" = the whole root) and everything beneath it, entering directories at
// most `max_depth` components below `start`. Fails when `start` cannot be reached at all
// (ENOENT when it does not exist).
Result<Tree> read_tree(const ScanContext& ctx, std::string_view start,
                       size_t max_depth = fs::kMaxWalkDepth);

// Hashes entries[i] for each i in `which` (regular files), filling sha256 and refreshing
// the stat fields from what was actually hashed. A digest is only taken of a file whose
// inode is the same before and after the read and whose last change is older than
// kSettleTime: a write() stamps the ctime before it copies its data, so a younger file
// may be mid-write and is waited for. A file that never holds still fails with EAGAIN.
// With a store, content not yet stored is added. Returns the failures as (index, error).
inline constexpr std::chrono::milliseconds kSettleTime{200};
std::vector<std::pair<size_t, Error>> hash_files(const ScanContext& ctx, EntryList& entries,
                                                 const std::vector<size_t>& which,
                                                 store::Store* store);

}  // namespace mamori::baseline
