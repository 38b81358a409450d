#include "core/db/sqlite.h"

#include <unistd.h>

#include "core/fs/admin_files.h"

namespace mamori::db {
namespace {

constexpr int kBusyTimeoutMs = 10'000;
constexpr int kWalRetryMs = 5;

tl::unexpected<Error> sql_error(sqlite3* db, std::string_view what, const std::string& path) {
  const int code = sqlite3_extended_errcode(db);
  int errnum = 0;
  if ((code & 0xFF) == SQLITE_FULL) errnum = ENOSPC;
  if ((code & 0xFF) == SQLITE_IOERR) errnum = EIO;
  // A damaged or foreign file where the catalog should be: mamori's state is not intact.
  if ((code & 0xFF) == SQLITE_CORRUPT || (code & 0xFF) == SQLITE_NOTADB) errnum = EBADMSG;
  std::string detail = sqlite3_errmsg(db);
  if (!what.empty()) detail = std::string(what) + ": " + detail;
  return fail("sqlite", path, errnum, detail);
}

}  // namespace

Stmt& Stmt::bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_.get(), index, value);
  return *this;
}
Stmt& Stmt::bind(int index, std::string_view blob) {
  sqlite3_bind_blob64(stmt_.get(), index, blob.data(), blob.size(), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind_text(int index, std::string_view text) {
  sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}
Stmt& Stmt::bind_null(int index) {
  sqlite3_bind_null(stmt_.get(), index);
  return *this;
}

Result<bool> Stmt::step() {
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  sqlite3* db = sqlite3_db_handle(stmt_.get());
  sqlite3_reset(stmt_.get());
  if (rc == SQLITE_DONE) return false;
  return sql_error(db, sqlite3_sql(stmt_.get()), path_);
}

Status Stmt::run() {
  for (;;) {
    if (!MAMORI_TRY(step())) return ok();
  }
}

void Stmt::reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

std::string_view Stmt::blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_.get(), col);
  const int n = sqlite3_column_bytes(stmt_.get(), col);
  return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(n))
           : std::string_view{};
}

Result<Db> Db::open(const std::string& path, Mode mode) {
  sqlite3* raw = nullptr;
  const int flags = (mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY
                                             : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
  if (mode == Mode::kReadWrite) {
    // Created 0600 here rather than by SQLite (0644 less the umask); SQLite gives the
    // -wal and -shm files the database's mode, and ones left looser by an older run
    // are tightened too.
    MAMORI_TRY(fs::make_private_file(path, /*create=*/true));
    MAMORI_TRY(fs::make_private_file(path + "-wal", /*create=*/false));
    MAMORI_TRY(fs::make_private_file(path + "-shm", /*create=*/false));
  }
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Db db;
  db.db_.reset(raw);
  db.path_ = path;
  if (rc != SQLITE_OK) {
    if (!raw) return fail("sqlite open", path, ENOMEM);
    return sql_error(raw, "open", path);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  if (mode == Mode::kReadWrite) {
    // The switch to WAL needs the file to itself, and SQLite does not call the busy
    // handler on that path: a process opening while another one does retries here.
    for (int waited_ms = 0;; waited_ms += kWalRetryMs) {
      auto switched = db.exec("PRAGMA journal_mode=WAL");
      if (switched) break;
      if ((sqlite3_extended_errcode(raw) & 0xff) != SQLITE_BUSY || waited_ms >= kBusyTimeoutMs)
        return tl::unexpected(switched.error());
      sqlite3_sleep(kWalRetryMs);
    }
    MAMORI_TRY(db.exec("PRAGMA synchronous=FULL"));
  }
  MAMORI_TRY(db.exec("PRAGMA foreign_keys=ON"));
  return db;
}

Status Db::exec(std::string_view sql) {
  char* msg = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &msg) != SQLITE_OK) {
    sqlite3_free(msg);
    return sql_error(db_.get(), text, path_);
  }
  return ok();
}

Result<Stmt> Db::prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &s, nullptr) !=
      SQLITE_OK)
    return sql_error(db_.get(), sql, path_);
  return Stmt(s, path_);
}

Result<Stmt*> Db::cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end())
    it = cache_.emplace(sql, std::make_unique<Stmt>(MAMORI_TRY(prepare(sql)))).first;
  it->second->reset();
  return it->second.get();
}

void Db::rollback() { sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr); }

Result<Transaction> Transaction::begin(Db& db) {
  MAMORI_TRY(db.begin());
  return Transaction(db);
}

Status Transaction::commit() {
  Db* db = std::exchange(db_, nullptr);
  if (auto st = db->commit(); !st) {
    db->rollback();
    return st;
  }
  return ok();
}

}  // namespace mamori::db
