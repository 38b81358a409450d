#include "core/baseline/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/fs/atomic_replace.h"
#include "core/fs/beneath.h"

namespace mamori::baseline {
namespace {

fs::InodeMeta meta_of(const Entry& e) {
  return {static_cast<mode_t>(e.mode), e.uid, e.gid, e.mtime_ns, e.xattrs()};
}

// memcmp of a block against itself shifted by one: vectorised by libc, unlike a loop.
bool all_zero(std::span<const uint8_t> chunk) {
  return chunk.empty() ||
         (chunk[0] == 0 && std::memcmp(chunk.data(), chunk.data() + 1, chunk.size() - 1) == 0);
}

// Writes the object's content to `fd` (empty), leaving runs of zeros as holes so a
// sparse file comes back sparse.
Status write_content(Env& env, const store::Store& store, const Entry& e, int fd) {
  off_t offset = 0, written_to = 0;
  auto read = store.read(e.sha256, [&](std::span<const uint8_t> chunk) -> Status {
    offset += static_cast<off_t>(chunk.size());
    if (all_zero(chunk)) return ok();
    MAMORI_TRY(pwrite_all(env, fd, chunk, offset - static_cast<off_t>(chunk.size()), e.path));
    written_to = offset;
    return ok();
  });
  if (!read) {
    Error err = std::move(read).error();
    if (err.op != "store object") return tl::unexpected(std::move(err));
    // Name the file, not only the digest: this is what the operator has to act on.
    return fail("restore", e.path, err.errnum,
                "its baseline content " + err.path + " " + err.detail);
  }
  // A trailing hole has no write to give the file its size (a system call saved on the
  // restore path when the content ends in data).
  if (written_to != offset && ::ftruncate(fd, offset) != 0) return fail_errno("ftruncate", e.path);
  return ok();
}

// Makes room for a new entry of another type: an empty directory may go; anything in a
// non-empty one is content we will not throw away.
Status clear_directory_in_the_way(int dir_fd, const std::string& name, const Entry& want) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ok();
  if (!S_ISDIR(st.st_mode) || want.type == FileType::kDirectory) return ok();
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0) {
    if (errno == ENOTEMPTY || errno == EEXIST)
      return fail("restore", want.path, ENOTEMPTY,
                  "a non-empty directory now stands where a " + std::string(type_name(want.type)) +
                      " was; move it away first");
    return fail_errno("rmdir", want.path);
  }
  return ok();
}

Result<std::optional<fs::Written>> recreate_how(Env& env, const store::Store& store, int root_fd,
                                                const Entry& e, fs::Sync sync);
Result<std::optional<fs::Written>> recreate_in(Env& env, const store::Store& store, int dir,
                                               const std::string& name, const Entry& e,
                                               fs::Sync sync);

Status recreate(Env& env, const store::Store& store, int root_fd, const Entry& e,
                fs::Sync sync = fs::Sync::kNow) {
  MAMORI_TRY(recreate_how(env, store, root_fd, e, sync));
  return ok();
}

Result<std::optional<fs::Written>> recreate_how(Env& env, const store::Store& store, int root_fd,
                                                const Entry& e, fs::Sync sync) {
  using Nothing = std::optional<fs::Written>;
  const auto meta = meta_of(e);
  if (e.path.empty()) {  // the root itself: only its metadata can differ
    MAMORI_TRY(fs::apply_meta(root_fd, meta, false, "."));
    return Nothing();
  }
  auto parent = MAMORI_TRY(fs::open_parent(root_fd, e.path));
  return recreate_in(env, store, parent.dir.get(), parent.name, e, sync);
}

// `e` (not the root) put back as `name` in `dir`, its parent open beneath the root.
Result<std::optional<fs::Written>> recreate_in(Env& env, const store::Store& store, int dir,
                                               const std::string& name, const Entry& e,
                                               fs::Sync sync) {
  using Nothing = std::optional<fs::Written>;
  const auto meta = meta_of(e);
  MAMORI_TRY(clear_directory_in_the_way(dir, name, e));
  switch (e.type) {
    case FileType::kRegular:
      return Nothing(MAMORI_TRY(fs::replace_or_rewrite_file(
          env, dir, name, meta, [&](int fd) { return write_content(env, store, e, fd); }, e.path,
          sync)));
    case FileType::kDirectory: {
      struct stat st {};
      if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
          ::unlinkat(dir, name.c_str(), 0) != 0)
        return fail_errno("unlinkat", e.path);
      MAMORI_TRY(fs::ensure_directory(dir, name, meta, e.path));
      return Nothing();
    }
    case FileType::kSymlink:
      MAMORI_TRY(fs::replace_symlink(env, dir, name, e.link_target(), meta, e.path));
      return Nothing();
    default:
      MAMORI_TRY(fs::replace_node(env, dir, name, type_bits(e.type), static_cast<dev_t>(e.rdev),
                                  meta, e.path));
      return Nothing();
  }
}

// repair_metadata of `e` (not the root) as `name` in `dir`, its parent open beneath the
// root.
Result<std::optional<fs::Written>> repair_metadata_in(Env& env, const store::Store& store, int dir,
                                                      const std::string& name, const Entry& e,
                                                      fs::Sync sync) {
  // Directory times follow their children and are not restored.
  const bool set_mtime = e.type != FileType::kDirectory;
  auto st = fs::apply_meta_own_at(dir, name, meta_of(e), set_mtime, e.path);
  if (!st && st.error().errnum == EMLINK) return recreate_in(env, store, dir, name, e, sync);
  if (!st) return tl::unexpected(std::move(st).error());
  return std::optional<fs::Written>();
}

// Puts owner, mode, xattrs and mtime back on the entry there now, unless its inode has
// other names (fs::apply_meta_own_at): then it may be a file from outside the root,
// hard-linked in, and it is replaced from the store rather than changed.
// Returns how content was written when it had to be replaced, nothing when only metadata
// changed.
Result<std::optional<fs::Written>> repair_metadata(Env& env, const store::Store& store, int root_fd,
                                                   const Entry& e, fs::Sync sync = fs::Sync::kNow) {
  if (e.path.empty()) {
    MAMORI_TRY(fs::apply_meta(root_fd, meta_of(e), false, "."));
    return std::optional<fs::Written>();
  }
  auto parent = MAMORI_TRY(fs::open_parent(root_fd, e.path));
  return repair_metadata_in(env, store, parent.dir.get(), parent.name, e, sync);
}

}  // namespace

Status restore_entry(Env& env, const store::Store& store, int root_fd, const Entry& want,
                     bool rebuild, fs::Sync sync) {
  MAMORI_TRY(restore_entry_how(env, store, root_fd, want, rebuild, sync));
  return ok();
}

Result<std::optional<fs::Written>> restore_entry_how(Env& env, const store::Store& store,
                                                     int root_fd, const Entry& want, bool rebuild,
                                                     fs::Sync sync) {
  return rebuild ? recreate_how(env, store, root_fd, want, sync)
                 : repair_metadata(env, store, root_fd, want, sync);
}

Result<std::optional<fs::Written>> restore_entry_in(Env& env, const store::Store& store, int dir_fd,
                                                    const std::string& name, const Entry& want,
                                                    bool rebuild, fs::Sync sync) {
  if (want.path.empty() || name.empty())
    return fail("restore", want.path, EINVAL, "the root is restored through restore_entry_how");
  return rebuild ? recreate_in(env, store, dir_fd, name, want, sync)
                 : repair_metadata_in(env, store, dir_fd, name, want, sync);
}

Result<RestoreReport> restore(Env& env, Catalog& catalog, const store::Store& store,
                              int64_t root_id, const ScanContext& ctx, std::string_view start,
                              bool refresh_cache) {
  const int root_fd = ctx.root_fd;
  RestoreReport out;
  std::vector<Entry> refreshed;
  auto restored = [&](const Entry& want, ChangeKind was, uint32_t attrs) {
    out.restored.push_back({want.path, was, attrs});
    if (auto now = fs::stat_beneath(root_fd, want.path)) {
      Entry fresh = want;
      apply_stat(fresh, *now);
      refreshed.push_back(std::move(fresh));
    }
  };
  // The directories above `start` first: a path inside a deleted (or symlink-swapped)
  // directory cannot be reached until they are back.
  for (size_t slash = start.find('/'); slash != std::string_view::npos;
       slash = start.find('/', slash + 1)) {
    const std::string dir(start.substr(0, slash));
    auto st = fs::stat_beneath(root_fd, dir);
    if (st && S_ISDIR(st->st_mode)) continue;
    auto want = MAMORI_TRY(catalog.get(root_id, dir));
    if (!want) break;  // not in the baseline: nothing beneath it can be either
    MAMORI_TRY(recreate(env, store, root_fd, *want));
    restored(*want, st ? ChangeKind::kChanged : ChangeKind::kRemoved, kAttrType);
  }
  // What is not in the baseline is only reported, so it is never read (check.h).
  CheckOptions options;
  options.max_unknown_hash_bytes = 0;
  auto report = MAMORI_TRY(check_root(catalog, root_id, ctx, start, options));
  out.errors = std::move(report.errors);
  // Files whose content could not be read (a chmod 000 as an unprivileged user): their
  // content is unknown, so they are rewritten from the store, not just re-permissioned.
  std::vector<std::string> unread;
  for (const auto& e : out.errors) unread.push_back(e.path);
  std::sort(unread.begin(), unread.end());
  // Changes come sorted by path, so a directory is back before anything inside it.
  for (auto& c : report.changes) {
    if (c.kind == ChangeKind::kAdded) {
      out.not_in_baseline.push_back(c.after.path);
      continue;
    }
    const Entry& want = c.before;
    const bool rebuild = c.kind == ChangeKind::kRemoved ||
                         (c.attrs & (kAttrType | kAttrContent | kAttrLinkTarget | kAttrDevice)) ||
                         (want.type == FileType::kRegular &&
                          std::binary_search(unread.begin(), unread.end(), want.path));
    auto st = restore_entry(env, store, root_fd, want, rebuild, fs::Sync::kNow);
    if (!st) {
      out.errors.push_back(std::move(st).error());
      continue;
    }
    restored(want, c.kind, c.attrs);
  }
  // An unreadable file that was rewritten from the store is no longer a problem.
  std::erase_if(out.errors, [&](const Error& e) {
    return std::any_of(out.restored.begin(), out.restored.end(),
                       [&](const Restored& r) { return r.path == e.path; });
  });
  if (refresh_cache && !refreshed.empty()) {
    auto txn = MAMORI_TRY(db::Transaction::begin(catalog.db()));
    for (const auto& e : refreshed) MAMORI_TRY(catalog.update_stat_cache(root_id, e));
    MAMORI_TRY(txn.commit());
  }
  return out;
}

}  // namespace mamori::baseline
