#include "core/baseline/record.h"

#include <fcntl.h>

#include "core/fs/beneath.h"
#include "core/fs/xattr.h"

namespace mamori::baseline {

Result<RecordReport> record(Catalog& catalog, store::Store& store, int64_t root_id,
                            const ScanContext& ctx, std::string_view start) {
  const int root_fd = ctx.root_fd;
  RecordReport report;
  auto tree = read_tree(ctx, start);
  if (!tree && !(tree.error().errnum == ENOENT && !start.empty()))
    return tl::unexpected(std::move(tree).error());
  MAMORI_TRY(catalog.erase_subtree(root_id, start));
  if (!tree) return report;  // accepted as deleted

  report.errors = std::move(tree->errors);
  auto& entries = tree->entries;
  std::vector<size_t> files;
  for (size_t i = 0; i < entries.size(); ++i)
    if (entries[i].type == FileType::kRegular) files.push_back(i);
  auto failures = hash_files(ctx, entries, files, &store);
  std::vector<bool> failed(entries.size(), false);
  for (auto& [index, error] : failures) {
    failed[index] = true;
    report.errors.push_back(std::move(error));
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (failed[i]) continue;
    MAMORI_TRY(catalog.put(root_id, entries[i]));
    ++report.entries;
    if (entries[i].type == FileType::kRegular) {
      ++report.files;
      report.bytes += entries[i].size;
    }
  }
  // A subtree accepted below a directory the baseline never knew needs that directory's
  // metadata too, or it could not be recreated.
  for (std::string_view dir = fs::dirname(start); !start.empty();) {
    if (!MAMORI_TRY(catalog.get(root_id, dir))) {
      auto st = MAMORI_TRY(fs::stat_beneath(root_fd, dir));
      Entry e;
      e.path = std::string(dir);
      apply_stat(e, st);
      if (e.type != FileType::kDirectory) return fail("accept", e.path, ENOTDIR);
      auto fd = MAMORI_TRY(fs::open_beneath(root_fd, dir, O_RDONLY | O_DIRECTORY));
      e.set_xattrs(MAMORI_TRY(fs::read_xattrs_fd(fd.get(), e.path)));
      MAMORI_TRY(catalog.put(root_id, e));
      ++report.entries;
    }
    if (dir.empty()) break;
    dir = fs::dirname(dir);
  }
  return report;
}

}  // namespace mamori::baseline
