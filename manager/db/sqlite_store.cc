#include "manager/db/sqlite_store.h"

#include <algorithm>
#include <cerrno>
#include <limits>

#include "manager/db/decoys.h"
#include "manager/db/event_columns.h"

namespace mamori::manager {
namespace {

using db::Db;
using db::Stmt;
using db::Transaction;

// Each step brings the schema from version i to i+1; kSqliteSchemaVersion == size.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  secret_hash TEXT NOT NULL UNIQUE,
  grp TEXT NOT NULL,
  uses_left INTEGER,
  expires_at_ns INTEGER,
  revoked INTEGER NOT NULL DEFAULT 0,
  created_at_ns INTEGER NOT NULL,
  used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE agents (
  agent_key TEXT PRIMARY KEY,
  credential_hash TEXT NOT NULL,
  grp TEXT NOT NULL,
  token_id INTEGER NOT NULL,
  hostname TEXT NOT NULL, machine_id TEXT NOT NULL, agent_id TEXT NOT NULL,
  name TEXT NOT NULL, version TEXT NOT NULL, roots_json TEXT NOT NULL,
  baseline_root_hash TEXT NOT NULL,
  enrolled_at_ns INTEGER NOT NULL,
  status TEXT NOT NULL,
  status_since_ns INTEGER NOT NULL,
  last_seen_ns INTEGER NOT NULL DEFAULT 0,
  last_hello_ns INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE events (
  row INTEGER PRIMARY KEY AUTOINCREMENT,
  agent_key TEXT NOT NULL,
  event_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  time_ns INTEGER NOT NULL,
  action TEXT NOT NULL,
  path TEXT NOT NULL,
  source_ip TEXT NOT NULL,
  severity INTEGER NOT NULL,
  received_at_ns INTEGER NOT NULL,
  json TEXT NOT NULL,
  UNIQUE (agent_key, event_id)
);
CREATE INDEX events_time ON events (time_ns);
CREATE INDEX events_agent_seq ON events (agent_key, sequence);
CREATE INDEX events_action ON events (action, time_ns);
CREATE INDEX events_path ON events (path);
CREATE INDEX events_source_ip ON events (source_ip, time_ns);
CREATE INDEX events_severity ON events (severity, time_ns);
CREATE INDEX events_received ON events (received_at_ns);
CREATE TABLE event_seq (
  agent_key TEXT PRIMARY KEY,
  max_sequence INTEGER NOT NULL,
  contiguous_through INTEGER NOT NULL
);
CREATE TABLE baselines (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  agent_key TEXT NOT NULL,
  root_hash TEXT NOT NULL,
  at_ns INTEGER NOT NULL,
  expected INTEGER NOT NULL,
  next_sequence INTEGER NOT NULL
);
CREATE INDEX baselines_agent ON baselines (agent_key, at_ns);
)sql",
    // 2: several managers share the database; each agent is held by one of them.
    R"sql(
CREATE TABLE managers (
  id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  started_at_ns INTEGER NOT NULL,
  heartbeat_ns INTEGER NOT NULL
);
ALTER TABLE agents ADD COLUMN manager_id TEXT NOT NULL DEFAULT '';
)sql",
    // 3: fleet control.
    R"sql(
CREATE TABLE bans (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  address TEXT NOT NULL,
  expires_at_ns INTEGER NOT NULL,
  reason TEXT NOT NULL,
  origin TEXT NOT NULL,
  created_at_ns INTEGER NOT NULL,
  lifted_at_ns INTEGER NOT NULL DEFAULT 0,
  pushed INTEGER NOT NULL,
  lift_pushed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX bans_address ON bans (address);
CREATE INDEX bans_unpushed ON bans (id) WHERE pushed = 0 OR (lifted_at_ns != 0 AND lift_pushed = 0);
CREATE TABLE commands (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  command_id TEXT NOT NULL UNIQUE,
  agent_key TEXT NOT NULL,
  request TEXT NOT NULL,
  created_at_ns INTEGER NOT NULL,
  sent_at_ns INTEGER NOT NULL DEFAULT 0,
  answered_at_ns INTEGER NOT NULL DEFAULT 0,
  answer TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL
);
CREATE INDEX commands_pending ON commands (agent_key, id) WHERE state = 'pending';
CREATE INDEX commands_agent ON commands (agent_key, id);
)sql",
    // 4: API access (users, console sessions, API tokens, audit log).
    R"sql(
CREATE TABLE users (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at_ns INTEGER NOT NULL
);
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY,
  csrf_hash TEXT NOT NULL,
  user TEXT NOT NULL,
  created_at_ns INTEGER NOT NULL,
  last_used_ns INTEGER NOT NULL,
  expires_at_ns INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user);
CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  secret_hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at_ns INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0,
  last_used_ns INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ns INTEGER NOT NULL,
  actor TEXT NOT NULL,
  address TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  result TEXT NOT NULL
);
)sql",
    // 5: a command sent on a channel that ended before its answer is sent again at the
    // agent's next hello: the index covers every command not answered yet.
    R"sql(
DROP INDEX commands_pending;
CREATE INDEX commands_unanswered ON commands (agent_key, id) WHERE state IN ('pending', 'sent');
)sql",
    // 6: the console pages a filter by row ("action = ? AND row > ? ORDER BY row LIMIT n").
    // An index on the column alone is ordered by (column, row) here, so a page reads its n
    // entries; (column, time_ns) made SQLite sort every match first. Severity's index
    // served no query (a range on it cannot give row order): each event paid for it.
    // Each manager asks every second which agents said hello elsewhere lately.
    R"sql(
DROP INDEX events_action;
DROP INDEX events_source_ip;
DROP INDEX events_severity;
CREATE INDEX events_action ON events (action);
CREATE INDEX events_source_ip ON events (source_ip);
CREATE INDEX agents_hello ON agents (last_hello_ns);
)sql",
    // 7: the console's chart counts events per minute, action and severity here (kept by
    // the writes and the prunes): a day of a million events is 1,440 minutes to add up,
    // not a million rows.
    R"sql(
CREATE TABLE event_minutes (
  minute INTEGER NOT NULL,
  action TEXT NOT NULL,
  severity INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (minute, action, severity)
) WITHOUT ROWID;
INSERT INTO event_minutes
  SELECT time_ns / 60000000000, action, severity, COUNT(*) FROM events GROUP BY 1, 2, 3;
)sql",
    // 8: the duplicate check's key is (event_id, agent_key). Ids begin with their time, so
    // new ones land at this index's end; keyed by agent first, each commit rewrote a page
    // per agent (10,000 for a fleet of 10,000). SQLite cannot drop a table's UNIQUE: the
    // table is rebuilt (its indexes go with the old one), its AUTOINCREMENT counter carried
    // over (rows are the API's cursors: a row number is never given twice).
    R"sql(
CREATE TABLE events_new (
  row INTEGER PRIMARY KEY AUTOINCREMENT,
  agent_key TEXT NOT NULL,
  event_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  time_ns INTEGER NOT NULL,
  action TEXT NOT NULL,
  path TEXT NOT NULL,
  source_ip TEXT NOT NULL,
  severity INTEGER NOT NULL,
  received_at_ns INTEGER NOT NULL,
  json TEXT NOT NULL,
  UNIQUE (event_id, agent_key)
);
INSERT INTO events_new SELECT row, agent_key, event_id, sequence, time_ns, action, path,
  source_ip, severity, received_at_ns, json FROM events;
DELETE FROM sqlite_sequence WHERE name = 'events_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'events_new', seq FROM sqlite_sequence
  WHERE name = 'events';
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_time ON events (time_ns);
CREATE INDEX events_agent_seq ON events (agent_key, sequence);
CREATE INDEX events_action ON events (action);
CREATE INDEX events_path ON events (path);
CREATE INDEX events_source_ip ON events (source_ip);
CREATE INDEX events_received ON events (received_at_ns);
)sql",
    // 9: the decoys page (decoys.h): each event about a decoy, and each operator's unban,
    // kept beside its event as it is stored (and filled from the events stored before by
    // backfill_decoys), so a report reads what its window holds, not every ban.
    R"sql(
CREATE TABLE decoy_events (
  row INTEGER PRIMARY KEY,
  agent_key TEXT NOT NULL,
  kind TEXT NOT NULL,
  decoy TEXT NOT NULL,
  time_ns INTEGER NOT NULL,
  address TEXT NOT NULL,
  ttl_s INTEGER NOT NULL,
  url TEXT NOT NULL
);
CREATE INDEX decoy_events_time ON decoy_events (time_ns);
CREATE INDEX decoy_events_decoy ON decoy_events (decoy);
CREATE INDEX bans_lifted_at ON bans (lifted_at_ns) WHERE lifted_at_ns != 0;
)sql",
};
static_assert(std::size(kMigrations) == kSqliteSchemaVersion);

std::string text(const Stmt& s, int col) { return std::string(s.blob(col)); }
std::optional<int64_t> opt_int(const Stmt& s, int col) {
  if (s.is_null(col)) return std::nullopt;
  return s.int64(col);
}
void bind_opt(Stmt& s, int i, const std::optional<int64_t>& v) {
  if (v)
    s.bind(i, *v);
  else
    s.bind_null(i);
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(Db db) : db_(std::move(db)) {}

  Status migrate() {
    MAMORI_TRY(db_.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    Stmt q = MAMORI_TRY(db_.prepare("SELECT version FROM schema_version"));
    int64_t version = 0;
    bool has_row = false;
    if (MAMORI_TRY(q.step())) {
      version = q.int64(0);
      has_row = true;
      q.reset();
    }
    if (version > kSqliteSchemaVersion)
      return schema_too_new(db_.path(), version, kSqliteSchemaVersion);
    for (int64_t v = version; v < kSqliteSchemaVersion; ++v) MAMORI_TRY(db_.exec(kMigrations[v]));
    if (version < 9) MAMORI_TRY(backfill_decoys());
    if (!has_row) {
      MAMORI_TRY(db_.prepare("INSERT INTO schema_version VALUES (?)")
                     ->bind(1, kSqliteSchemaVersion)
                     .run());
    } else if (version != kSqliteSchemaVersion) {
      MAMORI_TRY(db_.prepare("UPDATE schema_version SET version = ?")
                     ->bind(1, kSqliteSchemaVersion)
                     .run());
    }
    return tx.commit();
  }

  Result<int64_t> create_token(const NewToken& t) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("INSERT INTO tokens (secret_hash, grp, uses_left, expires_at_ns, created_at_ns) "
                   "VALUES (?, ?, ?, ?, ?)"));
    s->bind_text(1, t.secret_hash).bind_text(2, t.group);
    bind_opt(*s, 3, t.uses);
    bind_opt(*s, 4, t.expires_at_ns);
    s->bind(5, t.created_at_ns);
    MAMORI_TRY(s->run());
    return sqlite3_last_insert_rowid(db_.raw());
  }

  Result<std::vector<TokenRow>> list_tokens() override {
    Stmt* s = MAMORI_TRY(db_.cached(
        "SELECT id, grp, uses_left, expires_at_ns, revoked, created_at_ns, used FROM tokens "
        "ORDER BY id"));
    std::vector<TokenRow> out;
    while (MAMORI_TRY(s->step()))
      out.push_back(TokenRow{s->int64(0), text(*s, 1), opt_int(*s, 2), opt_int(*s, 3),
                             s->int64(4) != 0, s->int64(5), s->int64(6)});
    return out;
  }

  Result<bool> revoke_token(int64_t id) override {
    Stmt* s = MAMORI_TRY(db_.cached("UPDATE tokens SET revoked = 1 WHERE id = ?"));
    MAMORI_TRY(s->bind(1, id).run());
    return sqlite3_changes(db_.raw()) > 0;
  }

  Result<TokenVerdict> consume_token(std::string_view secret_hash, int64_t now_ns) override {
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    TokenVerdict v = MAMORI_TRY(consume_in_tx(secret_hash, now_ns));
    MAMORI_TRY(tx.commit());
    return v;
  }

  Status create_agent(const NewAgent& a) override {
    Stmt* s = MAMORI_TRY(db_.cached(
        "INSERT INTO agents (agent_key, credential_hash, grp, token_id, hostname, machine_id, "
        "agent_id, name, version, roots_json, baseline_root_hash, enrolled_at_ns, status, "
        "status_since_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'enrolled',?)"));
    s->bind_text(1, a.agent_key).bind_text(2, a.credential_hash).bind_text(3, a.group);
    s->bind(4, a.token_id).bind_text(5, a.info.hostname).bind_text(6, a.info.machine_id);
    s->bind_text(7, a.info.agent_id).bind_text(8, a.info.name).bind_text(9, a.info.version);
    s->bind_text(10, a.info.roots_json).bind_text(11, a.info.baseline_root_hash);
    s->bind(12, a.enrolled_at_ns).bind(13, a.enrolled_at_ns);
    return s->run();
  }

  Result<TokenVerdict> enroll(std::string_view secret_hash, NewAgent a, int64_t now_ns) override {
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    TokenVerdict v = MAMORI_TRY(consume_in_tx(secret_hash, now_ns));
    if (!v.accepted()) return v;  // the transaction rolls back: nothing changed
    a.group = v.group;
    a.token_id = v.token_id;
    MAMORI_TRY(create_agent(a));
    MAMORI_TRY(tx.commit());
    return v;
  }

  Result<std::optional<AgentRow>> find_agent(std::string_view agent_key) override {
    Stmt* s = MAMORI_TRY(db_.cached(agent_select() + " WHERE agent_key = ?"));
    s->bind_text(1, agent_key);
    if (!MAMORI_TRY(s->step())) return std::optional<AgentRow>();
    AgentRow r = agent_row(*s);
    s->reset();
    return std::optional<AgentRow>(std::move(r));
  }

  Result<std::vector<AgentRow>> list_agents() override {
    Stmt* s = MAMORI_TRY(db_.cached(agent_select() + " ORDER BY enrolled_at_ns, agent_key"));
    std::vector<AgentRow> out;
    while (MAMORI_TRY(s->step())) out.push_back(agent_row(*s));
    return out;
  }

  Result<AgentStatus> agent_hello(std::string_view agent_key, const AgentInfo& info, int64_t now_ns,
                                  std::string_view manager_id) override {
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    const AgentStatus before = MAMORI_TRY(status_of(agent_key));
    Stmt* s = MAMORI_TRY(db_.cached(
        "UPDATE agents SET hostname = ?, machine_id = ?, agent_id = ?, name = ?, version = ?, "
        "roots_json = ?, baseline_root_hash = ?, last_seen_ns = ?, last_hello_ns = ?, "
        "status_since_ns = CASE WHEN status = 'online' THEN status_since_ns ELSE ? END, "
        "status = 'online', manager_id = ? WHERE agent_key = ?"));
    s->bind_text(1, info.hostname).bind_text(2, info.machine_id).bind_text(3, info.agent_id);
    s->bind_text(4, info.name).bind_text(5, info.version).bind_text(6, info.roots_json);
    s->bind_text(7, info.baseline_root_hash).bind(8, now_ns).bind(9, now_ns).bind(10, now_ns);
    s->bind_text(11, manager_id).bind_text(12, agent_key);
    MAMORI_TRY(s->run());
    MAMORI_TRY(tx.commit());
    return before;
  }

  Status touch_agent(std::string_view agent_key, int64_t now_ns) override {
    Stmt* s = MAMORI_TRY(db_.cached("UPDATE agents SET last_seen_ns = ? WHERE agent_key = ?"));
    MAMORI_TRY(s->bind(1, now_ns).bind_text(2, agent_key).run());
    if (sqlite3_changes(db_.raw()) == 0) return no_agent(agent_key);
    return ok();
  }

  Result<AgentStatus> set_agent_status(std::string_view agent_key, AgentStatus st,
                                       int64_t now_ns) override {
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    const AgentStatus before = MAMORI_TRY(status_of(agent_key));
    if (before != st) {
      Stmt* s = MAMORI_TRY(
          db_.cached("UPDATE agents SET status = ?, status_since_ns = ? WHERE agent_key = ?"));
      MAMORI_TRY(s->bind_text(1, to_string(st)).bind(2, now_ns).bind_text(3, agent_key).run());
    }
    MAMORI_TRY(tx.commit());
    return before;
  }

  Result<std::vector<Result<std::optional<AgentStatus>>>> release_agents(
      std::span<const Release> releases, std::string_view manager_id, int64_t now_ns) override {
    std::vector<Result<std::optional<AgentStatus>>> out;
    out.reserve(releases.size());
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    Stmt* q = MAMORI_TRY(db_.cached("SELECT status, manager_id FROM agents WHERE agent_key = ?"));
    Stmt* s = MAMORI_TRY(
        db_.cached("UPDATE agents SET status = ?, manager_id = '', "
                   "status_since_ns = CASE WHEN status = ? THEN status_since_ns ELSE ? END "
                   "WHERE agent_key = ?"));
    for (const Release& r : releases) {
      q->bind_text(1, r.agent_key);
      if (!MAMORI_TRY(q->step())) {
        out.emplace_back(no_agent(r.agent_key));
        continue;
      }
      const AgentStatus before = parse_agent_status(q->blob(0)).value_or(AgentStatus::kLost);
      const bool ours = q->blob(1) == manager_id;
      q->reset();
      if (!ours) {
        out.emplace_back(std::optional<AgentStatus>());
        continue;
      }
      MAMORI_TRY(s->bind_text(1, to_string(r.status))
                     .bind_text(2, to_string(r.status))
                     .bind(3, now_ns)
                     .bind_text(4, r.agent_key)
                     .run());
      out.emplace_back(std::optional<AgentStatus>(before));
    }
    MAMORI_TRY(tx.commit());
    return out;
  }

  Status manager_heartbeat(std::string_view manager_id, std::string_view hostname,
                           int64_t now_ns) override {
    Stmt* s = MAMORI_TRY(db_.cached(
        "INSERT INTO managers (id, hostname, started_at_ns, heartbeat_ns) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET heartbeat_ns = excluded.heartbeat_ns"));
    return s->bind_text(1, manager_id).bind_text(2, hostname).bind(3, now_ns).bind(4, now_ns).run();
  }

  Result<std::vector<std::string>> hellos_elsewhere(std::string_view self_id,
                                                    int64_t since_ns) override {
    Stmt* s = MAMORI_TRY(db_.cached(
        "SELECT agent_key FROM agents WHERE last_hello_ns >= ? AND manager_id NOT IN ('', ?)"));
    s->bind(1, since_ns).bind_text(2, self_id);
    std::vector<std::string> out;
    while (MAMORI_TRY(s->step())) out.push_back(text(*s, 0));
    return out;
  }

  Result<std::vector<AgentRow>> reap_agents(std::string_view self_id, int64_t stale_before_ns,
                                            int64_t now_ns) override {
    Stmt* s = MAMORI_TRY(db_.cached(
        "UPDATE agents SET "
        "status = CASE WHEN status = 'unhealthy' THEN 'retired' ELSE 'lost' END, "
        "status_since_ns = ?, manager_id = '' "
        "WHERE status IN ('online', 'unhealthy') AND manager_id <> '' AND manager_id <> ? "
        "AND NOT EXISTS (SELECT 1 FROM managers m WHERE m.id = agents.manager_id "
        "AND m.heartbeat_ns >= ?) "
        "RETURNING " +
        std::string(kAgentColumns)));
    s->bind(1, now_ns).bind_text(2, self_id).bind(3, stale_before_ns);
    std::vector<AgentRow> out;
    while (MAMORI_TRY(s->step())) out.push_back(agent_row(*s));
    return out;
  }

  Result<std::vector<InsertResult>> store_batches(std::span<const AgentBatch> batches,
                                                  std::span<const SeenMark> seen,
                                                  int64_t received_at_ns) override {
    std::vector<InsertResult> results;
    bool any_rows = false;
    for (const AgentBatch& b : batches) {
      results.push_back({0, 0, b.events->max_sequence});
      any_rows = any_rows || !b.events->rows.empty();
    }
    if (!any_rows && seen.empty()) return results;
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    for (size_t i = 0; i < batches.size(); ++i)
      if (!batches[i].events->rows.empty())
        MAMORI_TRY(
            insert_batch(batches[i].agent_key, *batches[i].events, received_at_ns, results[i]));
    Stmt* mark = MAMORI_TRY(
        db_.cached("UPDATE agents SET last_seen_ns = MAX(last_seen_ns, ?) WHERE agent_key = ?"));
    for (const SeenMark& m : seen)
      MAMORI_TRY(mark->bind(1, m.at_ns).bind_text(2, m.agent_key).run());
    MAMORI_TRY(tx.commit());
    return results;
  }

  Result<SequenceInfo> sequences(std::string_view agent_key) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("SELECT max_sequence, contiguous_through FROM event_seq WHERE agent_key = ?"));
    s->bind_text(1, agent_key);
    SequenceInfo info;
    if (MAMORI_TRY(s->step())) {
      info.max_sequence = s->int64(0);
      info.contiguous_through = s->int64(1);
      s->reset();
    }
    return info;
  }

  // The conditions of q's filters, each "AND ...", whose values bind_filters() binds in
  // the same order.
  static std::string filters_sql(const EventQuery& q) {
    std::string sql;
    if (q.agent_key) sql += " AND agent_key = ?";
    if (q.group) sql += " AND agent_key IN (SELECT agent_key FROM agents WHERE grp = ?)";
    if (q.since_ns) sql += " AND time_ns >= ?";
    if (q.until_ns) sql += " AND time_ns < ?";
    if (q.action) sql += " AND action = ?";
    // A range on the indexed column: a literal prefix, no LIKE wildcards to escape.
    if (q.path_prefix) sql += " AND path >= ? AND path < ?";
    if (q.source_ip) sql += " AND source_ip = ?";
    if (q.min_severity) sql += " AND severity >= ?";
    if (q.min_sequence) sql += " AND sequence >= ?";
    if (q.decoy) sql += " AND row IN (SELECT row FROM decoy_events WHERE decoy = ?)";
    return sql;
  }
  static void bind_filters(Stmt& s, int& i, const EventQuery& q) {
    if (q.agent_key) s.bind_text(i++, *q.agent_key);
    if (q.group) s.bind_text(i++, *q.group);
    if (q.since_ns) s.bind(i++, *q.since_ns);
    if (q.until_ns) s.bind(i++, *q.until_ns);
    if (q.action) s.bind_text(i++, *q.action);
    if (q.path_prefix) {
      auto [low, high] = prefix_range(*q.path_prefix);
      s.bind_text(i++, low);
      s.bind_text(i++, high);
    }
    if (q.source_ip) s.bind_text(i++, *q.source_ip);
    if (q.min_severity) s.bind(i++, *q.min_severity);
    if (q.min_sequence) s.bind(i++, *q.min_sequence);
    if (q.decoy) s.bind_text(i++, *q.decoy);
  }

  Result<std::vector<EventRow>> query_events(const EventQuery& q) override {
    std::string sql =
        "SELECT row, agent_key, event_id, sequence, time_ns, action, path, source_ip, severity, "
        "received_at_ns, json FROM events WHERE row > ?" +
        filters_sql(q);
    if (q.newest_first && q.before_row > 0) sql += " AND row < ?";
    sql += q.newest_first ? " ORDER BY row DESC LIMIT ?" : " ORDER BY row LIMIT ?";
    Stmt s = MAMORI_TRY(db_.prepare(sql));
    int i = 1;
    s.bind(i++, q.after_row);
    bind_filters(s, i, q);
    if (q.newest_first && q.before_row > 0) s.bind(i++, q.before_row);
    s.bind(i++, std::clamp<int64_t>(q.limit, 0, kMaxQueryLimit));
    std::vector<EventRow> out;
    while (MAMORI_TRY(s.step()))
      out.push_back(EventRow{s.int64(0), text(s, 1), text(s, 2), s.int64(3), s.int64(4), text(s, 5),
                             text(s, 6), text(s, 7), s.int64(8), s.int64(9), text(s, 10)});
    return out;
  }

  // The filters the rollup can apply (action, severity), as filters_sql has them.
  static std::string minute_filters_sql(const EventQuery& q) {
    return std::string(q.action ? " AND action = ?" : "") +
           (q.min_severity ? " AND severity >= ?" : "");
  }
  static void bind_minute_filters(Stmt& s, int& i, const EventQuery& q) {
    if (q.action) s.bind_text(i++, *q.action);
    if (q.min_severity) s.bind(i++, *q.min_severity);
  }

  Result<std::vector<MinuteCount>> count_minutes(const EventQuery& q) override {
    Stmt s = MAMORI_TRY(db_.prepare(
        "SELECT minute, SUM(n), MAX(severity) FROM event_minutes WHERE minute >= ? AND minute < ?" +
        minute_filters_sql(q) + " GROUP BY minute"));
    int i = 1;
    s.bind(i++, q.since_ns.value_or(0) / kMinuteNs);
    s.bind(i++, minute_after(q.until_ns.value_or(0)));
    bind_minute_filters(s, i, q);
    std::vector<MinuteCount> out;
    while (MAMORI_TRY(s.step())) out.push_back({s.int64(0), s.int64(1), s.int64(2)});
    return out;
  }

  Result<std::optional<int64_t>> oldest_minute(const EventQuery& q) override {
    Stmt s = MAMORI_TRY(
        db_.prepare("SELECT MIN(minute) FROM event_minutes WHERE n > 0" + minute_filters_sql(q)));
    int i = 1;
    bind_minute_filters(s, i, q);
    if (!MAMORI_TRY(s.step()) || s.is_null(0)) return std::optional<int64_t>{};
    return std::optional<int64_t>(s.int64(0));
  }

  Result<std::vector<BucketCount>> count_events(const EventQuery& q, int64_t width_ns,
                                                int64_t max_rows) override {
    // The most selective filter's index: the planner, left alone, may walk a whole day
    // of one action for one agent's handful.
    const char* index = q.agent_key || q.group ? " INDEXED BY events_agent_seq"
                        : q.source_ip          ? " INDEXED BY events_source_ip"
                        : q.path_prefix        ? " INDEXED BY events_path"
                                               : "";
    Stmt s = MAMORI_TRY(db_.prepare(
        std::string("SELECT (time_ns - ?) / ?, COUNT(*), MAX(severity) FROM (SELECT time_ns, "
                    "severity FROM events") +
        index + " WHERE row > ?" + filters_sql(q) + " LIMIT ?) GROUP BY 1"));
    int i = 1;
    s.bind(i++, q.since_ns.value_or(0));
    s.bind(i++, width_ns);
    s.bind(i++, q.after_row);
    bind_filters(s, i, q);
    s.bind(i++, max_rows);
    std::vector<BucketCount> out;
    while (MAMORI_TRY(s.step())) out.push_back({s.int64(0), s.int64(1), s.int64(2)});
    return out;
  }

  Status record_baseline(const BaselineRow& b) override {
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    Stmt* s = MAMORI_TRY(
        db_.cached("INSERT INTO baselines (agent_key, root_hash, at_ns, expected, next_sequence) "
                   "VALUES (?,?,?,?,?)"));
    MAMORI_TRY(s->bind_text(1, b.agent_key)
                   .bind_text(2, b.root_hash)
                   .bind(3, b.at_ns)
                   .bind(4, b.expected ? 1 : 0)
                   .bind(5, b.next_sequence)
                   .run());
    Stmt* u =
        MAMORI_TRY(db_.cached("UPDATE agents SET baseline_root_hash = ? WHERE agent_key = ?"));
    MAMORI_TRY(u->bind_text(1, b.root_hash).bind_text(2, b.agent_key).run());
    return tx.commit();
  }

  Result<std::vector<BaselineRow>> baseline_history(std::string_view agent_key) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("SELECT agent_key, root_hash, at_ns, expected, next_sequence FROM baselines "
                   "WHERE agent_key = ? "
                   "ORDER BY at_ns, id"));
    s->bind_text(1, agent_key);
    std::vector<BaselineRow> out;
    while (MAMORI_TRY(s->step()))
      out.push_back(
          BaselineRow{text(*s, 0), text(*s, 1), s->int64(2), s->int64(3) != 0, s->int64(4)});
    return out;
  }

  Result<int64_t> prune(const RetentionPolicy& p, int64_t now_ns) override {
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    int64_t deleted = 0;
    if (p.max_age_ns > 0) {
      Stmt s = MAMORI_TRY(db_.prepare(
          "DELETE FROM events WHERE received_at_ns < ? RETURNING time_ns, action, severity"));
      s.bind(1, now_ns - p.max_age_ns);
      deleted += MAMORI_TRY(delete_events(s));
    }
    if (p.max_events_per_agent > 0) {
      // Per agent: everything older (by row) than its max_events_per_agent newest rows.
      Stmt s = MAMORI_TRY(db_.prepare(
          "DELETE FROM events WHERE row IN (SELECT row FROM (SELECT row, ROW_NUMBER() OVER "
          "(PARTITION BY agent_key ORDER BY row DESC) AS n FROM events) WHERE n > ?) "
          "RETURNING time_ns, action, severity"));
      s.bind(1, p.max_events_per_agent);
      deleted += MAMORI_TRY(delete_events(s));
    }
    if (deleted > 0) {
      MAMORI_TRY(db_.exec("DELETE FROM event_minutes WHERE n <= 0"));
      MAMORI_TRY(
          db_.exec("DELETE FROM decoy_events WHERE NOT EXISTS (SELECT 1 FROM events WHERE "
                   "events.row = decoy_events.row)"));
    }
    MAMORI_TRY(tx.commit());
    return deleted;
  }

  Result<std::vector<DecoyEvent>> decoy_events(int64_t since_ns, int64_t until_ns,
                                               int64_t limit) override {
    Stmt* s = MAMORI_TRY(db_.cached(
        "SELECT row, agent_key, kind, decoy, time_ns, address, ttl_s, url FROM decoy_events "
        "WHERE time_ns >= ? AND time_ns < ? AND kind != 'lift' ORDER BY time_ns DESC, row DESC "
        "LIMIT ?"));
    s->bind(1, since_ns).bind(2, until_ns).bind(3, std::max<int64_t>(0, limit));
    std::vector<DecoyEvent> out;
    while (MAMORI_TRY(s->step()))
      out.push_back(DecoyEvent{s->int64(0), text(*s, 1),
                               parse_decoy_kind(s->blob(2)).value_or(DecoyKind::kHit), text(*s, 3),
                               s->int64(4), text(*s, 5), s->int64(6), text(*s, 7)});
    return out;
  }

  Result<std::vector<DecoyLift>> decoy_lifts(int64_t since_ns, int64_t limit) override {
    Stmt* s = MAMORI_TRY(db_.cached(
        "SELECT address, lifted_at_ns AS at FROM bans WHERE lifted_at_ns != 0 AND lifted_at_ns "
        ">= ?1 UNION ALL SELECT address, time_ns FROM decoy_events WHERE kind = 'lift' AND "
        "time_ns >= ?1 ORDER BY at LIMIT ?2"));
    s->bind(1, since_ns).bind(2, std::max<int64_t>(0, limit));
    std::vector<DecoyLift> out;
    while (MAMORI_TRY(s->step())) out.push_back(DecoyLift{text(*s, 0), s->int64(1)});
    return out;
  }

  Result<int64_t> prune_fleet(int64_t before_ns) override {
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    Stmt bans = MAMORI_TRY(
        db_.prepare("DELETE FROM bans WHERE (expires_at_ns != 0 AND expires_at_ns < ?1) OR "
                    "(lifted_at_ns != 0 AND lifted_at_ns < ?1 AND lift_pushed = 1)"));
    MAMORI_TRY(bans.bind(1, before_ns).run());
    int64_t deleted = sqlite3_changes(db_.raw());
    Stmt commands = MAMORI_TRY(db_.prepare("DELETE FROM commands WHERE created_at_ns < ?"));
    MAMORI_TRY(commands.bind(1, before_ns).run());
    deleted += sqlite3_changes(db_.raw());
    MAMORI_TRY(tx.commit());
    return deleted;
  }

  Result<std::vector<AgentUsage>> usage() override {
    Stmt s = MAMORI_TRY(
        db_.prepare("SELECT agent_key, COUNT(*), SUM(LENGTH(CAST(json AS BLOB))) FROM events "
                    "GROUP BY agent_key ORDER BY agent_key"));
    std::vector<AgentUsage> out;
    while (MAMORI_TRY(s.step())) out.push_back(AgentUsage{text(s, 0), s.int64(1), s.int64(2)});
    return out;
  }

  Result<int64_t> last_event_row() override {
    Stmt* s = MAMORI_TRY(db_.cached("SELECT COALESCE(MAX(row), 0) FROM events"));
    MAMORI_TRY(s->step());
    const int64_t row = s->int64(0);
    s->reset();
    return row;
  }

  Result<std::map<std::string, int64_t>> count_events_since(
      int64_t since_ns, std::optional<std::string_view> agent_key) override {
    Stmt s = MAMORI_TRY(
        db_.prepare(std::string("SELECT agent_key, COUNT(*) FROM events WHERE time_ns >= ?") +
                    (agent_key ? " AND agent_key = ?" : "") + " GROUP BY agent_key"));
    s.bind(1, since_ns);
    if (agent_key) s.bind_text(2, *agent_key);
    std::map<std::string, int64_t> out;
    while (MAMORI_TRY(s.step())) out[text(s, 0)] = s.int64(1);
    return out;
  }

  Result<int64_t> add_ban(const NewBan& b) override {
    Stmt* s = MAMORI_TRY(db_.cached(
        "INSERT INTO bans (address, expires_at_ns, reason, origin, created_at_ns, pushed) "
        "VALUES (?,?,?,?,?,?)"));
    s->bind_text(1, b.address).bind(2, b.expires_at_ns).bind_text(3, b.reason);
    s->bind_text(4, b.origin).bind(5, b.created_at_ns).bind(6, b.pushed ? 1 : 0);
    MAMORI_TRY(s->run());
    return sqlite3_last_insert_rowid(db_.raw());
  }

  Result<int64_t> lift_bans(std::string_view address, int64_t now_ns) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("UPDATE bans SET lifted_at_ns = ?, lift_pushed = 0 WHERE address = ? AND "
                   "lifted_at_ns = 0 AND (expires_at_ns = 0 OR expires_at_ns > ?)"));
    MAMORI_TRY(s->bind(1, now_ns).bind_text(2, address).bind(3, now_ns).run());
    return static_cast<int64_t>(sqlite3_changes(db_.raw()));
  }

  Result<std::optional<BanRow>> find_active_ban(std::string_view address, int64_t now_ns) override {
    Stmt* s = MAMORI_TRY(db_.cached(
        std::string(kBanSelect) +
        " WHERE address = ? AND lifted_at_ns = 0 AND (expires_at_ns = 0 OR expires_at_ns > ?) "
        "ORDER BY expires_at_ns = 0 DESC, expires_at_ns DESC LIMIT 1"));
    s->bind_text(1, address).bind(2, now_ns);
    auto rows = MAMORI_TRY(ban_rows(*s));
    if (rows.empty()) return std::optional<BanRow>();
    return std::optional<BanRow>(std::move(rows.front()));
  }

  Result<std::vector<BanRow>> active_bans(int64_t now_ns, int64_t limit) override {
    Stmt* s = MAMORI_TRY(db_.cached(std::string(kBanSelect) +
                                    " WHERE lifted_at_ns = 0 AND (expires_at_ns = 0 OR "
                                    "expires_at_ns > ?) ORDER BY id LIMIT ?"));
    s->bind(1, now_ns).bind(2, std::clamp<int64_t>(limit, 0, kMaxQueryLimit));
    return ban_rows(*s);
  }

  Result<std::vector<BanRow>> past_bans(int64_t now_ns, int64_t limit) override {
    Stmt* s = MAMORI_TRY(db_.cached(std::string(kBanSelect) +
                                    " WHERE lifted_at_ns != 0 OR (expires_at_ns != 0 AND "
                                    "expires_at_ns <= ?) ORDER BY id DESC LIMIT ?"));
    s->bind(1, now_ns).bind(2, std::clamp<int64_t>(limit, 0, kMaxQueryLimit));
    return ban_rows(*s);
  }

  Result<std::vector<BanRow>> unpushed_bans(int64_t limit) override {
    Stmt* s = MAMORI_TRY(
        db_.cached(std::string(kBanSelect) +
                   " WHERE pushed = 0 OR (lifted_at_ns != 0 AND lift_pushed = 0) ORDER BY id "
                   "LIMIT ?"));
    s->bind(1, std::clamp<int64_t>(limit, 0, kMaxQueryLimit));
    return ban_rows(*s);
  }

  Status mark_ban_pushed(int64_t id, bool lift) override {
    Stmt* s = MAMORI_TRY(db_.cached(lift ? "UPDATE bans SET lift_pushed = 1 WHERE id = ?"
                                         : "UPDATE bans SET pushed = 1 WHERE id = ?"));
    return s->bind(1, id).run();
  }

  Result<int64_t> add_command(const NewCommand& c) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("INSERT INTO commands (command_id, agent_key, request, created_at_ns, state) "
                   "VALUES (?,?,?,?,'pending')"));
    s->bind_text(1, c.command_id).bind_text(2, c.agent_key).bind_text(3, c.request_json);
    MAMORI_TRY(s->bind(4, c.created_at_ns).run());
    return sqlite3_last_insert_rowid(db_.raw());
  }

  Status add_sent_commands(std::span<const NewCommand> cs, int64_t sent_at_ns) override {
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    Stmt* s = MAMORI_TRY(db_.cached(
        "INSERT INTO commands (command_id, agent_key, request, created_at_ns, state, sent_at_ns) "
        "VALUES (?,?,?,?,'sent',?)"));
    for (const NewCommand& c : cs) {
      s->bind_text(1, c.command_id).bind_text(2, c.agent_key).bind_text(3, c.request_json);
      MAMORI_TRY(s->bind(4, c.created_at_ns).bind(5, sent_at_ns).run());
    }
    return tx.commit();
  }

  Result<std::vector<CommandRow>> unanswered_commands(std::optional<std::string> agent_key,
                                                      int64_t limit) override {
    Stmt* s = MAMORI_TRY(db_.cached(std::string(kCommandSelect) +
                                    " WHERE state IN ('pending', 'sent') AND (?1 IS "
                                    "NULL OR agent_key = ?1) ORDER BY id LIMIT ?2"));
    if (agent_key)
      s->bind_text(1, *agent_key);
    else
      s->bind_null(1);
    s->bind(2, std::clamp<int64_t>(limit, 0, kMaxQueryLimit));
    return command_rows(*s);
  }

  Status mark_command_sent(std::string_view command_id, int64_t now_ns) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("UPDATE commands SET state = 'sent', sent_at_ns = ? WHERE command_id = ? AND "
                   "state IN ('pending', 'sent')"));
    return s->bind(1, now_ns).bind_text(2, command_id).run();
  }

  Result<bool> record_answer(std::string_view agent_key, std::string_view command_id,
                             const std::string& answer_json, CommandState state,
                             int64_t now_ns) override {
    Stmt* s =
        MAMORI_TRY(db_.cached("UPDATE commands SET state = ?, answer = ?, answered_at_ns = ? WHERE "
                              "command_id = ? AND agent_key = ?"));
    s->bind_text(1, to_string(state)).bind_text(2, answer_json).bind(3, now_ns);
    MAMORI_TRY(s->bind_text(4, command_id).bind_text(5, agent_key).run());
    return sqlite3_changes(db_.raw()) > 0;
  }

  Result<std::optional<CommandRow>> find_command(int64_t id) override {
    Stmt* s = MAMORI_TRY(db_.cached(std::string(kCommandSelect) + " WHERE id = ?"));
    s->bind(1, id);
    auto rows = MAMORI_TRY(command_rows(*s));
    if (rows.empty()) return std::optional<CommandRow>();
    return std::optional<CommandRow>(std::move(rows.front()));
  }

  Result<std::vector<CommandRow>> list_commands(int64_t after_id,
                                                std::optional<std::string> agent_key,
                                                int64_t limit) override {
    Stmt* s = MAMORI_TRY(db_.cached(std::string(kCommandSelect) +
                                    " WHERE id > ?1 AND (?2 IS NULL OR agent_key = ?2) ORDER "
                                    "BY id LIMIT ?3"));
    s->bind(1, after_id);
    if (agent_key)
      s->bind_text(2, *agent_key);
    else
      s->bind_null(2);
    s->bind(3, std::clamp<int64_t>(limit, 0, kMaxQueryLimit));
    return command_rows(*s);
  }

  Status create_user(const UserRow& u) override {
    Stmt* s = MAMORI_TRY(db_.cached(
        "INSERT INTO users (name, role, password_hash, created_at_ns) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING"));
    s->bind_text(1, u.name).bind_text(2, to_string(u.role)).bind_text(3, u.password_hash);
    MAMORI_TRY(s->bind(4, u.created_at_ns).run());
    if (sqlite3_changes(db_.raw()) == 0) return fail("create user", u.name, EEXIST);
    return {};
  }

  Result<std::optional<UserRow>> find_user(std::string_view name) override {
    Stmt* s = MAMORI_TRY(db_.cached(std::string(kUserSelect) + " WHERE name = ?"));
    s->bind_text(1, name);
    if (!MAMORI_TRY(s->step())) return std::optional<UserRow>();
    UserRow u = user_row(*s);
    s->reset();
    return std::optional<UserRow>(std::move(u));
  }

  Result<std::vector<UserRow>> list_users() override {
    Stmt* s = MAMORI_TRY(db_.cached(std::string(kUserSelect) + " ORDER BY name"));
    std::vector<UserRow> out;
    while (MAMORI_TRY(s->step())) out.push_back(user_row(*s));
    return out;
  }

  Result<bool> delete_user(std::string_view name) override {
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    Stmt* s = MAMORI_TRY(db_.cached("DELETE FROM users WHERE name = ?"));
    MAMORI_TRY(s->bind_text(1, name).run());
    const bool found = sqlite3_changes(db_.raw()) > 0;
    MAMORI_TRY(end_sessions_of(name));
    MAMORI_TRY(tx.commit());
    return found;
  }

  Result<bool> set_password(std::string_view name, std::string_view password_hash) override {
    auto tx = MAMORI_TRY(Transaction::begin(db_));
    Stmt* s = MAMORI_TRY(db_.cached("UPDATE users SET password_hash = ? WHERE name = ?"));
    MAMORI_TRY(s->bind_text(1, password_hash).bind_text(2, name).run());
    const bool found = sqlite3_changes(db_.raw()) > 0;
    MAMORI_TRY(end_sessions_of(name));
    MAMORI_TRY(tx.commit());
    return found;
  }

  Status create_session(const SessionRow& r) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("INSERT INTO sessions (id_hash, csrf_hash, user, created_at_ns, last_used_ns, "
                   "expires_at_ns) VALUES (?, ?, ?, ?, ?, ?)"));
    s->bind_text(1, r.id_hash).bind_text(2, r.csrf_hash).bind_text(3, r.user);
    s->bind(4, r.created_at_ns).bind(5, r.last_used_ns).bind(6, r.expires_at_ns);
    return s->run();
  }

  Result<std::optional<SessionRow>> use_session(std::string_view id_hash, int64_t now_ns,
                                                int64_t idle_ns) override {
    Stmt* s = MAMORI_TRY(db_.cached(
        "UPDATE sessions SET last_used_ns = ? WHERE id_hash = ? AND expires_at_ns > ? AND "
        "last_used_ns > ? RETURNING id_hash, csrf_hash, user, created_at_ns, last_used_ns, "
        "expires_at_ns"));
    s->bind(1, now_ns).bind_text(2, id_hash).bind(3, now_ns).bind(4, now_ns - idle_ns);
    if (!MAMORI_TRY(s->step())) return std::optional<SessionRow>();
    SessionRow r{text(*s, 0), text(*s, 1), text(*s, 2), s->int64(3), s->int64(4), s->int64(5)};
    MAMORI_TRY(s->step());  // finishes the statement (RETURNING yields one row)
    s->reset();
    return std::optional<SessionRow>(std::move(r));
  }

  Result<bool> delete_session(std::string_view id_hash) override {
    Stmt* s = MAMORI_TRY(db_.cached("DELETE FROM sessions WHERE id_hash = ?"));
    MAMORI_TRY(s->bind_text(1, id_hash).run());
    return sqlite3_changes(db_.raw()) > 0;
  }

  Result<int64_t> prune_sessions(int64_t now_ns, int64_t idle_ns) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("DELETE FROM sessions WHERE expires_at_ns <= ? OR last_used_ns <= ?"));
    MAMORI_TRY(s->bind(1, now_ns).bind(2, now_ns - idle_ns).run());
    return static_cast<int64_t>(sqlite3_changes(db_.raw()));
  }

  Result<int64_t> create_api_token(const NewApiToken& t) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("INSERT INTO api_tokens (secret_hash, name, role, created_by, created_at_ns) "
                   "VALUES (?, ?, ?, ?, ?)"));
    s->bind_text(1, t.secret_hash).bind_text(2, t.name).bind_text(3, to_string(t.role));
    MAMORI_TRY(s->bind_text(4, t.created_by).bind(5, t.created_at_ns).run());
    return sqlite3_last_insert_rowid(db_.raw());
  }

  Result<std::optional<ApiTokenRow>> use_api_token(std::string_view secret_hash,
                                                   int64_t now_ns) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("UPDATE api_tokens SET last_used_ns = ? WHERE secret_hash = ? AND revoked = 0 "
                   "RETURNING id, name, role, created_by, created_at_ns, revoked, last_used_ns"));
    s->bind(1, now_ns).bind_text(2, secret_hash);
    if (!MAMORI_TRY(s->step())) return std::optional<ApiTokenRow>();
    ApiTokenRow r = api_token_row(*s);
    MAMORI_TRY(s->step());
    s->reset();
    return std::optional<ApiTokenRow>(std::move(r));
  }

  Result<std::vector<ApiTokenRow>> list_api_tokens() override {
    Stmt* s = MAMORI_TRY(
        db_.cached("SELECT id, name, role, created_by, created_at_ns, revoked, last_used_ns FROM "
                   "api_tokens ORDER BY id"));
    std::vector<ApiTokenRow> out;
    while (MAMORI_TRY(s->step())) out.push_back(api_token_row(*s));
    return out;
  }

  Result<bool> revoke_api_token(int64_t id) override {
    Stmt* s = MAMORI_TRY(db_.cached("UPDATE api_tokens SET revoked = 1 WHERE id = ?"));
    MAMORI_TRY(s->bind(1, id).run());
    return sqlite3_changes(db_.raw()) > 0;
  }

  Result<int64_t> append_audit(const AuditEntry& e) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("INSERT INTO audit (at_ns, actor, address, action, target, result) VALUES "
                   "(?, ?, ?, ?, ?, ?)"));
    s->bind(1, e.at_ns).bind_text(2, e.actor).bind_text(3, e.address).bind_text(4, e.action);
    MAMORI_TRY(s->bind_text(5, e.target).bind_text(6, e.result).run());
    return sqlite3_last_insert_rowid(db_.raw());
  }

  Result<std::vector<AuditEntry>> list_audit(int64_t after_id, int64_t limit) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("SELECT id, at_ns, actor, address, action, target, result FROM audit WHERE "
                   "id > ? ORDER BY id LIMIT ?"));
    s->bind(1, after_id).bind(2, std::clamp<int64_t>(limit, 0, 10000));
    return audit_rows(*s);
  }

  Result<std::vector<AuditEntry>> list_audit_newest(int64_t before_id, int64_t limit) override {
    Stmt* s = MAMORI_TRY(
        db_.cached("SELECT id, at_ns, actor, address, action, target, result FROM audit WHERE "
                   "id < ? ORDER BY id DESC LIMIT ?"));
    s->bind(1, before_id > 0 ? before_id : std::numeric_limits<int64_t>::max())
        .bind(2, std::clamp<int64_t>(limit, 0, 10000));
    return audit_rows(*s);
  }

  static Result<std::vector<AuditEntry>> audit_rows(Stmt& s) {
    std::vector<AuditEntry> out;
    while (MAMORI_TRY(s.step()))
      out.push_back(AuditEntry{s.int64(0), s.int64(1), text(s, 2), text(s, 3), text(s, 4),
                               text(s, 5), text(s, 6)});
    return out;
  }

  Result<int64_t> change_counter() override {
    Stmt* s = MAMORI_TRY(db_.cached("PRAGMA data_version"));
    MAMORI_TRY(s->step());
    const int64_t v = s->int64(0);
    s->reset();
    return v;
  }

 private:
  static constexpr std::string_view kUserSelect =
      "SELECT name, role, password_hash, created_at_ns FROM users";
  static UserRow user_row(const Stmt& s) {
    return UserRow{text(s, 0), parse_role(s.blob(1)).value_or(Role::kViewer), text(s, 2),
                   s.int64(3)};
  }
  static ApiTokenRow api_token_row(const Stmt& s) {
    return ApiTokenRow{s.int64(0), text(s, 1), parse_role(s.blob(2)).value_or(Role::kViewer),
                       text(s, 3), s.int64(4), s.int64(5) != 0,
                       s.int64(6)};
  }
  Status end_sessions_of(std::string_view user) {
    Stmt* s = MAMORI_TRY(db_.cached("DELETE FROM sessions WHERE user = ?"));
    return s->bind_text(1, user).run();
  }

  static constexpr std::string_view kBanSelect =
      "SELECT id, address, expires_at_ns, reason, origin, created_at_ns, lifted_at_ns, pushed, "
      "lift_pushed FROM bans";
  static constexpr std::string_view kCommandSelect =
      "SELECT id, command_id, agent_key, request, created_at_ns, sent_at_ns, answered_at_ns, "
      "answer, state FROM commands";

  static Result<std::vector<BanRow>> ban_rows(Stmt& s) {
    std::vector<BanRow> out;
    while (MAMORI_TRY(s.step()))
      out.push_back(BanRow{s.int64(0), text(s, 1), s.int64(2), text(s, 3), text(s, 4), s.int64(5),
                           s.int64(6), s.int64(7) != 0, s.int64(8) != 0});
    return out;
  }

  static Result<std::vector<CommandRow>> command_rows(Stmt& s) {
    std::vector<CommandRow> out;
    while (MAMORI_TRY(s.step()))
      out.push_back(CommandRow{s.int64(0), text(s, 1), text(s, 2), text(s, 3), s.int64(4),
                               s.int64(5), s.int64(6), text(s, 7),
                               parse_command_state(text(s, 8)).value_or(CommandState::kFailed)});
    return out;
  }

  static constexpr std::string_view kAgentColumns =
      "agent_key, credential_hash, grp, token_id, hostname, machine_id, agent_id, name, "
      "version, roots_json, baseline_root_hash, enrolled_at_ns, status, status_since_ns, "
      "last_seen_ns, last_hello_ns, manager_id";
  static std::string agent_select() {
    return "SELECT " + std::string(kAgentColumns) + " FROM agents";
  }

  static AgentRow agent_row(const Stmt& s) {
    AgentRow r;
    r.agent_key = text(s, 0);
    r.credential_hash = text(s, 1);
    r.group = text(s, 2);
    r.token_id = s.int64(3);
    r.info = AgentInfo{text(s, 4), text(s, 5), text(s, 6), text(s, 7),
                       text(s, 8), text(s, 9), text(s, 10)};
    r.enrolled_at_ns = s.int64(11);
    r.status = parse_agent_status(s.blob(12)).value_or(AgentStatus::kLost);
    r.status_since_ns = s.int64(13);
    r.last_seen_ns = s.int64(14);
    r.last_hello_ns = s.int64(15);
    r.manager_id = text(s, 16);
    return r;
  }

  tl::unexpected<Error> no_agent(std::string_view agent_key) {
    return fail("find agent", std::string(agent_key), ENOENT, "no such agent");
  }

  Result<AgentStatus> status_of(std::string_view agent_key) {
    Stmt* s = MAMORI_TRY(db_.cached("SELECT status FROM agents WHERE agent_key = ?"));
    s->bind_text(1, agent_key);
    if (!MAMORI_TRY(s->step())) return no_agent(agent_key);
    const AgentStatus st = parse_agent_status(s->blob(0)).value_or(AgentStatus::kLost);
    s->reset();
    return st;
  }

  // Inside a transaction. One conditional UPDATE decides; only a refusal reads further,
  // to say why.
  Result<TokenVerdict> consume_in_tx(std::string_view secret_hash, int64_t now_ns) {
    Stmt* u = MAMORI_TRY(db_.cached(
        "UPDATE tokens SET uses_left = uses_left - 1, used = used + 1 "
        "WHERE secret_hash = ? AND revoked = 0 AND (expires_at_ns IS NULL OR expires_at_ns > ?) "
        "AND (uses_left IS NULL OR uses_left > 0) RETURNING id, grp"));
    u->bind_text(1, secret_hash).bind(2, now_ns);
    TokenVerdict v;
    if (MAMORI_TRY(u->step())) {
      v.token_id = u->int64(0);
      v.group = text(*u, 1);
      MAMORI_TRY(u->run());  // finish the statement
      return v;
    }
    Stmt* q =
        MAMORI_TRY(db_.cached("SELECT revoked, expires_at_ns FROM tokens WHERE secret_hash = ?"));
    q->bind_text(1, secret_hash);
    if (!MAMORI_TRY(q->step())) {
      v.refusal = TokenRefusal::kUnknown;
      return v;
    }
    v.refusal = token_refusal(q->int64(0) != 0, opt_int(*q, 1), now_ns);
    q->reset();
    return v;
  }

  // Inside the insert's transaction.
  // One extracted batch, inside the caller's transaction.
  Status insert_batch(std::string_view agent_key, const EventBatch& batch, int64_t received_at_ns,
                      InsertResult& r) {
    Stmt* ins = MAMORI_TRY(db_.cached(
        "INSERT INTO events (agent_key, event_id, sequence, time_ns, action, path, source_ip, "
        "severity, received_at_ns, json) VALUES (?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (event_id, agent_key) DO NOTHING"));
    MinuteCounts counted;
    for (const EventColumns& row : batch.rows) {
      ins->reset();
      ins->bind_text(1, agent_key).bind_text(2, row.id).bind(3, row.sequence).bind(4, row.time_ns);
      ins->bind_text(5, row.action).bind_text(6, row.path).bind_text(7, row.ip);
      ins->bind(8, row.severity).bind(9, received_at_ns).bind_text(10, row.json);
      MAMORI_TRY(ins->run());
      if (sqlite3_changes(db_.raw()) > 0) {
        ++r.inserted;
        ++counted[{row.time_ns / kMinuteNs, row.action, row.severity}];
        if (auto d = classify_decoy_event(row)) {
          d->row = sqlite3_last_insert_rowid(db_.raw());
          d->agent_key = std::string(agent_key);
          MAMORI_TRY(insert_decoy(*d));
        }
      } else {
        ++r.duplicates;
      }
    }
    MAMORI_TRY(add_minutes(counted, 1));
    return advance_sequences(agent_key, batch.min_sequence, batch.max_sequence);
  }

  Status insert_decoy(const DecoyEvent& d) {
    Stmt* s = MAMORI_TRY(db_.cached(
        "INSERT INTO decoy_events (row, agent_key, kind, decoy, time_ns, address, ttl_s, url) "
        "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (row) DO NOTHING"));
    s->bind(1, d.row).bind_text(2, d.agent_key).bind_text(3, to_string(d.kind));
    s->bind_text(4, d.decoy).bind(5, d.time_ns).bind_text(6, d.address).bind(7, d.ttl_s);
    s->bind_text(8, d.url);
    return s->run();
  }

  // Migration 9: the decoy events among those stored before it (one pass over the
  // actions that can be one, by their index).
  Status backfill_decoys() {
    Stmt q = MAMORI_TRY(db_.prepare(
        "SELECT row, agent_key, action, path, source_ip, time_ns, json FROM events WHERE action "
        "IN ('ip-banned', 'ip-unbanned', 'decoy-opened', 'decoy-credential-used') ORDER BY row"));
    while (MAMORI_TRY(q.step())) {
      EventColumns c;
      c.action = text(q, 2);
      c.path = text(q, 3);
      c.ip = text(q, 4);
      c.time_ns = q.int64(5);
      c.json = text(q, 6);
      if (auto d = classify_decoy_event(c)) {
        d->row = q.int64(0);
        d->agent_key = text(q, 1);
        MAMORI_TRY(insert_decoy(*d));
      }
    }
    return ok();
  }

  // event_minutes += sign * counted.
  Status add_minutes(const MinuteCounts& counted, int64_t sign) {
    Stmt* up = MAMORI_TRY(
        db_.cached("INSERT INTO event_minutes (minute, action, severity, n) VALUES (?,?,?,?) "
                   "ON CONFLICT (minute, action, severity) DO UPDATE SET n = n + excluded.n"));
    for (const auto& [key, n] : counted) {
      up->reset();
      MAMORI_TRY(up->bind(1, std::get<0>(key))
                     .bind_text(2, std::get<1>(key))
                     .bind(3, std::get<2>(key))
                     .bind(4, sign * n)
                     .run());
    }
    return ok();
  }

  // Steps `del` (a DELETE ... RETURNING time_ns, action, severity) and takes what it
  // deleted off event_minutes; the number deleted.
  Result<int64_t> delete_events(Stmt& del) {
    MinuteCounts counted;
    int64_t n = 0;
    while (MAMORI_TRY(del.step())) {
      ++counted[{del.int64(0) / kMinuteNs, text(del, 1), del.int64(2)}];
      ++n;
    }
    MAMORI_TRY(add_minutes(counted, -1));
    return n;
  }

  Status advance_sequences(std::string_view agent_key, int64_t min_seq, int64_t max_seq) {
    SequenceInfo cur = MAMORI_TRY(sequences(agent_key));
    bool fresh = cur.max_sequence == 0;
    if (fresh) cur.contiguous_through = min_seq - 1;
    cur.max_sequence = std::max(cur.max_sequence, max_seq);
    // Walk forward over the stored sequences; the index on (agent_key, sequence) makes
    // each step a lookup, and a normal in-order batch walks exactly its own length.
    Stmt* next =
        MAMORI_TRY(db_.cached("SELECT 1 FROM events WHERE agent_key = ? AND sequence = ? LIMIT 1"));
    while (cur.contiguous_through < cur.max_sequence) {
      next->reset();
      next->bind_text(1, agent_key).bind(2, cur.contiguous_through + 1);
      if (!MAMORI_TRY(next->step())) break;
      next->reset();
      ++cur.contiguous_through;
    }
    Stmt* up = MAMORI_TRY(db_.cached(
        "INSERT INTO event_seq (agent_key, max_sequence, contiguous_through) VALUES (?,?,?) "
        "ON CONFLICT (agent_key) DO UPDATE SET max_sequence = excluded.max_sequence, "
        "contiguous_through = excluded.contiguous_through"));
    return up->bind_text(1, agent_key)
        .bind(2, cur.max_sequence)
        .bind(3, cur.contiguous_through)
        .run();
  }

  Db db_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
  auto db = Db::open(path, Db::Mode::kReadWrite);
  if (!db) {
    Error e = std::move(db).error();
    if (e.errnum == EBADMSG) e.detail = "not an SQLite database (or damaged): " + e.detail;
    return tl::unexpected(std::move(e));
  }
  // The (agent_key, sequence) index takes each insert on its agent's page: with SQLite's
  // default 2 MB page cache a fleet's inserts read index pages back from the file.
  if (auto st = db->exec("PRAGMA cache_size=-32768"); !st) return tl::unexpected(st.error());
  auto store = std::make_unique<SqliteStore>(std::move(*db));
  if (auto st = store->migrate(); !st) {
    Error e = std::move(st).error();
    if (e.errnum == EBADMSG) e.detail = "not an SQLite database (or damaged): " + e.detail;
    return tl::unexpected(std::move(e));
  }
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace mamori::manager
