#pragma once
// A thin RAII layer over libpq for the PostgreSQL store: statements with $n parameters
// only (each SQL text prepared once per connection and reused), results as values, and
// errors naming the database as user@host:port/dbname, never with the password.
//
// Threads: a Conn is one server connection; use it from one thread at a time (libpq is
// thread-safe across connections).
// Lost connections: when the server goes away a call fails and broken() turns true; the
// caller decides whether to reconnect() and run its work again (may_have_committed()
// says whether the failed statement could have committed something).

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/result.h"

namespace mamori::manager::pg {

// The values of one statement's $1..$n, in order, sent as text.
class Params {
 public:
  Params& add(int64_t v);
  Params& add(std::string_view text);
  Params& add(const std::string& text) { return add(std::string_view(text)); }
  Params& add(const char* text) { return add(std::string_view(text)); }
  Params& add(bool v);
  Params& add(const std::optional<int64_t>& v);  // nullopt: NULL
  Params& add_null();

 private:
  friend class Conn;
  std::vector<std::optional<std::string>> values_;
  // libpq takes text parameters as C strings: a NUL inside one would silently cut it (and
  // PostgreSQL's text cannot hold NUL anyway), so such a value fails the statement.
  bool has_nul_ = false;
};

// Appends `s` to a PostgreSQL array literal being built in `out` as one quoted element
// (for unnest($n::text[])): the array is a parameter value, never SQL text.
void append_array_element(std::string& out, std::string_view s);

// The rows of a statement's result (text format).
class Rows {
 public:
  int size() const { return PQntuples(res_.get()); }
  bool is_null(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  std::string_view text(int row, int col) const;
  std::string str(int row, int col) const { return std::string(text(row, col)); }
  int64_t int64(int row, int col) const;  // 0 when NULL
  std::optional<int64_t> opt_int64(int row, int col) const;
  bool boolean(int row, int col) const { return text(row, col) == "t"; }
  // Rows inserted, updated or deleted by the statement.
  int64_t affected() const;

 private:
  friend class Conn;
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  explicit Rows(PGresult* r) : res_(r) {}
  std::unique_ptr<PGresult, Clear> res_;
};

class Conn {
 public:
  // Connects to `url`, a libpq connection URI (postgresql:// or postgres://, with any
  // parameters libpq knows: sslmode, connect_timeout, options, ...). Defaults the URL can
  // override: connect_timeout=10, application_name=mamori-manager, TCP keepalives and
  // tcp_user_timeout 30 s (so a dead peer fails a call instead of hanging it). The
  // client encoding is always UTF8. Errors: "invalid PostgreSQL URL", "authentication
  // failed", "cannot connect", each naming the database.
  static Result<Conn> connect(const std::string& url);

  // One statement without parameters (BEGIN, COMMIT, DDL). Several ;-separated
  // statements are allowed (simple query protocol); then the last one's rows come back.
  Result<Rows> exec(const std::string& sql);
  // A statement with parameters, prepared on first use on this connection.
  Result<Rows> query(const std::string& sql, const Params& params);

  // The connection is gone (the server restarted, the backend was terminated, the
  // network failed). Every call fails until reconnect().
  bool broken() const { return PQstatus(conn_.get()) == CONNECTION_BAD; }
  // Whether the last statement sent could have committed a change: a COMMIT, or a
  // statement run outside a transaction. When such a statement fails because the
  // connection broke, whether it took effect is unknown.
  bool may_have_committed() const { return may_have_committed_; }
  // A new connection with the same URL (prepared statements are prepared again).
  Status reconnect();

  // user@host:port/dbname: how errors name the database.
  const std::string& name() const { return name_; }

 private:
  struct Finish {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  Conn() = default;
  Status establish();
  tl::unexpected<Error> error(const std::string& what, const PGresult* res) const;
  // `rows` if the statement succeeded, else its error.
  Result<Rows> checked(Rows rows) const;

  std::unique_ptr<PGconn, Finish> conn_;
  std::string url_;
  std::string name_;
  std::string password_;                                   // only to scrub it from libpq's messages
  std::unordered_map<std::string, std::string> prepared_;  // SQL text → statement name
  bool may_have_committed_ = false;
};

// Rolls back an open transaction unless commit() was called (on a live connection).
class Tx {
 public:
  static Result<Tx> begin(Conn& c);
  Tx(Tx&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  Tx(const Tx&) = delete;
  ~Tx();
  Status commit();

 private:
  explicit Tx(Conn& c) : conn_(&c) {}
  Conn* conn_;
};

}  // namespace mamori::manager::pg
