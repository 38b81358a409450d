#include "core/baseline/scan.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "core/fs/beneath.h"
#include "core/fs/walk.h"
#include "core/fs/xattr.h"

namespace mamori::baseline {
namespace {

// Files up to this size are read once into memory, hashed and compressed from there;
// larger ones are hashed while streamed and streamed again into the store.
constexpr size_t kInlineMax = 1 << 20;
constexpr size_t kStreamChunk = 256 * 1024;
// A file rewritten faster than we can read it is reported rather than chased forever.
constexpr int kHashAttempts = 4;

bool same_version(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

Result<UniqueFd> open_for_hash(int root_fd, std::string_view path) {
  // O_NOATIME keeps a scan from touching access times; only the owner or root may ask.
  const int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY;
  auto fd = fs::open_beneath(root_fd, path, flags | O_NOATIME);
  if (!fd && fd.error().errnum == EPERM) fd = fs::open_beneath(root_fd, path, flags);
  return fd;
}

Status hash_one(int root_fd, Entry& e, store::Store* store, std::vector<uint8_t>& buf,
                Progress* progress) {
  auto fd = MAMORI_TRY(open_for_hash(root_fd, e.path));
  for (int attempt = 0; attempt < kHashAttempts; ++attempt) {
    struct stat before {}, after {};
    if (::fstat(fd.get(), &before) != 0) return fail_errno("fstat", e.path);
    if (!S_ISREG(before.st_mode)) return fail("hash", e.path, EINVAL, "no longer a regular file");
    buf.resize(kInlineMax + 1);
    size_t have = 0;
    bool eof = false;
    while (have < buf.size()) {
      const ssize_t n = ::pread(fd.get(), buf.data() + have, buf.size() - have, static_cast<off_t>(have));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno("read", e.path);
      if (n == 0) {
        eof = true;
        break;
      }
      have += static_cast<size_t>(n);
    }
    Digest digest;
    uint64_t total = have;
    if (eof) {
      digest = hash::sha256(std::span<const uint8_t>(buf.data(), have));
    } else {
      hash::Sha256 h;
      h.update({buf.data(), have});
      if (progress) progress->bytes_done += have;
      buf.resize(kStreamChunk);
      for (;;) {
        const ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), static_cast<off_t>(total));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("read", e.path);
        if (n == 0) break;
        h.update({buf.data(), static_cast<size_t>(n)});
        total += static_cast<uint64_t>(n);
        if (progress) progress->bytes_done += static_cast<uint64_t>(n);
      }
      digest = h.finish();
    }
    if (::fstat(fd.get(), &after) != 0) return fail_errno("fstat", e.path);
    if (!same_version(before, after) || total != static_cast<uint64_t>(after.st_size))
      continue;  // written to while we read: the digest may be torn
    if (store && !store->contains(digest)) {
      auto st = eof ? store->put(digest, {buf.data(), have})
                    : store->put_stream(digest, fd.get(), total, e.path);
      if (!st && st.error().errnum == ESTALE) continue;
      if (!st) return st;
    }
    apply_stat(e, after);
    e.sha256 = digest;
    if (progress && eof) progress->bytes_done += have;
    return ok();
  }
  return fail("hash", e.path, EAGAIN, "the file kept changing while it was read");
}

}  // namespace

bool Tree::unknown(std::string_view path) const {
  if (incomplete.empty() || path.empty()) return false;
  std::string_view dir = path;
  do {
    dir = fs::dirname(dir);
    if (std::binary_search(incomplete.begin(), incomplete.end(), dir)) return true;
  } while (!dir.empty());
  return false;
}

Result<Tree> read_tree(int root_fd, std::string_view start, const fs::PathMatcher* exclude) {
  Tree tree;
  auto on_entry = [&](fs::WalkEntry&& w) {
    if (w.incomplete) tree.incomplete.push_back(w.path);
    tree.entries.push_back(from_walk(std::move(w)));
  };
  auto on_error = [&](Error&& e) { tree.errors.push_back(std::move(e)); };
  fs::WalkOptions options;
  options.exclude = exclude;

  if (start.empty()) {
    MAMORI_TRY(fs::walk(root_fd, "", options, on_entry, on_error));
  } else {
    auto parent = MAMORI_TRY(fs::open_parent(root_fd, start));
    fs::WalkEntry w;
    w.path = std::string(start);
    if (::fstatat(parent.dir.get(), parent.name.c_str(), &w.st, AT_SYMLINK_NOFOLLOW) != 0)
      return fail_errno("fstatat", w.path);
    if (S_ISDIR(w.st.st_mode)) {
      auto dir = MAMORI_TRY(fs::open_beneath(root_fd, start, O_RDONLY | O_DIRECTORY));
      MAMORI_TRY(fs::walk(dir.get(), start, options, on_entry, on_error));
    } else {
      if (S_ISLNK(w.st.st_mode))
        w.link_target = MAMORI_TRY(fs::read_link_at(parent.dir.get(), parent.name, w.path));
      w.xattrs = MAMORI_TRY(fs::read_xattrs_at(parent.dir.get(), parent.name, w.path));
      on_entry(std::move(w));
    }
  }
  std::sort(tree.entries.begin(), tree.entries.end(),
            [](const Entry& a, const Entry& b) { return a.path < b.path; });
  std::sort(tree.incomplete.begin(), tree.incomplete.end());
  return tree;
}

std::vector<std::pair<size_t, Error>> hash_files(int root_fd, EntryList& entries,
                                                 const std::vector<size_t>& which,
                                                 store::Store* store, Executor& executor,
                                                 Progress* progress) {
  if (progress) {
    uint64_t bytes = 0;
    for (size_t i : which) bytes += entries[i].size;
    progress->files_total += which.size();
    progress->bytes_total += bytes;
  }
  std::mutex mu;
  std::vector<std::pair<size_t, Error>> failures;
  executor.run(which.size(), [&](size_t k) {
    thread_local std::vector<uint8_t> buf;
    const size_t i = which[k];
    auto st = hash_one(root_fd, entries[i], store, buf, progress);
    if (progress) progress->files_done++;
    if (!st) {
      std::lock_guard lock(mu);
      failures.emplace_back(i, std::move(st).error());
    }
    if (buf.capacity() > 2 * kInlineMax) buf = {};  // keep per-thread memory bounded
  });
  std::sort(failures.begin(), failures.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return failures;
}

}  // namespace mamori::baseline
