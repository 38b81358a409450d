#pragma once
// Puts a root, or a subtree, back to its baseline: content byte for byte from the
// store, type, mode, owner, tracked xattrs and file mtimes. Every path operation goes
// through core/fs (beneath the root, no symlink followed) and every replacement is
// atomic (core/fs/atomic_replace.h). Entries that are not in the baseline are reported
// and left where they are.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/env.h"
#include "core/base/parallel.h"
#include "core/base/result.h"
#include "core/baseline/catalog.h"
#include "core/baseline/check.h"
#include "core/fs/atomic_replace.h"
#include "core/store/store.h"

namespace mamori::baseline {

struct Restored {
  std::string path;
  ChangeKind was = ChangeKind::kChanged;  // kRemoved: recreated; kChanged: repaired
  uint32_t attrs = 0;                     // what differed
};

struct RestoreReport {
  std::vector<Restored> restored;
  std::vector<std::string> not_in_baseline;  // added entries, left in place
  std::vector<Error> errors;
};

// Puts one entry back as `want` records it: with `rebuild`, a new inode with the stored
// content (atomically replacing whatever stands there; an empty directory in the way is
// removed, a non-empty one is refused); otherwise only its metadata, unless the inode
// there has other names (a file hard-linked in from outside the root, whose owner and
// mode are not ours to change): then it too gets a new inode. Its parent
// directory must exist. `sync` as in fs::replace_file.
Status restore_entry(Env& env, const store::Store& store, int root_fd, const Entry& want,
                     bool rebuild, fs::Sync sync = fs::Sync::kNow);
// The same, saying how: with `rebuild` a regular file is rewritten in place when the
// filesystem has no inode left for a temporary (fs::replace_or_rewrite_file); nullopt
// when no content was written (metadata only, or not a regular file).
Result<std::optional<fs::Written>> restore_entry_how(Env& env, const store::Store& store,
                                                     int root_fd, const Entry& want, bool rebuild,
                                                     fs::Sync sync = fs::Sync::kNow);

// As restore_entry_how for an entry other than the root, put back as `name` in
// `dir_fd`, its parent directory already open beneath the root (the guard's: one path
// lookup less on the real-time path).
Result<std::optional<fs::Written>> restore_entry_in(Env& env, const store::Store& store, int dir_fd,
                                                    const std::string& name, const Entry& want,
                                                    bool rebuild, fs::Sync sync = fs::Sync::kNow);

// Runs a check of `start` and repairs every difference it finds. With `refresh_cache`,
// refreshes the stat cache of what it rewrote inside its own transaction (the agent,
// which reads the catalog only, passes false); the baseline itself is unchanged.
Result<RestoreReport> restore(Env& env, Catalog& catalog, const store::Store& store,
                              int64_t root_id, const ScanContext& ctx, std::string_view start,
                              bool refresh_cache = true);

}  // namespace mamori::baseline
