// mamori diff: show how one path differs from its baseline: a unified diff of text,
// the two SHA-256 of binary content, and every metadata change.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/fs/beneath.h"

namespace mamori::cli {
namespace {

// Larger contents are compared by hash only.
constexpr uint64_t kMaxDiffBytes = 16ull << 20;

Result<std::string> read_current(int root_fd, const std::string& rel, uint64_t limit) {
  auto fd = MAMORI_TRY(fs::open_beneath(root_fd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  return fs::read_fd(fd.get(), limit, rel);
}

}  // namespace

int run_diff(App& app, const std::string& arg) {
  auto t = app.resolve(arg);
  if (!t) return app.report(t.error(), kExitUsage);
  auto state = app.open_state(baseline::StateAccess::kRead);
  if (!state) return app.report(state.error(), state.error().errnum == ENOENT ? kExitUsage : App::code_for(state.error()));
  auto& catalog = (*state)->catalog;
  const std::string& root_path = t->root->config->path;
  const std::string abs = absolute(root_path, t->rel);

  auto result = [&]() -> Result<int> {
    auto row = MAMORI_TRY(catalog.find_root(root_path));
    if (!row) return fail("diff", root_path, 0, "root has no baseline yet: run 'mamori init'");
    auto base = MAMORI_TRY(catalog.get(row->id, t->rel));
    auto root_fd = MAMORI_TRY(fs::open_root(root_path));
    auto st = fs::stat_beneath(root_fd.get(), t->rel);
    if (!st && st.error().errnum != ENOENT) return tl::unexpected(st.error());
    std::optional<baseline::Entry> now;
    if (st) {
      baseline::Entry e;
      e.path = t->rel;
      baseline::apply_stat(e, *st);
      now = e;
    }
    if (!base && !now) return fail("diff", abs, ENOENT, "neither in the baseline nor on disk");
    if (!base) {
      std::printf("%s: not in the baseline (added)\n", escape(abs).c_str());
      return kExitChanges;
    }
    if (!now) {
      std::printf("%s: removed (baseline: %s, %s)\n", escape(abs).c_str(),
                  std::string(baseline::type_name(base->type)).c_str(),
                  base->type == baseline::FileType::kRegular ? base->sha256.hex().c_str() : "-");
      return kExitChanges;
    }
    int code = kExitOk;
    if (base->type != now->type) {
      std::printf("type: %s -> %s\n", std::string(baseline::type_name(base->type)).c_str(),
                  std::string(baseline::type_name(now->type)).c_str());
      return kExitChanges;
    }
    if (base->mode != now->mode) {
      std::printf("mode: %04o -> %04o\n", base->mode, now->mode);
      code = kExitChanges;
    }
    if (base->uid != now->uid || base->gid != now->gid) {
      std::printf("owner: %u:%u -> %u:%u\n", base->uid, base->gid, now->uid, now->gid);
      code = kExitChanges;
    }
    if (base->type == baseline::FileType::kSymlink) {
      auto parent = MAMORI_TRY(fs::open_parent(root_fd.get(), t->rel));
      const auto target = MAMORI_TRY(fs::read_link_at(parent.dir.get(), parent.name, t->rel));
      if (target != base->link_target()) {
        std::printf("link target: %s -> %s\n", quote(base->link_target()).c_str(), quote(target).c_str());
        code = kExitChanges;
      }
    }
    if (base->type != baseline::FileType::kRegular) return code;
    if (base->size > kMaxDiffBytes || now->size > kMaxDiffBytes) {
      // Too large to show: compare by hash.
      std::printf("content: large file; baseline sha256 %s, size %llu -> %llu\n", base->sha256.hex().c_str(),
                  static_cast<unsigned long long>(base->size), static_cast<unsigned long long>(now->size));
      return base->size != now->size ? kExitChanges : code;
    }
    const std::string before = MAMORI_TRY((*state)->store->read_all(base->sha256, kMaxDiffBytes));
    const std::string after = MAMORI_TRY(read_current(root_fd.get(), t->rel, kMaxDiffBytes));
    if (before == after) return code;
    if (looks_binary(before) || looks_binary(after)) {
      std::printf("binary content differs: sha256 %s -> %s\n", base->sha256.hex().c_str(),
                  hash::sha256(after).hex().c_str());
      return kExitChanges;
    }
    MAMORI_TRY(unified_diff(app.env(), abs, before, after));
    return kExitChanges;
  }();
  if (!result) return app.report(result.error(), App::code_for(result.error()));
  return *result;
}

}  // namespace mamori::cli
