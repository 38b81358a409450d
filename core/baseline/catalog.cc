#include "core/baseline/catalog.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/baseline/canonical.h"
#include "core/store/store.h"

namespace mamori::baseline {
namespace {

constexpr const char* kEntryColumns =
    "path, type, mode, uid, gid, size, mtime_ns, rdev, sha256, link_target, xattrs, ino, ctime_ns";

// The bounds of a subtree in path-byte order: "p/" <= child < "p0" ('0' follows '/').
std::pair<std::string, std::string> subtree_bounds(std::string_view prefix) {
  return {std::string(prefix) + "/", std::string(prefix) + "0"};
}

Result<Entry> read_entry(const db::Stmt& q) {
  Entry e;
  e.path = std::string(q.blob(0));
  const int64_t type = q.int64(1);
  if (type < 1 || type > 7) return fail("catalog", e.path, EBADMSG, "unknown entry type");
  e.type = static_cast<FileType>(type);
  e.mode = static_cast<uint32_t>(q.int64(2));
  e.uid = static_cast<uint32_t>(q.int64(3));
  e.gid = static_cast<uint32_t>(q.int64(4));
  e.size = static_cast<uint64_t>(q.int64(5));
  e.mtime_ns = q.int64(6);
  e.rdev = static_cast<uint64_t>(q.int64(7));
  if (e.type == FileType::kRegular) {
    auto d = Digest::from_bytes(q.blob(8));
    if (!d) return fail("catalog", e.path, EBADMSG, "file without a valid sha256");
    e.sha256 = *d;
  }
  if (!q.blob(9).empty()) e.set_link_target(std::string(q.blob(9)));
  if (!q.blob(10).empty()) e.set_xattrs(std::string(q.blob(10)));
  e.ino = static_cast<uint64_t>(q.int64(11));
  e.ctime_ns = q.int64(12);
  return e;
}

// The canonical bytes of an entry for the root hash: every field that states what the
// file should be, length-prefixed; the stat cache is left out (restores renew it).
void hash_entry(hash::Sha256& h, const Entry& e) {
  h.update(CanonicalRecord('E')
               .bytes(e.path)
               .u64(static_cast<uint64_t>(e.type))
               .u64(e.mode)
               .u64(e.uid)
               .u64(e.gid)
               .u64(e.size)
               .u64(static_cast<uint64_t>(e.mtime_ns))
               .u64(e.rdev)
               .fixed(e.sha256.raw())
               .bytes(e.link_target())
               .bytes(e.xattrs())
               .view());
}

}  // namespace

Result<Catalog> Catalog::open(const std::string& state_dir, db::Db::Mode mode) {
  const std::string path = state_dir + "/catalog.db";
  if (mode == db::Db::Mode::kReadOnly && ::access(path.c_str(), F_OK) != 0)
    return fail_errno("open catalog", path);  // SQLite would say "unable to open"
  Catalog c(MAMORI_TRY(db::Db::open(path, mode)));
  if (mode == db::Db::Mode::kReadWrite) MAMORI_TRY(c.create_schema());
  MAMORI_TRY(c.check_schema());
  return c;
}

Status Catalog::create_schema() {
  auto txn = MAMORI_TRY(db::Transaction::begin(db_));
  MAMORI_TRY(
      db_.exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;"
               "CREATE TABLE IF NOT EXISTS roots(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,"
               " baselined_at_ns INTEGER NOT NULL);"
               "CREATE TABLE IF NOT EXISTS entries("
               " root_id INTEGER NOT NULL REFERENCES roots(id) ON DELETE CASCADE,"
               " path TEXT NOT NULL, type INTEGER NOT NULL, mode INTEGER NOT NULL,"
               " uid INTEGER NOT NULL, gid INTEGER NOT NULL, size INTEGER NOT NULL,"
               " mtime_ns INTEGER NOT NULL, rdev INTEGER NOT NULL, sha256 BLOB,"
               " link_target TEXT NOT NULL, xattrs BLOB NOT NULL,"
               " ino INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,"
               " PRIMARY KEY(root_id, path)) WITHOUT ROWID;"
               "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', 1);"));
  MAMORI_TRY(store::Store::create_schema(db_));
  // A new catalog is sealed empty at once, so a first init that fails leaves a valid
  // catalog with no roots ("no baseline yet"), not an unsealed one that looks tampered.
  if (!MAMORI_TRY(stored_root_hash())) MAMORI_TRY(seal(0));
  return txn.commit();
}

Status Catalog::check_schema() {
  auto v = MAMORI_TRY(meta("schema_version"));
  if (!v) return fail("catalog", db_.path(), EBADMSG, "no schema version: not a mamori catalog");
  if (*v != std::to_string(kSchemaVersion))
    return fail("catalog", db_.path(), EPROTO,
                "schema version " + *v + " is not the supported " + std::to_string(kSchemaVersion));
  return ok();
}

Result<std::optional<std::string>> Catalog::meta(std::string_view key) {
  auto q = MAMORI_TRY(db_.prepare("SELECT CAST(value AS TEXT) FROM meta WHERE key = ?"));
  q.bind_text(1, key);
  if (!MAMORI_TRY(q.step())) return std::optional<std::string>{};
  std::string value(q.blob(0));
  q.reset();
  return std::optional<std::string>(std::move(value));
}

Status Catalog::set_meta(std::string_view key, std::string_view value) {
  auto q = MAMORI_TRY(db_.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)"));
  q.bind_text(1, key).bind_text(2, value);
  return q.run();
}

Result<std::vector<RootRow>> Catalog::roots() {
  auto q = MAMORI_TRY(db_.prepare("SELECT id, path, baselined_at_ns FROM roots ORDER BY path"));
  std::vector<RootRow> out;
  while (MAMORI_TRY(q.step())) out.push_back({q.int64(0), std::string(q.blob(1)), q.int64(2)});
  return out;
}

Result<std::optional<RootRow>> Catalog::find_root(std::string_view path) {
  auto q = MAMORI_TRY(db_.prepare("SELECT id, path, baselined_at_ns FROM roots WHERE path = ?"));
  q.bind_text(1, path);
  if (!MAMORI_TRY(q.step())) return std::optional<RootRow>{};
  RootRow r{q.int64(0), std::string(q.blob(1)), q.int64(2)};
  q.reset();
  return std::optional<RootRow>(std::move(r));
}

Result<int64_t> Catalog::touch_root(std::string_view path, int64_t now_ns) {
  auto q = MAMORI_TRY(
      db_.prepare("INSERT INTO roots(path, baselined_at_ns) VALUES(?, ?)"
                  " ON CONFLICT(path) DO UPDATE SET baselined_at_ns = excluded.baselined_at_ns"));
  q.bind_text(1, path).bind(2, now_ns);
  MAMORI_TRY(q.run());
  auto row = MAMORI_TRY(find_root(path));
  return row->id;
}

Status Catalog::remove_root(int64_t root_id) {
  MAMORI_TRY(erase_subtree(root_id, ""));
  auto q = MAMORI_TRY(db_.prepare("DELETE FROM roots WHERE id = ?"));
  q.bind(1, root_id);
  return q.run();
}

Status Catalog::erase_subtree(int64_t root_id, std::string_view prefix) {
  if (prefix.empty()) {
    auto q = MAMORI_TRY(db_.prepare("DELETE FROM entries WHERE root_id = ?"));
    q.bind(1, root_id);
    return q.run();
  }
  const auto [lo, hi] = subtree_bounds(prefix);
  auto q = MAMORI_TRY(db_.prepare(
      "DELETE FROM entries WHERE root_id = ?1 AND (path = ?2 OR (path >= ?3 AND path < ?4))"));
  q.bind(1, root_id).bind_text(2, prefix).bind_text(3, lo).bind_text(4, hi);
  return q.run();
}

Status Catalog::put(int64_t root_id, const Entry& e) {
  auto& q = *MAMORI_TRY(db_.cached(
      "INSERT OR REPLACE INTO entries(root_id, path, type, mode, uid, gid, size, mtime_ns, rdev,"
      " sha256, link_target, xattrs, ino, ctime_ns) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  q.bind(1, root_id)
      .bind_text(2, e.path)
      .bind(3, static_cast<int64_t>(e.type))
      .bind(4, int64_t{e.mode})
      .bind(5, int64_t{e.uid})
      .bind(6, int64_t{e.gid})
      .bind(7, static_cast<int64_t>(e.size))
      .bind(8, e.mtime_ns)
      .bind(9, static_cast<int64_t>(e.rdev));
  if (e.type == FileType::kRegular)
    q.bind(10, e.sha256.raw());
  else
    q.bind_null(10);
  q.bind_text(11, e.link_target())
      .bind(12, e.xattrs())
      .bind(13, static_cast<int64_t>(e.ino))
      .bind(14, e.ctime_ns);
  return q.run();
}

Status Catalog::update_stat_cache(int64_t root_id, const Entry& e) {
  auto& q = *MAMORI_TRY(
      db_.cached("UPDATE entries SET ino = ?, ctime_ns = ? WHERE root_id = ? AND path = ?"));
  q.bind(1, static_cast<int64_t>(e.ino)).bind(2, e.ctime_ns).bind(3, root_id).bind_text(4, e.path);
  return q.run();
}

Result<std::vector<std::string>> Catalog::top_names(int64_t root_id) {
  // The first path past `after` (or from `from`): either a top-level name or the first
  // entry beneath one, whose subtree is then skipped in one seek (name + "0", the byte
  // after '/').
  auto& after = *MAMORI_TRY(
      db_.cached("SELECT path FROM entries WHERE root_id = ? AND path > ? ORDER BY path LIMIT 1"));
  auto& from = *MAMORI_TRY(
      db_.cached("SELECT path FROM entries WHERE root_id = ? AND path >= ? ORDER BY path LIMIT 1"));
  std::vector<std::string> names;
  std::string bound;  // "" and exclusive: skips the root's own entry
  bool inclusive = false;
  while (true) {
    auto& q = inclusive ? from : after;
    q.bind(1, root_id).bind_text(2, bound);
    if (!MAMORI_TRY(q.step())) {
      q.reset();
      break;
    }
    std::string path(q.blob(0));
    q.reset();
    const size_t slash = path.find('/');
    std::string top = path.substr(0, slash);
    names.push_back(top);  // again for "wp" after "wp-a.php": made unique below
    if (slash == std::string::npos) {
      bound = std::move(top);
      inclusive = false;
    } else {
      bound = std::move(top) + "0";
      inclusive = true;
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

Result<std::optional<Entry>> Catalog::get(int64_t root_id, std::string_view path) {
  auto& q = *MAMORI_TRY(db_.cached(std::string("SELECT ") + kEntryColumns +
                                   " FROM entries WHERE root_id = ? AND path = ?"));
  q.bind(1, root_id).bind_text(2, path);
  if (!MAMORI_TRY(q.step())) return std::optional<Entry>{};
  auto e = MAMORI_TRY(read_entry(q));
  q.reset();
  return std::optional<Entry>(std::move(e));
}

Result<std::vector<std::string>> Catalog::paths_with_inode(int64_t root_id, uint64_t ino) {
  auto q = MAMORI_TRY(
      db_.prepare("SELECT path FROM entries WHERE root_id = ? AND ino = ? AND type = ?"));
  q.bind(1, root_id)
      .bind(2, static_cast<int64_t>(ino))
      .bind(3, static_cast<int64_t>(FileType::kRegular));
  std::vector<std::string> out;
  while (MAMORI_TRY(q.step())) out.emplace_back(q.blob(0));
  return out;
}

Status Catalog::for_each(int64_t root_id, std::string_view prefix,
                         const std::function<Status(Entry&&)>& fn) {
  const auto [lo, hi] = subtree_bounds(prefix);
  auto q = MAMORI_TRY(db_.prepare(
      std::string("SELECT ") + kEntryColumns +
      " FROM entries WHERE root_id = ?1 AND (?2 = '' OR path = ?3 OR (path >= ?4 AND path < ?5))"
      " ORDER BY path"));
  q.bind(1, root_id)
      .bind_text(2, prefix.empty() ? "" : "x")
      .bind_text(3, prefix)
      .bind_text(4, lo)
      .bind_text(5, hi);
  while (MAMORI_TRY(q.step())) {
    auto st = fn(MAMORI_TRY(read_entry(q)));
    if (!st) {
      q.reset();
      return st;
    }
  }
  return ok();
}

Result<uint64_t> Catalog::count(int64_t root_id) {
  auto q = MAMORI_TRY(db_.prepare("SELECT count(*) FROM entries WHERE root_id = ?"));
  q.bind(1, root_id);
  MAMORI_TRY(q.step());
  const auto n = static_cast<uint64_t>(q.int64(0));
  q.reset();
  return n;
}

Result<Catalog::Reclaimable> Catalog::reclaimable() {
  auto q = MAMORI_TRY(
      // NOT IN over the subquery: SQLite builds one temporary index of the live digests.
      // (A correlated NOT EXISTS scans every entry per object: entries has no index on
      // sha256, and 20,000 files made `mamori status` take a minute.)
      db_.prepare("SELECT count(*), coalesce(sum(stored_size), 0) FROM objects WHERE sha256"
                  " NOT IN (SELECT sha256 FROM entries WHERE sha256 IS NOT NULL)"));
  MAMORI_TRY(q.step());
  Reclaimable r{static_cast<uint64_t>(q.int64(0)), static_cast<uint64_t>(q.int64(1))};
  q.reset();
  return r;
}

Result<std::unordered_set<Digest, hash::DigestHash>> Catalog::live_digests() {
  auto q = MAMORI_TRY(db_.prepare("SELECT DISTINCT sha256 FROM entries WHERE sha256 IS NOT NULL"));
  std::unordered_set<Digest, hash::DigestHash> live;
  while (MAMORI_TRY(q.step())) live.insert(MAMORI_TRY(Digest::from_bytes(q.blob(0))));
  return live;
}

Result<Digest> Catalog::compute_root_hash() {
  hash::Sha256 h;
  h.update("mamori-catalog-v1");
  for (const auto& root : MAMORI_TRY(roots())) {
    std::string rec = "R" + std::to_string(root.path.size()) + ":" + root.path;
    h.update(rec);
    MAMORI_TRY(for_each(root.id, "", [&](Entry&& e) -> Status {
      hash_entry(h, e);
      return ok();
    }));
  }
  return h.finish();
}

Result<Digest> Catalog::seal(int64_t now_ns) {
  const Digest d = MAMORI_TRY(compute_root_hash());
  MAMORI_TRY(set_meta("root_hash", d.hex()));
  MAMORI_TRY(set_meta("sealed_at_ns", std::to_string(now_ns)));
  return d;
}

Result<std::optional<Digest>> Catalog::stored_root_hash() {
  auto v = MAMORI_TRY(meta("root_hash"));
  if (!v) return std::optional<Digest>{};
  auto d = Digest::from_hex(*v);
  if (!d) return fail("catalog", db_.path(), EBADMSG, "stored root hash is malformed");
  return std::optional<Digest>(*d);
}

Result<int64_t> Catalog::sealed_at_ns() {
  auto v = MAMORI_TRY(meta("sealed_at_ns"));
  return v ? std::stoll(*v) : 0;
}

Status Catalog::verify() {
  auto qc = MAMORI_TRY(db_.prepare("PRAGMA quick_check"));
  MAMORI_TRY(qc.step());
  const std::string verdict(qc.blob(0));
  qc.reset();
  if (verdict != "ok")
    return fail("catalog", db_.path(), EBADMSG, "SQLite integrity check: " + verdict);
  const auto stored = MAMORI_TRY(stored_root_hash());
  if (!stored)
    return fail("catalog", db_.path(), EBADMSG, "no root hash: the catalog was never sealed");
  const Digest now = MAMORI_TRY(compute_root_hash());
  if (now != *stored)
    return fail("catalog", db_.path(), EBADMSG,
                "root hash mismatch: stored " + stored->hex() + ", computed " + now.hex() +
                    " (the catalog was changed outside mamori)");
  auto missing =
      MAMORI_TRY(db_.prepare("SELECT path FROM entries e WHERE type = 1 AND NOT EXISTS"
                             " (SELECT 1 FROM objects o WHERE o.sha256 = e.sha256) LIMIT 1"));
  if (MAMORI_TRY(missing.step())) {
    const std::string path(missing.blob(0));
    missing.reset();
    return fail("catalog", path, EBADMSG, "content is missing from the store");
  }
  return ok();
}

}  // namespace mamori::baseline
