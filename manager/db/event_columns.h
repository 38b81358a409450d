#pragma once
// What every Store implementation does to a batch of events before any SQL: check it
// against the limits and the contract of Store::insert_events (store.h) and extract the
// indexed columns from each ECS event. One place, so SQLite and PostgreSQL accept and
// refuse exactly the same batches and store exactly the same column values.
//
// Pure functions, no I/O; safe from any thread.

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/result.h"
#include "manager/db/store.h"

namespace mamori::manager {

// Above the channel's 1000 events a batch: a defence in depth, so one call cannot hold a
// write transaction for long.
inline constexpr size_t kMaxEventBatch = 10000;
inline constexpr size_t kMaxEventIdLen = 128;
// EventQuery::limit is clamped to [0, kMaxQueryLimit].
inline constexpr int64_t kMaxQueryLimit = 10000;

// Validates the whole batch and extracts its columns. Fails (naming `agent_key` and the
// index of the first bad event) on: more than kMaxEventBatch events; an event that is not
// an object; event.id not a string of 1..kMaxEventIdLen bytes; event.sequence not an
// integer > 0; @timestamp present but not an RFC 3339 time; a NUL character in an
// extracted text column (neither a path, an address nor an id has one, and PostgreSQL's
// TEXT cannot hold it); text that is not valid UTF-8.
Result<EventBatch> extract_event_batch(std::string_view agent_key,
                                       std::span<const nlohmann::json> events);

// The same, read straight from the text of a channel `events` message (core/proto
// channel.h) without building its objects: each row's json is the event's text exactly
// as received. nullopt when `text` is not a version-1 events message or not JSON at all
// (the channel's decoder then says what is wrong); an error, as extract_event_batch
// gives, when it is one whose events are not all right, or with more than
// proto::channel::kMaxEventsPerBatch events. Accepts and extracts exactly what
// decode_agent_message followed by extract_event_batch does (fuzz/fuzz_channel.cc).
// `resent`, when given, is set to the message's "resent" flag.
Result<std::optional<EventBatch>> scan_events_message(std::string_view agent_key,
                                                      std::string_view text,
                                                      bool* resent = nullptr);

// "2023-11-14T22:13:20.123456Z" (what core/event writes; any fraction length, 'Z' or a
// +hh:mm / -hh:mm offset) → nanoseconds since the Unix epoch; nullopt if malformed.
std::optional<int64_t> parse_rfc3339_ns(std::string_view s);

// The inclusive lower and exclusive upper bound of the strings that start with `prefix`,
// compared byte by byte (SQLite's BINARY, PostgreSQL's COLLATE "C"): a literal prefix
// match as a range on an index, with no LIKE wildcards to escape.
std::pair<std::string, std::string> prefix_range(std::string_view prefix);

// The chart's rollup (table event_minutes): events counted per minute of their
// @timestamp (time_ns / kMinuteNs, truncated as both databases divide), action and
// severity, added to as events are stored and taken from as they are pruned.
inline constexpr int64_t kMinuteNs = 60'000'000'000;
using MinuteCounts = std::map<std::tuple<int64_t, std::string, int64_t>, int64_t>;
// The first minute that starts at or after `ns` (the rollup's exclusive end for `ns`).
inline int64_t minute_after(int64_t ns) { return ns / kMinuteNs + (ns % kMinuteNs > 0 ? 1 : 0); }

// The error both stores give for a database whose schema is newer than the build's.
tl::unexpected<Error> schema_too_new(const std::string& database, int64_t found, int64_t known);

// e["a"]["b"]["c"] for {"a", "b", "c"}, or nullptr; the same as a string, "" when absent
// or not a string. For the few fields the manager acts on (a ban's origin, a new seal).
const nlohmann::json* json_at(const nlohmann::json& e, std::initializer_list<const char*> path);
std::string string_at(const nlohmann::json& e, std::initializer_list<const char*> path);

}  // namespace mamori::manager
