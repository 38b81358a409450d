#pragma once
// Where the baselined regular files of every guarded root live now: their current
// (device, inode), by path and by inode. The catalog's own inode numbers go stale with
// the first restore (each restore puts a new inode in place, and the agent opens the
// catalog read-only), so the guard keeps this index itself: rebuilt by each verify,
// updated by each restore.
//
// It answers the two questions a hard link raises: "is this new name another name of
// baselined code?" (a write through it would change the baselined file with no event
// naming it) and "is the inode at this baselined path still the one we put there?"
// (if not, its owner and mode are not ours to change: it may be a file from outside the
// root, hard-linked in).
//
// Memory: one record per file is what the agent holds for every guarded file, so it is
// compact (a million files cost about 80 MB, not the 500 MB of three string-keyed hash
// maps): a 32-byte record, the file's name once in a shared arena, its directory
// interned (stored once for all the files it holds), and three open-addressing tables
// of 4-byte record numbers (by path, by inode, by handle). A file handle is kept as a
// 64-bit hash of its key: names_by_handle() may, with a chance of about n / 2^64, also
// name a file whose handle only hashes alike; callers treat the names it returns as
// files to look at, never as proof.
//
// Threads: one owner (the guard's).

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mamori::guard {

struct InodeId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const InodeId&) const = default;
};

struct InodeIdHash {
  size_t operator()(const InodeId& id) const {
    return std::hash<uint64_t>()(static_cast<uint64_t>(id.ino) * 1000003u ^
                                 static_cast<uint64_t>(id.dev));
  }
};

class InodeIndex {
 public:
  struct Name {
    size_t root = 0;
    std::string rel;
  };
  // `rel` in `root` is now the inode `id` (replacing what it was), whose
  // fs::handle_key() is `handle` ("" when unknown).
  void set(size_t root, const std::string& rel, InodeId id, const std::string& handle = {});
  void erase(size_t root, const std::string& rel);
  // Forgets every path of `root` (before a verify rebuilds it).
  void clear(size_t root);
  // The baselined names of `id`, in every root.
  std::vector<Name> names(InodeId id) const;
  // The same by file handle (what fanotify reports for an open under any name).
  std::vector<Name> names_by_handle(const std::string& handle) const;
  // The inode recorded for `rel`; nullopt when the index knows nothing of it.
  std::optional<InodeId> of(size_t root, const std::string& rel) const;
  size_t size() const { return live_; }
  // Every path of `root` in the index.
  std::vector<std::string> paths(size_t root) const;
  // Bytes held (records, names, directories, tables): for tests and benchmarks.
  size_t memory_bytes() const;

 private:
  static constexpr uint32_t kFree = UINT32_MAX;  // Rec::dir of an unused record
  struct Rec {
    uint64_t ino = 0;
    uint64_t handle = 0;  // hash of the handle key; 0: none
    uint32_t dir = kFree;
    uint32_t name_off = 0;  // in blocks_ (see name_of)
    uint32_t name_len = 0;
    uint32_t dev = 0;  // index in devs_
  };
  struct Dir {
    size_t root = 0;
    std::string path;  // "" for the root directory
  };
  // Record numbers in open addressing (linear probing); duplicates allowed, so it is a
  // multimap whose keys are the records' own fields, hashed by the caller.
  class Table {
   public:
    static constexpr uint32_t kEmpty = UINT32_MAX;
    static constexpr uint32_t kGone = UINT32_MAX - 1;
    void insert(uint64_t hash, uint32_t id, const std::function<uint64_t(uint32_t)>& hash_of);
    void erase(uint64_t hash, uint32_t id);
    // Calls fn(id) for each record stored under `hash` (the caller checks the key).
    template <typename Fn>
    void find(uint64_t hash, Fn&& fn) const {
      if (slots_.empty()) return;
      const size_t mask = slots_.size() - 1;
      for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const uint32_t s = slots_[i];
        if (s == kEmpty) return;
        if (s != kGone) fn(s);
      }
    }
    // Empties it, keeping room for `expect` records.
    void reset(size_t expect);
    size_t bytes() const { return slots_.capacity() * sizeof(uint32_t); }

   private:
    void grow(const std::function<uint64_t(uint32_t)>& hash_of);
    std::vector<uint32_t> slots_;
    size_t used_ = 0;  // records
    size_t gone_ = 0;  // tombstones
  };

  // Names live in fixed blocks (no doubling buffer: at most one block's tail unused);
  // Rec::name_off is the block's number times kBlock plus the offset in it.
  static constexpr uint32_t kBlock = 64 * 1024;
  std::string_view name_of(const Rec& r) const {
    return {blocks_[r.name_off / kBlock].get() + r.name_off % kBlock, r.name_len};
  }
  uint32_t add_name(std::string_view name);
  std::string rel_of(const Rec& r) const;
  uint64_t path_hash(uint32_t dir, std::string_view name) const;
  uint64_t inode_hash(uint32_t dev, uint64_t ino) const;
  static uint64_t handle_hash(std::string_view handle);
  // The record of `rel` in `root`, or kFree.
  uint32_t find(size_t root, std::string_view rel) const;
  std::optional<uint32_t> find_dir(size_t root, std::string_view dir) const;
  uint32_t intern_dir(size_t root, std::string_view dir);
  uint32_t intern_dev(dev_t dev);
  void remove(uint32_t id);
  void rebuild_tables();
  void compact_names();
  Name name_at(const Rec& r) const { return {dirs_[r.dir].root, rel_of(r)}; }

  std::deque<Rec> recs_;  // a deque: a million records never exist twice while it grows
  std::vector<uint32_t> free_;
  size_t live_ = 0;
  std::vector<std::unique_ptr<char[]>> blocks_;  // the records' names, back to back
  uint32_t tail_ = kBlock;                       // bytes used in the last block
  size_t names_bytes_ = 0;                       // in use and garbage
  size_t names_garbage_ = 0;                     // bytes no record uses
  std::deque<Dir> dirs_;  // interned directories; kept (few, bounded by the baseline)
  std::unordered_map<std::string, uint32_t> dir_ids_;  // key(root, path) -> dirs_ index
  std::vector<dev_t> devs_;
  Table by_path_, by_inode_, by_handle_;
};

}  // namespace mamori::guard
