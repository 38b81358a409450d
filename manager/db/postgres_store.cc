#include "manager/db/postgres_store.h"

#include <algorithm>
#include <cerrno>
#include <limits>
#include <type_traits>

#include "manager/db/decoys.h"
#include "manager/db/event_columns.h"
#include "manager/db/pg.h"

namespace mamori::manager {
namespace {

using pg::Conn;
using pg::Params;
using pg::Rows;
using pg::Tx;

// Serializes schema creation and migration among managers starting together ("mamori"
// in ASCII; advisory locks are per database).
constexpr int64_t kMigrationLock = 0x6d616d6f7269;
// Serializes the transactions that add events, among all managers: row_id is taken from
// a sequence at insert, so two managers committing out of order would let a reader that
// pages by row_id (the console's cursor, the live stream) pass a row before it commits,
// and never see it. Under this lock rows commit in row_id order, and the batches of one
// agent key never race (its sequence walk sees every committed batch); the prunes take
// it too, as they take from the rows of the chart's rollup that writers add to. The
// two-int form is a key space of its own, apart from kMigrationLock's.
constexpr int64_t kEventNumberingLock[2] = {0x6d616d6f, 0x726f7773};  // "mamo" "rows"

// Each step brings the schema from version i to i+1; kPostgresSchemaVersion == size.
// COLLATE "C": keys, filters and ORDER BY compare bytes, as SQLite does, whatever the
// database's locale; the path prefix filter is a byte range (prefix_range) on its index.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE tokens (
  id BIGSERIAL PRIMARY KEY,
  secret_hash TEXT COLLATE "C" NOT NULL UNIQUE,
  grp TEXT COLLATE "C" NOT NULL,
  uses_left BIGINT,
  expires_at_ns BIGINT,
  revoked BOOLEAN NOT NULL DEFAULT FALSE,
  created_at_ns BIGINT NOT NULL,
  used BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE agents (
  agent_key TEXT COLLATE "C" PRIMARY KEY,
  credential_hash TEXT NOT NULL,
  grp TEXT COLLATE "C" NOT NULL,
  token_id BIGINT NOT NULL,
  hostname TEXT NOT NULL, machine_id TEXT NOT NULL, agent_id TEXT NOT NULL,
  name TEXT NOT NULL, version TEXT NOT NULL, roots_json TEXT NOT NULL,
  baseline_root_hash TEXT NOT NULL,
  enrolled_at_ns BIGINT NOT NULL,
  status TEXT NOT NULL,
  status_since_ns BIGINT NOT NULL,
  last_seen_ns BIGINT NOT NULL DEFAULT 0,
  last_hello_ns BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE events (
  row_id BIGSERIAL PRIMARY KEY,
  agent_key TEXT COLLATE "C" NOT NULL,
  event_id TEXT COLLATE "C" NOT NULL,
  sequence BIGINT NOT NULL,
  time_ns BIGINT NOT NULL,
  action TEXT COLLATE "C" NOT NULL,
  path TEXT COLLATE "C" NOT NULL,
  source_ip TEXT COLLATE "C" NOT NULL,
  severity BIGINT NOT NULL,
  received_at_ns BIGINT NOT NULL,
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
  agent_key TEXT COLLATE "C" PRIMARY KEY,
  max_sequence BIGINT NOT NULL,
  contiguous_through BIGINT NOT NULL
);
CREATE TABLE baselines (
  id BIGSERIAL PRIMARY KEY,
  agent_key TEXT COLLATE "C" NOT NULL,
  root_hash TEXT NOT NULL,
  at_ns BIGINT NOT NULL,
  expected BOOLEAN NOT NULL,
  next_sequence BIGINT NOT NULL
);
CREATE INDEX baselines_agent ON baselines (agent_key, at_ns);
)sql",
    // 2: several managers share the database; each agent is held by one of them.
    R"sql(
CREATE TABLE managers (
  id TEXT COLLATE "C" PRIMARY KEY,
  hostname TEXT NOT NULL,
  started_at_ns BIGINT NOT NULL,
  heartbeat_ns BIGINT NOT NULL
);
ALTER TABLE agents ADD COLUMN manager_id TEXT COLLATE "C" NOT NULL DEFAULT '';
)sql",
    // 3: fleet control (as the SQLite store's migration 3).
    R"sql(
CREATE TABLE bans (
  id BIGSERIAL PRIMARY KEY,
  address TEXT COLLATE "C" NOT NULL,
  expires_at_ns BIGINT NOT NULL,
  reason TEXT NOT NULL,
  origin TEXT COLLATE "C" NOT NULL,
  created_at_ns BIGINT NOT NULL,
  lifted_at_ns BIGINT NOT NULL DEFAULT 0,
  pushed BOOLEAN NOT NULL,
  lift_pushed BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX bans_address ON bans (address);
CREATE INDEX bans_unpushed ON bans (id) WHERE NOT pushed OR (lifted_at_ns != 0 AND NOT lift_pushed);
CREATE INDEX bans_lifted ON bans (id) WHERE lifted_at_ns != 0;
CREATE TABLE commands (
  id BIGSERIAL PRIMARY KEY,
  command_id TEXT COLLATE "C" NOT NULL UNIQUE,
  agent_key TEXT COLLATE "C" NOT NULL,
  request TEXT NOT NULL,
  created_at_ns BIGINT NOT NULL,
  sent_at_ns BIGINT NOT NULL DEFAULT 0,
  answered_at_ns BIGINT NOT NULL DEFAULT 0,
  answer TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL
);
CREATE INDEX commands_pending ON commands (agent_key, id) WHERE state = 'pending';
CREATE INDEX commands_agent ON commands (agent_key, id);
)sql",
    // 4: API access (as the SQLite store's migration 4).
    R"sql(
CREATE TABLE users (
  name TEXT COLLATE "C" PRIMARY KEY,
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at_ns BIGINT NOT NULL
);
CREATE TABLE sessions (
  id_hash TEXT COLLATE "C" PRIMARY KEY,
  csrf_hash TEXT NOT NULL,
  usr TEXT COLLATE "C" NOT NULL,
  created_at_ns BIGINT NOT NULL,
  last_used_ns BIGINT NOT NULL,
  expires_at_ns BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (usr);
CREATE TABLE api_tokens (
  id BIGSERIAL PRIMARY KEY,
  secret_hash TEXT COLLATE "C" NOT NULL UNIQUE,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at_ns BIGINT NOT NULL,
  revoked BOOLEAN NOT NULL DEFAULT FALSE,
  last_used_ns BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE audit (
  id BIGSERIAL PRIMARY KEY,
  at_ns BIGINT NOT NULL,
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
    // 6: the console pages a filter by row ("action = $1 AND row_id > $2 ORDER BY row_id
    // LIMIT n"): (column, row_id) reads a page's n entries, (column, time_ns) sorted every
    // match. Severity's index served no query (a range on it cannot give row order).
    // Each manager asks every second which agents said hello elsewhere lately.
    R"sql(
DROP INDEX events_action;
DROP INDEX events_source_ip;
DROP INDEX events_severity;
CREATE INDEX events_action ON events (action, row_id);
CREATE INDEX events_source_ip ON events (source_ip, row_id);
CREATE INDEX agents_hello ON agents (last_hello_ns);
)sql",
    // 7: the console's chart counts events per minute, action and severity here (kept by
    // the writes and the prunes): a day of a million events is 1,440 minutes to add up.
    R"sql(
CREATE TABLE event_minutes (
  minute BIGINT NOT NULL,
  action TEXT NOT NULL,
  severity BIGINT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (minute, action, severity)
);
INSERT INTO event_minutes
  SELECT time_ns / 60000000000, action, severity, COUNT(*) FROM events GROUP BY 1, 2, 3;
)sql",
    // 8: the duplicate check's key is (event_id, agent_key): ids begin with their time, so
    // new ones land at the index's end instead of on a page per agent.
    R"sql(
ALTER TABLE events DROP CONSTRAINT events_agent_key_event_id_key;
ALTER TABLE events ADD CONSTRAINT events_event_id_agent_key_key UNIQUE (event_id, agent_key);
)sql",
    // 9: the decoys page (decoys.h): each event about a decoy, and each operator's unban,
    // kept beside its event as it is stored (and filled from the events stored before by
    // backfill_decoys), so a report reads what its window holds, not every ban.
    R"sql(
CREATE TABLE decoy_events (
  row_id BIGINT PRIMARY KEY,
  agent_key TEXT COLLATE "C" NOT NULL,
  kind TEXT NOT NULL,
  decoy TEXT COLLATE "C" NOT NULL,
  time_ns BIGINT NOT NULL,
  address TEXT NOT NULL,
  ttl_s BIGINT NOT NULL,
  url TEXT NOT NULL
);
CREATE INDEX decoy_events_time ON decoy_events (time_ns);
CREATE INDEX decoy_events_decoy ON decoy_events (decoy, row_id);
CREATE INDEX bans_lifted_at ON bans (lifted_at_ns) WHERE lifted_at_ns <> 0;
)sql",
};
static_assert(std::size(kMigrations) == kPostgresSchemaVersion);

// Common table expressions over "ins" (time_ns, action, severity of events inserted or
// deleted) that add them to, or take them off, the chart's rollup.
constexpr std::string_view kAddMinutes =
    "up AS (INSERT INTO event_minutes (minute, action, severity, n) SELECT time_ns / "
    "60000000000, action, severity, COUNT(*) FROM ins GROUP BY 1, 2, 3 ON CONFLICT (minute, "
    "action, severity) DO UPDATE SET n = event_minutes.n + EXCLUDED.n)";
constexpr std::string_view kTakeMinutes =
    "up AS (UPDATE event_minutes m SET n = m.n - d.c FROM (SELECT time_ns / 60000000000 AS mi, "
    "action, severity, COUNT(*) AS c FROM ins GROUP BY 1, 2, 3) AS d WHERE m.minute = d.mi AND "
    "m.action = d.action AND m.severity = d.severity)";

constexpr const char* kBanSelect =
    "SELECT id, address, expires_at_ns, reason, origin, created_at_ns, lifted_at_ns, pushed, "
    "lift_pushed FROM bans";
constexpr const char* kCommandSelect =
    "SELECT id, command_id, agent_key, request, created_at_ns, sent_at_ns, answered_at_ns, "
    "answer, state FROM commands";

std::vector<BanRow> ban_rows(const Rows& r) {
  std::vector<BanRow> out;
  for (int i = 0; i < r.size(); ++i)
    out.push_back(BanRow{r.int64(i, 0), r.str(i, 1), r.int64(i, 2), r.str(i, 3), r.str(i, 4),
                         r.int64(i, 5), r.int64(i, 6), r.boolean(i, 7), r.boolean(i, 8)});
  return out;
}

std::vector<CommandRow> command_rows(const Rows& r) {
  std::vector<CommandRow> out;
  for (int i = 0; i < r.size(); ++i)
    out.push_back(CommandRow{r.int64(i, 0), r.str(i, 1), r.str(i, 2), r.str(i, 3), r.int64(i, 4),
                             r.int64(i, 5), r.int64(i, 6), r.str(i, 7),
                             parse_command_state(r.text(i, 8)).value_or(CommandState::kFailed)});
  return out;
}

Params& add_opt(Params& p, const std::optional<std::string>& v) {
  return v ? p.add(*v) : p.add_null();
}

constexpr const char* kAgentColumns =
    "agent_key, credential_hash, grp, token_id, hostname, machine_id, agent_id, name, "
    "version, roots_json, baseline_root_hash, enrolled_at_ns, status, status_since_ns, "
    "last_seen_ns, last_hello_ns, manager_id";
const std::string kAgentSelect = std::string("SELECT ") + kAgentColumns + " FROM agents";

AgentRow agent_row(const Rows& r, int i) {
  AgentRow a;
  a.agent_key = r.str(i, 0);
  a.credential_hash = r.str(i, 1);
  a.group = r.str(i, 2);
  a.token_id = r.int64(i, 3);
  a.info = AgentInfo{r.str(i, 4), r.str(i, 5), r.str(i, 6), r.str(i, 7),
                     r.str(i, 8), r.str(i, 9), r.str(i, 10)};
  a.enrolled_at_ns = r.int64(i, 11);
  a.status = parse_agent_status(r.text(i, 12)).value_or(AgentStatus::kLost);
  a.status_since_ns = r.int64(i, 13);
  a.last_seen_ns = r.int64(i, 14);
  a.last_hello_ns = r.int64(i, 15);
  a.manager_id = r.str(i, 16);
  return a;
}

// Which calls may run again after a reconnect (postgres_store.h).
enum class Retry {
  kIdempotent,  // reads, and writes whose second run changes nothing more
  kOnce,        // again only if the connection broke before anything could commit
};

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(Conn conn) : conn_(std::move(conn)) {}

  Status migrate() {
    auto tx = MAMORI_TRY(Tx::begin(conn_));
    MAMORI_TRY(conn_.query("SELECT pg_advisory_xact_lock($1)", Params().add(kMigrationLock)));
    MAMORI_TRY(conn_.exec("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)"));
    Rows r = MAMORI_TRY(conn_.exec("SELECT version FROM schema_version"));
    const bool has_row = r.size() > 0;
    const int64_t version = has_row ? r.int64(0, 0) : 0;
    if (version > kPostgresSchemaVersion)
      return schema_too_new(conn_.name(), version, kPostgresSchemaVersion);
    for (int64_t v = version; v < kPostgresSchemaVersion; ++v)
      MAMORI_TRY(conn_.exec(kMigrations[v]));
    if (version < 9) MAMORI_TRY(backfill_decoys());
    if (!has_row) {
      MAMORI_TRY(conn_.query("INSERT INTO schema_version VALUES ($1)",
                             Params().add(kPostgresSchemaVersion)));
    } else if (version != kPostgresSchemaVersion) {
      MAMORI_TRY(conn_.query("UPDATE schema_version SET version = $1",
                             Params().add(kPostgresSchemaVersion)));
    }
    return tx.commit();
  }

  Result<int64_t> create_token(const NewToken& t) override {
    return insert_id(
        "INSERT INTO tokens (secret_hash, grp, uses_left, expires_at_ns, created_at_ns) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
        Params()
            .add(t.secret_hash)
            .add(t.group)
            .add(t.uses)
            .add(t.expires_at_ns)
            .add(t.created_at_ns));
  }

  Result<std::vector<TokenRow>> list_tokens() override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<TokenRow>> {
      Rows r = MAMORI_TRY(conn_.query(
          "SELECT id, grp, uses_left, expires_at_ns, revoked, created_at_ns, used FROM tokens "
          "ORDER BY id",
          Params()));
      std::vector<TokenRow> out;
      for (int i = 0; i < r.size(); ++i)
        out.push_back(TokenRow{r.int64(i, 0), r.str(i, 1), r.opt_int64(i, 2), r.opt_int64(i, 3),
                               r.boolean(i, 4), r.int64(i, 5), r.int64(i, 6)});
      return out;
    });
  }

  Result<bool> revoke_token(int64_t id) override {
    return call(Retry::kIdempotent, [&]() -> Result<bool> {
      Rows r = MAMORI_TRY(
          conn_.query("UPDATE tokens SET revoked = TRUE WHERE id = $1", Params().add(id)));
      return r.affected() > 0;
    });
  }

  Result<TokenVerdict> consume_token(std::string_view secret_hash, int64_t now_ns) override {
    return call(Retry::kOnce, [&]() -> Result<TokenVerdict> {
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      TokenVerdict v = MAMORI_TRY(consume_in_tx(secret_hash, now_ns));
      MAMORI_TRY(tx.commit());
      return v;
    });
  }

  Status create_agent(const NewAgent& a) override {
    return call(Retry::kOnce, [&]() -> Status {
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      MAMORI_TRY(insert_agent(a));
      return tx.commit();
    });
  }

  Result<TokenVerdict> enroll(std::string_view secret_hash, NewAgent a, int64_t now_ns) override {
    return call(Retry::kOnce, [&]() -> Result<TokenVerdict> {
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      TokenVerdict v = MAMORI_TRY(consume_in_tx(secret_hash, now_ns));
      if (!v.accepted()) return v;  // the transaction rolls back: nothing changed
      a.group = v.group;
      a.token_id = v.token_id;
      // A failure here rolls the token's use back with the transaction.
      MAMORI_TRY(insert_agent(a));
      MAMORI_TRY(tx.commit());
      return v;
    });
  }

  Result<std::optional<AgentRow>> find_agent(std::string_view agent_key) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::optional<AgentRow>> {
      Rows r = MAMORI_TRY(conn_.query(std::string(kAgentSelect) + " WHERE agent_key = $1",
                                      Params().add(agent_key)));
      if (r.size() == 0) return std::optional<AgentRow>();
      return std::optional<AgentRow>(agent_row(r, 0));
    });
  }

  Result<std::vector<AgentRow>> list_agents() override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<AgentRow>> {
      Rows r = MAMORI_TRY(
          conn_.query(std::string(kAgentSelect) + " ORDER BY enrolled_at_ns, agent_key", Params()));
      std::vector<AgentRow> out;
      for (int i = 0; i < r.size(); ++i) out.push_back(agent_row(r, i));
      return out;
    });
  }

  Result<AgentStatus> agent_hello(std::string_view agent_key, const AgentInfo& info, int64_t now_ns,
                                  std::string_view manager_id) override {
    return call(Retry::kOnce, [&]() -> Result<AgentStatus> {
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      const AgentStatus before = MAMORI_TRY(lock_status(agent_key));
      MAMORI_TRY(conn_.query(
          "UPDATE agents SET hostname = $1, machine_id = $2, agent_id = $3, name = $4, "
          "version = $5, roots_json = $6, baseline_root_hash = $7, last_seen_ns = $8, "
          "last_hello_ns = $8, "
          "status_since_ns = CASE WHEN status = 'online' THEN status_since_ns ELSE $8 END, "
          "status = 'online', manager_id = $10 WHERE agent_key = $9",
          Params()
              .add(info.hostname)
              .add(info.machine_id)
              .add(info.agent_id)
              .add(info.name)
              .add(info.version)
              .add(info.roots_json)
              .add(info.baseline_root_hash)
              .add(now_ns)
              .add(agent_key)
              .add(manager_id)));
      MAMORI_TRY(tx.commit());
      return before;
    });
  }

  Result<std::vector<Result<std::optional<AgentStatus>>>> release_agents(
      std::span<const Release> releases, std::string_view manager_id, int64_t now_ns) override {
    using Out = std::vector<Result<std::optional<AgentStatus>>>;
    return call(Retry::kOnce, [&]() -> Result<Out> {
      Out out;
      out.reserve(releases.size());
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      for (const Release& r : releases) {
        Rows q = MAMORI_TRY(
            conn_.query("SELECT status, manager_id FROM agents WHERE agent_key = $1 FOR UPDATE",
                        Params().add(r.agent_key)));
        if (q.size() == 0) {
          out.emplace_back(no_agent(r.agent_key));
          continue;
        }
        const AgentStatus before = parse_agent_status(q.text(0, 0)).value_or(AgentStatus::kLost);
        if (q.text(0, 1) != manager_id) {
          out.emplace_back(std::optional<AgentStatus>());
          continue;
        }
        MAMORI_TRY(
            conn_.query("UPDATE agents SET status = $1, manager_id = '', "
                        "status_since_ns = CASE WHEN status = $1 THEN status_since_ns ELSE $2 END "
                        "WHERE agent_key = $3",
                        Params().add(to_string(r.status)).add(now_ns).add(r.agent_key)));
        out.emplace_back(std::optional<AgentStatus>(before));
      }
      MAMORI_TRY(tx.commit());
      return out;
    });
  }

  Status manager_heartbeat(std::string_view manager_id, std::string_view hostname,
                           int64_t now_ns) override {
    return call(Retry::kIdempotent, [&]() -> Status {
      MAMORI_TRY(
          conn_.query("INSERT INTO managers (id, hostname, started_at_ns, heartbeat_ns) "
                      "VALUES ($1, $2, $3, $3) ON CONFLICT (id) DO UPDATE SET heartbeat_ns = $3",
                      Params().add(manager_id).add(hostname).add(now_ns)));
      return ok();
    });
  }

  Result<std::vector<std::string>> hellos_elsewhere(std::string_view self_id,
                                                    int64_t since_ns) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<std::string>> {
      Rows r = MAMORI_TRY(
          conn_.query("SELECT agent_key FROM agents WHERE last_hello_ns >= $1 AND manager_id "
                      "NOT IN ('', $2)",
                      Params().add(since_ns).add(self_id)));
      std::vector<std::string> out;
      for (int i = 0; i < r.size(); ++i) out.push_back(r.str(i, 0));
      return out;
    });
  }

  Result<std::vector<AgentRow>> reap_agents(std::string_view self_id, int64_t stale_before_ns,
                                            int64_t now_ns) override {
    return call(Retry::kOnce, [&]() -> Result<std::vector<AgentRow>> {
      Rows r = MAMORI_TRY(conn_.query(
          std::string("UPDATE agents SET "
                      "status = CASE WHEN status = 'unhealthy' THEN 'retired' ELSE 'lost' END, "
                      "status_since_ns = $1, manager_id = '' "
                      "WHERE status IN ('online', 'unhealthy') AND manager_id <> '' "
                      "AND manager_id <> $2 AND NOT EXISTS (SELECT 1 FROM managers m "
                      "WHERE m.id = agents.manager_id AND m.heartbeat_ns >= $3) RETURNING ") +
              kAgentColumns,
          Params().add(now_ns).add(self_id).add(stale_before_ns)));
      std::vector<AgentRow> out;
      for (int i = 0; i < r.size(); ++i) out.push_back(agent_row(r, i));
      return out;
    });
  }

  Status touch_agent(std::string_view agent_key, int64_t now_ns) override {
    return call(Retry::kIdempotent, [&]() -> Status {
      Rows r = MAMORI_TRY(conn_.query("UPDATE agents SET last_seen_ns = $1 WHERE agent_key = $2",
                                      Params().add(now_ns).add(agent_key)));
      if (r.affected() == 0) return no_agent(agent_key);
      return ok();
    });
  }

  Result<AgentStatus> set_agent_status(std::string_view agent_key, AgentStatus st,
                                       int64_t now_ns) override {
    return call(Retry::kOnce, [&]() -> Result<AgentStatus> {
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      const AgentStatus before = MAMORI_TRY(lock_status(agent_key));
      if (before != st) {
        MAMORI_TRY(
            conn_.query("UPDATE agents SET status = $1, status_since_ns = $2 WHERE agent_key = $3",
                        Params().add(to_string(st)).add(now_ns).add(agent_key)));
      }
      MAMORI_TRY(tx.commit());
      return before;
    });
  }

  Result<std::vector<InsertResult>> store_batches(std::span<const AgentBatch> batches,
                                                  std::span<const SeenMark> seen,
                                                  int64_t received_at_ns) override {
    std::vector<InsertResult> results;
    std::vector<size_t> order;  // the batches to write: those with events
    for (size_t i = 0; i < batches.size(); ++i) {
      results.push_back({0, 0, batches[i].events->max_sequence});
      if (!batches[i].events->rows.empty()) order.push_back(i);
    }
    if (order.empty() && seen.empty()) return results;
    std::string keys = "{", times = "{";
    for (size_t i = 0; i < seen.size(); ++i) {
      if (i > 0) {
        keys += ',';
        times += ',';
      }
      pg::append_array_element(keys, seen[i].agent_key);
      times += std::to_string(seen[i].at_ns);
    }
    keys += '}';
    times += '}';

    // Idempotent: a replay after an unknown commit stores nothing twice (its result then
    // counts as duplicates what the lost commit stored).
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<InsertResult>> {
      std::vector<InsertResult> out = results;
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      // Every writer of events takes it first: rows commit in row_id order, and the
      // sequence walk of insert_batch sees every committed batch of its agent key.
      if (!order.empty())
        MAMORI_TRY(conn_.query("SELECT pg_advisory_xact_lock($1::int4, $2::int4)",
                               Params().add(kEventNumberingLock[0]).add(kEventNumberingLock[1])));
      for (size_t i : order)
        MAMORI_TRY(insert_batch(batches[i].agent_key, *batches[i].events, received_at_ns, out[i]));
      if (!seen.empty())
        MAMORI_TRY(conn_.query(
            "UPDATE agents SET last_seen_ns = GREATEST(agents.last_seen_ns, m.at) "
            "FROM unnest($1::text[], $2::bigint[]) AS m(key, at) WHERE agents.agent_key = m.key",
            Params().add(keys).add(times)));
      MAMORI_TRY(tx.commit());
      return out;
    });
  }

  Result<SequenceInfo> sequences(std::string_view agent_key) override {
    return call(Retry::kIdempotent, [&]() -> Result<SequenceInfo> {
      Rows r = MAMORI_TRY(
          conn_.query("SELECT max_sequence, contiguous_through FROM event_seq WHERE agent_key = $1",
                      Params().add(agent_key)));
      SequenceInfo info;
      if (r.size() > 0) {
        info.max_sequence = r.int64(0, 0);
        info.contiguous_through = r.int64(0, 1);
      }
      return info;
    });
  }

  // Appends q's filters to `sql` ("AND ..."), their values to `p` as $n+1 on (n: the
  // number of parameters so far, updated).
  static void add_filters(const EventQuery& q, std::string& sql, Params& p, int& n) {
    auto where = [&](const char* condition, const auto& value) {
      sql += condition;
      sql += "$" + std::to_string(++n);
      p.add(value);
    };
    if (q.agent_key) where(" AND agent_key = ", *q.agent_key);
    if (q.group) {
      where(" AND agent_key IN (SELECT agent_key FROM agents WHERE grp = ", *q.group);
      sql += ")";
    }
    if (q.since_ns) where(" AND time_ns >= ", *q.since_ns);
    if (q.until_ns) where(" AND time_ns < ", *q.until_ns);
    if (q.action) where(" AND action = ", *q.action);
    if (q.path_prefix) {
      auto [low, high] = prefix_range(*q.path_prefix);
      where(" AND path >= ", low);
      where(" AND path < ", high);
    }
    if (q.source_ip) where(" AND source_ip = ", *q.source_ip);
    if (q.min_severity) where(" AND severity >= ", *q.min_severity);
    if (q.min_sequence) where(" AND sequence >= ", *q.min_sequence);
    if (q.decoy) {
      where(" AND row_id IN (SELECT row_id FROM decoy_events WHERE decoy = ", *q.decoy);
      sql += ")";
    }
  }

  Result<std::vector<EventRow>> query_events(const EventQuery& q) override {
    // The SQL text varies only with which filters are set (at most 2^11 shapes, each
    // prepared once); every value is a parameter.
    Params p;
    std::string sql =
        "SELECT row_id, agent_key, event_id, sequence, time_ns, action, path, source_ip, "
        "severity, received_at_ns, json FROM events WHERE row_id > $1";
    p.add(q.after_row);
    int n = 1;
    add_filters(q, sql, p, n);
    auto where = [&](const char* condition, int64_t value) {
      sql += condition;
      sql += "$" + std::to_string(++n);
      p.add(value);
    };
    if (q.newest_first && q.before_row > 0) where(" AND row_id < ", q.before_row);
    where(q.newest_first ? " ORDER BY row_id DESC LIMIT " : " ORDER BY row_id LIMIT ",
          std::clamp<int64_t>(q.limit, 0, kMaxQueryLimit));
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<EventRow>> {
      Rows r = MAMORI_TRY(conn_.query(sql, p));
      std::vector<EventRow> out;
      out.reserve(r.size());
      for (int i = 0; i < r.size(); ++i)
        out.push_back(EventRow{r.int64(i, 0), r.str(i, 1), r.str(i, 2), r.int64(i, 3),
                               r.int64(i, 4), r.str(i, 5), r.str(i, 6), r.str(i, 7), r.int64(i, 8),
                               r.int64(i, 9), r.str(i, 10)});
      return out;
    });
  }

  // The filters the rollup can apply (action, severity), as add_filters adds them.
  static void add_minute_filters(const EventQuery& q, std::string& sql, Params& p, int& n) {
    if (q.action) {
      sql += " AND action = $" + std::to_string(++n);
      p.add(*q.action);
    }
    if (q.min_severity) {
      sql += " AND severity >= $" + std::to_string(++n);
      p.add(*q.min_severity);
    }
  }

  Result<std::vector<MinuteCount>> count_minutes(const EventQuery& q) override {
    Params p;
    std::string sql =
        "SELECT minute, SUM(n), MAX(severity) FROM event_minutes WHERE minute >= $1 AND "
        "minute < $2";
    p.add(q.since_ns.value_or(0) / kMinuteNs).add(minute_after(q.until_ns.value_or(0)));
    int n = 2;
    add_minute_filters(q, sql, p, n);
    sql += " GROUP BY minute";
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<MinuteCount>> {
      Rows r = MAMORI_TRY(conn_.query(sql, p));
      std::vector<MinuteCount> out;
      for (int i = 0; i < r.size(); ++i)
        out.push_back({r.int64(i, 0), r.int64(i, 1), r.int64(i, 2)});
      return out;
    });
  }

  Result<std::optional<int64_t>> oldest_minute(const EventQuery& q) override {
    Params p;
    std::string sql = "SELECT MIN(minute) FROM event_minutes WHERE n > 0";
    int n = 0;
    add_minute_filters(q, sql, p, n);
    return call(Retry::kIdempotent, [&]() -> Result<std::optional<int64_t>> {
      Rows r = MAMORI_TRY(conn_.query(sql, p));
      return r.size() ? r.opt_int64(0, 0) : std::nullopt;
    });
  }

  Result<std::vector<BucketCount>> count_events(const EventQuery& q, int64_t width_ns,
                                                int64_t max_rows) override {
    Params p;
    std::string sql =
        "SELECT (time_ns - $1) / $2, COUNT(*), MAX(severity) FROM (SELECT time_ns, severity "
        "FROM events WHERE row_id > $3";
    p.add(q.since_ns.value_or(0)).add(width_ns).add(q.after_row);
    int n = 3;
    add_filters(q, sql, p, n);
    sql += " LIMIT $" + std::to_string(++n) + ") AS matching GROUP BY 1";
    p.add(max_rows);
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<BucketCount>> {
      Rows r = MAMORI_TRY(conn_.query(sql, p));
      std::vector<BucketCount> out;
      for (int i = 0; i < r.size(); ++i)
        out.push_back({r.int64(i, 0), r.int64(i, 1), r.int64(i, 2)});
      return out;
    });
  }

  Status record_baseline(const BaselineRow& b) override {
    return call(Retry::kOnce, [&]() -> Status {
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      MAMORI_TRY(conn_.query(
          "INSERT INTO baselines (agent_key, root_hash, at_ns, expected, next_sequence) "
          "VALUES ($1, $2, $3, $4, $5)",
          Params()
              .add(b.agent_key)
              .add(b.root_hash)
              .add(b.at_ns)
              .add(b.expected)
              .add(b.next_sequence)));
      MAMORI_TRY(conn_.query("UPDATE agents SET baseline_root_hash = $1 WHERE agent_key = $2",
                             Params().add(b.root_hash).add(b.agent_key)));
      return tx.commit();
    });
  }

  Result<std::vector<BaselineRow>> baseline_history(std::string_view agent_key) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<BaselineRow>> {
      Rows r = MAMORI_TRY(
          conn_.query("SELECT agent_key, root_hash, at_ns, expected, next_sequence FROM baselines "
                      "WHERE agent_key = $1 "
                      "ORDER BY at_ns, id",
                      Params().add(agent_key)));
      std::vector<BaselineRow> out;
      for (int i = 0; i < r.size(); ++i)
        out.push_back(
            BaselineRow{r.str(i, 0), r.str(i, 1), r.int64(i, 2), r.boolean(i, 3), r.int64(i, 4)});
      return out;
    });
  }

  Result<int64_t> prune(const RetentionPolicy& p, int64_t now_ns) override {
    // Idempotent: after an unknown commit, running again deletes what is still due.
    return call(Retry::kIdempotent, [&]() -> Result<int64_t> {
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      int64_t deleted = 0;
      // What is deleted is taken off the chart's rollup in the same statement, under the
      // writers' lock: a writer adding to the rollup's rows while this takes from them,
      // each in its own order, would deadlock.
      MAMORI_TRY(conn_.query("SELECT pg_advisory_xact_lock($1::int4, $2::int4)",
                             Params().add(kEventNumberingLock[0]).add(kEventNumberingLock[1])));
      auto del = [](const char* where) {
        return std::string("WITH ins AS (DELETE FROM events WHERE ") + where +
               " RETURNING time_ns, action, severity), " + std::string(kTakeMinutes) +
               " SELECT COUNT(*) FROM ins";
      };
      if (p.max_age_ns > 0) {
        Rows r = MAMORI_TRY(
            conn_.query(del("received_at_ns < $1"), Params().add(now_ns - p.max_age_ns)));
        deleted += r.int64(0, 0);
      }
      if (p.max_events_per_agent > 0) {
        // Per agent: everything older (by row) than its max_events_per_agent newest rows.
        Rows r = MAMORI_TRY(conn_.query(
            del("row_id IN (SELECT row_id FROM (SELECT row_id, ROW_NUMBER() OVER (PARTITION "
                "BY agent_key ORDER BY row_id DESC) AS n FROM events) AS ranked WHERE n > $1)"),
            Params().add(p.max_events_per_agent)));
        deleted += r.int64(0, 0);
      }
      if (deleted > 0) {
        (void)MAMORI_TRY(conn_.query("DELETE FROM event_minutes WHERE n <= 0", Params()));
        (void)MAMORI_TRY(
            conn_.query("DELETE FROM decoy_events d WHERE NOT EXISTS (SELECT 1 FROM "
                        "events e WHERE e.row_id = d.row_id)",
                        Params()));
      }
      MAMORI_TRY(tx.commit());
      return deleted;
    });
  }

  Result<int64_t> prune_fleet(int64_t before_ns) override {
    return call(Retry::kIdempotent, [&]() -> Result<int64_t> {
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      Rows bans = MAMORI_TRY(
          conn_.query("DELETE FROM bans WHERE (expires_at_ns != 0 AND expires_at_ns < $1) OR "
                      "(lifted_at_ns != 0 AND lifted_at_ns < $1 AND lift_pushed)",
                      Params().add(before_ns)));
      Rows commands = MAMORI_TRY(
          conn_.query("DELETE FROM commands WHERE created_at_ns < $1", Params().add(before_ns)));
      MAMORI_TRY(tx.commit());
      return static_cast<int64_t>(bans.affected() + commands.affected());
    });
  }

  Result<std::vector<AgentUsage>> usage() override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<AgentUsage>> {
      Rows r =
          MAMORI_TRY(conn_.query("SELECT agent_key, COUNT(*), COALESCE(SUM(octet_length(json)), 0) "
                                 "FROM events GROUP BY agent_key ORDER BY agent_key",
                                 Params()));
      std::vector<AgentUsage> out;
      for (int i = 0; i < r.size(); ++i)
        out.push_back(AgentUsage{r.str(i, 0), r.int64(i, 1), r.int64(i, 2)});
      return out;
    });
  }

  Result<int64_t> last_event_row() override {
    return call(Retry::kIdempotent, [&]() -> Result<int64_t> {
      Rows r = MAMORI_TRY(conn_.query("SELECT COALESCE(MAX(row_id), 0) FROM events", Params()));
      return r.int64(0, 0);
    });
  }

  Result<std::map<std::string, int64_t>> count_events_since(
      int64_t since_ns, std::optional<std::string_view> agent_key) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::map<std::string, int64_t>> {
      Params p;
      p.add(since_ns);
      if (agent_key) p.add(*agent_key);
      Rows r = MAMORI_TRY(
          conn_.query(std::string("SELECT agent_key, COUNT(*) FROM events WHERE time_ns >= $1") +
                          (agent_key ? " AND agent_key = $2" : "") + " GROUP BY agent_key",
                      p));
      std::map<std::string, int64_t> out;
      for (int i = 0; i < r.size(); ++i) out[r.str(i, 0)] = r.int64(i, 1);
      return out;
    });
  }

  Result<int64_t> add_ban(const NewBan& b) override {
    return insert_id(
        "INSERT INTO bans (address, expires_at_ns, reason, origin, created_at_ns, pushed) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        Params()
            .add(b.address)
            .add(b.expires_at_ns)
            .add(b.reason)
            .add(b.origin)
            .add(b.created_at_ns)
            .add(b.pushed));
  }

  Result<int64_t> lift_bans(std::string_view address, int64_t now_ns) override {
    return call(Retry::kIdempotent, [&]() -> Result<int64_t> {
      Rows r = MAMORI_TRY(conn_.query(
          "UPDATE bans SET lifted_at_ns = $1, lift_pushed = FALSE WHERE address = $2 AND "
          "lifted_at_ns = 0 AND (expires_at_ns = 0 OR expires_at_ns > $1)",
          Params().add(now_ns).add(address)));
      return r.affected();
    });
  }

  Result<std::optional<BanRow>> find_active_ban(std::string_view address, int64_t now_ns) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::optional<BanRow>> {
      Rows r = MAMORI_TRY(conn_.query(
          std::string(kBanSelect) +
              " WHERE address = $1 AND lifted_at_ns = 0 AND (expires_at_ns = 0 OR expires_at_ns "
              "> $2) ORDER BY expires_at_ns = 0 DESC, expires_at_ns DESC LIMIT 1",
          Params().add(address).add(now_ns)));
      auto rows = ban_rows(r);
      if (rows.empty()) return std::optional<BanRow>();
      return std::optional<BanRow>(std::move(rows.front()));
    });
  }

  Result<std::vector<BanRow>> active_bans(int64_t now_ns, int64_t limit) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<BanRow>> {
      Rows r = MAMORI_TRY(conn_.query(
          std::string(kBanSelect) +
              " WHERE lifted_at_ns = 0 AND (expires_at_ns = 0 OR expires_at_ns > $1) ORDER BY "
              "id LIMIT $2",
          Params().add(now_ns).add(std::clamp<int64_t>(limit, 0, kMaxQueryLimit))));
      return ban_rows(r);
    });
  }

  Result<std::vector<DecoyEvent>> decoy_events(int64_t since_ns, int64_t until_ns,
                                               int64_t limit) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<DecoyEvent>> {
      Rows r = MAMORI_TRY(conn_.query(
          "SELECT row_id, agent_key, kind, decoy, time_ns, address, ttl_s, url FROM "
          "decoy_events WHERE time_ns >= $1 AND time_ns < $2 AND kind <> 'lift' ORDER BY "
          "time_ns DESC, row_id DESC LIMIT $3",
          Params().add(since_ns).add(until_ns).add(std::max<int64_t>(0, limit))));
      std::vector<DecoyEvent> out;
      out.reserve(r.size());
      for (int i = 0; i < r.size(); ++i)
        out.push_back(DecoyEvent{
            r.int64(i, 0), r.str(i, 1), parse_decoy_kind(r.text(i, 2)).value_or(DecoyKind::kHit),
            r.str(i, 3), r.int64(i, 4), r.str(i, 5), r.int64(i, 6), r.str(i, 7)});
      return out;
    });
  }

  Result<std::vector<DecoyLift>> decoy_lifts(int64_t since_ns, int64_t limit) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<DecoyLift>> {
      Rows r = MAMORI_TRY(conn_.query(
          "SELECT address, lifted_at_ns AS at FROM bans WHERE lifted_at_ns <> 0 AND "
          "lifted_at_ns >= $1 UNION ALL SELECT address, time_ns FROM decoy_events WHERE kind = "
          "'lift' AND time_ns >= $1 ORDER BY at LIMIT $2",
          Params().add(since_ns).add(std::max<int64_t>(0, limit))));
      std::vector<DecoyLift> out;
      out.reserve(r.size());
      for (int i = 0; i < r.size(); ++i) out.push_back(DecoyLift{r.str(i, 0), r.int64(i, 1)});
      return out;
    });
  }

  Result<std::vector<BanRow>> past_bans(int64_t now_ns, int64_t limit) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<BanRow>> {
      Rows r = MAMORI_TRY(conn_.query(
          std::string(kBanSelect) +
              " WHERE lifted_at_ns != 0 OR (expires_at_ns != 0 AND expires_at_ns <= $1) ORDER "
              "BY id DESC LIMIT $2",
          Params().add(now_ns).add(std::clamp<int64_t>(limit, 0, kMaxQueryLimit))));
      return ban_rows(r);
    });
  }

  Result<std::vector<BanRow>> unpushed_bans(int64_t limit) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<BanRow>> {
      Rows r = MAMORI_TRY(conn_.query(
          std::string(kBanSelect) +
              " WHERE NOT pushed OR (lifted_at_ns != 0 AND NOT lift_pushed) ORDER BY id LIMIT $1",
          Params().add(std::clamp<int64_t>(limit, 0, kMaxQueryLimit))));
      return ban_rows(r);
    });
  }

  Status mark_ban_pushed(int64_t id, bool lift) override {
    return call(Retry::kIdempotent, [&]() -> Status {
      MAMORI_TRY(conn_.query(lift ? "UPDATE bans SET lift_pushed = TRUE WHERE id = $1"
                                  : "UPDATE bans SET pushed = TRUE WHERE id = $1",
                             Params().add(id)));
      return ok();
    });
  }

  Result<int64_t> add_command(const NewCommand& c) override {
    return insert_id(
        "INSERT INTO commands (command_id, agent_key, request, created_at_ns, state) "
        "VALUES ($1, $2, $3, $4, 'pending') RETURNING id",
        Params().add(c.command_id).add(c.agent_key).add(c.request_json).add(c.created_at_ns));
  }

  Status add_sent_commands(std::span<const NewCommand> cs, int64_t sent_at_ns) override {
    if (cs.empty()) return ok();
    std::string ids = "{", keys = "{", requests = "{", created = "{";
    for (size_t i = 0; i < cs.size(); ++i) {
      if (i > 0) {
        for (std::string* a : {&ids, &keys, &requests, &created}) *a += ',';
      }
      pg::append_array_element(ids, cs[i].command_id);
      pg::append_array_element(keys, cs[i].agent_key);
      pg::append_array_element(requests, cs[i].request_json);
      created += std::to_string(cs[i].created_at_ns);
    }
    for (std::string* a : {&ids, &keys, &requests, &created}) *a += '}';
    // Idempotent: command ids are unique, a replay inserts nothing twice.
    return call(Retry::kIdempotent, [&]() -> Status {
      MAMORI_TRY(
          conn_.query("INSERT INTO commands (command_id, agent_key, request, created_at_ns, state, "
                      "sent_at_ns) SELECT t.id, t.key, t.request, t.created, 'sent', $5 "
                      "FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) "
                      "AS t(id, key, request, created) ON CONFLICT (command_id) DO NOTHING",
                      Params().add(ids).add(keys).add(requests).add(created).add(sent_at_ns)));
      return ok();
    });
  }

  Result<std::vector<CommandRow>> unanswered_commands(std::optional<std::string> agent_key,
                                                      int64_t limit) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<CommandRow>> {
      Params p;
      add_opt(p, agent_key).add(std::clamp<int64_t>(limit, 0, kMaxQueryLimit));
      Rows r =
          MAMORI_TRY(conn_.query(std::string(kCommandSelect) +
                                     " WHERE state IN ('pending', 'sent') AND ($1::text IS NULL OR "
                                     "agent_key = $1::text) ORDER BY id LIMIT $2",
                                 p));
      return command_rows(r);
    });
  }

  Status mark_command_sent(std::string_view command_id, int64_t now_ns) override {
    return call(Retry::kIdempotent, [&]() -> Status {
      MAMORI_TRY(conn_.query(
          "UPDATE commands SET state = 'sent', sent_at_ns = $1 WHERE command_id = $2 AND "
          "state IN ('pending', 'sent')",
          Params().add(now_ns).add(command_id)));
      return ok();
    });
  }

  Result<bool> record_answer(std::string_view agent_key, std::string_view command_id,
                             const std::string& answer_json, CommandState state,
                             int64_t now_ns) override {
    return call(Retry::kIdempotent, [&]() -> Result<bool> {
      Rows r = MAMORI_TRY(
          conn_.query("UPDATE commands SET state = $1, answer = $2, answered_at_ns = $3 WHERE "
                      "command_id = $4 AND agent_key = $5",
                      Params()
                          .add(to_string(state))
                          .add(answer_json)
                          .add(now_ns)
                          .add(command_id)
                          .add(agent_key)));
      return r.affected() > 0;
    });
  }

  Result<std::optional<CommandRow>> find_command(int64_t id) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::optional<CommandRow>> {
      Rows r =
          MAMORI_TRY(conn_.query(std::string(kCommandSelect) + " WHERE id = $1", Params().add(id)));
      auto rows = command_rows(r);
      if (rows.empty()) return std::optional<CommandRow>();
      return std::optional<CommandRow>(std::move(rows.front()));
    });
  }

  Result<std::vector<CommandRow>> list_commands(int64_t after_id,
                                                std::optional<std::string> agent_key,
                                                int64_t limit) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<CommandRow>> {
      Params p;
      p.add(after_id);
      add_opt(p, agent_key).add(std::clamp<int64_t>(limit, 0, kMaxQueryLimit));
      Rows r = MAMORI_TRY(conn_.query(std::string(kCommandSelect) +
                                          " WHERE id > $1 AND ($2::text IS NULL OR agent_key = "
                                          "$2::text) ORDER BY id LIMIT $3",
                                      p));
      return command_rows(r);
    });
  }

  // No data_version here: three counters that only grow (the last ban, the last command,
  // the lifts) move whenever a row another process wrote is there to read (and after this
  // connection's own writes too: a wake that finds nothing new). LISTEN/NOTIFY can
  // replace this poll.
  Status create_user(const UserRow& u) override {
    return call(Retry::kOnce, [&]() -> Status {
      Rows r = MAMORI_TRY(conn_.query(
          "INSERT INTO users (name, role, password_hash, created_at_ns) VALUES ($1, $2, $3, $4) "
          "ON CONFLICT DO NOTHING",
          Params().add(u.name).add(to_string(u.role)).add(u.password_hash).add(u.created_at_ns)));
      if (r.affected() == 0) return fail("create user", u.name, EEXIST);
      return {};
    });
  }

  Result<std::optional<UserRow>> find_user(std::string_view name) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::optional<UserRow>> {
      Rows r = MAMORI_TRY(
          conn_.query(std::string(kUserSelect) + " WHERE name = $1", Params().add(name)));
      if (r.size() == 0) return std::optional<UserRow>();
      return std::optional<UserRow>(user_row(r, 0));
    });
  }

  Result<std::vector<UserRow>> list_users() override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<UserRow>> {
      Rows r = MAMORI_TRY(conn_.query(std::string(kUserSelect) + " ORDER BY name", Params()));
      std::vector<UserRow> out;
      for (int i = 0; i < r.size(); ++i) out.push_back(user_row(r, i));
      return out;
    });
  }

  Result<bool> delete_user(std::string_view name) override {
    return user_change("DELETE FROM users WHERE name = $1", Params().add(name), name);
  }

  Result<bool> set_password(std::string_view name, std::string_view password_hash) override {
    return user_change("UPDATE users SET password_hash = $2 WHERE name = $1",
                       Params().add(name).add(password_hash), name);
  }

  Status create_session(const SessionRow& s) override {
    return call(Retry::kOnce, [&]() -> Status {
      MAMORI_TRY(
          conn_.query("INSERT INTO sessions (id_hash, csrf_hash, usr, created_at_ns, last_used_ns, "
                      "expires_at_ns) VALUES ($1, $2, $3, $4, $5, $6)",
                      Params()
                          .add(s.id_hash)
                          .add(s.csrf_hash)
                          .add(s.user)
                          .add(s.created_at_ns)
                          .add(s.last_used_ns)
                          .add(s.expires_at_ns)));
      return {};
    });
  }

  Result<std::optional<SessionRow>> use_session(std::string_view id_hash, int64_t now_ns,
                                                int64_t idle_ns) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::optional<SessionRow>> {
      Rows r = MAMORI_TRY(conn_.query(
          "UPDATE sessions SET last_used_ns = $1 WHERE id_hash = $2 AND expires_at_ns > $1 AND "
          "last_used_ns > $3 RETURNING id_hash, csrf_hash, usr, created_at_ns, last_used_ns, "
          "expires_at_ns",
          Params().add(now_ns).add(id_hash).add(now_ns - idle_ns)));
      if (r.size() == 0) return std::optional<SessionRow>();
      return std::optional<SessionRow>(SessionRow{r.str(0, 0), r.str(0, 1), r.str(0, 2),
                                                  r.int64(0, 3), r.int64(0, 4), r.int64(0, 5)});
    });
  }

  Result<bool> delete_session(std::string_view id_hash) override {
    return call(Retry::kIdempotent, [&]() -> Result<bool> {
      Rows r =
          MAMORI_TRY(conn_.query("DELETE FROM sessions WHERE id_hash = $1", Params().add(id_hash)));
      return r.affected() > 0;
    });
  }

  Result<int64_t> prune_sessions(int64_t now_ns, int64_t idle_ns) override {
    return call(Retry::kIdempotent, [&]() -> Result<int64_t> {
      Rows r = MAMORI_TRY(
          conn_.query("DELETE FROM sessions WHERE expires_at_ns <= $1 OR last_used_ns <= $2",
                      Params().add(now_ns).add(now_ns - idle_ns)));
      return static_cast<int64_t>(r.affected());
    });
  }

  Result<int64_t> create_api_token(const NewApiToken& t) override {
    return insert_id(
        "INSERT INTO api_tokens (secret_hash, name, role, created_by, created_at_ns) VALUES "
        "($1, $2, $3, $4, $5) RETURNING id",
        Params()
            .add(t.secret_hash)
            .add(t.name)
            .add(to_string(t.role))
            .add(t.created_by)
            .add(t.created_at_ns));
  }

  Result<std::optional<ApiTokenRow>> use_api_token(std::string_view secret_hash,
                                                   int64_t now_ns) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::optional<ApiTokenRow>> {
      Rows r = MAMORI_TRY(conn_.query(
          "UPDATE api_tokens SET last_used_ns = $1 WHERE secret_hash = $2 AND NOT revoked "
          "RETURNING id, name, role, created_by, created_at_ns, revoked, last_used_ns",
          Params().add(now_ns).add(secret_hash)));
      if (r.size() == 0) return std::optional<ApiTokenRow>();
      return std::optional<ApiTokenRow>(api_token_row(r, 0));
    });
  }

  Result<std::vector<ApiTokenRow>> list_api_tokens() override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<ApiTokenRow>> {
      Rows r = MAMORI_TRY(
          conn_.query("SELECT id, name, role, created_by, created_at_ns, revoked, last_used_ns "
                      "FROM api_tokens ORDER BY id",
                      Params()));
      std::vector<ApiTokenRow> out;
      for (int i = 0; i < r.size(); ++i) out.push_back(api_token_row(r, i));
      return out;
    });
  }

  Result<bool> revoke_api_token(int64_t id) override {
    return call(Retry::kIdempotent, [&]() -> Result<bool> {
      Rows r = MAMORI_TRY(
          conn_.query("UPDATE api_tokens SET revoked = TRUE WHERE id = $1", Params().add(id)));
      return r.affected() > 0;
    });
  }

  Result<int64_t> append_audit(const AuditEntry& e) override {
    return insert_id(
        "INSERT INTO audit (at_ns, actor, address, action, target, result) VALUES ($1, $2, $3, "
        "$4, $5, $6) RETURNING id",
        Params().add(e.at_ns).add(e.actor).add(e.address).add(e.action).add(e.target).add(
            e.result));
  }

  Result<std::vector<AuditEntry>> list_audit(int64_t after_id, int64_t limit) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<AuditEntry>> {
      Rows r = MAMORI_TRY(
          conn_.query("SELECT id, at_ns, actor, address, action, target, result FROM audit "
                      "WHERE id > $1 ORDER BY id LIMIT $2",
                      Params().add(after_id).add(std::clamp<int64_t>(limit, 0, 10000))));
      return audit_rows(r);
    });
  }

  Result<std::vector<AuditEntry>> list_audit_newest(int64_t before_id, int64_t limit) override {
    return call(Retry::kIdempotent, [&]() -> Result<std::vector<AuditEntry>> {
      Rows r = MAMORI_TRY(
          conn_.query("SELECT id, at_ns, actor, address, action, target, result FROM audit "
                      "WHERE id < $1 ORDER BY id DESC LIMIT $2",
                      Params()
                          .add(before_id > 0 ? before_id : std::numeric_limits<int64_t>::max())
                          .add(std::clamp<int64_t>(limit, 0, 10000))));
      return audit_rows(r);
    });
  }

  static std::vector<AuditEntry> audit_rows(const Rows& r) {
    std::vector<AuditEntry> out;
    for (int i = 0; i < r.size(); ++i)
      out.push_back(AuditEntry{r.int64(i, 0), r.int64(i, 1), r.str(i, 2), r.str(i, 3), r.str(i, 4),
                               r.str(i, 5), r.str(i, 6)});
    return out;
  }

  Result<int64_t> change_counter() override {
    return call(Retry::kIdempotent, [&]() -> Result<int64_t> {
      Rows r = MAMORI_TRY(conn_.query(
          "SELECT (SELECT COALESCE(MAX(id), 0) FROM bans) + (SELECT COALESCE(MAX(id), 0) FROM "
          "commands) + (SELECT COUNT(*) FROM bans WHERE lifted_at_ns != 0)",
          Params()));
      return r.int64(0, 0);
    });
  }

 private:
  static constexpr std::string_view kUserSelect =
      "SELECT name, role, password_hash, created_at_ns FROM users";
  static UserRow user_row(const Rows& r, int i) {
    return UserRow{r.str(i, 0), parse_role(r.str(i, 1)).value_or(Role::kViewer), r.str(i, 2),
                   r.int64(i, 3)};
  }
  static ApiTokenRow api_token_row(const Rows& r, int i) {
    return ApiTokenRow{
        r.int64(i, 0), r.str(i, 1),   parse_role(r.str(i, 2)).value_or(Role::kViewer),
        r.str(i, 3),   r.int64(i, 4), r.boolean(i, 5),
        r.int64(i, 6)};
  }
  // A change to a user (delete, new password) that also ends the user's sessions, in one
  // transaction; → whether the user existed.
  Result<bool> user_change(const char* sql, const Params& params, std::string_view name) {
    return call(Retry::kOnce, [&]() -> Result<bool> {
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      Rows r = MAMORI_TRY(conn_.query(sql, params));
      MAMORI_TRY(conn_.query("DELETE FROM sessions WHERE usr = $1", Params().add(name)));
      MAMORI_TRY(tx.commit());
      return r.affected() > 0;
    });
  }

  // One INSERT ... RETURNING id in a transaction of its own, run once (Retry::kOnce).
  Result<int64_t> insert_id(const char* sql, const Params& params) {
    return call(Retry::kOnce, [&]() -> Result<int64_t> {
      auto tx = MAMORI_TRY(Tx::begin(conn_));
      Rows r = MAMORI_TRY(conn_.query(sql, params));
      MAMORI_TRY(tx.commit());
      return r.int64(0, 0);
    });
  }

  // Runs `f` (one call's work, its own transaction included) under the reconnect policy
  // of postgres_store.h: at most one reconnect per call.
  template <class F>
  std::invoke_result_t<F&> call(Retry retry, F&& f) {
    bool reconnected = false;
    if (conn_.broken()) {  // lost during an earlier call
      MAMORI_TRY(conn_.reconnect());
      reconnected = true;
    }
    std::invoke_result_t<F&> r = f();
    if (r || reconnected || !conn_.broken()) return r;
    const bool unknown = retry == Retry::kOnce && conn_.may_have_committed();
    Error e = std::move(r).error();
    if (auto re = conn_.reconnect(); !re) {
      e.detail += "; reconnecting failed: " + re.error().detail;
      return tl::unexpected(std::move(e));
    }
    if (unknown) {
      e.detail += " (during the commit: whether it took effect is unknown)";
      return tl::unexpected(std::move(e));
    }
    return f();
  }

  tl::unexpected<Error> no_agent(std::string_view agent_key) {
    return fail("find agent", std::string(agent_key), ENOENT, "no such agent");
  }

  Status insert_agent(const NewAgent& a) {
    MAMORI_TRY(conn_.query(
        "INSERT INTO agents (agent_key, credential_hash, grp, token_id, hostname, machine_id, "
        "agent_id, name, version, roots_json, baseline_root_hash, enrolled_at_ns, status, "
        "status_since_ns) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,'enrolled',$12)",
        Params()
            .add(a.agent_key)
            .add(a.credential_hash)
            .add(a.group)
            .add(a.token_id)
            .add(a.info.hostname)
            .add(a.info.machine_id)
            .add(a.info.agent_id)
            .add(a.info.name)
            .add(a.info.version)
            .add(a.info.roots_json)
            .add(a.info.baseline_root_hash)
            .add(a.enrolled_at_ns)));
    return ok();
  }

  // Inside a transaction: the agent's status, its row locked until the commit.
  Result<AgentStatus> lock_status(std::string_view agent_key) {
    Rows r = MAMORI_TRY(conn_.query("SELECT status FROM agents WHERE agent_key = $1 FOR UPDATE",
                                    Params().add(agent_key)));
    if (r.size() == 0) return no_agent(agent_key);
    return parse_agent_status(r.text(0, 0)).value_or(AgentStatus::kLost);
  }

  // Inside a transaction. One conditional UPDATE decides: a concurrent one on the same
  // row waits for the winner's commit, then re-checks the WHERE on the row it left, so
  // two racing for the last use cannot both get it. Only a refusal reads further, to say
  // why.
  Result<TokenVerdict> consume_in_tx(std::string_view secret_hash, int64_t now_ns) {
    Rows u = MAMORI_TRY(conn_.query(
        "UPDATE tokens SET uses_left = uses_left - 1, used = used + 1 "
        "WHERE secret_hash = $1 AND NOT revoked AND (expires_at_ns IS NULL OR expires_at_ns > $2) "
        "AND (uses_left IS NULL OR uses_left > 0) RETURNING id, grp",
        Params().add(secret_hash).add(now_ns)));
    TokenVerdict v;
    if (u.size() > 0) {
      v.token_id = u.int64(0, 0);
      v.group = u.str(0, 1);
      return v;
    }
    Rows q =
        MAMORI_TRY(conn_.query("SELECT revoked, expires_at_ns FROM tokens WHERE secret_hash = $1",
                               Params().add(secret_hash)));
    v.refusal = q.size() == 0 ? TokenRefusal::kUnknown
                              : token_refusal(q.boolean(0, 0), q.opt_int64(0, 1), now_ns);
    return v;
  }

  // Inside the insert's transaction, under kEventNumberingLock. The same walk as the
  // SQLite store's (from the gap-free mark forward over the stored sequences, by the
  // (agent_key, sequence) index; a fresh key starts below the batch's lowest), done by the
  // server in one recursive query and stored by the same statement.
  // One extracted batch, inside the caller's transaction.
  Status insert_batch(std::string_view agent_key, const EventBatch& batch, int64_t received_at_ns,
                      InsertResult& out) {
    // The batch travels as one array per column, unnested by one INSERT: one round trip
    // for the whole batch instead of one per event.
    std::string ids = "{", seqs = "{", times = "{", actions = "{", paths = "{", ips = "{",
                sevs = "{", jsons = "{";
    for (size_t i = 0; i < batch.rows.size(); ++i) {
      const EventColumns& e = batch.rows[i];
      if (i > 0) {
        for (std::string* s : {&ids, &seqs, &times, &actions, &paths, &ips, &sevs, &jsons})
          *s += ',';
      }
      pg::append_array_element(ids, e.id);
      seqs += std::to_string(e.sequence);
      times += std::to_string(e.time_ns);
      pg::append_array_element(actions, e.action);
      pg::append_array_element(paths, e.path);
      pg::append_array_element(ips, e.ip);
      sevs += std::to_string(e.severity);
      pg::append_array_element(jsons, e.json);
    }
    for (std::string* s : {&ids, &seqs, &times, &actions, &paths, &ips, &sevs, &jsons}) *s += '}';
    const int64_t total = static_cast<int64_t>(batch.rows.size());
    // What was inserted (not a duplicate) is counted into the chart's rollup too.
    Rows ins = MAMORI_TRY(conn_.query(
        "WITH ins AS (INSERT INTO events (agent_key, event_id, sequence, time_ns, action, path, "
        "source_ip, severity, received_at_ns, json) "
        "SELECT $1, t.event_id, t.sequence, t.time_ns, t.action, t.path, t.source_ip, "
        "t.severity, $2, t.json FROM unnest($3::text[], $4::bigint[], $5::bigint[], "
        "$6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[]) WITH ORDINALITY "
        "AS t(event_id, sequence, time_ns, action, path, source_ip, severity, json, ord) "
        "ORDER BY t.ord ON CONFLICT (event_id, agent_key) DO NOTHING "
        "RETURNING time_ns, action, severity), " +
            std::string(kAddMinutes) + " SELECT COUNT(*) FROM ins",
        Params()
            .add(agent_key)
            .add(received_at_ns)
            .add(ids)
            .add(seqs)
            .add(times)
            .add(actions)
            .add(paths)
            .add(ips)
            .add(sevs)
            .add(jsons)));
    out.inserted = ins.int64(0, 0);
    out.duplicates = total - out.inserted;
    std::vector<DecoyEvent> decoys;
    std::vector<std::string_view> decoy_ids;
    for (const EventColumns& e : batch.rows)
      if (auto d = classify_decoy_event(e)) {
        decoys.push_back(std::move(*d));
        decoy_ids.push_back(e.id);
      }
    // By the event's key: a replayed event finds its first row, which has its decoy row.
    if (!decoys.empty()) MAMORI_TRY(insert_decoys(agent_key, decoy_ids, decoys));
    MAMORI_TRY(advance_sequences(agent_key, batch.min_sequence, batch.max_sequence));
    return ok();
  }

  // The decoy rows of events stored under `agent_key` with ids `ids` (ids[i] is decoys[i]'s
  // event), each keyed by its event's row.
  Status insert_decoys(std::string_view agent_key, std::span<const std::string_view> ids,
                       std::span<const DecoyEvent> decoys) {
    std::string a_ids = "{", kinds = "{", names = "{", times = "{", addrs = "{", ttls = "{",
                urls = "{";
    for (size_t i = 0; i < decoys.size(); ++i) {
      const DecoyEvent& d = decoys[i];
      if (i > 0)
        for (std::string* s : {&a_ids, &kinds, &names, &times, &addrs, &ttls, &urls}) *s += ',';
      pg::append_array_element(a_ids, ids[i]);
      pg::append_array_element(kinds, to_string(d.kind));
      pg::append_array_element(names, d.decoy);
      times += std::to_string(d.time_ns);
      pg::append_array_element(addrs, d.address);
      ttls += std::to_string(d.ttl_s);
      pg::append_array_element(urls, d.url);
    }
    for (std::string* s : {&a_ids, &kinds, &names, &times, &addrs, &ttls, &urls}) *s += '}';
    MAMORI_TRY(conn_.query(
        "INSERT INTO decoy_events (row_id, agent_key, kind, decoy, time_ns, address, ttl_s, url) "
        "SELECT e.row_id, $1, d.kind, d.decoy, d.time_ns, d.address, d.ttl_s, d.url FROM "
        "unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], "
        "$8::text[]) AS d(event_id, kind, decoy, time_ns, address, ttl_s, url) JOIN events e ON "
        "e.event_id = d.event_id AND e.agent_key = $1 ON CONFLICT (row_id) DO NOTHING",
        Params()
            .add(agent_key)
            .add(a_ids)
            .add(kinds)
            .add(names)
            .add(times)
            .add(addrs)
            .add(ttls)
            .add(urls)));
    return ok();
  }

  // Migration 9: the decoy events among those stored before it (one pass over the
  // actions that can be one, by their index), in the migration's transaction.
  Status backfill_decoys() {
    Rows r = MAMORI_TRY(conn_.exec(
        "SELECT row_id, agent_key, action, path, source_ip, time_ns, json FROM events WHERE "
        "action IN ('ip-banned', 'ip-unbanned', 'decoy-opened', 'decoy-credential-used') "
        "ORDER BY row_id"));
    for (int i = 0; i < r.size(); ++i) {
      EventColumns c;
      c.action = r.str(i, 2);
      c.path = r.str(i, 3);
      c.ip = r.str(i, 4);
      c.time_ns = r.int64(i, 5);
      c.json = r.str(i, 6);
      auto d = classify_decoy_event(c);
      if (!d) continue;
      MAMORI_TRY(conn_.query(
          "INSERT INTO decoy_events (row_id, agent_key, kind, decoy, time_ns, address, ttl_s, "
          "url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (row_id) DO NOTHING",
          Params()
              .add(r.int64(i, 0))
              .add(r.text(i, 1))
              .add(to_string(d->kind))
              .add(d->decoy)
              .add(d->time_ns)
              .add(d->address)
              .add(d->ttl_s)
              .add(d->url)));
    }
    return ok();
  }

  Status advance_sequences(std::string_view agent_key, int64_t min_seq, int64_t max_seq) {
    MAMORI_TRY(conn_.query(
        "WITH RECURSIVE "
        "cur AS (SELECT max_sequence, contiguous_through FROM event_seq WHERE agent_key = $1), "
        "walk(s) AS (SELECT COALESCE((SELECT contiguous_through FROM cur), $2::bigint - 1) "
        "  UNION ALL SELECT walk.s + 1 FROM walk WHERE EXISTS (SELECT 1 FROM events "
        "  WHERE agent_key = $1 AND sequence = walk.s + 1)) "
        "INSERT INTO event_seq (agent_key, max_sequence, contiguous_through) "
        "SELECT $1, GREATEST(COALESCE((SELECT max_sequence FROM cur), 0), $3::bigint), "
        "(SELECT max(s) FROM walk) "
        "ON CONFLICT (agent_key) DO UPDATE SET max_sequence = EXCLUDED.max_sequence, "
        "contiguous_through = EXCLUDED.contiguous_through",
        Params().add(agent_key).add(min_seq).add(max_seq)));
    return ok();
  }

  Conn conn_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url) {
  Conn conn = MAMORI_TRY(Conn::connect(url));
  auto store = std::make_unique<PostgresStore>(std::move(conn));
  MAMORI_TRY(store->migrate());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace mamori::manager
