#include "core/evidence/evidence.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <unordered_set>

#include <fmt/format.h>

#include "core/base/unique_fd.h"
#include "core/db/sqlite.h"
#include "core/fs/admin_files.h"
#include "core/fs/beneath.h"

namespace mamori::evidence {
namespace {

// Blob framing (docs/formats/evidence.md): a fixed header, then one zstd frame.
constexpr char kMagic[8] = {'M', 'A', 'M', 'O', 'R', 'I', 'E', 'V'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kCodecZstd = 1;
constexpr size_t kHeaderSize = 64;
constexpr int kLevel = 3;
constexpr size_t kChunk = 128 * 1024;
constexpr size_t kHeadBytes = 4096;    // what looks_executable() sees of a content
constexpr int64_t kSchemaVersion = 3;  // 2 added `priority`, 3 `scan_*` (older: migrated)
// The one blob being written. A single name is enough: the writer holds the lock, and
// open() removes whatever a crashed writer left under it.
constexpr char kTmpName[] = "blob.tmp";
constexpr std::string_view kBlobSuffix = ".mev";

std::string blob_name(int64_t id) { return fmt::format("{:012d}.mev", id); }
std::string shown(std::string_view name) { return "evidence/" + std::string(name); }

// The id in "<digits>.mev", or nullopt for any other name.
std::optional<int64_t> blob_id(std::string_view name) {
  if (name.size() <= kBlobSuffix.size() || !name.ends_with(kBlobSuffix)) return std::nullopt;
  const std::string_view digits = name.substr(0, name.size() - kBlobSuffix.size());
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return id;
}

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

bool script_name(std::string_view path) {
  const auto dot = path.rfind('.');
  if (dot == std::string_view::npos || path.find('/', dot) != std::string_view::npos) return false;
  std::string ext(path.substr(dot + 1));
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view e :
       {"php", "php3", "php4", "php5", "php7", "php8", "phtml", "phar",  "pht",      "inc", "pl",
        "py",  "cgi",  "sh",   "js",   "asp",  "aspx", "jsp",   "shtml", "htaccess", "so"})
    if (ext == e) return true;
  return false;
}

namespace {

// What a content looks like, from its first bytes and its name: a script or program is
// what an attacker runs, so its evidence outlives a junk file's (evidence.h, Priority).
bool looks_executable(std::string_view head, std::string_view path, uint32_t mode) {
  if (S_ISREG(mode) && (mode & 0111)) return true;
  if (head.starts_with("#!") || head.starts_with("\x7f"
                                                 "ELF"))
    return true;
  std::string lower(head);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view tag : {"<?php", "<?=", "<script", "eval(", "base64_decode("})
    if (lower.find(tag) != std::string::npos) return true;
  return script_name(path);
}

tl::unexpected<Error> corrupt(int64_t id, std::string detail) {
  return fail("evidence blob", shown(blob_name(id)), EBADMSG, std::move(detail));
}
tl::unexpected<Error> no_such_item(int64_t id) {
  return fail("evidence", std::to_string(id), ENOENT, "no such item");
}

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

// Attacker-controlled strings (path, executable, command line) may hold any byte, so
// they are stored as BLOBs: SQLite never sees them as text to validate or convert.
// The scan columns last: a reader of a store not migrated yet (version 1 or 2) reads
// "not scanned" in their place.
constexpr char kBaseColumns[] =
    "id, time_ns, event_id, root, path, reason, sha256, size, truncated, mode, uid, gid, mtime_ns,"
    " pid, executable, command_line, user_id, user_name, ppid, parent_executable, baseline_sha256";
constexpr size_t kColumnCount = 23;
std::string columns(int64_t version) {
  return std::string(kBaseColumns) + (version >= 3 ? ", scan_rules, scan_truncated" : ", NULL, 0");
}

// Rule names are YARA identifiers ([A-Za-z0-9_]), so a newline cannot occur in one.
std::string join_rules(const std::vector<std::string>& rules) {
  std::string out;
  for (const auto& r : rules) {
    if (!out.empty()) out += '\n';
    out += r;
  }
  return out;
}
std::vector<std::string> split_rules(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    out.emplace_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

Result<Item> to_item(const db::Stmt& q) {
  Item it;
  it.id = q.int64(0);
  it.time_ns = q.int64(1);
  it.event_id = std::string(q.blob(2));
  it.root = std::string(q.blob(3));
  it.path = std::string(q.blob(4));
  it.reason = std::string(q.blob(5));
  it.sha256 = MAMORI_TRY(hash::Digest::from_bytes(q.blob(6)));
  it.size = static_cast<uint64_t>(q.int64(7));
  it.truncated = q.int64(8) != 0;
  it.mode = static_cast<uint32_t>(q.int64(9));
  it.uid = static_cast<uint32_t>(q.int64(10));
  it.gid = static_cast<uint32_t>(q.int64(11));
  it.mtime_ns = q.int64(12);
  it.who.pid = q.int64(13);
  it.who.executable = std::string(q.blob(14));
  it.who.command_line = std::string(q.blob(15));
  it.who.uid = q.int64(16);
  it.who.user = std::string(q.blob(17));
  it.who.ppid = q.int64(18);
  it.who.parent_executable = std::string(q.blob(19));
  if (!q.is_null(20)) it.baseline_sha256 = MAMORI_TRY(hash::Digest::from_bytes(q.blob(20)));
  if (!q.is_null(21)) it.scan = ScanResult{split_rules(q.blob(21)), q.int64(22) != 0};
  return it;
}

}  // namespace

struct EvidenceStore::Impl {
  Env& env;
  Access access;
  Options options;
  UniqueFd dir;
  UniqueFd lock;
  db::Db db;
  int64_t version = kSchemaVersion;  // of the index (a reader may see an older one)

  // What the blob of an item holds, as its header and the index record it.
  struct Blob {
    std::string head;           // the first kHeadBytes of the content, to judge its kind
    uint64_t kept_size = 0;     // uncompressed bytes kept (a prefix when truncated)
    hash::Digest kept_sha256;   // of those bytes: what read() verifies
    uint64_t stored_bytes = 0;  // the blob file's size, header included: what the quota counts
  };

  Status create_schema();
  Result<int64_t> priority_of(const Item& meta, const Blob& blob);
  Status remove_orphans();
  Result<Blob> write_blob(int src, Item& meta);
  Status index(Item& meta, const Blob& blob, std::vector<Item>& dropped, bool& renamed,
               bool& committing);
  Result<std::optional<Item>> get(int64_t id);
};

EvidenceStore::EvidenceStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EvidenceStore::~EvidenceStore() = default;

Status EvidenceStore::Impl::create_schema() {
  auto v = MAMORI_TRY(db.prepare("PRAGMA user_version"));
  MAMORI_TRY(v.step());
  const int64_t found = v.int64(0);
  v.reset();
  if (found == kSchemaVersion) return ok();
  if (found == 1 || found == 2) {
    auto txn = MAMORI_TRY(db::Transaction::begin(db));
    if (found == 1) {
      // Version 2 only adds the pruning priority; older items count as ordinary ones.
      MAMORI_TRY(db.exec("ALTER TABLE items ADD COLUMN priority INTEGER NOT NULL DEFAULT 1"));
      MAMORI_TRY(db.exec("CREATE INDEX items_event ON items(event_id)"));
    }
    // Version 3 adds YARA's verdict; older items were not scanned (NULL).
    MAMORI_TRY(db.exec("ALTER TABLE items ADD COLUMN scan_rules BLOB"));
    MAMORI_TRY(db.exec("ALTER TABLE items ADD COLUMN scan_truncated INTEGER NOT NULL DEFAULT 0"));
    MAMORI_TRY(db.exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion)));
    return txn.commit();
  }
  if (found != 0)
    return fail("evidence index", db.path(), EPROTO,
                fmt::format("schema version {} is not {}: written by another mamori", found,
                            kSchemaVersion));
  auto txn = MAMORI_TRY(db::Transaction::begin(db));
  // AUTOINCREMENT: an id is never handed out twice, even after the newest item was
  // dropped, so an id in an old event or report never names a different item.
  MAMORI_TRY(db.exec(
      "CREATE TABLE items("
      " id INTEGER PRIMARY KEY AUTOINCREMENT, time_ns INTEGER NOT NULL, event_id TEXT NOT NULL,"
      " root BLOB NOT NULL, path BLOB NOT NULL, reason TEXT NOT NULL,"
      " sha256 BLOB NOT NULL, size INTEGER NOT NULL, truncated INTEGER NOT NULL,"
      " mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, mtime_ns INTEGER NOT "
      "NULL,"
      " pid INTEGER NOT NULL, executable BLOB NOT NULL, command_line BLOB NOT NULL,"
      " user_id INTEGER NOT NULL, user_name BLOB NOT NULL, ppid INTEGER NOT NULL,"
      " parent_executable BLOB NOT NULL, baseline_sha256 BLOB,"
      " kept_size INTEGER NOT NULL, kept_sha256 BLOB NOT NULL, stored_bytes INTEGER NOT NULL,"
      " priority INTEGER NOT NULL DEFAULT 1, scan_rules BLOB,"
      " scan_truncated INTEGER NOT NULL DEFAULT 0)"));
  MAMORI_TRY(db.exec("CREATE INDEX items_event ON items(event_id)"));
  MAMORI_TRY(db.exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion)));
  return txn.commit();
}

Status EvidenceStore::Impl::remove_orphans() {
  // A blob without a row is an add() that never committed: a crash between the blob's
  // rename and the commit, or a prune whose unlink did not happen. Nothing refers to it.
  std::unordered_set<int64_t> ids;
  auto q = MAMORI_TRY(db.prepare("SELECT id FROM items"));
  while (MAMORI_TRY(q.step())) ids.insert(q.int64(0));

  const int dup = ::fcntl(dir.get(), F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return fail_errno("fcntl", "evidence");
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return fail_errno("fdopendir", "evidence");
  }
  std::vector<std::string> doomed;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    const auto id = blob_id(name);
    if (name == kTmpName || (id && !ids.count(*id))) doomed.emplace_back(name);
  }
  const int read_errno = errno;
  ::closedir(d);
  if (read_errno != 0) return fail("readdir", "evidence", read_errno);
  for (const auto& name : doomed)
    if (::unlinkat(dir.get(), name.c_str(), 0) != 0 && errno != ENOENT)
      return fail_errno("unlinkat", shown(name));
  return ok();
}

Result<std::unique_ptr<EvidenceStore>> EvidenceStore::open(Env& env, const std::string& state_dir,
                                                           Access access, Options options) {
  const bool write = access == Access::kWrite;
  if (write) MAMORI_TRY(fs::make_private_dirs(state_dir));
  auto state = fs::open_root(state_dir);
  if (!state) return fail("open state directory", state_dir, state.error().errnum);
  if (write && ::mkdirat(state->get(), "evidence", 0700) != 0 && errno != EEXIST)
    return fail_errno("mkdirat", state_dir + "/evidence");
  const int raw =
      ::openat(state->get(), "evidence", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) return fail_errno("open evidence store", state_dir + "/evidence");
  UniqueFd dir(raw);

  UniqueFd lock;
  if (write) {
    // One writer: open() deletes blobs that have no row yet, which would destroy a
    // second writer's add() in flight.
    const int l = ::openat(dir.get(), "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (l < 0) return fail_errno("open evidence lock", shown("lock"));
    lock.reset(l);
    if (::flock(l, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) return fail_errno("flock", shown("lock"));
      return fail("lock evidence store", shown("lock"), EBUSY,
                  "another mamori process keeps evidence here");
    }
  } else {
    struct stat st {};
    if (::fstatat(dir.get(), "index.db", &st, AT_SYMLINK_NOFOLLOW) != 0)
      return fail_errno("open evidence index", shown("index.db"));
  }

  const std::string db_path = state_dir + "/evidence/index.db";
  auto db =
      MAMORI_TRY(db::Db::open(db_path, write ? db::Db::Mode::kReadWrite : db::Db::Mode::kReadOnly));
  auto impl = std::unique_ptr<Impl>(
      new Impl{env, access, options, std::move(dir), std::move(lock), std::move(db)});
  if (write) {
    MAMORI_TRY(impl->create_schema());
    MAMORI_TRY(impl->remove_orphans());
  } else {
    auto v = MAMORI_TRY(impl->db.prepare("PRAGMA user_version"));
    MAMORI_TRY(v.step());
    const int64_t version = v.int64(0);
    v.reset();
    // A writer that created the file but not yet its schema: nothing is kept yet.
    if (version == 0) return fail("open evidence index", db_path, ENOENT, "no evidence kept yet");
    if (version < 1 || version > kSchemaVersion)  // older: not migrated yet, read as is
      return fail("evidence index", db_path, EPROTO,
                  fmt::format("schema version {} is not {}: written by another mamori", version,
                              kSchemaVersion));
    impl->version = version;
  }
  return std::unique_ptr<EvidenceStore>(new EvidenceStore(std::move(impl)));
}

Result<EvidenceStore::Impl::Blob> EvidenceStore::Impl::write_blob(int src, Item& meta) {
  if (::unlinkat(dir.get(), kTmpName, 0) != 0 && errno != ENOENT)
    return fail_errno("unlinkat", shown(kTmpName));
  const int raw =
      ::openat(dir.get(), kTmpName, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (raw < 0) return fail_errno("create", shown(kTmpName));
  UniqueFd out(raw);
  const std::string name = shown(kTmpName);

  auto written = [&]() -> Result<Blob> {
    std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
    if (!cctx) return fail("zstd", name, ENOMEM);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, kLevel);
    std::vector<uint8_t> in(kChunk), buf(ZSTD_CStreamOutSize());
    uint64_t out_pos = kHeaderSize;
    auto compress = [&](std::span<const uint8_t> data, ZSTD_EndDirective mode) -> Status {
      ZSTD_inBuffer ib{data.data(), data.size(), 0};
      for (;;) {
        ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
        const size_t rem = ZSTD_compressStream2(cctx.get(), &ob, &ib, mode);
        if (ZSTD_isError(rem)) return fail_msg("zstd compress", name, ZSTD_getErrorName(rem));
        MAMORI_TRY(
            pwrite_all(env, out.get(), {buf.data(), ob.pos}, static_cast<off_t>(out_pos), name));
        out_pos += ob.pos;
        if (mode == ZSTD_e_end ? rem == 0 : ib.pos == ib.size) return ok();
      }
    };

    // Never read past max_item_bytes (docs/formats/evidence.md): a 15 TiB sparse file or a
    // 10 GB upload costs at most that much of the guard's time. The item's sha256 is then
    // the kept prefix's, and `truncated` says so; `size` is the file's size.
    hash::Sha256 kept;
    std::string head;
    uint64_t kept_size = 0;
    bool more = false;
    for (;;) {
      if (kept_size == options.max_item_bytes) {
        uint8_t probe = 0;
        const ssize_t n = ::pread(src, &probe, 1, static_cast<off_t>(kept_size));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("read", meta.path);
        more = n > 0;
        break;
      }
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(in.size(), options.max_item_bytes - kept_size));
      const ssize_t n = ::pread(src, in.data(), want, static_cast<off_t>(kept_size));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno("read", meta.path);
      }
      if (n == 0) break;
      const std::span<const uint8_t> chunk(in.data(), static_cast<size_t>(n));
      if (head.size() < kHeadBytes)
        head.append(reinterpret_cast<const char*>(chunk.data()),
                    std::min(chunk.size(), kHeadBytes - head.size()));
      kept.update(chunk);
      kept_size += chunk.size();
      MAMORI_TRY(compress(chunk, ZSTD_e_continue));
    }
    MAMORI_TRY(compress({}, ZSTD_e_end));
    struct stat st {};
    const uint64_t st_size =
        ::fstat(src, &st) == 0 && S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
    meta.truncated = more || st_size > kept_size;
    meta.size = std::max(st_size, kept_size + (more ? 1 : 0));
    if (!meta.truncated) meta.size = kept_size;
    const hash::Digest kept_digest = kept.finish();
    meta.sha256 = kept_digest;

    Blob blob{std::move(head), kept_size, kept_digest, out_pos};
    std::array<uint8_t, kHeaderSize> header{};
    std::memcpy(header.data(), kMagic, sizeof kMagic);
    put_u32(header.data() + 8, kVersion);
    put_u32(header.data() + 12, kCodecZstd);
    put_u64(header.data() + 16, blob.kept_size);
    std::memcpy(header.data() + 24, blob.kept_sha256.bytes.data(), 32);
    MAMORI_TRY(pwrite_all(env, out.get(), header, 0, name));
    if (env.fsync(out.get()) != 0) return fail_errno("fsync", name);
    return blob;
  }();
  if (!written) ::unlinkat(dir.get(), kTmpName, 0);
  return written;
}

Result<int64_t> EvidenceStore::Impl::priority_of(const Item& meta, const Blob& blob) {
  if (looks_executable(blob.head, meta.path, meta.mode)) return int64_t{kPriorityExecutable};
  auto& q = *MAMORI_TRY(db.cached("SELECT count(*) FROM items WHERE event_id = ?"));
  q.bind_text(1, meta.event_id);
  MAMORI_TRY(q.step());
  const int64_t before = meta.event_id.empty() ? 0 : q.int64(0);
  q.reset();
  if (before < static_cast<int64_t>(kFirstPerIncident)) return int64_t{kPriorityFirst};
  if (before < static_cast<int64_t>(kMaxPerIncident)) return int64_t{kPriorityOrdinary};
  return int64_t{kPriorityBurst};
}

Status EvidenceStore::Impl::index(Item& meta, const Blob& blob, std::vector<Item>& dropped,
                                  bool& renamed, bool& committing) {
  auto txn = MAMORI_TRY(db::Transaction::begin(db));
  // The same content kept already: stored once. The earlier item stands for this one.
  if (!meta.truncated) {
    auto& same = *MAMORI_TRY(db.cached(
        "SELECT id FROM items WHERE sha256 = ? AND truncated = 0 AND kept_size = ? LIMIT 1"));
    same.bind(1, meta.sha256.raw()).bind(2, static_cast<int64_t>(blob.kept_size));
    const bool found = MAMORI_TRY(same.step());
    const int64_t id = found ? same.int64(0) : 0;
    same.reset();
    if (found) {
      meta.id = id;
      meta.duplicate = true;
      return ok();  // nothing written: the transaction rolls back
    }
  }
  const int64_t priority = MAMORI_TRY(priority_of(meta, blob));
  auto& ins = *MAMORI_TRY(db.cached(
      "INSERT INTO items(time_ns, event_id, root, path, reason, sha256, size, truncated, mode, "
      "uid, gid,"
      " mtime_ns, pid, executable, command_line, user_id, user_name, ppid, parent_executable,"
      " baseline_sha256, kept_size, kept_sha256, stored_bytes, priority, scan_rules,"
      " scan_truncated)"
      " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
  ins.bind(1, meta.time_ns)
      .bind_text(2, meta.event_id)
      .bind(3, meta.root)
      .bind(4, meta.path)
      .bind_text(5, meta.reason)
      .bind(6, meta.sha256.raw())
      .bind(7, static_cast<int64_t>(meta.size))
      .bind(8, int64_t{meta.truncated})
      .bind(9, int64_t{meta.mode})
      .bind(10, int64_t{meta.uid})
      .bind(11, int64_t{meta.gid})
      .bind(12, meta.mtime_ns)
      .bind(13, meta.who.pid)
      .bind(14, meta.who.executable)
      .bind(15, meta.who.command_line)
      .bind(16, meta.who.uid)
      .bind(17, meta.who.user)
      .bind(18, meta.who.ppid)
      .bind(19, meta.who.parent_executable);
  if (meta.baseline_sha256)
    ins.bind(20, meta.baseline_sha256->raw());
  else
    ins.bind_null(20);
  ins.bind(21, static_cast<int64_t>(blob.kept_size))
      .bind(22, blob.kept_sha256.raw())
      .bind(23, static_cast<int64_t>(blob.stored_bytes))
      .bind(24, priority);
  if (meta.scan)
    ins.bind(25, join_rules(meta.scan->rules)).bind(26, int64_t{meta.scan->truncated});
  else
    ins.bind_null(25).bind(26, int64_t{0});
  MAMORI_TRY(ins.run());
  meta.id = sqlite3_last_insert_rowid(db.raw());

  // The blob takes its final name before the row commits, and the directory is synced,
  // so after a power cut a committed row always finds its blob. (A plain rename: any
  // file already under this name has no row, since the id is new, so it is garbage.)
  const std::string final_name = blob_name(meta.id);
  if (env.renameat2(dir.get(), kTmpName, dir.get(), final_name.c_str(), 0) != 0)
    return fail_errno("renameat2", shown(final_name));
  renamed = true;
  if (env.fsync(dir.get()) != 0) return fail_errno("fsync", "evidence");

  // Quota: drop the least important items first (priority, then age: evidence.h), in
  // the same transaction, so the store is never seen (nor left by a crash) over quota.
  // The new item competes too: a burst's 17th junk file goes before an older web shell.
  // An item alone is kept, even over the quota.
  auto& sum = *MAMORI_TRY(db.cached("SELECT coalesce(sum(stored_bytes), 0), count(*) FROM items"));
  MAMORI_TRY(sum.step());
  uint64_t total = static_cast<uint64_t>(sum.int64(0));
  int64_t left = sum.int64(1);
  sum.reset();
  if (total > options.quota_bytes) {
    auto old = MAMORI_TRY(db.prepare(
        fmt::format("SELECT {}, stored_bytes FROM items ORDER BY priority, id", columns(version))));
    while (total > options.quota_bytes && left > 1 && MAMORI_TRY(old.step())) {
      dropped.push_back(MAMORI_TRY(to_item(old)));
      total -= std::min<uint64_t>(total, static_cast<uint64_t>(old.int64(kColumnCount)));
      --left;
    }
    old.reset();
    auto& del = *MAMORI_TRY(db.cached("DELETE FROM items WHERE id = ?"));
    for (const auto& d : dropped) {
      del.bind(1, d.id);
      MAMORI_TRY(del.run());
    }
  }
  committing = true;
  return txn.commit();
}

Result<Item> EvidenceStore::add(Item meta, int fd, std::vector<Item>* pruned) {
  Impl& m = *impl_;
  if (m.access != Access::kWrite) return fail("add evidence", "evidence", EROFS);
  if (meta.time_ns == 0) meta.time_ns = m.env.clock().now_ns();
  const Impl::Blob blob = MAMORI_TRY(m.write_blob(fd, meta));

  std::vector<Item> dropped;
  bool renamed = false, committing = false;
  auto st = m.index(meta, blob, dropped, renamed, committing);
  if (st && meta.duplicate) {
    ::unlinkat(m.dir.get(), kTmpName, 0);
    if (pruned) pruned->clear();
    auto earlier = MAMORI_TRY(m.get(meta.id));
    if (!earlier) return no_such_item(meta.id);
    earlier->duplicate = true;
    return std::move(*earlier);
  }
  if (!st) {
    // Before COMMIT the transaction is rolled back, so the blob is garbage. A failed
    // COMMIT may still have reached the WAL and be replayed at the next open: the blob
    // then stays, since a row without its blob is damage while a blob without a row is
    // removed at the next open.
    if (!renamed)
      ::unlinkat(m.dir.get(), kTmpName, 0);
    else if (!committing)
      ::unlinkat(m.dir.get(), blob_name(meta.id).c_str(), 0);
    return tl::unexpected(std::move(st).error());
  }
  // The rows are gone; a blob whose unlink fails here is removed at the next open, and
  // the add itself has succeeded, so its failure is not reported.
  for (const auto& d : dropped) ::unlinkat(m.dir.get(), blob_name(d.id).c_str(), 0);
  if (pruned) *pruned = std::move(dropped);
  return meta;
}

Result<std::vector<Item>> EvidenceStore::list(size_t limit) {
  auto& q = *MAMORI_TRY(impl_->db.cached(
      fmt::format("SELECT {} FROM items ORDER BY id DESC LIMIT ?", columns(impl_->version))));
  q.bind(1, limit == 0 ? int64_t{-1} : static_cast<int64_t>(limit));
  std::vector<Item> out;
  while (MAMORI_TRY(q.step())) {
    auto it = to_item(q);
    if (!it) {
      q.reset();
      return tl::unexpected(std::move(it).error());
    }
    out.push_back(std::move(*it));
  }
  return out;
}

Result<std::optional<Item>> EvidenceStore::Impl::get(int64_t id) {
  auto& q =
      *MAMORI_TRY(db.cached(fmt::format("SELECT {} FROM items WHERE id = ?", columns(version))));
  q.bind(1, id);
  if (!MAMORI_TRY(q.step())) return std::optional<Item>{};
  auto it = to_item(q);
  q.reset();
  if (!it) return tl::unexpected(std::move(it).error());
  return std::optional<Item>(std::move(*it));
}

Result<std::optional<Item>> EvidenceStore::get(int64_t id) { return impl_->get(id); }

Status EvidenceStore::set_scan(int64_t id, const ScanResult& scan) {
  Impl& m = *impl_;
  if (m.access != Access::kWrite) return fail("set evidence scan", std::to_string(id), EROFS);
  auto& q =
      *MAMORI_TRY(m.db.cached("UPDATE items SET scan_rules = ?, scan_truncated = ? WHERE id = ?"));
  q.bind(1, join_rules(scan.rules)).bind(2, int64_t{scan.truncated}).bind(3, id);
  MAMORI_TRY(q.run());
  if (sqlite3_changes(m.db.raw()) == 0) return no_such_item(id);
  return ok();
}

Status EvidenceStore::read(int64_t id,
                           const std::function<Status(std::span<const uint8_t>)>& sink) {
  Impl& m = *impl_;
  auto& q = *MAMORI_TRY(
      m.db.cached("SELECT kept_size, kept_sha256, stored_bytes FROM items WHERE id = ?"));
  q.bind(1, id);
  if (!MAMORI_TRY(q.step())) return no_such_item(id);
  const uint64_t kept_size = static_cast<uint64_t>(q.int64(0));
  const auto kept_sha256 = hash::Digest::from_bytes(q.blob(1));
  const uint64_t stored_bytes = static_cast<uint64_t>(q.int64(2));
  q.reset();
  if (!kept_sha256) return corrupt(id, "its index row is damaged");

  const std::string name = blob_name(id);
  const int raw = ::openat(m.dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (raw < 0) {
    if (errno != ENOENT) return fail_errno("open", shown(name));
    // The writer may have pruned it since the row was read; otherwise it was lost.
    if (!MAMORI_TRY(m.get(id))) return no_such_item(id);
    return corrupt(id, "blob is missing");
  }
  UniqueFd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat", shown(name));
  if (static_cast<uint64_t>(st.st_size) != stored_bytes)
    return corrupt(id, "size differs from the index");
  uint8_t header[kHeaderSize];
  if (::pread(fd.get(), header, sizeof header, 0) != static_cast<ssize_t>(sizeof header))
    return corrupt(id, "header cannot be read");
  if (std::memcmp(header, kMagic, sizeof kMagic) != 0 || get_u32(header + 8) != kVersion ||
      get_u32(header + 12) != kCodecZstd || get_u64(header + 16) != kept_size ||
      std::memcmp(header + 24, kept_sha256->bytes.data(), 32) != 0)
    return corrupt(id, "header does not match the index");

  std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx(ZSTD_createDCtx());
  if (!dctx) return fail("zstd", shown(name), ENOMEM);
  std::vector<uint8_t> in(kChunk), out(ZSTD_DStreamOutSize());
  hash::Sha256 h;
  uint64_t pos = kHeaderSize, produced = 0;
  size_t rc = 1;  // 0 once the frame is complete and flushed
  while (pos < stored_bytes) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(in.size(), stored_bytes - pos));
    const ssize_t n = ::pread(fd.get(), in.data(), want, static_cast<off_t>(pos));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return corrupt(id, "truncated");
    pos += static_cast<uint64_t>(n);
    ZSTD_inBuffer ib{in.data(), static_cast<size_t>(n), 0};
    // Drain the decoder fully for each chunk: output may outlast the input.
    while (ib.pos < ib.size || rc != 0) {
      if (rc == 0) return corrupt(id, "bytes after the zstd frame");
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      rc = ZSTD_decompressStream(dctx.get(), &ob, &ib);
      if (ZSTD_isError(rc)) return corrupt(id, ZSTD_getErrorName(rc));
      produced += ob.pos;
      if (produced > kept_size) return corrupt(id, "longer than recorded");
      h.update({out.data(), ob.pos});
      if (ob.pos) MAMORI_TRY(sink({out.data(), ob.pos}));
      if (ob.pos < ob.size && ib.pos == ib.size) break;  // needs more input
    }
  }
  if (rc != 0) return corrupt(id, "the zstd frame is incomplete");
  if (produced != kept_size) return corrupt(id, "size differs from the index");
  if (h.finish() != *kept_sha256) return corrupt(id, "content does not match its SHA-256");
  return ok();
}

Result<EvidenceStore::Usage> EvidenceStore::usage() {
  auto& q =
      *MAMORI_TRY(impl_->db.cached("SELECT count(*), coalesce(sum(stored_bytes), 0) FROM items"));
  MAMORI_TRY(q.step());
  Usage u{static_cast<uint64_t>(q.int64(0)), static_cast<uint64_t>(q.int64(1))};
  q.reset();
  return u;
}

}  // namespace mamori::evidence
