#include "manager/db/event_columns.h"

#include <cstdio>
#include <ctime>

namespace mamori::manager {
namespace {

const nlohmann::json* field(const nlohmann::json& e, const char* a, const char* b) {
  auto it = e.find(a);
  if (it == e.end() || !it->is_object()) return nullptr;
  auto jt = it->find(b);
  return jt == it->end() ? nullptr : &*jt;
}

std::string string_field(const nlohmann::json& e, const char* a, const char* b) {
  const nlohmann::json* f = field(e, a, b);
  return f && f->is_string() ? f->get<std::string>() : std::string();
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

}  // namespace

CheckedBatches check_batches(std::span<const AgentBatch> batches) {
  CheckedBatches c;
  c.results.reserve(batches.size());
  c.extracted.reserve(batches.size());
  for (const AgentBatch& b : batches) {
    auto e = extract_event_batch(b.agent_key, b.events);
    if (!e) {
      c.results.emplace_back(tl::unexpected(std::move(e.error())));
      c.extracted.emplace_back();
      continue;
    }
    c.results.emplace_back(InsertResult{0, 0, e->max_sequence});
    c.any_rows = c.any_rows || !e->rows.empty();
    c.extracted.emplace_back(std::move(*e));
  }
  return c;
}

std::optional<int64_t> parse_rfc3339_ns(std::string_view sv) {
  const std::string s(sv);  // sscanf wants a terminated string
  std::tm tm{};
  int consumed = 0;
  if (sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
             &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t ns = 0;
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    int64_t scale = 100'000'000;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      ns += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  int64_t offset_s = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int hh = 0, mm = 0;
    if (sscanf(s.c_str() + i + 1, "%2d:%2d", &hh, &mm) != 2) return std::nullopt;
    offset_s = (s[i] == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
    i += 6;
  } else if (i < s.size() && s[i] == 'Z') {
    ++i;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const time_t t = timegm(&tm);
  return (static_cast<int64_t>(t) - offset_s) * 1'000'000'000 + ns;
}

std::pair<std::string, std::string> prefix_range(std::string_view prefix) {
  // Every valid UTF-8 string starting with the prefix sorts below prefix + U+10FFFF's
  // encoding (F4 8F BF BF), the highest code point.
  return {std::string(prefix), std::string(prefix) + "\xF4\x8F\xBF\xBF"};
}

tl::unexpected<Error> schema_too_new(const std::string& database, int64_t found, int64_t known) {
  return fail_msg("open store", database,
                  "the database's schema version " + std::to_string(found) +
                      " is newer than this mamori knows (" + std::to_string(known) +
                      "): upgrade mamori");
}

Result<EventBatch> extract_event_batch(std::string_view agent_key,
                                       std::span<const nlohmann::json> events) {
  EventBatch batch;
  if (events.size() > kMaxEventBatch)
    return fail_msg("store events", std::string(agent_key),
                    "a batch of " + std::to_string(events.size()) + " events (at most " +
                        std::to_string(kMaxEventBatch) + ")");
  batch.rows.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const nlohmann::json& e = events[i];
    auto bad = [&](const std::string& why) {
      return fail_msg("store events", std::string(agent_key),
                      "event " + std::to_string(i) + ": " + why);
    };
    if (!e.is_object()) return bad("not a JSON object");
    const nlohmann::json* id = field(e, "event", "id");
    if (!id || !id->is_string() || id->get_ref<const std::string&>().empty() ||
        id->get_ref<const std::string&>().size() > kMaxEventIdLen ||
        has_nul(id->get_ref<const std::string&>()))
      return bad("event.id must be a string of 1 to 128 characters, without NUL");
    const nlohmann::json* seq = field(e, "event", "sequence");
    if (!seq || !seq->is_number_integer() || seq->get<int64_t>() <= 0)
      return bad("event.sequence must be an integer > 0");
    EventColumns row;
    row.id = id->get<std::string>();
    row.action = string_field(e, "event", "action");
    row.path = string_field(e, "file", "path");
    row.ip = string_field(e, "source", "ip");
    if (has_nul(row.action) || has_nul(row.path) || has_nul(row.ip))
      return bad("a NUL character in event.action, file.path or source.ip");
    // The parsed JSON the channel hands over is valid UTF-8; an object built in the
    // process might not be, and dump() would throw.
    try {
      row.json = e.dump();
    } catch (const nlohmann::json::type_error&) {
      return bad("text that is not valid UTF-8");
    }
    row.sequence = seq->get<int64_t>();
    if (auto ts = e.find("@timestamp"); ts != e.end()) {
      std::optional<int64_t> t =
          ts->is_string() ? parse_rfc3339_ns(ts->get_ref<const std::string&>()) : std::nullopt;
      if (!t) return bad("@timestamp is not an RFC 3339 UTC time");
      row.time_ns = *t;
    }
    if (const nlohmann::json* sev = field(e, "event", "severity"); sev && sev->is_number_integer())
      row.severity = sev->get<int64_t>();
    batch.max_sequence = std::max(batch.max_sequence, row.sequence);
    batch.min_sequence =
        batch.min_sequence == 0 ? row.sequence : std::min(batch.min_sequence, row.sequence);
    batch.rows.push_back(std::move(row));
  }
  return batch;
}

}  // namespace mamori::manager
