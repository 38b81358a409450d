// The server's questions to the store. Until manager/db (the Store of h-mdb) lands, an
// interim SQLite store of the same shape lives here: tokens, agents, events (UNIQUE
// (agent_key, event_id), INSERT ... ON CONFLICT DO NOTHING), baseline history.

#include "manager/server/store_calls.h"

#include <cerrno>

#include "core/db/sqlite.h"

namespace mamori::manager {

class Store {
 public:
  explicit Store(db::Db d) : db(std::move(d)) {}
  db::Db db;
};

namespace {

constexpr std::string_view kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS tokens (
  id INTEGER PRIMARY KEY,
  secret_hash TEXT NOT NULL UNIQUE,
  grp TEXT NOT NULL,
  uses_left INTEGER,
  expires_at_ns INTEGER,
  revoked INTEGER NOT NULL DEFAULT 0,
  created_at_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
  agent_key TEXT PRIMARY KEY,
  credential_hash TEXT NOT NULL,
  grp TEXT NOT NULL,
  hostname TEXT NOT NULL, machine_id TEXT NOT NULL, agent_id TEXT NOT NULL,
  name TEXT NOT NULL, version TEXT NOT NULL, roots_json TEXT NOT NULL,
  baseline_root_hash TEXT NOT NULL,
  status TEXT NOT NULL,
  enrolled_at_ns INTEGER NOT NULL,
  last_seen_ns INTEGER NOT NULL DEFAULT 0,
  address TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS events (
  agent_key TEXT NOT NULL,
  event_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  action TEXT NOT NULL,
  stored_at_ns INTEGER NOT NULL,
  body TEXT NOT NULL,
  UNIQUE (agent_key, event_id));
CREATE INDEX IF NOT EXISTS events_by_agent ON events (agent_key, stored_at_ns);
CREATE TABLE IF NOT EXISTS baselines (
  agent_key TEXT NOT NULL,
  hash TEXT NOT NULL,
  at_ns INTEGER NOT NULL,
  expected INTEGER NOT NULL);
)SQL";

std::string text(const db::Stmt& s, int col) { return std::string(s.blob(col)); }

AgentRow agent_of(const db::Stmt& s) {
  AgentRow a;
  a.agent_key = text(s, 0);
  a.credential_hash = text(s, 1);
  a.group = text(s, 2);
  a.hostname = text(s, 3);
  a.machine_id = text(s, 4);
  a.agent_id = text(s, 5);
  a.name = text(s, 6);
  a.version = text(s, 7);
  a.roots_json = text(s, 8);
  a.baseline_root_hash = text(s, 9);
  a.status = text(s, 10);
  a.enrolled_at_ns = s.int64(11);
  a.last_seen_ns = s.int64(12);
  return a;
}

constexpr std::string_view kAgentColumns =
    "agent_key, credential_hash, grp, hostname, machine_id, agent_id, name, version, "
    "roots_json, baseline_root_hash, status, enrolled_at_ns, last_seen_ns";

}  // namespace

void StoreDeleter::operator()(Store* s) const { delete s; }

Result<StorePtr> open_store_url(Env&, const std::string& url) {
  constexpr std::string_view kScheme = "sqlite://";
  if (!url.starts_with(kScheme) || url.size() <= kScheme.size() + 1 || url[kScheme.size()] != '/')
    return fail("open the manager's store", url, EINVAL,
                "only sqlite:///ABSOLUTE/PATH.db is supported");
  const std::string path = url.substr(kScheme.size());
  auto d = MAMORI_TRY(db::Db::open(path, db::Db::Mode::kReadWrite));
  MAMORI_TRY(d.exec(kSchema));
  return StorePtr(new Store(std::move(d)));
}

Result<int64_t> create_token(Store& s, const std::string& secret_hash, const std::string& group,
                             std::optional<int64_t> uses, std::optional<int64_t> expires_at_ns,
                             int64_t now_ns) {
  auto st = MAMORI_TRY(
      s.db.prepare("INSERT INTO tokens (secret_hash, grp, uses_left, expires_at_ns, created_at_ns) "
                   "VALUES (?, ?, ?, ?, ?)"));
  st.bind_text(1, secret_hash).bind_text(2, group);
  uses ? st.bind(3, *uses) : st.bind_null(3);
  expires_at_ns ? st.bind(4, *expires_at_ns) : st.bind_null(4);
  st.bind(5, now_ns);
  MAMORI_TRY(st.run());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(s.db.raw()));
}

Result<std::vector<TokenRow>> list_tokens(Store& s) {
  auto st = MAMORI_TRY(s.db.prepare(
      "SELECT id, grp, uses_left, expires_at_ns, revoked, created_at_ns FROM tokens ORDER BY id"));
  std::vector<TokenRow> out;
  while (MAMORI_TRY(st.step())) {
    TokenRow t;
    t.id = st.int64(0);
    t.group = text(st, 1);
    if (!st.is_null(2)) t.uses_left = st.int64(2);
    if (!st.is_null(3)) t.expires_at_ns = st.int64(3);
    t.revoked = st.int64(4) != 0;
    t.created_at_ns = st.int64(5);
    out.push_back(std::move(t));
  }
  return out;
}

Result<bool> revoke_token(Store& s, int64_t id) {
  auto st = MAMORI_TRY(s.db.prepare("UPDATE tokens SET revoked = 1 WHERE id = ?"));
  MAMORI_TRY(st.bind(1, id).run());
  return sqlite3_changes(s.db.raw()) > 0;
}

Result<TokenVerdict> consume_token(Store& s, const std::string& secret_hash, int64_t now_ns) {
  auto tx = MAMORI_TRY(db::Transaction::begin(s.db));
  auto st = MAMORI_TRY(s.db.prepare(
      "SELECT id, grp, uses_left, expires_at_ns, revoked FROM tokens WHERE secret_hash = ?"));
  st.bind_text(1, secret_hash);
  if (!MAMORI_TRY(st.step())) return TokenVerdict{false, "", "unknown token"};
  const int64_t id = st.int64(0);
  TokenVerdict v{true, text(st, 1), ""};
  const bool limited = !st.is_null(2);
  const int64_t uses = st.int64(2);
  if (st.int64(4))
    v = {false, "", "the token was revoked"};
  else if (!st.is_null(3) && st.int64(3) <= now_ns)
    v = {false, "", "the token expired"};
  else if (limited && uses <= 0)
    v = {false, "", "the token is used up"};
  st.reset();
  if (!v.ok) return v;
  if (limited) {
    auto up = MAMORI_TRY(s.db.prepare("UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ?"));
    MAMORI_TRY(up.bind(1, id).run());
  }
  MAMORI_TRY(tx.commit());
  return v;
}

Status create_agent(Store& s, const AgentRow& a) {
  auto st = MAMORI_TRY(s.db.prepare(
      "INSERT INTO agents (agent_key, credential_hash, grp, hostname, machine_id, agent_id, "
      "name, version, roots_json, baseline_root_hash, status, enrolled_at_ns) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'enrolled', ?)"));
  st.bind_text(1, a.agent_key)
      .bind_text(2, a.credential_hash)
      .bind_text(3, a.group)
      .bind_text(4, a.hostname)
      .bind_text(5, a.machine_id)
      .bind_text(6, a.agent_id)
      .bind_text(7, a.name)
      .bind_text(8, a.version)
      .bind_text(9, a.roots_json)
      .bind_text(10, a.baseline_root_hash)
      .bind(11, a.enrolled_at_ns);
  return st.run();
}

Result<std::optional<AgentRow>> find_agent(Store& s, const std::string& agent_key) {
  auto st = MAMORI_TRY(
      s.db.prepare("SELECT " + std::string(kAgentColumns) + " FROM agents WHERE agent_key = ?"));
  st.bind_text(1, agent_key);
  if (!MAMORI_TRY(st.step())) return std::optional<AgentRow>();
  AgentRow a = agent_of(st);
  st.reset();
  return std::optional<AgentRow>(std::move(a));
}

Result<std::vector<AgentRow>> list_agents(Store& s) {
  auto st = MAMORI_TRY(s.db.prepare("SELECT " + std::string(kAgentColumns) +
                                    " FROM agents ORDER BY enrolled_at_ns, agent_key"));
  std::vector<AgentRow> out;
  while (MAMORI_TRY(st.step())) out.push_back(agent_of(st));
  return out;
}

Status set_status(Store& s, const std::string& agent_key, std::string_view status, int64_t now_ns) {
  auto st =
      MAMORI_TRY(s.db.prepare("UPDATE agents SET status = ?, last_seen_ns = MAX(last_seen_ns, ?) "
                              "WHERE agent_key = ?"));
  return st.bind_text(1, status).bind(2, now_ns).bind_text(3, agent_key).run();
}

Status set_last_seen(Store& s, const std::string& agent_key, int64_t now_ns) {
  auto st = MAMORI_TRY(s.db.prepare("UPDATE agents SET last_seen_ns = ? WHERE agent_key = ?"));
  return st.bind(1, now_ns).bind_text(2, agent_key).run();
}

Status record_hello(Store& s, const std::string& agent_key, const HelloUpdate& u) {
  auto st = MAMORI_TRY(s.db.prepare(
      "UPDATE agents SET agent_id = ?, name = ?, version = ?, hostname = ?, roots_json = ?, "
      "baseline_root_hash = ?, status = 'online', last_seen_ns = ?, address = ? "
      "WHERE agent_key = ?"));
  return st.bind_text(1, u.agent_id)
      .bind_text(2, u.name)
      .bind_text(3, u.version)
      .bind_text(4, u.hostname)
      .bind_text(5, u.roots_json)
      .bind_text(6, u.baseline_root_hash)
      .bind(7, u.now_ns)
      .bind_text(8, u.address)
      .bind_text(9, agent_key)
      .run();
}

Result<size_t> insert_events(Store& s, const std::string& agent_key,
                             const std::vector<nlohmann::json>& events, int64_t now_ns) {
  auto tx = MAMORI_TRY(db::Transaction::begin(s.db));
  auto* st = MAMORI_TRY(
      s.db.cached("INSERT INTO events (agent_key, event_id, sequence, action, stored_at_ns, body) "
                  "VALUES (?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT (agent_key, event_id) DO NOTHING"));
  size_t added = 0;
  for (const auto& e : events) {
    const auto& ev = e.contains("event") ? e["event"] : nlohmann::json::object();
    const std::string id = ev.value("id", std::string());
    const std::string action = ev.value("action", std::string());
    const int64_t seq = ev.contains("sequence") && ev["sequence"].is_number_integer()
                            ? ev["sequence"].get<int64_t>()
                            : 0;
    st->bind_text(1, agent_key)
        .bind_text(2, id)
        .bind(3, seq)
        .bind_text(4, action)
        .bind(5, now_ns)
        .bind_text(6, e.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    MAMORI_TRY(st->run());
    added += static_cast<size_t>(sqlite3_changes(s.db.raw()));
  }
  MAMORI_TRY(tx.commit());
  return added;
}

Result<uint64_t> count_events(Store& s, const std::string& agent_key) {
  auto st = MAMORI_TRY(s.db.prepare("SELECT COUNT(*) FROM events WHERE agent_key = ?"));
  st.bind_text(1, agent_key);
  const uint64_t n = MAMORI_TRY(st.step()) ? static_cast<uint64_t>(st.int64(0)) : 0;
  st.reset();
  return n;
}

Result<std::optional<BaselineRow>> last_baseline(Store& s, const std::string& agent_key) {
  auto st = MAMORI_TRY(s.db.prepare(
      "SELECT hash, at_ns FROM baselines WHERE agent_key = ? ORDER BY rowid DESC LIMIT 1"));
  st.bind_text(1, agent_key);
  if (!MAMORI_TRY(st.step())) return std::optional<BaselineRow>();
  BaselineRow b{text(st, 0), st.int64(1)};
  st.reset();
  return std::optional<BaselineRow>(std::move(b));
}

Status record_baseline(Store& s, const std::string& agent_key, const std::string& hash,
                       int64_t now_ns, bool expected) {
  auto st = MAMORI_TRY(
      s.db.prepare("INSERT INTO baselines (agent_key, hash, at_ns, expected) VALUES (?, ?, ?, ?)"));
  return st.bind_text(1, agent_key)
      .bind_text(2, hash)
      .bind(3, now_ns)
      .bind(4, int64_t{expected})
      .run();
}

Result<bool> deploy_or_accept_since(Store& s, const std::string& agent_key, int64_t since_ns) {
  auto st = MAMORI_TRY(
      s.db.prepare("SELECT 1 FROM events WHERE agent_key = ? AND stored_at_ns >= ? AND action IN "
                   "('deploy-started', 'deploy-ended', 'mode-changed') LIMIT 1"));
  st.bind_text(1, agent_key).bind(2, since_ns);
  const bool found = MAMORI_TRY(st.step());
  st.reset();
  return found;
}

}  // namespace mamori::manager
