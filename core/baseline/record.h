#pragma once
// Takes the current state of a root, or of a subtree, into the baseline: `mamori init`
// and `mamori accept`. Runs inside the caller's transaction; the caller commits the
// store, seals the catalog and commits, so a failure or a kill leaves the old baseline.

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/base/parallel.h"
#include "core/base/result.h"
#include "core/baseline/catalog.h"
#include "core/baseline/scan.h"
#include "core/store/store.h"

namespace mamori::baseline {

struct RecordReport {
  uint64_t entries = 0;       // recorded
  uint64_t files = 0;         // regular files among them
  uint64_t bytes = 0;         // their content
  std::vector<Error> errors;  // entries left out because they could not be read
};

// Replaces the baseline of `start` ("" = the whole root) and everything beneath it with
// what is there now. A `start` that no longer exists is removed from the baseline. The
// directories above `start` are recorded too when the baseline lacks them.
Result<RecordReport> record(Catalog& catalog, store::Store& store, int64_t root_id,
                            const ScanContext& ctx, std::string_view start);

}  // namespace mamori::baseline
