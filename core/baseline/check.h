#pragma once
// Compares a root (or a subtree of it) with its baseline.

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/base/parallel.h"
#include "core/base/result.h"
#include "core/baseline/catalog.h"
#include "core/baseline/entry.h"
#include "core/baseline/scan.h"

namespace mamori::baseline {

enum class ChangeKind { kAdded, kRemoved, kChanged };
std::string_view kind_name(ChangeKind k);

struct Change {
  ChangeKind kind = ChangeKind::kChanged;
  uint32_t attrs = 0;  // Attr bits, for kChanged
  Entry before;        // the baseline (empty path for kAdded)
  Entry after;         // the file now (empty path for kRemoved)
  // Set when after.sha256 was not computed, saying why (the hash policy below); the
  // change itself is certain without it (a size that differs, a file not in the baseline).
  std::string hash_skipped;
  const std::string& path() const { return kind == ChangeKind::kAdded ? after.path : before.path; }
};

struct CheckReport {
  std::vector<Change> changes;  // sorted by path
  std::vector<Error> errors;    // entries whose state could not be read
  // Directories not entered because they lie deeper than the walk's limit
  // (fs::kMaxWalkDepth): what they hold was not compared. Sorted.
  std::vector<std::string> too_deep;
  uint64_t entries = 0;  // entries looked at
  uint64_t hashed = 0;   // files whose content was read
};

// Hash policy: no single file may cost more than the baseline already bounds. A file the
// baseline knows is read only when its size equals the baseline's (a different size is a
// content change already, no hash needed), and never past that size plus one byte. A file
// the baseline does not know (or a baselined one whose size changed) needs no hash to be
// reported, quarantined or allowed: it is hashed, for the report only, when its size is
// at most `max_unknown_hash_bytes` (0: never); otherwise Change::hash_skipped says why.
// `truncate -s 15T upload.jpg` therefore costs one stat, never 15 TiB of reads.
inline constexpr uint64_t kMaxUnknownHashBytes = 64ull << 20;

struct CheckOptions {
  bool full = false;  // re-hash every baselined file, ignoring the stat cache
  uint64_t max_unknown_hash_bytes = kMaxUnknownHashBytes;
};

// Compares `start` ("" = the whole root) and everything beneath it with the baseline.
// `full` re-hashes every file, ignoring the stat cache. Reads only; changes nothing.
Result<CheckReport> check_root(Catalog& catalog, int64_t root_id, const ScanContext& ctx,
                               std::string_view start, bool full);
Result<CheckReport> check_root(Catalog& catalog, int64_t root_id, const ScanContext& ctx,
                               std::string_view start, const CheckOptions& options);

}  // namespace mamori::baseline
