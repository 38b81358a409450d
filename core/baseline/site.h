#pragma once
// What a root serves, apart from where and when it was written: digests that two nodes
// deployed from one release share, so that a manager can tell which node of a group differs
// from the others and, descending only into the subtrees whose digests differ, which files
// (`mamori manager drift`, docs/manager.md).
//
// A site digest covers, for each entry of a subtree in path order: its path relative to the
// root, type, permission bits, owner, group, content digest, symlink target, device number
// and tracked xattrs. It leaves out what differs between identical copies: the root's
// absolute path, mtimes, the size of directories and the stat cache. The catalog's root
// hash (catalog.h) covers all of those and stays the integrity seal; this is a comparison.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/baseline/catalog.h"

namespace mamori::baseline {

struct SitePart {
  std::string name;  // a root's path, or one path component beneath a directory
  FileType type = FileType::kDirectory;
  Digest digest;         // the part's own entry and everything beneath it
  uint64_t entries = 0;  // entries the digest covers
};

// The digest of a whole root.
Result<SitePart> site_digest(Catalog& catalog, const RootRow& root);

// The children of directory `dir`, and the directory's own entry's digest, (relative to the root,
// "" for the root itself) whose names sort after `after` (bytes), at most `limit` of them in name
// order; `more` is set when there are others beyond. Memory: `limit` digests, whatever the
// directory holds.
struct SiteChildren {
  Digest self;  // the directory's own entry alone (zero when there is no such entry)
  std::vector<SitePart> parts;
  bool more = false;
};
Result<SiteChildren> site_children(Catalog& catalog, const RootRow& root, std::string_view dir,
                                   std::string_view after, size_t limit);

}  // namespace mamori::baseline
