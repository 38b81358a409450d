#include "core/baseline/scan.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/base/mutex.h"
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

struct Read {
  Digest digest;
  uint64_t total = 0;
  bool whole = false;  // the content fits in `buf` (it is all there)
};

// Hashes the file from offset 0 to its end, reading at most `limit` bytes: a file that
// grows while it is read (an attacker appending without end) stops the read there, and
// the caller sees a total that differs from the size it expected. Content up to
// kInlineMax stays in `buf`.
Result<Read> read_content(int fd, const std::string& path, std::vector<uint8_t>& buf,
                          Progress* progress, uint64_t limit) {
  Read r;
  buf.resize(kInlineMax + 1);
  const size_t first = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit));
  size_t have = 0;
  while (have < first) {
    const ssize_t n = ::pread(fd, buf.data() + have, first - have, static_cast<off_t>(have));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read", path);
    have += static_cast<size_t>(n);
    // At the end, or at the size fstat() gave (limit - 1): a file that grew after this
    // read has another size or mtime when the caller fstat()s it again, so the read
    // that would return 0 here (one system call per file) is not needed.
    if (n == 0 || have + 1 == limit) {
      r.whole = true;
      break;
    }
  }
  r.total = have;
  if (progress) progress->bytes_done += have;
  if (!r.whole && have == limit) {  // the limit, not the end: the caller retries or fails
    r.digest = hash::sha256(std::span<const uint8_t>(buf.data(), have));
    return r;
  }
  if (r.whole) {
    r.digest = hash::sha256(std::span<const uint8_t>(buf.data(), have));
    return r;
  }
  hash::Sha256 h;
  h.update({buf.data(), have});
  std::vector<uint8_t> chunk(kStreamChunk);
  while (r.total < limit) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), limit - r.total));
    const ssize_t n = ::pread(fd, chunk.data(), want, static_cast<off_t>(r.total));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read", path);
    if (n == 0) break;
    h.update({chunk.data(), static_cast<size_t>(n)});
    r.total += static_cast<uint64_t>(n);
    if (progress) progress->bytes_done += static_cast<uint64_t>(n);
  }
  r.digest = h.finish();
  return r;
}

int64_t ctime_ns(const struct stat& st) {
  return int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
}

Status hash_one(const ScanContext& ctx, Entry& e, store::Store* store, std::vector<uint8_t>& buf) {
  auto fd = MAMORI_TRY(open_for_hash(ctx.root_fd, e.path));
  const int64_t settle = std::chrono::nanoseconds(kSettleTime).count();
  for (int attempt = 0; attempt < kHashAttempts; ++attempt) {
    struct stat before {
    }, after{};
    if (::fstat(fd.get(), &before) != 0) return fail_errno("fstat", e.path);
    if (!S_ISREG(before.st_mode)) return fail("hash", e.path, EINVAL, "no longer a regular file");
    // A ctime in the future (age < 0) means the clock was set back: waiting would not help.
    const int64_t age = ctx.clock.now_ns() - ctime_ns(before);
    if (age >= 0 && age < settle) {
      ctx.clock.wait(std::chrono::nanoseconds(settle - age));
      continue;
    }
    // One byte past the size it had: enough to see it grew, never an unbounded read.
    const Read r = MAMORI_TRY(read_content(fd.get(), e.path, buf, ctx.progress,
                                           static_cast<uint64_t>(before.st_size) + 1));
    if (::fstat(fd.get(), &after) != 0) return fail_errno("fstat", e.path);
    if (!same_version(before, after) || r.total != static_cast<uint64_t>(after.st_size))
      continue;  // written to while we read: the digest may be torn
    if (store && !store->contains(r.digest)) {
      auto st = r.whole ? store->put(r.digest, {buf.data(), r.total})
                        : store->put_stream(r.digest, fd.get(), r.total, e.path);
      if (!st && st.error().errnum == ESTALE) continue;
      if (!st) return st;
    }
    apply_stat(e, after);
    e.sha256 = r.digest;
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

Result<Tree> read_tree(const ScanContext& ctx, std::string_view start, size_t max_depth) {
  const int root_fd = ctx.root_fd;
  Tree tree;
  auto on_entry = [&](fs::WalkEntry&& w) {
    if (w.incomplete) tree.incomplete.push_back(w.path);
    if (w.too_deep) tree.too_deep.push_back(w.path);
    tree.entries.push_back(from_walk(std::move(w)));
  };
  auto on_error = [&](Error&& e) { tree.errors.push_back(std::move(e)); };
  fs::WalkOptions options;
  options.exclude = ctx.exclude;
  options.max_depth = max_depth;

  if (start.empty()) {
    // A descriptor of its own: getdents64 reads on from the descriptor's offset, and a
    // long-lived root_fd (the agent's) is at the end of the listing after its first walk.
    auto dir = MAMORI_TRY(fs::open_beneath(root_fd, ".", O_RDONLY | O_DIRECTORY));
    MAMORI_TRY(fs::walk(dir.get(), "", options, on_entry, on_error));
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
  std::sort(tree.too_deep.begin(), tree.too_deep.end());
  return tree;
}

std::vector<std::pair<size_t, Error>> hash_files(const ScanContext& ctx, EntryList& entries,
                                                 const std::vector<size_t>& which,
                                                 store::Store* store) {
  if (ctx.progress) {
    uint64_t bytes = 0;
    for (size_t i : which) bytes += entries[i].size;
    ctx.progress->files_total += which.size();
    ctx.progress->bytes_total += bytes;
  }
  Mutex mu;
  std::vector<std::pair<size_t, Error>> failures;  // with mu
  ctx.executor.run(which.size(), [&](size_t k) {
    thread_local std::vector<uint8_t> buf;
    const size_t i = which[k];
    auto st = hash_one(ctx, entries[i], store, buf);
    if (ctx.progress) ctx.progress->files_done++;
    if (!st) {
      MutexLock lock(mu);
      failures.emplace_back(i, std::move(st).error());
    }
  });
  std::sort(failures.begin(), failures.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return failures;
}

}  // namespace mamori::baseline
