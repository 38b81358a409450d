#include "manager/db/pg.h"

#include <charconv>

namespace mamori::manager::pg {
namespace {

void replace_all(std::string& s, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size()))
    s.replace(at, what.size(), with);
}

// libpq's messages end in a newline and may span lines; an Error's detail is one line.
std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  replace_all(s, "\n", "; ");
  return s;
}

// The password as written in the URL's user info (scheme://user:PASSWORD@host), found
// without libpq, for when libpq cannot parse the URL and quotes it in its message.
std::string url_password(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?"));
  const size_t at = rest.rfind('@');
  if (at == std::string_view::npos) return {};
  const std::string_view userinfo = rest.substr(0, at);
  const size_t colon = userinfo.find(':');
  return colon == std::string_view::npos ? std::string() : std::string(userinfo.substr(colon + 1));
}

const char* or_default(const char* s, const char* d) { return s && *s ? s : d; }

}  // namespace

// ---- Params ----

Params& Params::add(int64_t v) {
  values_.emplace_back(std::to_string(v));
  return *this;
}
Params& Params::add(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) has_nul_ = true;
  values_.emplace_back(std::string(text));
  return *this;
}
Params& Params::add(bool v) {
  values_.emplace_back(v ? "t" : "f");
  return *this;
}
Params& Params::add(const std::optional<int64_t>& v) { return v ? add(*v) : add_null(); }
Params& Params::add_null() {
  values_.emplace_back(std::nullopt);
  return *this;
}

void append_array_element(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

// ---- Rows ----

std::string_view Rows::text(int row, int col) const {
  return {PQgetvalue(res_.get(), row, col), static_cast<size_t>(PQgetlength(res_.get(), row, col))};
}

int64_t Rows::int64(int row, int col) const { return opt_int64(row, col).value_or(0); }

std::optional<int64_t> Rows::opt_int64(int row, int col) const {
  if (is_null(row, col)) return std::nullopt;
  const std::string_view t = text(row, col);
  int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

int64_t Rows::affected() const {
  const char* n = PQcmdTuples(res_.get());
  int64_t v = 0;
  std::from_chars(n, n + std::char_traits<char>::length(n), v);
  return v;
}

// ---- Conn ----

Result<Conn> Conn::connect(const std::string& url) {
  Conn c;
  c.url_ = url;
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (!opts) {
    std::string msg = err ? one_line(err) : "out of memory";
    PQfreemem(err);
    // libpq quotes the URL in some of these messages: never show its password.
    replace_all(msg, url_password(url), "***");
    return fail_msg("open store", "PostgreSQL URL", "invalid PostgreSQL URL: " + msg);
  }
  for (PQconninfoOption* o = opts; o->keyword; ++o)
    if (std::string_view(o->keyword) == "password" && o->val) c.password_ = o->val;
  PQconninfoFree(opts);
  MAMORI_TRY(c.establish());
  return c;
}

Status Conn::establish() {
  // Earlier keywords are defaults the URL (dbname, expanded) overrides; client_encoding
  // comes after it, so it always holds.
  const char* keys[] = {"connect_timeout",
                        "application_name",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "dbname",
                        "client_encoding",
                        nullptr};
  const char* values[] = {"10",    "mamori-manager", "30",   "10",   "3",
                          "30000", url_.c_str(),     "UTF8", nullptr};
  conn_.reset(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  prepared_.clear();
  may_have_committed_ = false;
  if (!conn_) return fail_msg("open store", "PostgreSQL", "out of memory");
  PGconn* c = conn_.get();
  name_ = std::string(or_default(PQuser(c), "?")) + "@" + or_default(PQhost(c), "?") + ":" +
          or_default(PQport(c), "5432") + "/" + or_default(PQdb(c), "?");
  if (PQstatus(c) == CONNECTION_OK) {
    // Notices (e.g. "relation already exists, skipping") would go to stderr: a library
    // does not log.
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
    return ok();
  }
  std::string msg = one_line(PQerrorMessage(c));
  replace_all(msg, password_, "***");
  replace_all(msg, url_password(url_), "***");
  if (PQconnectionNeedsPassword(c))
    return fail_msg("open store", name_,
                    "authentication failed: the server asks for a password and the URL gives "
                    "none: " +
                        msg);
  if (msg.find("authentication failed") != std::string::npos)
    return fail_msg("open store", name_, "authentication failed: " + msg);
  return fail_msg("open store", name_, "cannot connect: " + msg);
}

Status Conn::reconnect() { return establish(); }

tl::unexpected<Error> Conn::error(const std::string& what, const PGresult* res) const {
  std::string msg;
  const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  if (primary) {
    msg = primary;
    if (const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE))
      msg += std::string(" (SQLSTATE ") + state + ")";
  } else {
    msg = one_line(PQerrorMessage(conn_.get()));  // libpq's own: the connection, memory
  }
  if (broken()) msg = "the connection was lost: " + msg;
  replace_all(msg, password_, "***");
  return fail_msg(what, name_, msg);
}

Result<Rows> Conn::exec(const std::string& sql) {
  const PGTransactionStatusType tx = PQtransactionStatus(conn_.get());
  may_have_committed_ = (tx == PQTRANS_IDLE && sql != "BEGIN") || sql == "COMMIT";
  return checked(Rows(PQexec(conn_.get(), sql.c_str())));
}

Result<Rows> Conn::checked(Rows rows) const {
  const ExecStatusType st = PQresultStatus(rows.res_.get());
  if (!rows.res_ || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK))
    return error("query", rows.res_.get());
  return rows;
}

Result<Rows> Conn::query(const std::string& sql, const Params& params) {
  if (params.has_nul_) return fail("query", name_, EINVAL, "a text value contains a NUL character");
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    const std::string stmt = "mamori_" + std::to_string(prepared_.size() + 1);
    may_have_committed_ = false;  // preparing changes no data
    Rows prep(PQprepare(conn_.get(), stmt.c_str(), sql.c_str(), 0, nullptr));
    if (!prep.res_ || PQresultStatus(prep.res_.get()) != PGRES_COMMAND_OK)
      return error("prepare", prep.res_.get());
    it = prepared_.emplace(sql, stmt).first;
  }
  std::vector<const char*> values;
  values.reserve(params.values_.size());
  for (const auto& v : params.values_) values.push_back(v ? v->c_str() : nullptr);
  may_have_committed_ = PQtransactionStatus(conn_.get()) == PQTRANS_IDLE;
  return checked(
      Rows(PQexecPrepared(conn_.get(), it->second.c_str(), static_cast<int>(values.size()),
                          values.data(), nullptr, nullptr, 0)));
}

// ---- Tx ----

Result<Tx> Tx::begin(Conn& c) {
  MAMORI_TRY(c.exec("BEGIN"));
  return Tx(c);
}

Tx::~Tx() {
  // Nothing to roll back on a lost connection: the server already did.
  if (conn_ && !conn_->broken()) (void)conn_->exec("ROLLBACK");  // best effort
}

Status Tx::commit() {
  Conn* c = std::exchange(conn_, nullptr);
  MAMORI_TRY(c->exec("COMMIT"));
  return ok();
}

}  // namespace mamori::manager::pg
