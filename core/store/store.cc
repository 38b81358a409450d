#include "core/store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

namespace mamori::store {
namespace {

constexpr char kPackMagic[8] = {'M', 'A', 'M', 'O', 'R', 'I', 'P', 'K'};
constexpr uint32_t kPackVersion = 1;
constexpr uint64_t kPackHeaderSize = 16;
constexpr char kObjectMagic[4] = {'M', 'O', 'B', 'J'};
constexpr uint64_t kObjectHeaderSize = 56;
constexpr int kCodecRaw = 0;
constexpr int kCodecZstd = 1;
constexpr size_t kChunk = 128 * 1024;
// Writeback of a pack being filled is started every this many bytes (sync_file_range),
// so commit()'s fsync() waits for the last slice only, not for the whole pack.
constexpr uint64_t kWritebackSlice = 16ull << 20;
// The compressor compresses objects up to this size in memory, larger ones streaming.
constexpr uint64_t kCompressInlineMax = 4ull << 20;
// Objects up to this size are written header and payload in one pwrite().
constexpr size_t kJoinedWriteMax = 1 << 20;
// How long a writer waits for the background compressor to give way before it reports
// the store busy. The compressor checks between objects, so this is one object's time.
constexpr std::chrono::seconds kCompressorGiveWay{60};
constexpr std::chrono::milliseconds kLockPoll{5};
constexpr uint64_t kYieldProbeBytes = 1 << 20;

std::string pack_name(uint32_t pack) { return fmt::format("pack-{:06d}.mpk", pack); }

void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

std::array<uint8_t, kPackHeaderSize> pack_header() {
  std::array<uint8_t, kPackHeaderSize> h{};
  std::memcpy(h.data(), kPackMagic, 8);
  h[8] = kPackVersion;
  return h;
}

std::array<uint8_t, kObjectHeaderSize> object_header(const Digest& d, int codec, uint64_t size,
                                                     uint64_t stored) {
  std::array<uint8_t, kObjectHeaderSize> h{};
  std::memcpy(h.data(), kObjectMagic, 4);
  h[4] = static_cast<uint8_t>(codec);
  put_u64(h.data() + 8, size);
  put_u64(h.data() + 16, stored);
  std::memcpy(h.data() + 24, d.bytes.data(), 32);
  return h;
}

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

// Per-thread compression scratch: a context and an output buffer that grows to the
// largest object this thread compressed (bounded by the streaming threshold).
struct Scratch {
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx{ZSTD_createCCtx()};
  std::unique_ptr<uint8_t[]> out;  // grown, never zero-filled: it is overwritten anyway
  size_t capacity = 0;
  std::vector<uint8_t> joined;  // header + payload of a small object, written at once
  uint8_t* reserve(size_t n) {
    if (n > capacity) {
      out.reset(new uint8_t[n]);
      capacity = n;
    }
    return out.get();
  }
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Per-thread read scratch: a decoder and two buffers, so reading an object (the
// real-time restore path) allocates nothing. A fresh 128 KiB buffer is an mmap() and its
// page faults each time, and a fresh decoder its workspace. A decoder that grew past
// kKeptDecoderMax (the window of a large object) is not kept. `busy`: a read started
// inside another read's sink takes scratch of its own.
constexpr size_t kKeptDecoderMax = 1 << 20;
struct ReadScratch {
  std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx;
  std::vector<uint8_t> in, out;
  bool busy = false;
};

tl::unexpected<Error> corrupt(const Digest& d, std::string detail) {
  return fail("store object", d.hex(), EBADMSG, std::move(detail));
}

}  // namespace

Store::Store(Env& env, db::Db& db, UniqueFd dir, Access access, StoreOptions options)
    : env_(env), db_(db), dir_(std::move(dir)), access_(access), options_(options) {}

// `lock` goes first: a writer that finds it held and `compress.lock` free must not be
// able to see the compressor half gone (take_lock).
Store::~Store() { lock_.reset(); }

Status Store::create_schema(db::Db& db) {
  return db.exec(
      "CREATE TABLE IF NOT EXISTS objects("
      " sha256 BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL,"
      " stored_size INTEGER NOT NULL, size INTEGER NOT NULL) WITHOUT ROWID;"
      // Store format 2: packs whose objects were stored raw and wait for compression.
      "CREATE TABLE IF NOT EXISTS raw_packs(pack INTEGER PRIMARY KEY)");
}

Result<std::unique_ptr<Store>> Store::open(Env& env, db::Db& db, int state_dir_fd, Access access,
                                           StoreOptions options) {
  if (access == Access::kWrite && ::mkdirat(state_dir_fd, "store", 0700) != 0 && errno != EEXIST)
    return fail_errno("mkdirat", "store");
  const int raw = ::openat(state_dir_fd, "store", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return fail_errno("open content store", "store");
  std::unique_ptr<Store> s(new Store(env, db, UniqueFd(raw), access, options));
  if (access == Access::kWrite) {
    MAMORI_TRY(s->take_lock());
    MAMORI_TRY(s->load_index());
    // Raw objects go to a pack of their own, so compressing it rewrites nothing else.
    if (options.defer_compression) {
      MutexLock lock(s->mu_);
      s->rotate_ = true;
    }
  }
  return s;
}

namespace {

Result<UniqueFd> open_lock_file(int dir, const char* name) {
  const int fd = ::openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return fail_errno("open store lock", std::string("store/") + name);
  return UniqueFd(fd);
}

// flock() that retries EINTR; false when `nonblocking` and the lock is held elsewhere.
Result<bool> lock_file(int fd, int op, const char* name) {
  for (;;) {
    if (::flock(fd, op) == 0) return true;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return false;
    return fail_errno("flock", std::string("store/") + name);
  }
}

}  // namespace

// Three lock files: `lock`, held exclusively by the one writer; `compress.lock`, held by
// the background compressor for its lifetime; `yield`, held shared by every other writer,
// which the compressor probes between objects to know that it must give way.
Status Store::take_lock() {
  lock_ = MAMORI_TRY(open_lock_file(dir_.get(), "lock"));
  if (options_.compressor) {
    compress_ = MAMORI_TRY(open_lock_file(dir_.get(), "compress.lock"));
    MAMORI_TRY(lock_file(compress_.get(), LOCK_EX, "compress.lock"));  // one at a time
    yield_ = MAMORI_TRY(open_lock_file(dir_.get(), "yield"));
    MAMORI_TRY(lock_file(lock_.get(), LOCK_EX, "lock"));  // waits for init to exit
    return ok();
  }
  yield_ = MAMORI_TRY(open_lock_file(dir_.get(), "yield"));
  MAMORI_TRY(lock_file(yield_.get(), LOCK_SH, "yield"));  // the compressor's probe is brief
  if (MAMORI_TRY(lock_file(lock_.get(), LOCK_EX | LOCK_NB, "lock"))) return ok();
  // Busy: if the holder is the compressor it sees our shared `yield` and stops soon.
  auto compress = MAMORI_TRY(open_lock_file(dir_.get(), "compress.lock"));
  const auto deadline = env_.clock().monotonic() + kCompressorGiveWay;
  for (;;) {
    const bool compressor_gone =
        MAMORI_TRY(lock_file(compress.get(), LOCK_SH | LOCK_NB, "compress.lock"));
    if (compressor_gone) ::flock(compress.get(), LOCK_UN);  // a compressor may start now
    // The compressor drops `lock` before `compress.lock`: one more try settles the race.
    if (MAMORI_TRY(lock_file(lock_.get(), LOCK_EX | LOCK_NB, "lock"))) return ok();
    if (compressor_gone || env_.clock().monotonic() > deadline)
      return fail("lock content store", "store/lock", EBUSY,
                  "another mamori process is writing the baseline");
    env_.clock().wait(kLockPoll);
  }
}

bool Store::should_yield() const {
  if (!options_.compressor || !yield_.valid()) return false;
  auto got = lock_file(yield_.get(), LOCK_EX | LOCK_NB, "yield");
  if (!got) return true;  // cannot tell: give way rather than hold a writer up
  if (!*got) return true;
  ::flock(yield_.get(), LOCK_UN);
  return false;
}

Status Store::load_index() {
  MutexLock lock(mu_);  // not shared yet: taken for the analysis, never contended
  // Every digest already stored, so duplicates are skipped without a query per file.
  auto all = MAMORI_TRY(db_.prepare("SELECT sha256 FROM objects"));
  while (MAMORI_TRY(all.step())) known_.insert(MAMORI_TRY(Digest::from_bytes(all.blob(0))));

  // Append to the newest pack, cut back to its last indexed object: bytes past that are
  // the tail of a writer that died before its transaction committed.
  // Compaction leaves gaps in the numbering: start from the highest indexed pack and
  // probe upward for packs a crashed writer created but never indexed.
  auto top = MAMORI_TRY(db_.prepare("SELECT coalesce(max(pack), 0) FROM objects"));
  MAMORI_TRY(top.step());
  uint32_t newest = static_cast<uint32_t>(top.int64(0));
  top.reset();
  for (uint32_t p = newest + 1;; ++p) {
    struct stat st {};
    if (::fstatat(dir_.get(), pack_name(p).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) break;
    newest = p;
  }
  if (newest == 0) return ok();
  auto end = MAMORI_TRY(
      db_.prepare("SELECT coalesce(max(offset + stored_size), 0) FROM objects WHERE pack = ?"));
  end.bind(1, static_cast<int64_t>(newest));
  MAMORI_TRY(end.step());
  const uint64_t indexed = static_cast<uint64_t>(end.int64(0));
  const uint64_t indexed_end = std::max<uint64_t>(indexed, kPackHeaderSize);
  end.reset();
  const int fd = MAMORI_TRY(pack_fd(newest));
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail_errno("fstat", "store/" + pack_name(newest));
  // Created by a writer that died before it wrote the header: nothing in it is indexed,
  // so it is given the header it should have had.
  if (indexed == 0 && static_cast<uint64_t>(st.st_size) < kPackHeaderSize) {
    MAMORI_TRY(pwrite_all(env_, fd, pack_header(), 0, "store/" + pack_name(newest)));
    st.st_size = kPackHeaderSize;
  }
  if (static_cast<uint64_t>(st.st_size) < indexed_end)
    return corrupt({}, "pack " + pack_name(newest) + " is shorter than its index");
  if (static_cast<uint64_t>(st.st_size) > indexed_end &&
      ::ftruncate(fd, static_cast<off_t>(indexed_end)) != 0)
    return fail_errno("ftruncate", "store/" + pack_name(newest));
  current_pack_ = newest;
  current_end_ = indexed_end;
  return ok();
}

Result<int> Store::pack_fd(uint32_t pack) const {
  if (packs_.size() <= pack) packs_.resize(pack + 1);
  if (!packs_[pack].valid()) {
    const int flags = (access_ == Access::kWrite ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC;
    const int fd = ::openat(dir_.get(), pack_name(pack).c_str(), flags);
    if (fd < 0) return fail_errno("open pack", "store/" + pack_name(pack));
    packs_[pack].reset(fd);
  }
  return packs_[pack].get();
}

bool Store::contains(const Digest& digest) const {
  MutexLock lock(mu_);
  return known_.count(digest) != 0;
}

Result<std::pair<uint32_t, uint64_t>> Store::reserve(uint64_t bytes) {
  if (current_pack_ == 0 || rotate_ ||
      (current_end_ + bytes > options_.max_pack_bytes && current_end_ > kPackHeaderSize)) {
    rotate_ = false;
    const uint32_t next = current_pack_ + 1;
    const std::string name = pack_name(next);
    const int fd = ::openat(dir_.get(), name.c_str(),
                            O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return fail_errno("create pack", "store/" + name);
    if (packs_.size() <= next) packs_.resize(next + 1);
    packs_[next].reset(fd);
    MAMORI_TRY(pwrite_all(env_, fd, pack_header(), 0, "store/" + name));
    if (env_.fsync(dir_.get()) != 0) return fail_errno("fsync", "store");
    current_pack_ = next;
    current_end_ = kPackHeaderSize;
  }
  if (std::find(dirty_packs_.begin(), dirty_packs_.end(), current_pack_) == dirty_packs_.end())
    dirty_packs_.push_back(current_pack_);
  const auto at = std::make_pair(current_pack_, current_end_);
  current_end_ += bytes;
  return at;
}

void Store::kick_writeback(uint32_t pack, int fd, uint64_t end) {
  uint64_t from = 0;
  {
    MutexLock lock(mu_);
    if (kicked_pack_ != pack) {
      kicked_pack_ = pack;
      kicked_end_ = 0;
    }
    if (end < kicked_end_ + kWritebackSlice) return;
    from = kicked_end_;
    kicked_end_ = end;
  }
  // Only starts the I/O; commit()'s fsync() is what makes it durable. Bytes another
  // thread has reserved but not written yet are simply left for that fsync().
  (void)::sync_file_range(fd, static_cast<off_t>(from), static_cast<off_t>(end - from),
                          SYNC_FILE_RANGE_WRITE);
}

Result<Store::Location> Store::write_object(const Digest& digest, std::span<const uint8_t> payload,
                                            int codec, uint64_t size) {
  const uint64_t total = kObjectHeaderSize + payload.size();
  std::pair<uint32_t, uint64_t> at;
  int fd = -1;
  {
    MutexLock lock(mu_);
    at = MAMORI_TRY(reserve(total));
    fd = MAMORI_TRY(pack_fd(at.first));
  }
  const auto header = object_header(digest, codec, size, payload.size());
  const std::string name = "store/" + pack_name(at.first);
  MAMORI_TRY(pwrite_all(env_, fd, header, static_cast<off_t>(at.second), name));
  MAMORI_TRY(
      pwrite_all(env_, fd, payload, static_cast<off_t>(at.second + kObjectHeaderSize), name));
  kick_writeback(at.first, fd, at.second);
  return Location{at.first, at.second, total, size};
}

Status Store::append(const Digest& digest, std::span<const uint8_t> payload, int codec,
                     uint64_t size) {
  const uint64_t total = kObjectHeaderSize + payload.size();
  std::pair<uint32_t, uint64_t> at;
  int fd = -1;
  {
    MutexLock lock(mu_);
    if (known_.count(digest)) return ok();  // another thread stored it meanwhile
    at = MAMORI_TRY(reserve(total));
    fd = MAMORI_TRY(pack_fd(at.first));
    known_.insert(digest);
    pending_.push_back({digest, {at.first, at.second, total, size}});
    if (codec == kCodecRaw && options_.defer_compression) deferred_bytes_ += size;
  }
  // The region is ours; write it without holding the lock.
  const auto header = object_header(digest, codec, size, payload.size());
  const std::string name = "store/" + pack_name(at.first);
  auto written = [&]() -> Status {
    if (payload.size() <= kJoinedWriteMax) {
      // One write instead of two: system calls cost more than the copy on a VM, and
      // init makes one per file.
      auto& joined = scratch().joined;
      joined.resize(total);
      std::memcpy(joined.data(), header.data(), header.size());
      if (!payload.empty())
        std::memcpy(joined.data() + kObjectHeaderSize, payload.data(), payload.size());
      return pwrite_all(env_, fd, joined, static_cast<off_t>(at.second), name);
    }
    MAMORI_TRY(pwrite_all(env_, fd, header, static_cast<off_t>(at.second), name));
    return pwrite_all(env_, fd, payload, static_cast<off_t>(at.second + kObjectHeaderSize), name);
  }();
  if (!written) {
    // Nothing may index this object now: forget it so commit() cannot point at it.
    MutexLock lock(mu_);
    known_.erase(digest);
    std::erase_if(pending_, [&](const Pending& p) { return p.digest == digest; });
    if (codec == kCodecRaw && options_.defer_compression) deferred_bytes_ -= size;
    return written;
  }
  kick_writeback(at.first, fd, at.second);
  return ok();
}

Status Store::put(const Digest& digest, std::span<const uint8_t> content) {
  if (access_ != Access::kWrite) return fail("store put", "store", EROFS);
  if (contains(digest)) return ok();
  if (options_.defer_compression) return append(digest, content, kCodecRaw, content.size());
  Scratch& s = scratch();
  const size_t bound = ZSTD_compressBound(content.size());
  uint8_t* out = s.reserve(bound);
  const size_t n = ZSTD_compressCCtx(s.cctx.get(), out, bound, content.data(), content.size(),
                                     options_.compression_level);
  if (ZSTD_isError(n) || n >= content.size())  // incompressible: keep it raw
    return append(digest, content, kCodecRaw, content.size());
  return append(digest, {out, n}, kCodecZstd, content.size());
}

Status Store::put_stream(const Digest& digest, int fd, uint64_t size, std::string_view display) {
  if (access_ != Access::kWrite) return fail("store put", "store", EROFS);
  // Streams straight into the pack, so it holds the lock throughout; files this large
  // are few, and the lock keeps the pack's tail ours to cut back if the content changed.
  MutexLock lock(mu_);
  if (known_.count(digest)) return ok();
  auto at = MAMORI_TRY(reserve(kObjectHeaderSize));
  const int pfd = MAMORI_TRY(pack_fd(at.first));
  const std::string name = "store/" + pack_name(at.first);
  uint64_t out_pos = at.second + kObjectHeaderSize;

  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, options_.compression_level);
  ZSTD_CCtx_setPledgedSrcSize(cctx.get(), size);
  std::vector<uint8_t> in(kChunk), out(ZSTD_CStreamOutSize());
  hash::Sha256 h;
  uint64_t read_total = 0;
  auto stream = [&]() -> Status {
    for (bool last = false; !last;) {
      const ssize_t n = ::pread(fd, in.data(), in.size(), static_cast<off_t>(read_total));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno("read", std::string(display));
      }
      read_total += static_cast<uint64_t>(n);
      last = n == 0 || read_total >= size;
      h.update({in.data(), static_cast<size_t>(n)});
      if (options_.defer_compression) {
        MAMORI_TRY(pwrite_all(env_, pfd, {in.data(), static_cast<size_t>(n)},
                              static_cast<off_t>(out_pos), name));
        out_pos += static_cast<uint64_t>(n);
        continue;
      }
      ZSTD_inBuffer ib{in.data(), static_cast<size_t>(n), 0};
      const auto mode = last ? ZSTD_e_end : ZSTD_e_continue;
      for (bool done = false; !done;) {
        ZSTD_outBuffer ob{out.data(), out.size(), 0};
        const size_t rem = ZSTD_compressStream2(cctx.get(), &ob, &ib, mode);
        if (ZSTD_isError(rem))
          return fail_msg("zstd compress", std::string(display), ZSTD_getErrorName(rem));
        MAMORI_TRY(pwrite_all(env_, pfd, {out.data(), ob.pos}, static_cast<off_t>(out_pos), name));
        out_pos += ob.pos;
        done = last ? rem == 0 : ib.pos == ib.size;
      }
    }
    if (read_total != size || h.finish() != digest)
      return fail("store", std::string(display), ESTALE, "content changed while it was stored");
    const auto header = object_header(digest, options_.defer_compression ? kCodecRaw : kCodecZstd,
                                      size, out_pos - at.second - kObjectHeaderSize);
    return pwrite_all(env_, pfd, header, static_cast<off_t>(at.second), name);
  }();
  if (!stream) {
    // Our reservation is the pack's tail: cut it off so the next object starts there.
    current_end_ = at.second;
    if (::ftruncate(pfd, static_cast<off_t>(at.second)) != 0) {
      // Left as garbage no index row points at; the next writer's open cuts it off.
    }
    return stream;
  }
  current_end_ = out_pos;
  if (kicked_pack_ != at.first) {
    kicked_pack_ = at.first;
    kicked_end_ = 0;
  }
  if (out_pos >= kicked_end_ + kWritebackSlice) {  // kick_writeback() without re-locking
    (void)::sync_file_range(pfd, static_cast<off_t>(kicked_end_),
                            static_cast<off_t>(out_pos - kicked_end_), SYNC_FILE_RANGE_WRITE);
    kicked_end_ = out_pos;
  }
  known_.insert(digest);
  pending_.push_back({digest, {at.first, at.second, out_pos - at.second, size}});
  if (options_.defer_compression) deferred_bytes_ += size;
  return ok();
}

Status Store::commit() {
  MutexLock lock(mu_);
  for (uint32_t p : dirty_packs_) {
    const int fd = MAMORI_TRY(pack_fd(p));
    if (env_.fsync(fd) != 0) return fail_errno("fsync", "store/" + pack_name(p));
    if (options_.defer_compression) {
      auto& raw = *MAMORI_TRY(db_.cached("INSERT OR IGNORE INTO raw_packs(pack) VALUES(?)"));
      raw.bind(1, static_cast<int64_t>(p));
      MAMORI_TRY(raw.run());
    }
  }
  dirty_packs_.clear();
  auto& ins = *MAMORI_TRY(db_.cached(
      "INSERT OR IGNORE INTO objects(sha256, pack, offset, stored_size, size) VALUES(?,?,?,?,?)"));
  for (const auto& p : pending_) {
    ins.bind(1, p.digest.raw())
        .bind(2, static_cast<int64_t>(p.loc.pack))
        .bind(3, static_cast<int64_t>(p.loc.offset))
        .bind(4, static_cast<int64_t>(p.loc.stored_size))
        .bind(5, static_cast<int64_t>(p.loc.size));
    MAMORI_TRY(ins.run());
  }
  pending_.clear();
  return ok();
}

Result<Store::Location> Store::locate(const Digest& digest) const {
  auto& q = *MAMORI_TRY(
      db_.cached("SELECT pack, offset, stored_size, size FROM objects WHERE sha256 = ?"));
  q.bind(1, digest.raw());
  if (!MAMORI_TRY(q.step()))
    return fail("store object", digest.hex(), ENOENT, "not in the content store");
  Location loc{static_cast<uint32_t>(q.int64(0)), static_cast<uint64_t>(q.int64(1)),
               static_cast<uint64_t>(q.int64(2)), static_cast<uint64_t>(q.int64(3))};
  q.reset();
  return loc;
}

Status Store::read(const Digest& digest,
                   const std::function<Status(std::span<const uint8_t>)>& sink) const {
  const Location loc = MAMORI_TRY(locate(digest));
  auto st = read_at(loc, digest, sink);
  // The pack was deleted between the lookup and the open (the compressor or compact()
  // moved the object and switched the index): nothing reached the sink; look again.
  if (!st && st.error().errnum == ENOENT) {
    const Location again = MAMORI_TRY(locate(digest));
    if (again.pack != loc.pack || again.offset != loc.offset) return read_at(again, digest, sink);
  }
  return st;
}

Status Store::read_at(const Location& loc, const Digest& digest,
                      const std::function<Status(std::span<const uint8_t>)>& sink) const {
  int fd;
  {
    MutexLock lock(mu_);
    fd = MAMORI_TRY(pack_fd(loc.pack));
  }
  uint8_t header[kObjectHeaderSize];
  if (::pread(fd, header, sizeof header, static_cast<off_t>(loc.offset)) != sizeof header)
    return corrupt(digest, "header cannot be read");
  const uint64_t stored = get_u64(header + 16);
  if (std::memcmp(header, kObjectMagic, 4) != 0 ||
      std::memcmp(header + 24, digest.bytes.data(), 32) != 0 || get_u64(header + 8) != loc.size ||
      stored + kObjectHeaderSize != loc.stored_size)
    return corrupt(digest, "header does not match the index");
  const int codec = header[4];
  if (codec != kCodecRaw && codec != kCodecZstd) return corrupt(digest, "unknown codec");

  thread_local ReadScratch cached;
  ReadScratch own;
  ReadScratch& scratch = cached.busy ? own : cached;
  scratch.busy = true;
  struct Release {
    ReadScratch& s;
    ~Release() {
      s.busy = false;
      if (s.dctx && ZSTD_sizeof_DCtx(s.dctx.get()) > kKeptDecoderMax) s.dctx.reset();
    }
  } release{scratch};
  if (scratch.in.empty()) scratch.in.resize(kChunk);
  std::vector<uint8_t>& in = scratch.in;
  std::vector<uint8_t>& out = scratch.out;
  ZSTD_DCtx* dctx = nullptr;
  if (codec == kCodecZstd) {
    if (!scratch.dctx) scratch.dctx.reset(ZSTD_createDCtx());
    if (!scratch.dctx) return fail("store object", digest.hex(), ENOMEM, "no zstd decoder");
    dctx = scratch.dctx.get();
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);  // a read that failed mid-frame
    if (out.empty()) out.resize(ZSTD_DStreamOutSize());
  }
  hash::Sha256 h;
  uint64_t pos = 0, produced = 0;
  while (pos < stored) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(in.size(), stored - pos));
    const ssize_t n =
        ::pread(fd, in.data(), want, static_cast<off_t>(loc.offset + kObjectHeaderSize + pos));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return corrupt(digest, "truncated");
    pos += static_cast<uint64_t>(n);
    if (codec == kCodecRaw) {
      h.update({in.data(), static_cast<size_t>(n)});
      produced += static_cast<uint64_t>(n);
      MAMORI_TRY(sink({in.data(), static_cast<size_t>(n)}));
      continue;
    }
    ZSTD_inBuffer ib{in.data(), static_cast<size_t>(n), 0};
    while (ib.pos < ib.size) {
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      const size_t rc = ZSTD_decompressStream(dctx, &ob, &ib);
      if (ZSTD_isError(rc)) return corrupt(digest, ZSTD_getErrorName(rc));
      produced += ob.pos;
      if (produced > loc.size) return corrupt(digest, "longer than recorded");
      h.update({out.data(), ob.pos});
      MAMORI_TRY(sink({out.data(), ob.pos}));
    }
  }
  if (codec == kCodecZstd) {
    // Flush whatever the decoder still holds.
    for (;;) {
      ZSTD_inBuffer ib{nullptr, 0, 0};
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      const size_t rc = ZSTD_decompressStream(dctx, &ob, &ib);
      if (ZSTD_isError(rc)) return corrupt(digest, ZSTD_getErrorName(rc));
      if (ob.pos == 0) break;
      produced += ob.pos;
      h.update({out.data(), ob.pos});
      MAMORI_TRY(sink({out.data(), ob.pos}));
    }
  }
  if (produced != loc.size) return corrupt(digest, "size differs from the index");
  if (h.finish() != digest) return corrupt(digest, "content does not match its SHA-256");
  return ok();
}

Result<std::string> Store::read_all(const Digest& digest, uint64_t limit) const {
  std::string out;
  MAMORI_TRY(read(digest, [&](std::span<const uint8_t> chunk) -> Status {
    if (out.size() + chunk.size() > limit) return fail("read object", digest.hex(), EFBIG);
    out.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    return ok();
  }));
  return out;
}

Result<Store::Location> Store::copy_object(const Digest& digest, const Location& from) {
  int src = -1, dst = -1;
  std::pair<uint32_t, uint64_t> at;
  {
    MutexLock lock(mu_);
    src = MAMORI_TRY(pack_fd(from.pack));
    at = MAMORI_TRY(reserve(from.stored_size));
    dst = MAMORI_TRY(pack_fd(at.first));
  }
  std::vector<uint8_t> buf(kChunk);
  for (uint64_t done = 0; done < from.stored_size;) {
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(buf.size(), from.stored_size - done));
    const ssize_t n = ::pread(src, buf.data(), want, static_cast<off_t>(from.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return corrupt(digest, "truncated while being compacted");
    MAMORI_TRY(pwrite_all(env_, dst, {buf.data(), static_cast<size_t>(n)},
                          static_cast<off_t>(at.second + done), "store/" + pack_name(at.first)));
    done += static_cast<uint64_t>(n);
  }
  Location to = from;
  to.pack = at.first;
  to.offset = at.second;
  // The copy is read back and re-hashed before anything points at it.
  MAMORI_TRY(read_at(to, digest, [](std::span<const uint8_t>) { return ok(); }));
  return to;
}

Result<CompactReport> Store::compact(const std::unordered_set<Digest, hash::DigestHash>& live) {
  if (access_ != Access::kWrite) return fail("compact", "store", EROFS);
  CompactReport report;
  const auto rows = MAMORI_TRY(all_objects());
  // Not concurrent with put() (store.h): mu_ is taken around the members below for the
  // analysis, and released around copy_object(), which reads back through read_at().
  uint32_t newest = 0;
  {
    MutexLock lock(mu_);
    newest = current_pack_;
  }
  // Which packs hold something dead, and which packs exist at all.
  std::vector<bool> dirty(newest + 1, false), indexed(newest + 1, false);
  for (const auto& r : rows) {
    if (r.second.pack > newest) return corrupt(r.first, "index names a pack past the newest");
    indexed[r.second.pack] = true;
    if (!live.count(r.first)) dirty[r.second.pack] = true;
  }
  std::vector<uint32_t> doomed;  // packs to delete once the new index is committed
  for (uint32_t p = 1; p <= newest; ++p) {
    struct stat st {};
    if (::fstatat(dir_.get(), pack_name(p).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    report.bytes_before += static_cast<uint64_t>(st.st_size);
    if (dirty[p] || (!indexed[p] && p != newest)) doomed.push_back(p);
  }
  if (doomed.empty()) {
    report.bytes_after = report.bytes_before;
    return report;
  }

  {
    MutexLock lock(mu_);
    rotate_ = true;  // copies go to a fresh pack, never into one that is about to go
  }
  std::vector<std::pair<Digest, Location>> moved;
  std::vector<Digest> removed;
  for (const auto& r : rows) {
    if (std::find(doomed.begin(), doomed.end(), r.second.pack) == doomed.end()) continue;
    if (!live.count(r.first)) {
      removed.push_back(r.first);
      continue;
    }
    moved.emplace_back(r.first, MAMORI_TRY(copy_object(r.first, r.second)));
  }
  std::vector<uint32_t> written;
  {
    MutexLock lock(mu_);
    for (uint32_t p : dirty_packs_) {
      const int fd = MAMORI_TRY(pack_fd(p));
      if (env_.fsync(fd) != 0) return fail_errno("fsync", "store/" + pack_name(p));
    }
    written.swap(dirty_packs_);
  }

  auto txn = MAMORI_TRY(db::Transaction::begin(db_));
  // Raw objects moved out of a pack waiting for compression keep waiting where they went.
  auto& was_raw = *MAMORI_TRY(db_.cached("DELETE FROM raw_packs WHERE pack = ? RETURNING pack"));
  bool moved_raw = false;
  for (uint32_t p : doomed) {
    was_raw.bind(1, static_cast<int64_t>(p));
    moved_raw |= MAMORI_TRY(was_raw.step());
    was_raw.reset();
  }
  if (moved_raw) {
    auto& raw = *MAMORI_TRY(db_.cached("INSERT OR IGNORE INTO raw_packs(pack) VALUES(?)"));
    for (uint32_t p : written) {
      raw.bind(1, static_cast<int64_t>(p));
      MAMORI_TRY(raw.run());
    }
  }
  auto& del = *MAMORI_TRY(db_.cached("DELETE FROM objects WHERE sha256 = ?"));
  for (const auto& d : removed) {
    del.bind(1, d.raw());
    MAMORI_TRY(del.run());
    MutexLock lock(mu_);
    known_.erase(d);
  }
  auto& upd = *MAMORI_TRY(db_.cached("UPDATE objects SET pack = ?, offset = ? WHERE sha256 = ?"));
  for (const auto& m : moved) {
    upd.bind(1, static_cast<int64_t>(m.second.pack))
        .bind(2, static_cast<int64_t>(m.second.offset))
        .bind(3, m.first.raw());
    MAMORI_TRY(upd.run());
  }
  MAMORI_TRY(txn.commit());

  MutexLock lock(mu_);
  for (uint32_t p : doomed) {
    if (p < packs_.size()) packs_[p].reset();
    if (::unlinkat(dir_.get(), pack_name(p).c_str(), 0) != 0 && errno != ENOENT)
      return fail_errno("unlinkat", "store/" + pack_name(p));
  }
  if (env_.fsync(dir_.get()) != 0) return fail_errno("fsync", "store");
  report.objects_removed = removed.size();
  report.objects_moved = moved.size();
  report.packs_removed = doomed.size();
  for (uint32_t p = 1; p <= current_pack_; ++p) {
    struct stat st {};
    if (::fstatat(dir_.get(), pack_name(p).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      report.bytes_after += static_cast<uint64_t>(st.st_size);
  }
  return report;
}

uint64_t Store::deferred_bytes() const {
  MutexLock lock(mu_);
  return deferred_bytes_;
}

Result<bool> Store::compression_pending() const {
  auto q = MAMORI_TRY(db_.prepare("SELECT 1 FROM raw_packs LIMIT 1"));
  return q.step();
}

Result<Store::Location> Store::compress_object(const Digest& digest, const Location& from) {
  Location to;
  if (from.size <= kCompressInlineMax) {
    std::vector<uint8_t> content;
    content.reserve(from.size);
    MAMORI_TRY(read_at(from, digest, [&](std::span<const uint8_t> chunk) -> Status {
      content.insert(content.end(), chunk.begin(), chunk.end());
      return ok();
    }));
    Scratch& s = scratch();
    const size_t bound = ZSTD_compressBound(content.size());
    uint8_t* out = s.reserve(bound);
    const size_t n = ZSTD_compressCCtx(s.cctx.get(), out, bound, content.data(), content.size(),
                                       options_.compression_level);
    to = (ZSTD_isError(n) || n >= content.size())
             ? MAMORI_TRY(write_object(digest, content, kCodecRaw, from.size))
             : MAMORI_TRY(write_object(digest, {out, n}, kCodecZstd, from.size));
  } else {
    // Too large to hold: streamed into the pack's tail (no other writer: we hold the lock).
    std::pair<uint32_t, uint64_t> at;
    int pfd = -1;
    {
      MutexLock lock(mu_);
      at = MAMORI_TRY(reserve(kObjectHeaderSize));
      pfd = MAMORI_TRY(pack_fd(at.first));
    }
    const std::string name = "store/" + pack_name(at.first);
    uint64_t out_pos = at.second + kObjectHeaderSize;
    std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, options_.compression_level);
    ZSTD_CCtx_setPledgedSrcSize(cctx.get(), from.size);
    std::vector<uint8_t> out(ZSTD_CStreamOutSize());
    auto feed = [&](std::span<const uint8_t> chunk, ZSTD_EndDirective mode) -> Status {
      ZSTD_inBuffer ib{chunk.data(), chunk.size(), 0};
      for (bool done = false; !done;) {
        ZSTD_outBuffer ob{out.data(), out.size(), 0};
        const size_t rem = ZSTD_compressStream2(cctx.get(), &ob, &ib, mode);
        if (ZSTD_isError(rem))
          return fail_msg("zstd compress", digest.hex(), ZSTD_getErrorName(rem));
        MAMORI_TRY(pwrite_all(env_, pfd, {out.data(), ob.pos}, static_cast<off_t>(out_pos), name));
        out_pos += ob.pos;
        done = mode == ZSTD_e_end ? rem == 0 : ib.pos == ib.size;
      }
      return ok();
    };
    auto streamed = [&]() -> Status {
      MAMORI_TRY(read_at(from, digest, [&](std::span<const uint8_t> chunk) {
        return feed(chunk, ZSTD_e_continue);
      }));
      MAMORI_TRY(feed({}, ZSTD_e_end));
      const auto header =
          object_header(digest, kCodecZstd, from.size, out_pos - at.second - kObjectHeaderSize);
      return pwrite_all(env_, pfd, header, static_cast<off_t>(at.second), name);
    }();
    MutexLock lock(mu_);
    if (!streamed) {
      current_end_ = at.second;  // our reservation is the tail: cut it off
      (void)!::ftruncate(pfd, static_cast<off_t>(at.second));
      return tl::unexpected(std::move(streamed).error());
    }
    current_end_ = out_pos;
    to = Location{at.first, at.second, out_pos - at.second, from.size};
  }
  // Read back and re-hashed before the index points at it: the raw copy goes next.
  MAMORI_TRY(read_at(to, digest, [](std::span<const uint8_t>) { return ok(); }));
  return to;
}

Result<bool> Store::compress_pack(uint32_t pack, CompressReport& report) {
  auto q = MAMORI_TRY(db_.prepare(
      "SELECT sha256, offset, stored_size, size FROM objects WHERE pack = ? ORDER BY offset"));
  q.bind(1, static_cast<int64_t>(pack));
  std::vector<std::pair<Digest, Location>> objects;
  while (MAMORI_TRY(q.step()))
    objects.emplace_back(
        MAMORI_TRY(Digest::from_bytes(q.blob(0))),
        Location{pack, static_cast<uint64_t>(q.int64(1)), static_cast<uint64_t>(q.int64(2)),
                 static_cast<uint64_t>(q.int64(3))});
  q.reset();
  uint32_t start_pack = 0;
  uint64_t start_end = 0;
  {
    MutexLock lock(mu_);
    start_pack = current_pack_;
    start_end = current_end_;
  }
  // Gives up what this pass wrote: the new copies are not indexed, so cutting them off
  // (or leaving them to the next writer's cut) loses nothing.
  auto abandon = [&] {
    MutexLock lock(mu_);
    for (uint32_t p = start_pack + 1; p <= current_pack_; ++p) {
      if (p < packs_.size()) packs_[p].reset();
      (void)::unlinkat(dir_.get(), pack_name(p).c_str(), 0);
    }
    if (start_pack != 0) {
      auto fd = pack_fd(start_pack);
      if (fd) (void)!::ftruncate(*fd, static_cast<off_t>(start_end));
    }
    current_pack_ = start_pack;
    current_end_ = start_end;
    rotate_ = true;  // whatever comes next starts a fresh pack
    dirty_packs_.clear();
  };
  std::vector<std::pair<Digest, Location>> moved;
  uint64_t after = 0;
  uint64_t since_probe = 0;
  for (const auto& [digest, from] : objects) {
    // Probing is a system call: once per MiB of content, or per object past that.
    if (since_probe >= kYieldProbeBytes || &from == &objects.front().second) {
      since_probe = 0;
      if (should_yield()) {
        abandon();
        return false;
      }
    }
    since_probe += from.size;
    // Objects compressed already (a pack compact() merged) are copied as they are.
    auto to = from.stored_size < from.size + kObjectHeaderSize ? copy_object(digest, from)
                                                               : compress_object(digest, from);
    if (!to) {
      abandon();
      return tl::unexpected(std::move(to).error());
    }
    after += to->stored_size;
    moved.emplace_back(digest, *to);
  }
  auto synced = [&]() -> Status {
    MutexLock lock(mu_);
    for (uint32_t p : dirty_packs_) {
      const int fd = MAMORI_TRY(pack_fd(p));
      if (env_.fsync(fd) != 0) return fail_errno("fsync", "store/" + pack_name(p));
    }
    dirty_packs_.clear();
    return ok();
  }();
  if (!synced) {
    abandon();
    return tl::unexpected(std::move(synced).error());
  }
  {
    auto txn = MAMORI_TRY(db::Transaction::begin(db_));
    auto& upd = *MAMORI_TRY(
        db_.cached("UPDATE objects SET pack = ?, offset = ?, stored_size = ? WHERE sha256 = ?"));
    for (const auto& m : moved) {
      upd.bind(1, static_cast<int64_t>(m.second.pack))
          .bind(2, static_cast<int64_t>(m.second.offset))
          .bind(3, static_cast<int64_t>(m.second.stored_size))
          .bind(4, m.first.raw());
      MAMORI_TRY(upd.run());
    }
    auto& del = *MAMORI_TRY(db_.cached("DELETE FROM raw_packs WHERE pack = ?"));
    del.bind(1, static_cast<int64_t>(pack));
    MAMORI_TRY(del.run());
    MAMORI_TRY(txn.commit());
  }
  // Indexed nowhere now. Readers that looked it up before the switch retry (read()).
  MutexLock lock(mu_);
  if (pack < packs_.size()) packs_[pack].reset();
  struct stat st {};
  if (::fstatat(dir_.get(), pack_name(pack).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
    report.bytes_before += static_cast<uint64_t>(st.st_size);
  if (::unlinkat(dir_.get(), pack_name(pack).c_str(), 0) != 0 && errno != ENOENT)
    return fail_errno("unlinkat", "store/" + pack_name(pack));
  if (env_.fsync(dir_.get()) != 0) return fail_errno("fsync", "store");
  report.bytes_after += after;
  report.objects += moved.size();
  ++report.packs;
  return true;
}

Result<CompressReport> Store::compress_pending() {
  if (access_ != Access::kWrite) return fail("compress", "store", EROFS);
  std::vector<uint32_t> pending;
  {
    auto q = MAMORI_TRY(db_.prepare("SELECT pack FROM raw_packs ORDER BY pack"));
    while (MAMORI_TRY(q.step())) pending.push_back(static_cast<uint32_t>(q.int64(0)));
  }
  {
    MutexLock lock(mu_);
    // Copies never go into a pack that is itself about to be rewritten.
    if (std::find(pending.begin(), pending.end(), current_pack_) != pending.end()) rotate_ = true;
  }
  CompressReport report;
  for (uint32_t p : pending) {
    if (!MAMORI_TRY(compress_pack(p, report))) {
      report.yielded = true;
      break;
    }
  }
  return report;
}

Status Store::verify_index() const {
  auto st = verify_index_once();
  // A pack deleted under us (the background compressor or compact() switched the index
  // after our query): once more, against the new index.
  if (!st && st.error().errnum == ENOENT) return verify_index_once();
  return st;
}

Status Store::verify_index_once() const {
  auto q = MAMORI_TRY(db_.prepare("SELECT sha256, pack, offset, stored_size FROM objects"));
  std::vector<uint64_t> sizes;
  while (MAMORI_TRY(q.step())) {
    const auto digest = MAMORI_TRY(Digest::from_bytes(q.blob(0)));
    const auto pack = static_cast<uint32_t>(q.int64(1));
    const auto end = static_cast<uint64_t>(q.int64(2) + q.int64(3));
    if (pack == 0 || q.int64(2) < static_cast<int64_t>(kPackHeaderSize))
      return corrupt(digest, "index points outside any pack");
    if (sizes.size() <= pack) sizes.resize(pack + 1, 0);
    if (sizes[pack] == 0) {
      MutexLock lock(mu_);
      const int fd = MAMORI_TRY(pack_fd(pack));
      struct stat st {};
      if (::fstat(fd, &st) != 0) return fail_errno("fstat", "store/" + pack_name(pack));
      sizes[pack] = static_cast<uint64_t>(st.st_size);
    }
    if (end > sizes[pack]) return corrupt(digest, "pack " + pack_name(pack) + " is truncated");
  }
  return ok();
}

Result<std::vector<std::pair<Digest, Store::Location>>> Store::all_objects() const {
  auto q = MAMORI_TRY(db_.prepare(
      "SELECT sha256, pack, offset, stored_size, size FROM objects ORDER BY pack, offset"));
  std::vector<std::pair<Digest, Location>> all;
  while (MAMORI_TRY(q.step()))
    all.emplace_back(
        MAMORI_TRY(Digest::from_bytes(q.blob(0))),
        Location{static_cast<uint32_t>(q.int64(1)), static_cast<uint64_t>(q.int64(2)),
                 static_cast<uint64_t>(q.int64(3)), static_cast<uint64_t>(q.int64(4))});
  return all;
}

Status Store::verify_contents(Executor& executor,
                              const std::function<void(Error&&)>& on_bad) const {
  const auto all = MAMORI_TRY(all_objects());
  Mutex report;               // on_bad is called one at a time
  std::vector<Digest> moved;  // with report: their pack was gone, see below
  executor.run(all.size(), [&](size_t i) {
    auto st = read_at(all[i].second, all[i].first, [](std::span<const uint8_t>) { return ok(); });
    if (!st) {
      MutexLock lock(report);
      if (st.error().errnum == ENOENT)
        moved.push_back(all[i].first);
      else
        on_bad(std::move(st).error());
    }
  });
  // Moved by a compression or compaction since all_objects(): read() looks them up again.
  for (const auto& d : moved) {
    auto loc = locate(d);
    if (!loc && loc.error().errnum == ENOENT) continue;  // dropped by a compaction
    auto st = loc ? read_at(*loc, d, [](std::span<const uint8_t>) { return ok(); })
                  : Status(tl::unexpected(std::move(loc).error()));
    if (!st) on_bad(std::move(st).error());
  }
  return ok();
}

Result<StoreStats> Store::stats() const {
  auto q = MAMORI_TRY(db_.prepare(
      "SELECT count(*), coalesce(sum(size),0), coalesce(sum(stored_size),0) FROM objects"));
  MAMORI_TRY(q.step());
  StoreStats s{static_cast<uint64_t>(q.int64(0)), static_cast<uint64_t>(q.int64(1)),
               static_cast<uint64_t>(q.int64(2))};
  q.reset();
  return s;
}

}  // namespace mamori::store
