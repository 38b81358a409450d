#pragma once
// The content store: every baselined file's content, once per distinct SHA-256,
// zstd-compressed, appended to pack files under STATE/store/. The object index (digest
// -> pack, offset) is the `objects` table of the catalog database, written in the same
// transaction as the entries that point at it; pack data is fsync()ed before that
// transaction commits, so the catalog never points at content that is not on disk.
// Every read re-hashes the content and fails if it does not match its digest.
// Format: docs/formats/store.md.
//
// With defer_compression (init), new content is stored raw in packs listed in the
// `raw_packs` table, and compress_pending() (a background process started by init)
// rewrites them compressed later, the way compact() rewrites packs: new pack fsync()ed,
// index switched in one transaction, old pack deleted. Readers see either copy, both
// verified.
//
// Threads: put(), put_stream() and contains() may be called from many threads at once;
// commit(), read() and the verify calls belong to the thread that owns the Db.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/base/env.h"
#include "core/base/mutex.h"
#include "core/base/parallel.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "core/db/sqlite.h"
#include "core/hash/sha256.h"

namespace mamori::store {

using hash::Digest;

struct StoreOptions {
  int compression_level = 1;             // zstd level
  uint64_t max_pack_bytes = 1ull << 30;  // start a new pack past this size
  // Store new content uncompressed, in a pack of its own listed in `raw_packs`, for
  // compress_pending() to compress later: init's copy then costs a memcpy, not zstd.
  bool defer_compression = false;
  // kWrite as the background compressor: waits for the writer's lock instead of failing,
  // and gives way (should_yield()) to any writer that opens the store meanwhile.
  bool compressor = false;
};

struct CompressReport {
  uint64_t packs = 0;         // raw packs compressed and deleted
  uint64_t objects = 0;       // objects rewritten
  uint64_t bytes_before = 0;  // of those packs, headers included
  uint64_t bytes_after = 0;   // of their objects once rewritten
  bool yielded = false;       // stopped early for a writer; the rest is still pending
};

struct CompactReport {
  uint64_t objects_removed = 0;
  uint64_t objects_moved = 0;
  uint64_t packs_removed = 0;
  uint64_t bytes_before = 0;  // pack files, headers included
  uint64_t bytes_after = 0;
};

struct StoreStats {
  uint64_t objects = 0;
  uint64_t content_bytes = 0;  // uncompressed
  uint64_t stored_bytes = 0;   // in packs, headers included
};

class Store {
 public:
  enum class Access { kRead, kWrite };
  // Opens STATE/store (creating it for kWrite) and, for kWrite, takes the store's
  // exclusive lock for the Store's lifetime: one writer at a time.
  static Result<std::unique_ptr<Store>> open(Env& env, db::Db& db, int state_dir_fd, Access access,
                                             StoreOptions options = {});
  static Status create_schema(db::Db& db);
  ~Store();

  bool contains(const Digest& digest) const;
  // Adds `content` (whose digest the caller computed) unless already present.
  Status put(const Digest& digest, std::span<const uint8_t> content);
  // Adds the content of `fd` (read from offset 0, `size` bytes), verifying while it
  // streams that it still hashes to `digest`; ESTALE if it changed since it was hashed.
  Status put_stream(const Digest& digest, int fd, uint64_t size, std::string_view display);
  // Makes everything put so far durable and indexes it. Call inside the transaction
  // that records the entries pointing at the new objects.
  Status commit();

  // Streams the object's content to `sink` in chunks, then checks its digest; on a
  // mismatch fails with EBADMSG after the sink has seen the bad bytes, so sinks must
  // only make their output visible once read() returns success.
  Status read(const Digest& digest,
              const std::function<Status(std::span<const uint8_t>)>& sink) const;
  // Content up to `limit` bytes (EFBIG past it).
  Result<std::string> read_all(const Digest& digest, uint64_t limit) const;

  // Drops every object whose digest is not in `live`: the packs holding one are rewritten
  // (their live objects copied to a new pack, verified, fsync()ed), the index is updated
  // in one transaction of its own, and only then are the old packs deleted. A crash
  // leaves either the old index and packs or the new ones; stray packs are removed by
  // the next compaction. Needs kWrite and no open transaction; not concurrent with put().
  Result<CompactReport> compact(const std::unordered_set<Digest, hash::DigestHash>& live);

  // Rewrites every object of every pack in `raw_packs` compressed (each new copy read
  // back and verified), one pack at a time: new pack fsync()ed, index switched and the
  // pack's raw_packs row dropped in one transaction, then the raw pack deleted. Stops
  // between objects when a writer asks for the lock (report.yielded); a crash or a
  // yield leaves the raw pack indexed and pending, and an unindexed tail that the next
  // writer cuts off. Needs kWrite and no open transaction; not concurrent with put().
  Result<CompressReport> compress_pending();
  // Content bytes this Store has stored raw (defer_compression) so far.
  uint64_t deferred_bytes() const;
  // Whether some pack still waits for compress_pending().
  Result<bool> compression_pending() const;
  // True when a writer is waiting for this compressor's lock.
  bool should_yield() const;

  // Every indexed object lies inside its pack file and has a matching header.
  Status verify_index() const;
  // Reads and re-hashes every object on the executor's threads; calls on_bad (from any
  // of them, one at a time) for each object that fails.
  Status verify_contents(Executor& executor, const std::function<void(Error&&)>& on_bad) const;

  Result<StoreStats> stats() const;

 private:
  struct Location {
    uint32_t pack = 0;
    uint64_t offset = 0;
    uint64_t stored_size = 0;
    uint64_t size = 0;
  };
  struct Pending {
    Digest digest;
    Location loc;
  };

  Store(Env& env, db::Db& db, UniqueFd dir, Access access, StoreOptions options);
  Status load_index();
  Result<Location> locate(const Digest& digest) const;
  Status verify_index_once() const;
  // Every indexed object, in pack order.
  Result<std::vector<std::pair<Digest, Location>>> all_objects() const;
  // Reads the object at `loc` without touching the database, so threads may share it.
  Status read_at(const Location& loc, const Digest& digest,
                 const std::function<Status(std::span<const uint8_t>)>& sink) const;
  Result<int> pack_fd(uint32_t pack) const MAMORI_REQUIRES(mu_);
  // Reserves `bytes` at the end of the current pack (rotating if full).
  Result<std::pair<uint32_t, uint64_t>> reserve(uint64_t bytes) MAMORI_REQUIRES(mu_);
  // Copies the object at `from` to the end of the current pack; returns where it went.
  Result<Location> copy_object(const Digest& digest, const Location& from);
  Status append(const Digest& digest, std::span<const uint8_t> payload, int codec, uint64_t size);
  // Writes an object at the end of the current pack, whether or not it is known.
  Result<Location> write_object(const Digest& digest, std::span<const uint8_t> payload, int codec,
                                uint64_t size);
  // Streams the object at `from` through zstd into the end of the current pack, then
  // verifies the copy; on failure the pack is cut back. Needs no concurrent writer.
  Result<Location> compress_object(const Digest& digest, const Location& from);
  Result<bool> compress_pack(uint32_t pack, CompressReport& report);
  // Starts writeback of the pack's bytes below `end` once enough have piled up, so the
  // fsync() in commit() finds little left to write.
  void kick_writeback(uint32_t pack, int fd, uint64_t end);
  Status take_lock();

  Env& env_;
  db::Db& db_;
  UniqueFd dir_;
  UniqueFd lock_;
  UniqueFd yield_;     // writers: held shared; the compressor probes it (should_yield)
  UniqueFd compress_;  // the compressor: held exclusively while it exists
  Access access_;
  StoreOptions options_;

  mutable Mutex mu_;
  // Indexed or pending (kWrite).
  std::unordered_set<Digest, hash::DigestHash> known_ MAMORI_GUARDED_BY(mu_);
  std::vector<Pending> pending_ MAMORI_GUARDED_BY(mu_);
  uint32_t current_pack_ MAMORI_GUARDED_BY(mu_) = 0;
  bool rotate_ MAMORI_GUARDED_BY(mu_) = false;  // start a new pack at the next reserve()
  uint64_t current_end_ MAMORI_GUARDED_BY(mu_) = 0;
  // Index = pack number; opened lazily.
  mutable std::vector<UniqueFd> packs_ MAMORI_GUARDED_BY(mu_);
  std::vector<uint32_t> dirty_packs_ MAMORI_GUARDED_BY(mu_);
  uint32_t kicked_pack_ MAMORI_GUARDED_BY(mu_) = 0;  // writeback started below kicked_end_
  uint64_t kicked_end_ MAMORI_GUARDED_BY(mu_) = 0;
  uint64_t deferred_bytes_ MAMORI_GUARDED_BY(mu_) = 0;
};

}  // namespace mamori::store
