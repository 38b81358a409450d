#include "manager/db/store.h"

#include <algorithm>

#include "core/hash/sha256.h"
#include "manager/db/event_columns.h"
#include "manager/db/postgres_store.h"
#include "manager/db/sqlite_store.h"

namespace mamori::manager {

std::string sha256_hex(std::string_view secret) { return hash::sha256(secret).hex(); }

Result<InsertResult> Store::insert_events(std::string_view agent_key,
                                          const std::vector<nlohmann::json>& events,
                                          int64_t received_at_ns) {
  const EventBatch rows = MAMORI_TRY(extract_event_batch(agent_key, events));
  const AgentBatch batch{agent_key, &rows};
  return MAMORI_TRY(store_batches({&batch, 1}, {}, received_at_ns)).front();
}

Result<EventHistogram> Store::event_histogram(const EventQuery& q, int64_t buckets,
                                              int64_t max_rows) {
  if (!q.until_ns || buckets < 1 || buckets > kMaxHistogramBuckets)
    return tl::unexpected(Error{"histogram", "", EINVAL, "needs an end and 1 to 500 buckets"});
  // Time, action and severity alone, in buckets of a minute or more: the per-minute
  // rollup answers, whatever the store holds; a bucket then counts the minutes that start
  // in it (and the first, the minute that holds its start).
  const bool rollup_filters = !q.agent_key && !q.group && !q.path_prefix && !q.source_ip &&
                              !q.min_sequence && !q.decoy && q.after_row == 0;
  EventQuery range = q;
  if (!range.since_ns) {
    // The rollup's oldest minute: for other filters, the oldest of any event (a scan for
    // the oldest match could read every event).
    auto oldest = MAMORI_TRY(oldest_minute(rollup_filters ? q : EventQuery{}));
    range.since_ns = oldest ? *oldest * kMinuteNs : *q.until_ns - 1;
  }
  int64_t span = 0;  // an agent's clock may say anything: no overflow on its times
  if (__builtin_sub_overflow(*range.until_ns, *range.since_ns, &span) || span <= 0)
    return tl::unexpected(Error{"histogram", "", EINVAL, "the start is not before the end"});
  EventHistogram h;
  h.since_ns = *range.since_ns;
  h.width_ns = span / buckets + (span % buckets ? 1 : 0);  // the last bucket reaches the end
  h.counts.assign(static_cast<size_t>(buckets), 0);
  h.max_severity.assign(static_cast<size_t>(buckets), 0);
  auto add = [&](int64_t bucket, int64_t count, int64_t severity) {
    if (bucket < 0 || bucket >= buckets) return;
    h.counts[static_cast<size_t>(bucket)] += count;
    auto& worst = h.max_severity[static_cast<size_t>(bucket)];
    worst = std::max(worst, severity);
  };
  if (rollup_filters && h.width_ns >= kMinuteNs) {
    for (const auto& m : MAMORI_TRY(count_minutes(range))) {
      // The minute that holds the start counts in the first bucket.
      const int64_t start = std::max(m.minute * kMinuteNs, h.since_ns);
      add((start - h.since_ns) / h.width_ns, m.count, m.max_severity);
    }
  } else {
    int64_t counted = 0;
    for (const auto& b : MAMORI_TRY(count_events(range, h.width_ns, max_rows + 1))) {
      add(b.bucket, b.count, b.max_severity);
      counted += b.count;
    }
    h.complete = counted <= max_rows;
  }
  return h;
}

Result<std::optional<AgentStatus>> Store::release_agent(std::string_view agent_key,
                                                        std::string_view manager_id, AgentStatus s,
                                                        int64_t now_ns) {
  const Release r{std::string(agent_key), s};
  auto results = MAMORI_TRY(release_agents({&r, 1}, manager_id, now_ns));
  return std::move(results.front());
}

std::string_view to_string(TokenRefusal r) {
  switch (r) {
    case TokenRefusal::kNone:
      return "accepted";
    case TokenRefusal::kUnknown:
      return "unknown";
    case TokenRefusal::kRevoked:
      return "revoked";
    case TokenRefusal::kExpired:
      return "expired";
    case TokenRefusal::kUsedUp:
      return "used-up";
  }
  return "unknown";
}

TokenRefusal token_refusal(bool revoked, std::optional<int64_t> expires_at_ns, int64_t now_ns) {
  if (revoked) return TokenRefusal::kRevoked;
  if (expires_at_ns && *expires_at_ns <= now_ns) return TokenRefusal::kExpired;
  return TokenRefusal::kUsedUp;
}

std::string_view to_string(AgentStatus s) {
  switch (s) {
    case AgentStatus::kEnrolled:
      return "enrolled";
    case AgentStatus::kOnline:
      return "online";
    case AgentStatus::kUnhealthy:
      return "unhealthy";
    case AgentStatus::kLost:
      return "lost";
    case AgentStatus::kStopped:
      return "stopped";
    case AgentStatus::kRetired:
      return "retired";
    case AgentStatus::kRevoked:
      return "revoked";
  }
  return "enrolled";
}

std::optional<AgentStatus> parse_agent_status(std::string_view s) {
  for (AgentStatus a :
       {AgentStatus::kEnrolled, AgentStatus::kOnline, AgentStatus::kUnhealthy, AgentStatus::kLost,
        AgentStatus::kStopped, AgentStatus::kRetired, AgentStatus::kRevoked})
    if (to_string(a) == s) return a;
  return std::nullopt;
}

Result<std::unique_ptr<Store>> open_store(Env&, const std::string& url) {
  constexpr std::string_view kSqlite = "sqlite://";
  if (url.starts_with("postgresql://") || url.starts_with("postgres://"))
    return open_postgres_store(url);
  // Not echoed: an unknown scheme may still carry a password.
  if (!url.starts_with(kSqlite))
    return fail_msg("open store", "database URL",
                    "unsupported database URL: sqlite:///abs/path.db or postgresql://...");
  const std::string path = url.substr(kSqlite.size());
  if (path.empty() || path[0] != '/')
    return fail_msg("open store", url, "the SQLite path must be absolute: sqlite:///abs/path.db");
  return open_sqlite_store(path);
}

std::string_view to_string(CommandState s) {
  switch (s) {
    case CommandState::kPending:
      return "pending";
    case CommandState::kSent:
      return "sent";
    case CommandState::kOk:
      return "ok";
    case CommandState::kRefused:
      return "refused";
    case CommandState::kFailed:
      return "failed";
  }
  return "pending";
}

std::optional<CommandState> parse_command_state(std::string_view s) {
  for (auto c : {CommandState::kPending, CommandState::kSent, CommandState::kOk,
                 CommandState::kRefused, CommandState::kFailed})
    if (to_string(c) == s) return c;
  return std::nullopt;
}

std::string_view to_string(Role r) {
  switch (r) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

std::optional<Role> parse_role(std::string_view s) {
  for (Role r : {Role::kViewer, Role::kOperator, Role::kAdmin})
    if (to_string(r) == s) return r;
  return std::nullopt;
}

}  // namespace mamori::manager
