#include "core/baseline/check.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>

#include <fmt/format.h>

namespace mamori::baseline {

std::string_view kind_name(ChangeKind k) {
  switch (k) {
    case ChangeKind::kAdded:
      return "added";
    case ChangeKind::kRemoved:
      return "removed";
    case ChangeKind::kChanged:
      return "changed";
  }
  return "?";
}

Result<CheckReport> check_root(Catalog& catalog, int64_t root_id, const ScanContext& ctx,
                               std::string_view start, bool full) {
  CheckOptions options;
  options.full = full;
  return check_root(catalog, root_id, ctx, start, options);
}

namespace {

std::string skipped_reason(uint64_t size, uint64_t limit, bool known) {
  if (limit == 0)
    return known ? "size differs from the baseline: changed without reading it"
                 : "not in the baseline: judged without reading it";
  return fmt::format("{} bytes, over the {}-byte limit for files {}", size, limit,
                     known ? "whose size differs from the baseline" : "not in the baseline");
}

}  // namespace

namespace {

// Compares `start` and everything beneath it, holding that whole subtree in memory.
Result<CheckReport> check_subtree(Catalog& catalog, int64_t root_id, const ScanContext& ctx,
                                  std::string_view start, const CheckOptions& options,
                                  size_t max_depth) {
  const bool full = options.full;
  const uint64_t limit = options.max_unknown_hash_bytes;
  CheckReport report;
  Tree tree;
  if (auto t = read_tree(ctx, start, max_depth)) {
    tree = std::move(*t);
  } else if (t.error().errnum != ENOENT || start.empty()) {
    return tl::unexpected(std::move(t).error());
  }  // else: the subtree is gone; every baseline entry in it is reported removed
  report.errors = std::move(tree.errors);
  report.too_deep = std::move(tree.too_deep);
  auto& now = tree.entries;

  // One ordered pass over baseline and tree decides every metadata change and which
  // files need their content read; the expected digest waits beside each such file.
  // The baseline entry itself is not kept (a --full check would hold the tree twice);
  // the few whose content turns out to differ are read back from the catalog.
  static constexpr uint32_t kNoChange = UINT32_MAX;
  struct Pending {
    uint32_t now_index;
    uint32_t change;  // index of a change already recorded for this path, or kNoChange
    Digest expected;
  };
  std::vector<Pending> pending;
  std::vector<size_t> to_hash;
  if (now.size() >= kNoChange)
    return fail("check", std::string(start), EOVERFLOW, "too many entries");
  const size_t files = static_cast<size_t>(std::count_if(
      now.begin(), now.end(), [](const Entry& e) { return e.type == FileType::kRegular; }));
  pending.reserve(files);
  to_hash.reserve(files);
  size_t i = 0;
  auto add_new = [&](size_t k) {
    Change c;
    c.kind = ChangeKind::kAdded;
    c.after = now[k];
    if (c.after.type == FileType::kRegular) {
      if (limit == 0 || c.after.size > limit) {
        c.hash_skipped = skipped_reason(c.after.size, limit, false);
      } else {
        pending.push_back(
            {static_cast<uint32_t>(k), static_cast<uint32_t>(report.changes.size()), {}});
        to_hash.push_back(k);
      }
    }
    report.changes.push_back(std::move(c));
  };
  MAMORI_TRY(catalog.for_each(root_id, start, [&](Entry&& base) -> Status {
    while (i < now.size() && now[i].path < base.path) add_new(i++);
    if (i == now.size() || now[i].path != base.path) {
      if (!tree.unknown(base.path)) {
        Change c;
        c.kind = ChangeKind::kRemoved;
        c.before = std::move(base);
        report.changes.push_back(std::move(c));
      }
      return ok();
    }
    Entry& cur = now[i];
    ++report.entries;
    uint32_t attrs = diff_metadata(base, cur);
    const bool both_files = base.type == FileType::kRegular && cur.type == FileType::kRegular;
    uint32_t change = kNoChange;
    if (attrs) {
      change = static_cast<uint32_t>(report.changes.size());
      report.changes.push_back({ChangeKind::kChanged, attrs, base, cur, {}});
    }
    if (both_files && base.size != cur.size) {
      // Changed whatever it holds now; hashed for the report only, within the limit.
      if (limit == 0 || cur.size > limit) {
        report.changes[change].hash_skipped = skipped_reason(cur.size, limit, true);
      } else {
        pending.push_back({static_cast<uint32_t>(i), change, base.sha256});
        to_hash.push_back(i);
      }
    } else if (both_files) {
      if (full || !stat_cache_matches(base, cur) || (attrs & kAttrContent)) {
        pending.push_back({static_cast<uint32_t>(i), change, base.sha256});
        to_hash.push_back(i);
      } else {
        cur.sha256 = base.sha256;
      }
    }
    ++i;
    return ok();
  }));
  while (i < now.size()) add_new(i++);

  auto failures = hash_files(ctx, now, to_hash, nullptr);
  report.hashed = to_hash.size();
  std::vector<bool> failed(now.size(), false);
  for (auto& [index, error] : failures) {
    failed[index] = true;
    report.errors.push_back(std::move(error));
  }
  for (auto& p : pending) {
    const Entry& cur = now[p.now_index];
    if (failed[p.now_index]) continue;
    if (p.change != kNoChange) {
      Change& c = report.changes[p.change];
      if (c.kind == ChangeKind::kChanged && cur.sha256 != c.before.sha256) c.attrs |= kAttrContent;
      c.after = cur;  // with the digest, and the stat of the version that was hashed
      continue;
    }
    if (cur.sha256 != p.expected) {
      auto before = MAMORI_TRY(catalog.get(root_id, cur.path));
      if (!before)
        return fail("check", cur.path, EBADMSG, "baseline entry vanished during the check");
      report.changes.push_back({ChangeKind::kChanged, kAttrContent, std::move(*before), cur, {}});
    }
  }
  std::sort(report.changes.begin(), report.changes.end(),
            [](const Change& a, const Change& b) { return a.path() < b.path(); });
  return report;
}

}  // namespace

Result<CheckReport> check_root(Catalog& catalog, int64_t root_id, const ScanContext& ctx,
                               std::string_view start, const CheckOptions& options) {
  if (!start.empty())
    return check_subtree(catalog, root_id, ctx, start, options, fs::kMaxWalkDepth);
  // The whole root, one name of its top level at a time: only the largest of those
  // subtrees is ever in memory, not the whole tree (a million files of thirty sites held
  // at once cost ~250 MB; one site ~8 MB). The result is the same as one pass: each
  // subtree is compared with its part of the baseline, the depth limit still counts
  // from the root, and the root's own entry is compared here.
  auto top = MAMORI_TRY(read_tree(ctx, "", 0));  // the root and the names in it
  if (top.entries.empty() || !top.entries.front().path.empty())
    return fail("check", "", EIO, "the walk did not report the root");
  // A root that could not be listed: what it holds is unknown, as one pass says.
  if (top.unknown("x"))
    return check_subtree(catalog, root_id, ctx, start, options, fs::kMaxWalkDepth);
  CheckReport report;
  for (auto& e : top.errors)
    if (e.path.empty()) report.errors.push_back(std::move(e));  // the rest: by each name
  Entry& root_now = top.entries.front();
  if (auto base = MAMORI_TRY(catalog.get(root_id, ""))) {
    ++report.entries;
    if (const uint32_t attrs = diff_metadata(*base, root_now))
      report.changes.push_back({ChangeKind::kChanged, attrs, std::move(*base), root_now, {}});
  } else {
    Change c;
    c.kind = ChangeKind::kAdded;
    c.after = root_now;
    report.changes.push_back(std::move(c));
  }
  std::vector<std::string> names = MAMORI_TRY(catalog.top_names(root_id));
  // The top-level entries as they are now, for one that cannot be read beneath.
  std::map<std::string, Entry> top_now;
  for (size_t i = 1; i < top.entries.size(); ++i) {
    names.push_back(top.entries[i].path);
    top_now.emplace(top.entries[i].path, std::move(top.entries[i]));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  top = Tree{};
  for (const auto& name : names) {
    CheckReport part;
    if (ctx.exclude && ctx.exclude->matches(name)) {
      // Excluded now but in the baseline (the exclusions changed since): gone from what
      // is compared, as a single pass would report it.
      MAMORI_TRY(catalog.for_each(root_id, name, [&](Entry&& base) -> Status {
        Change c;
        c.kind = ChangeKind::kRemoved;
        c.before = std::move(base);
        part.changes.push_back(std::move(c));
        return ok();
      }));
    } else if (auto checked =
                   check_subtree(catalog, root_id, ctx, name, options, fs::kMaxWalkDepth - 1)) {
      part = std::move(*checked);
    } else {
      // A top-level directory that cannot be read (EACCES for an unprivileged check): as
      // in a single pass, an error names it, its own metadata is compared, and what lies
      // beneath is unknown, never reported removed.
      part.errors.push_back(std::move(checked).error());
      const auto now = top_now.find(name);
      if (auto base = MAMORI_TRY(catalog.get(root_id, name)); base && now != top_now.end()) {
        ++part.entries;
        if (const uint32_t attrs = diff_metadata(*base, now->second))
          part.changes.push_back({ChangeKind::kChanged, attrs, std::move(*base), now->second, {}});
      }
    }
    std::move(part.changes.begin(), part.changes.end(), std::back_inserter(report.changes));
    std::move(part.errors.begin(), part.errors.end(), std::back_inserter(report.errors));
    std::move(part.too_deep.begin(), part.too_deep.end(), std::back_inserter(report.too_deep));
    report.entries += part.entries;
    report.hashed += part.hashed;
  }
  std::sort(report.changes.begin(), report.changes.end(),
            [](const Change& a, const Change& b) { return a.path() < b.path(); });
  std::sort(report.too_deep.begin(), report.too_deep.end());
  return report;
}

}  // namespace mamori::baseline
