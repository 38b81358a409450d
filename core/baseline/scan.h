#pragma once
// Reads the current state of a root: walks it (metadata of every entry) and hashes the
// regular files asked for, on all the executor's threads, optionally putting their
// content into the store in the same read.

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/parallel.h"
#include "core/base/result.h"
#include "core/baseline/entry.h"
#include "core/fs/glob.h"
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

struct Tree {
  EntryList entries;                    // sorted by path bytes
  std::vector<std::string> incomplete;  // directories whose contents are unknown, sorted
  std::vector<Error> errors;
  // True when `path` lies beneath a directory that could not be read: whether it still
  // exists is unknown, so it must not be reported as removed.
  bool unknown(std::string_view path) const;
};

// Reads `start` ("" = the whole root) and everything beneath it. Fails when `start`
// cannot be reached at all (ENOENT when it does not exist).
Result<Tree> read_tree(int root_fd, std::string_view start, const fs::PathMatcher* exclude);

// Hashes entries[i] for each i in `which` (regular files), filling sha256 and refreshing
// the stat fields from what was actually hashed. A file that changes while it is read is
// read again; one that never holds still fails with EAGAIN. With a store, content not
// yet stored is added. Returns the failures as (index, error).
std::vector<std::pair<size_t, Error>> hash_files(int root_fd, EntryList& entries,
                                                 const std::vector<size_t>& which,
                                                 store::Store* store, Executor& executor,
                                                 Progress* progress);

}  // namespace mamori::baseline
