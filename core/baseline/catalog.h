#pragma once
// The catalog: the baseline of every root, in STATE/catalog.db (SQLite, WAL). Writers
// change it only inside a transaction, so a process killed at any moment leaves the
// previous baseline whole. A root hash over every root and entry, stored in the catalog
// and printed by `mamori status`, lets `mamori check` notice tampering with the catalog
// itself (and lets a manager keep the hash off-host). Schema: docs/formats/catalog.md.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/base/result.h"
#include "core/baseline/entry.h"
#include "core/db/sqlite.h"

namespace mamori::baseline {

struct RootRow {
  int64_t id = 0;
  std::string path;
  int64_t baselined_at_ns = 0;
};

class Catalog {
 public:
  static constexpr int64_t kSchemaVersion = 1;

  // Opens STATE/catalog.db. kReadWrite creates it (and its schema) when missing;
  // kReadOnly fails with ENOENT when there is no baseline yet.
  static Result<Catalog> open(const std::string& state_dir, db::Db::Mode mode);

  db::Db& db() { return db_; }

  Result<std::vector<RootRow>> roots();
  Result<std::optional<RootRow>> find_root(std::string_view path);
  // Adds the root (or finds it) and stamps its baseline time.
  Result<int64_t> touch_root(std::string_view path, int64_t now_ns);
  Status remove_root(int64_t root_id);

  // Removes `prefix` and everything beneath it ("" = the whole root).
  Status erase_subtree(int64_t root_id, std::string_view prefix);
  Status put(int64_t root_id, const Entry& e);
  Status update_stat_cache(int64_t root_id, const Entry& e);
  Result<std::optional<Entry>> get(int64_t root_id, std::string_view path);
  // Entries of `prefix` and beneath, sorted by path bytes (a parent before its children).
  Status for_each(int64_t root_id, std::string_view prefix,
                  const std::function<Status(Entry&&)>& fn);
  Result<uint64_t> count(int64_t root_id);
  // The names directly in the root ("a" for "a", "a/b", ...), sorted by bytes: one index
  // seek per name, not a scan of the root's entries.
  Result<std::vector<std::string>> top_names(int64_t root_id);
  // Paths of the root's regular files whose stat cache names inode `ino`: the other names
  // of a hard-linked file. A scan (no index): meant for the rare file with links.
  Result<std::vector<std::string>> paths_with_inode(int64_t root_id, uint64_t ino);
  // Stored objects no entry refers to any more (what `mamori gc` would drop).
  struct Reclaimable {
    uint64_t objects = 0;
    uint64_t stored_bytes = 0;
  };
  Result<Reclaimable> reclaimable();
  // The content digests any entry of any root refers to: what the store must keep.
  Result<std::unordered_set<Digest, hash::DigestHash>> live_digests();

  // Recomputes the root hash and stores it. Call last in every writing transaction.
  Result<Digest> seal(int64_t now_ns);
  Result<Digest> compute_root_hash();
  Result<std::optional<Digest>> stored_root_hash();
  Result<int64_t> sealed_at_ns();

  // SQLite's own check, the root hash, and that every file's content is in the store's
  // index. Fails with EBADMSG naming what is wrong.
  Status verify();

 private:
  explicit Catalog(db::Db db) : db_(std::move(db)) {}
  Status create_schema();
  Status check_schema();
  Result<std::optional<std::string>> meta(std::string_view key);
  Status set_meta(std::string_view key, std::string_view value);

  db::Db db_;
};

}  // namespace mamori::baseline
