#pragma once
// A thin RAII layer over SQLite: errors become Result values naming the statement and the
// database file. One Db per thread; a Db is not shared across threads.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/base/result.h"

namespace mamori::db {

class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3_stmt* s, std::string path) : stmt_(s), path_(std::move(path)) {}

  Stmt& bind(int index, int64_t value);
  Stmt& bind(int index, std::string_view blob);  // bound as a BLOB, copied
  Stmt& bind_text(int index, std::string_view text);
  Stmt& bind_null(int index);

  // true: a row is ready; false: done. The statement resets itself when done.
  Result<bool> step();
  // Steps to completion, expecting no rows.
  Status run();
  void reset();

  int64_t int64(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  std::string_view blob(int col) const;
  bool is_null(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }

 private:
  struct Finalize {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
  std::string path_;
};

class Db {
 public:
  enum class Mode { kReadOnly, kReadWrite };
  // Opens (kReadWrite: creates) the database in WAL mode with synchronous=FULL, so a
  // committed transaction survives a power cut.
  static Result<Db> open(const std::string& path, Mode mode);

  Status exec(std::string_view sql);
  Result<Stmt> prepare(std::string_view sql);
  // A statement prepared once per Db and reused: for the hot paths that run the same SQL
  // for every entry. The pointer stays valid for the Db's lifetime; it is reset (bindings
  // cleared) before it is handed out.
  Result<Stmt*> cached(const std::string& sql);
  Status begin() { return exec("BEGIN IMMEDIATE"); }
  Status commit() { return exec("COMMIT"); }
  void rollback();
  const std::string& path() const { return path_; }
  sqlite3* raw() const { return db_.get(); }

 private:
  struct Close {
    void operator()(sqlite3* d) const { sqlite3_close_v2(d); }
  };
  std::unique_ptr<sqlite3, Close> db_;
  // After db_, so it is destroyed first: statements are finalized before the close.
  std::unordered_map<std::string, std::unique_ptr<Stmt>> cache_;
  std::string path_;
};

// Rolls back an open transaction unless commit() was called.
class Transaction {
 public:
  static Result<Transaction> begin(Db& db);
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction(const Transaction&) = delete;
  ~Transaction() {
    if (db_) db_->rollback();
  }
  Status commit();

 private:
  explicit Transaction(Db& db) : db_(&db) {}
  Db* db_;
};

}  // namespace mamori::db
