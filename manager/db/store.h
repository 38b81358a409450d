#pragma once
// The manager's storage: enrollment tokens, enrolled agents, the events they send and
// their baseline history. An abstract Store with two implementations, SQLite
// (sqlite_store.h, one box) and PostgreSQL (postgres_store.h, several managers sharing a
// server); open_store() picks one from a URL. Both pass the same tests (store_test.cc).
//
// Contracts common to every method:
// - Errors are Result values (an Error naming the database); nothing throws.
// - Secrets never reach the store in clear: callers pass SHA-256 hex of the token secret
//   and of the agent credential (sha256_hex below), and compare credential hashes in
//   constant time themselves.
// - Times are nanoseconds since the Unix epoch, given by the caller (from its Clock), so
//   tests drive time.
// - Text arguments (keys, AgentInfo, ...) are UTF-8 without NUL: PostgreSQL's text holds
//   neither a NUL nor invalid UTF-8 and refuses the call (EINVAL for a NUL), so callers
//   check what agents send before it gets here. Events are checked by insert_events.
// - Threads: a Store is one database connection and is NOT thread-safe. Open one Store per
//   thread (several Stores, in one process or several, may share one database: the
//   SQLite implementation runs in WAL mode with a busy timeout, and every write is one
//   transaction, so concurrent writers serialize instead of failing; PostgreSQL's
//   connections are independent and its writes are transactions too).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/env.h"
#include "core/base/result.h"

namespace mamori::manager {

// Lower-case hex SHA-256 of `secret`: what the store keeps of a token secret or credential.
std::string sha256_hex(std::string_view secret);

// ---- tokens ----

struct NewToken {
  std::string secret_hash;               // sha256_hex(secret)
  std::string group;                     // the group agents enrolled with this token join
  std::optional<int64_t> uses;           // how many enrollments it allows; nullopt: unlimited
  std::optional<int64_t> expires_at_ns;  // nullopt: never expires
  int64_t created_at_ns = 0;
};

struct TokenRow {
  int64_t id = 0;
  std::string group;
  std::optional<int64_t> uses_left;  // nullopt: unlimited
  std::optional<int64_t> expires_at_ns;
  bool revoked = false;
  int64_t created_at_ns = 0;
  int64_t used = 0;  // successful enrollments so far
};

enum class TokenRefusal {
  kNone,     // accepted
  kUnknown,  // no token with this hash
  kRevoked,
  kExpired,
  kUsedUp,
};
// "unknown", "revoked", "expired", "used-up" (kNone: "accepted").
std::string_view to_string(TokenRefusal r);

// Why a token that a conditional use did not take was refused, for the implementations:
// revoked first, then expired (expires_at_ns <= now_ns), else used up.
TokenRefusal token_refusal(bool revoked, std::optional<int64_t> expires_at_ns, int64_t now_ns);

struct TokenVerdict {
  TokenRefusal refusal = TokenRefusal::kNone;
  int64_t token_id = 0;  // set when accepted
  std::string group;     // set when accepted
  bool accepted() const { return refusal == TokenRefusal::kNone; }
};

// ---- agents ----

enum class AgentStatus {
  kEnrolled,   // enrolled, never connected yet
  kOnline,     // a channel is open
  kUnhealthy,  // a channel is open, and its heartbeats say the node is drained (self-healing)
  kLost,       // the channel dropped without bye, or went silent
  kStopped,    // the agent said bye (orderly stop: no alarm)
  kRetired,    // its node was drained (unhealthy) and then went away: churn, no alarm
  kRevoked,    // an administrator revoked its credential: refused from then on
};
// "enrolled", "online", "unhealthy", "lost", "stopped", "retired", "revoked".
std::string_view to_string(AgentStatus s);
std::optional<AgentStatus> parse_agent_status(std::string_view s);

struct AgentInfo {  // what the agent says about itself, at enrollment and in each hello
  std::string hostname;
  std::string machine_id;
  std::string agent_id;  // STATE/agent-id: the same on clones of one image, hence agent_key
  std::string name;
  std::string version;
  std::string roots_json;          // the roots array as JSON text: [{"path":..,"mode":..}]
  std::string baseline_root_hash;  // hex or empty
};

struct NewAgent {
  std::string agent_key;        // made by the manager, unique
  std::string credential_hash;  // sha256_hex(credential)
  std::string group;
  int64_t token_id = 0;  // the token it enrolled with (0: none)
  AgentInfo info;
  int64_t enrolled_at_ns = 0;
};

struct AgentRow {
  std::string agent_key;
  std::string credential_hash;
  std::string group;
  int64_t token_id = 0;
  AgentInfo info;
  int64_t enrolled_at_ns = 0;
  AgentStatus status = AgentStatus::kEnrolled;
  int64_t status_since_ns = 0;  // when status last changed
  int64_t last_seen_ns = 0;     // last message of any kind (0: never connected)
  int64_t last_hello_ns = 0;    // 0: never
  // The manager holding its channel (Store::manager_heartbeat's id); "" when none.
  std::string manager_id;
};

// ---- events ----

struct InsertResult {
  int64_t inserted = 0;      // new rows
  int64_t duplicates = 0;    // already stored (same agent_key and event.id): skipped
  int64_t max_sequence = 0;  // highest event.sequence in the batch (0: empty batch)
};

// One event, as its row is written (made and checked by event_columns.h).
struct EventColumns {
  std::string id;      // event.id
  std::string action;  // event.action, or empty
  std::string path;    // file.path, or empty
  std::string ip;      // source.ip, or empty
  std::string json;    // the event as JSON text
  int64_t sequence = 0;
  int64_t time_ns = 0;   // @timestamp; 0 when absent
  int64_t severity = 0;  // event.severity; 0 when absent or not an integer
};

struct EventBatch {
  std::vector<EventColumns> rows;  // in the order given
  int64_t min_sequence = 0;        // 0 for an empty batch
  int64_t max_sequence = 0;
};

// One agent's events for Store::store_batches, checked and extracted (event_columns.h):
// a view of what the caller holds.
struct AgentBatch {
  std::string_view agent_key;
  const EventBatch* events = nullptr;
};

// When an agent was last heard from, for Store::store_batches.
struct SeenMark {
  std::string agent_key;
  int64_t at_ns = 0;
};

struct SequenceInfo {
  // Highest event.sequence ever stored for the agent; 0 if none.
  int64_t max_sequence = 0;
  // Highest N such that every sequence from the lowest one first stored for the agent
  // through N is stored (a gap, e.g. a batch replayed out of order, holds it back until
  // filled); 0 if none. A high-water mark: retention does not lower it.
  int64_t contiguous_through = 0;
};

// Filters for query_events; every set field must match (AND). Results are ordered by
// row id (arrival order), oldest first, at most `limit` rows after `after_row`.
struct EventQuery {
  std::optional<std::string> agent_key{};
  std::optional<std::string> group{};        // of an agent enrolled in this group
  std::optional<int64_t> since_ns{};         // @timestamp >= since_ns
  std::optional<int64_t> until_ns{};         // @timestamp < until_ns
  std::optional<std::string> action{};       // event.action, exact
  std::optional<std::string> path_prefix{};  // file.path starts with this (literal, no wildcards)
  std::optional<std::string> source_ip{};    // source.ip, exact
  std::optional<int64_t> min_severity{};     // event.severity >= this
  std::optional<int64_t> min_sequence{};     // event.sequence >= this (with agent_key)
  std::optional<std::string> decoy{};        // a decoy's events (DecoyEvent::decoy), exact
  int64_t after_row = 0;                     // paging: rows with row id > after_row
  // Newest first (the console's timeline): rows with row id < before_row, highest first;
  // before_row 0 = from the newest.
  bool newest_first = false;
  int64_t before_row = 0;
  int64_t limit = 1000;  // capped at 10000
};

// Events counted per time bucket (the console's chart): counts[i] events, of severity at
// most max_severity[i], with @timestamp in [since_ns + i * width_ns, + width_ns).
inline constexpr int64_t kMaxHistogramBuckets = 500;
// A filter the rollup cannot answer counts the matching events themselves, at most this
// many: the answer is bounded however broad the filter (a path prefix of "/").
inline constexpr int64_t kMaxHistogramRows = 100'000;
struct EventHistogram {
  int64_t since_ns = 0;
  int64_t width_ns = 0;
  bool complete = true;  // false: more than the row limit matched, the counts are a floor
  std::vector<int64_t> counts;
  std::vector<int64_t> max_severity;
};

struct EventRow {
  int64_t row = 0;  // the store's row id: arrival order, for paging
  std::string agent_key;
  std::string event_id;
  int64_t sequence = 0;
  int64_t time_ns = 0;  // @timestamp
  std::string action;
  std::string path;       // file.path, or empty
  std::string source_ip;  // source.ip, or empty
  int64_t severity = 0;   // event.severity, 0 if absent
  int64_t received_at_ns = 0;
  std::string json;  // the event as received (compact JSON text)
};

// ---- decoys (docs/decoys.md; the console's decoys page, GET /api/v1/decoys) ----

// What a stored event says about a decoy, kept beside it (decoys.h classify_decoy_event
// decides, as the event is stored): a hit, an open on the host, a credential used, or an
// operator's unban of an address (what makes a hit a false positive).
enum class DecoyKind { kHit, kOpened, kCredential, kLift };
std::string_view to_string(DecoyKind k);  // "hit", "opened", "credential", "lift"
std::optional<DecoyKind> parse_decoy_kind(std::string_view s);

struct DecoyEvent {
  int64_t row = 0;  // the event's row
  std::string agent_key;
  DecoyKind kind = DecoyKind::kHit;
  // The decoy: a hit's rule.name ("decoy-…"); "decoy-" + mamori.decoy.token for an open or
  // a credential use that names it, else "file:" + file.path; "" for a lift.
  std::string decoy;
  int64_t time_ns = 0;  // the event's @timestamp
  std::string address;  // source.ip ("" for an open)
  // A hit's ban: its TTL in seconds, 0 permanent, -1 when no ban was made (it failed).
  int64_t ttl_s = -1;
  std::string url;  // a hit's url.original, an open's file.path (at most kMaxDecoyUrl bytes)
};

// An address an operator unbanned at at_ns: a fleet ban lifted (the bans table), or an
// ip-unbanned event made by hand on an agent or ordered by the manager (a lift event).
struct DecoyLift {
  std::string address;
  int64_t at_ns = 0;
};

// ---- baseline history, retention, usage ----

struct BaselineRow {
  std::string agent_key;
  std::string root_hash;
  int64_t at_ns = 0;
  bool expected = false;  // false: it changed without an operator's rebaseline
  // The agent's next event.sequence when it reported this hash: what it reports after
  // has a sequence at least this (clock-independent, unlike at_ns).
  int64_t next_sequence = 0;
};

struct RetentionPolicy {
  int64_t max_events_per_agent = 0;  // 0: no cap; else the oldest (by row) beyond it go
  int64_t max_age_ns = 0;            // 0: no cap; else events received before now - age go
};

struct AgentUsage {
  std::string agent_key;
  int64_t events = 0;
  int64_t json_bytes = 0;  // bytes of stored event JSON: an approximation of its share
};

// ---- fleet control: bans and commands ----

// A ban the fleet holds: decided by one agent (its ip-banned event), or by hand
// (`mamori manager ban`). The manager pushes it to every agent (docs/manager.md).
struct NewBan {
  std::string address;        // an IP address, as text
  int64_t expires_at_ns = 0;  // 0: permanent
  std::string reason;
  std::string origin;  // the deciding agent's agent_key, or "manager"
  int64_t created_at_ns = 0;
  // The manager recorded it and pushed it itself; false: for the manager to push (a row
  // the CLI wrote), found by unpushed_bans().
  bool pushed = false;
};

struct BanRow {
  int64_t id = 0;
  std::string address;
  int64_t expires_at_ns = 0;
  std::string reason;
  std::string origin;
  int64_t created_at_ns = 0;
  int64_t lifted_at_ns = 0;  // 0: not lifted (`mamori manager unban`)
  bool pushed = false;
  bool lift_pushed = false;  // with lifted_at_ns: the unban was pushed
};

// pending: waiting for its agent's channel; sent: written to it; ok: answered ok (a ban:
// every address applied); refused: answered ok, some addresses refused; failed: answered
// with an error.
enum class CommandState { kPending, kSent, kOk, kRefused, kFailed };
std::string_view to_string(CommandState s);
std::optional<CommandState> parse_command_state(std::string_view s);

struct NewCommand {
  std::string command_id;  // a UUID: the channel's command_id
  std::string agent_key;
  std::string request_json;  // the control-protocol request
  int64_t created_at_ns = 0;
};

struct CommandRow {
  int64_t id = 0;  // arrival order
  std::string command_id;
  std::string agent_key;
  std::string request_json;
  int64_t created_at_ns = 0;
  int64_t sent_at_ns = 0;      // 0: not yet
  int64_t answered_at_ns = 0;  // 0: not yet
  std::string answer_json;     // "" until answered
  CommandState state = CommandState::kPending;
};

// ---- API access: users, sessions, API tokens, audit (docs/manager.md "API") ----
// Roles, weakest first; a role may do everything the ones before it may.
enum class Role { kViewer, kOperator, kAdmin };
std::string_view to_string(Role r);  // "viewer", "operator", "admin"
std::optional<Role> parse_role(std::string_view s);
struct UserRow {
  std::string name;
  Role role = Role::kViewer;
  std::string password_hash;  // an argon2id PHC string (manager/server/password.h)
  int64_t created_at_ns = 0;
};
// A console session. The cookie's secret and the CSRF token reach the store only as
// sha256_hex; the caller compares the CSRF hash in constant time.
struct SessionRow {
  std::string id_hash;    // sha256_hex(cookie secret)
  std::string csrf_hash;  // sha256_hex(CSRF token)
  std::string user;
  int64_t created_at_ns = 0;
  int64_t last_used_ns = 0;
  int64_t expires_at_ns = 0;  // absolute limit, whatever the use
};
struct NewApiToken {
  std::string secret_hash;  // sha256_hex(secret)
  std::string name;
  Role role = Role::kViewer;
  std::string created_by;
  int64_t created_at_ns = 0;
};
struct ApiTokenRow {
  int64_t id = 0;
  std::string name;
  Role role = Role::kViewer;
  std::string created_by;
  int64_t created_at_ns = 0;
  bool revoked = false;
  int64_t last_used_ns = 0;  // 0: never
};
// One line of the audit log: who did what, from where, when, and how it went.
struct AuditEntry {
  int64_t id = 0;  // set by the store: arrival order
  int64_t at_ns = 0;
  std::string actor;    // "user:NAME", "apitoken:ID", "cli:UID", or the name tried at login
  std::string address;  // the client's IP address; "" for the CLI
  std::string action;   // "login", "login-failed", "logout", "user-add", "apitoken-create", ...
  std::string target;   // what it acted on ("" when nothing)
  std::string result;   // "ok", or why it was refused / failed
};

class Store {
 public:
  virtual ~Store() = default;

  // Tokens. create_token → the new token's id. list_tokens: all, oldest first, including
  // revoked and used-up ones (the hash is not returned). revoke_token → false when no
  // token has this id (revoking twice is not an error: true).
  virtual Result<int64_t> create_token(const NewToken& t) = 0;
  virtual Result<std::vector<TokenRow>> list_tokens() = 0;
  virtual Result<bool> revoke_token(int64_t id) = 0;
  // Atomically checks and uses one enrollment of the token whose hash is `secret_hash`:
  // a single conditional UPDATE, so two enrollments racing for the last use (even from two
  // processes) cannot both win. Refused (not an error) when unknown, revoked, expired
  // (expires_at_ns <= now_ns) or used up, with the reason; errors are database failures.
  virtual Result<TokenVerdict> consume_token(std::string_view secret_hash, int64_t now_ns) = 0;

  // Agents. create_agent fails if agent_key exists. The new agent's status is kEnrolled.
  virtual Status create_agent(const NewAgent& a) = 0;
  // Atomically consumes the token and creates the agent in one transaction: either both
  // happen or neither (a database failure after the token was counted gives the use back).
  // new_agent.group and token_id are taken from the token.
  virtual Result<TokenVerdict> enroll(std::string_view secret_hash, NewAgent new_agent,
                                      int64_t now_ns) = 0;
  virtual Result<std::optional<AgentRow>> find_agent(std::string_view agent_key) = 0;
  // All agents, by enrollment time. Retired and revoked ones included.
  virtual Result<std::vector<AgentRow>> list_agents() = 0;
  // A hello on the channel that manager `manager_id` holds: stores what the agent says
  // about itself, sets status kOnline, last_seen and last_hello to now, and the agent's
  // manager_id. Returns the status before (kLost there means "recovered").
  // Fails with errnum ENOENT if no such agent.
  virtual Result<AgentStatus> agent_hello(std::string_view agent_key, const AgentInfo& info,
                                          int64_t now_ns, std::string_view manager_id) = 0;
  // The channel that manager `manager_id` held ended: sets the status (status_since = now
  // if it changed) and clears manager_id, only if the agent is still that manager's (it
  // may have reconnected to another manager meanwhile). Returns the status before, or
  // nullopt when the agent is another manager's now (nothing changed).
  Result<std::optional<AgentStatus>> release_agent(std::string_view agent_key,
                                                   std::string_view manager_id, AgentStatus s,
                                                   int64_t now_ns);
  // release_agent for many channels in ONE transaction (a thousand agents lost at once
  // cost one commit); a result per release, in order (ENOENT for an unknown agent).
  struct Release {
    std::string agent_key;
    AgentStatus status = AgentStatus::kLost;
  };
  virtual Result<std::vector<Result<std::optional<AgentStatus>>>> release_agents(
      std::span<const Release> releases, std::string_view manager_id, int64_t now_ns) = 0;
  // Any message (heartbeat, events, result): last_seen = now. ENOENT if no such agent.
  virtual Status touch_agent(std::string_view agent_key, int64_t now_ns) = 0;
  // Sets the status (status_since = now if it changed; last_seen is not touched).
  // Returns the status before. ENOENT if no such agent.
  virtual Result<AgentStatus> set_agent_status(std::string_view agent_key, AgentStatus s,
                                               int64_t now_ns) = 0;

  // Managers sharing the database. manager_heartbeat records that manager `manager_id`
  // (one per running process) is alive at now_ns. reap_agents: the agents online or
  // unhealthy whose manager is not `self_id` and has not heartbeated since
  // stale_before_ns (or never did) become lost (unhealthy ones: retired) with no manager;
  // returned as they are after the change. One statement, so of several managers reaping
  // at once, each agent is reaped by one.
  virtual Status manager_heartbeat(std::string_view manager_id, std::string_view hostname,
                                   int64_t now_ns) = 0;
  virtual Result<std::vector<AgentRow>> reap_agents(std::string_view self_id,
                                                    int64_t stale_before_ns, int64_t now_ns) = 0;
  // The agents whose latest hello, at or after since_ns, went to a manager other than
  // `self_id`: a channel `self_id` still holds for one of them has moved or is a clone's.
  virtual Result<std::vector<std::string>> hellos_elsewhere(std::string_view self_id,
                                                            int64_t since_ns) = 0;

  // Events. Stores a batch in ONE transaction: when this returns success every event in it
  // is durable (the caller may ack through InsertResult::max_sequence). Idempotent by
  // (agent_key, event.id): INSERT ... ON CONFLICT DO NOTHING, never read-before-write, so
  // a replayed batch stores nothing new. Each event must be an object with a string
  // event.id (1..128 chars) and an integer event.sequence > 0; @timestamp (RFC 3339, UTC),
  // event.action, file.path, source.ip, event.severity are extracted into indexed columns
  // when present. A malformed event fails the whole batch (nothing stored), the error
  // naming its index; so does a batch of more than 10000 events. agent_key need not be an
  // enrolled agent (the manager stores its own events under its own key).
  Result<InsertResult> insert_events(std::string_view agent_key,
                                     const std::vector<nlohmann::json>& events,
                                     int64_t received_at_ns);
  // Group commit: many agents' batches (checked and extracted already: event_columns.h)
  // and last_seen marks in ONE transaction, so a manager pays one fsync (one round trip)
  // for every batch that arrived meanwhile. On success every batch is durable, on an
  // error none is. Results are in the order of `batches`; marks of unknown agents
  // change nothing.
  virtual Result<std::vector<InsertResult>> store_batches(std::span<const AgentBatch> batches,
                                                          std::span<const SeenMark> seen,
                                                          int64_t received_at_ns) = 0;
  virtual Result<SequenceInfo> sequences(std::string_view agent_key) = 0;
  virtual Result<std::vector<EventRow>> query_events(const EventQuery& q) = 0;
  // The events matching q's filters (its paging, order and limit ignored) in `buckets`
  // (1 to kMaxHistogramBuckets) equal buckets from q.since_ns (absent: the start of the
  // oldest minute with a matching event, or with any event for a filter on an agent, a
  // path or an address) to q.until_ns (required). None: counts all zero.
  Result<EventHistogram> event_histogram(const EventQuery& q, int64_t buckets,
                                         int64_t max_rows = kMaxHistogramRows);
  // For event_histogram: the counts of the grouping (bucket index, count, max severity)
  // of the first `max_rows` matching events of [q.since_ns, q.until_ns) in width_ns
  // buckets.
  struct BucketCount {
    int64_t bucket, count, max_severity;
  };
  virtual Result<std::vector<BucketCount>> count_events(const EventQuery& q, int64_t width_ns,
                                                        int64_t max_rows) = 0;
  // The same from the per-minute rollup (event_columns.h kMinuteNs), for queries that
  // filter on nothing but time, action and severity: each minute of [q.since_ns,
  // q.until_ns) with events, and the oldest minute.
  struct MinuteCount {
    int64_t minute, count, max_severity;
  };
  virtual Result<std::vector<MinuteCount>> count_minutes(const EventQuery& q) = 0;
  virtual Result<std::optional<int64_t>> oldest_minute(const EventQuery& q) = 0;
  // The highest row id stored so far (0: none): where a live stream starts.
  virtual Result<int64_t> last_event_row() = 0;

  // Decoys. decoy_events: the hits, opens and credential uses (not the lifts) with
  // @timestamp in [since_ns, until_ns), newest first, at most `limit` (an index on time:
  // the work is what the window holds, whatever the store's size). decoy_lifts: the
  // operator's unbans at or after since_ns (lifted fleet bans and lift events), oldest
  // first, at most `limit`. Both go as their events are pruned (a lifted ban: with the
  // fleet history, prune_fleet).
  virtual Result<std::vector<DecoyEvent>> decoy_events(int64_t since_ns, int64_t until_ns,
                                                       int64_t limit) = 0;
  virtual Result<std::vector<DecoyLift>> decoy_lifts(int64_t since_ns, int64_t limit) = 0;

  // Baseline history: one row per reported root hash, which becomes the agent's current
  // one (AgentInfo::baseline_root_hash) too: reported at a hello, or by an accept since.
  virtual Status record_baseline(const BaselineRow& b) = 0;
  virtual Result<std::vector<BaselineRow>> baseline_history(std::string_view agent_key) = 0;

  // Retention: deletes what the policy allows no longer; returns how many events went.
  virtual Result<int64_t> prune(const RetentionPolicy& p, int64_t now_ns) = 0;
  // Fleet control's history before `before_ns`: bans over by then (expired, or lifted
  // with the lift pushed) and commands made before it, whatever their state (a command
  // for an agent gone that long is never delivered). Returns the rows deleted.
  virtual Result<int64_t> prune_fleet(int64_t before_ns) = 0;
  // Stored events per agent key, by key.
  virtual Result<std::vector<AgentUsage>> usage() = 0;
  // agent_key → how many of its events have @timestamp >= since_ns (one agent's only when
  // `agent_key` is set); agents with none are absent. One indexed pass, for the console's
  // agent list.
  virtual Result<std::map<std::string, int64_t>> count_events_since(
      int64_t since_ns, std::optional<std::string_view> agent_key) = 0;

  // Fleet bans. add_ban → its id. lift_bans marks every current ban of `address` lifted
  // (for the manager to push the unban) and returns how many. active_bans: neither lifted
  // nor expired at now_ns, oldest first, at most `limit`. unpushed_bans: bans to push
  // (pushed false) and lifts to push (lifted, lift_pushed false), oldest first.
  // mark_ban_pushed sets pushed, or with `lift` lift_pushed.
  virtual Result<int64_t> add_ban(const NewBan& b) = 0;
  virtual Result<int64_t> lift_bans(std::string_view address, int64_t now_ns) = 0;
  // The current ban of `address` that lasts longest (permanent first), if any.
  virtual Result<std::optional<BanRow>> find_active_ban(std::string_view address,
                                                        int64_t now_ns) = 0;
  virtual Result<std::vector<BanRow>> active_bans(int64_t now_ns, int64_t limit) = 0;
  // Bans over at now_ns (lifted, or expired), newest first, at most `limit`: the fleet's
  // ban history, until prune_fleet drops it.
  virtual Result<std::vector<BanRow>> past_bans(int64_t now_ns, int64_t limit) = 0;
  virtual Result<std::vector<BanRow>> unpushed_bans(int64_t limit) = 0;
  virtual Status mark_ban_pushed(int64_t id, bool lift) = 0;

  // Commands to agents. add_command → its id (state pending). unanswered_commands: state
  // pending or sent (on a channel that may have ended before the answer), of `agent_key`
  // (nullopt: any agent), oldest first, at most `limit`. mark_command_sent: pending or
  // sent → sent at `now_ns`. record_answer: the agent's answer to its own
  // command (the agent_key must match: an agent cannot answer for another), with the state
  // it leads to; false when no such command of that agent. find_command by id.
  // list_commands: id > after_id, of agent_key if set, oldest first, at most `limit`.
  virtual Result<int64_t> add_command(const NewCommand& c) = 0;
  // Commands sent at once on live channels (a ban to the whole fleet): recorded as sent
  // (at `sent_at_ns`) in ONE transaction, before they go out.
  virtual Status add_sent_commands(std::span<const NewCommand> cs, int64_t sent_at_ns) = 0;
  virtual Result<std::vector<CommandRow>> unanswered_commands(std::optional<std::string> agent_key,
                                                              int64_t limit) = 0;
  virtual Status mark_command_sent(std::string_view command_id, int64_t now_ns) = 0;
  virtual Result<bool> record_answer(std::string_view agent_key, std::string_view command_id,
                                     const std::string& answer_json, CommandState state,
                                     int64_t now_ns) = 0;
  virtual Result<std::optional<CommandRow>> find_command(int64_t id) = 0;
  virtual Result<std::vector<CommandRow>> list_commands(int64_t after_id,
                                                        std::optional<std::string> agent_key,
                                                        int64_t limit) = 0;

  // Users. create_user fails with errnum EEXIST if the name is taken. delete_user and
  // set_password → false when no such user; both also end the user's sessions.
  virtual Status create_user(const UserRow& u) = 0;
  virtual Result<std::optional<UserRow>> find_user(std::string_view name) = 0;
  virtual Result<std::vector<UserRow>> list_users() = 0;  // by name
  virtual Result<bool> delete_user(std::string_view name) = 0;
  virtual Result<bool> set_password(std::string_view name, std::string_view password_hash) = 0;
  // Sessions. find_session returns a session only while it is alive at now_ns (not past
  // expires_at_ns, used within idle_ns) and then records the use (last_used = now);
  // delete_session → false when none. Expired sessions are deleted by prune_sessions.
  virtual Status create_session(const SessionRow& s) = 0;
  virtual Result<std::optional<SessionRow>> use_session(std::string_view id_hash, int64_t now_ns,
                                                        int64_t idle_ns) = 0;
  virtual Result<bool> delete_session(std::string_view id_hash) = 0;
  virtual Result<int64_t> prune_sessions(int64_t now_ns, int64_t idle_ns) = 0;
  // API tokens. use_api_token: the token with that hash if not revoked (records the use).
  // revoke_api_token → false when no such id.
  virtual Result<int64_t> create_api_token(const NewApiToken& t) = 0;
  virtual Result<std::optional<ApiTokenRow>> use_api_token(std::string_view secret_hash,
                                                           int64_t now_ns) = 0;
  virtual Result<std::vector<ApiTokenRow>> list_api_tokens() = 0;  // by id, revoked included
  virtual Result<bool> revoke_api_token(int64_t id) = 0;
  // Audit log: append → the entry's id; list_audit: id > after_id, oldest first, ≤ limit.
  virtual Result<int64_t> append_audit(const AuditEntry& e) = 0;
  virtual Result<std::vector<AuditEntry>> list_audit(int64_t after_id, int64_t limit) = 0;
  // Newest first (the console): id < before_id (0: from the newest), ≤ limit.
  virtual Result<std::vector<AuditEntry>> list_audit_newest(int64_t before_id, int64_t limit) = 0;
  // Changes whenever another connection (another process: `mamori manager ban`, ...)
  // committed to the store; what the manager polls to learn of new bans and commands.
  // A store with notifications (PostgreSQL LISTEN/NOTIFY) can wake the same reader.
  virtual Result<int64_t> change_counter() = 0;
};

// Picks the implementation by the URL's scheme:
// - "sqlite:///abs/path.db" → the SQLite store (the file is created 0600; its directory
//   must exist). Refuses a relative path and a file that is not an SQLite database.
// - "postgresql://..." or "postgres://..." (a libpq connection URI, with parameters such
//   as sslmode) → the PostgreSQL store (postgres_store.h). Refuses, naming the database
//   as user@host:port/dbname and never showing the password: an invalid URL, a server it
//   cannot connect to, failed authentication.
// Either creates or migrates the schema, and refuses a schema version newer than this
// build knows; any other scheme is refused.
Result<std::unique_ptr<Store>> open_store(Env& env, const std::string& url);

}  // namespace mamori::manager
