#include "manager/db/event_columns.h"

#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/base/json_depth.h"
#include "core/proto/channel.h"
#include "manager/db/json_scan.h"

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

std::optional<int64_t> parse_rfc3339_ns(std::string_view s) {
  // sscanf wants a terminated string: a copy on the stack at the usual length.
  std::array<char, 64> small;
  std::string large;
  const char* text = small.data();
  if (s.size() < small.size()) {
    std::memcpy(small.data(), s.data(), s.size());
    small[s.size()] = '\0';
  } else {
    large.assign(s);
    text = large.c_str();
  }
  std::tm tm{};
  int consumed = 0;
  if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
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
    if (sscanf(text + i + 1, "%2d:%2d", &hh, &mm) != 2) return std::nullopt;
    offset_s = (s[i] == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
    i += 6;
  } else if (i < s.size() && s[i] == 'Z') {
    ++i;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const time_t t = timegm(&tm);
  // Nanoseconds since 1970 in an int64 end in 1677 and 2262: a year beyond is no time.
  int64_t out = 0;
  if (__builtin_mul_overflow(static_cast<int64_t>(t) - offset_s, int64_t{1'000'000'000}, &out) ||
      __builtin_add_overflow(out, ns, &out))
    return std::nullopt;
  return out;
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

namespace {

// What a row is made of, however the event was read: each field as the event holds it
// (absent, or not of the type the column takes, leaves it empty).
struct Fields {
  std::optional<std::string> id;              // event.id, a string
  std::optional<int64_t> sequence;            // event.sequence, an integer
  std::string action, path, ip;               // event.action, file.path, source.ip, strings
  bool has_timestamp = false;                 // @timestamp, of any type
  std::optional<std::string_view> timestamp;  // @timestamp, a string (read, not kept)
  int64_t severity = 0;                       // event.severity, an integer
};

// The row of event `index`, or why there is none.
std::optional<std::string> make_row(Fields&& f, EventColumns& row) {
  if (!f.id || f.id->empty() || f.id->size() > kMaxEventIdLen || has_nul(*f.id))
    return "event.id must be a string of 1 to 128 characters, without NUL";
  if (!f.sequence || *f.sequence <= 0) return "event.sequence must be an integer > 0";
  if (has_nul(f.action) || has_nul(f.path) || has_nul(f.ip))
    return "a NUL character in event.action, file.path or source.ip";
  if (f.has_timestamp) {
    std::optional<int64_t> t = f.timestamp ? parse_rfc3339_ns(*f.timestamp) : std::nullopt;
    if (!t) return "@timestamp is not an RFC 3339 UTC time";
    row.time_ns = *t;
  }
  row.id = std::move(*f.id);
  row.sequence = *f.sequence;
  row.action = std::move(f.action);
  row.path = std::move(f.path);
  row.ip = std::move(f.ip);
  row.severity = f.severity;
  return std::nullopt;
}

tl::unexpected<Error> bad_event(std::string_view agent_key, size_t index, const std::string& why) {
  return fail_msg("store events", std::string(agent_key),
                  "event " + std::to_string(index) + ": " + why);
}

tl::unexpected<Error> too_many(std::string_view agent_key, size_t n, size_t limit) {
  return fail_msg(
      "store events", std::string(agent_key),
      "a batch of " + std::to_string(n) + " events (at most " + std::to_string(limit) + ")");
}

void add_row(EventBatch& batch, EventColumns&& row) {
  batch.max_sequence = std::max(batch.max_sequence, row.sequence);
  batch.min_sequence =
      batch.min_sequence == 0 ? row.sequence : std::min(batch.min_sequence, row.sequence);
  batch.rows.push_back(std::move(row));
}

// Reads an events message top down with a JsonScanner: the envelope's "v" and "type", and
// of each object of its "events" array the fields of Fields and its text. Keys are
// compared in place and only the columns' strings are built. Duplicate keys count as the
// parsed object counts them: the last one wins, whole (a second "event" object replaces
// the first with everything in it). A bad event is remembered and the scan goes on to the
// end: a text that is not JSON is refused as such, whatever came before.
class EventsScan {
 public:
  EventsScan(std::string_view text, std::string_view agent_key)
      : text_(text), s_(text), agent_key_(agent_key) {}

  std::optional<int64_t> version;
  bool type_is_events = false;
  bool events_is_array = false;
  bool resent = false;
  bool resent_is_boolean = true;  // when present
  EventBatch batch;
  std::optional<Error> error;  // the first bad event (or too many)

  size_t max_depth() const { return s_.max_depth(); }

  // Whether the text is JSON (the fields above are then what it holds).
  bool run() {
    if (s_.peek() != JsonScanner::Type::kObject) return false;  // not an events message
    s_.enter_object();
    JsonString key;
    while (s_.next_member(key)) {
      if (key.equals("v")) {
        version = integer();
      } else if (key.equals("type")) {
        JsonString type;
        type_is_events = string(type) && type.equals("events");
      } else if (key.equals("events")) {
        events_is_array = false;
        seen_events_ = 0;
        batch = EventBatch{};
        error.reset();
        if (s_.peek() == JsonScanner::Type::kArray) {
          events_is_array = true;
          events();
        } else {
          s_.skip();
        }
      } else if (key.equals("resent")) {
        const bool literal = s_.peek() == JsonScanner::Type::kLiteral;
        const size_t start = s_.offset();
        s_.skip();
        const std::string_view value = text_.substr(start, s_.offset() - start);
        resent = value == "true";
        resent_is_boolean = literal && (resent || value == "false");
      } else {
        s_.skip();
      }
    }
    return s_.at_end();
  }

 private:
  // The next value if it is an integer (as nlohmann reads numbers), else nothing.
  std::optional<int64_t> integer() {
    JsonNumber n;
    if (s_.peek() != JsonScanner::Type::kNumber) return s_.skip(), std::nullopt;
    if (!s_.number(n) || !n.is_integer()) return std::nullopt;
    return n.as_int64();
  }
  // The next value if it is a string, else false.
  bool string(JsonString& out) {
    if (s_.peek() != JsonScanner::Type::kString) return s_.skip(), false;
    return s_.string(out);
  }
  bool string_to(std::string& out) {
    JsonString v;
    if (!string(v)) return false;
    v.decode_to(out);
    return true;
  }
  // Whether the next value is an object, entered; else it is skipped.
  bool object() {
    if (s_.peek() != JsonScanner::Type::kObject) return s_.skip(), false;
    return s_.enter_object();
  }

  void events() {
    s_.enter_array();
    while (s_.next_element()) {
      if (s_.peek() == JsonScanner::Type::kObject) {
        event();
      } else {
        s_.skip();
        not_an_object();
      }
    }
  }

  void event() {
    const size_t start = s_.offset();
    fields_ = Fields{};
    s_.enter_object();
    JsonString key;
    while (s_.next_member(key)) {
      if (key.equals("event")) {
        fields_.id.reset();
        fields_.sequence.reset();
        fields_.action.clear();
        fields_.severity = 0;
        if (object()) event_object();
      } else if (key.equals("file")) {
        fields_.path.clear();
        if (object()) only_member("path", fields_.path);
      } else if (key.equals("source")) {
        fields_.ip.clear();
        if (object()) only_member("ip", fields_.ip);
      } else if (key.equals("@timestamp")) {
        fields_.has_timestamp = true;
        fields_.timestamp.reset();
        if (JsonString t; string(t)) {
          if (t.escaped) t.decode_to(timestamp_);
          fields_.timestamp = t.escaped ? std::string_view(timestamp_) : t.raw;
        }
      } else {
        s_.skip();
      }
    }
    if (s_.ok()) finish_event(start, s_.offset());
  }

  // The members of "event" (entered).
  void event_object() {
    JsonString key;
    while (s_.next_member(key)) {
      if (key.equals("id")) {
        fields_.id.emplace();
        if (!string_to(*fields_.id)) fields_.id.reset();
      } else if (key.equals("sequence")) {
        fields_.sequence = integer();
      } else if (key.equals("action")) {
        fields_.action.clear();
        string_to(fields_.action);
      } else if (key.equals("severity")) {
        fields_.severity = integer().value_or(0);
      } else {
        s_.skip();
      }
    }
  }

  // The string member `name` of an object (entered) into `out` (empty if it is not one).
  void only_member(std::string_view name, std::string& out) {
    JsonString key;
    while (s_.next_member(key)) {
      if (key.equals(name)) {
        out.clear();
        string_to(out);
      } else {
        s_.skip();
      }
    }
  }

  void not_an_object() {
    const size_t index = seen_events_++;
    if (!error) error = bad_event(agent_key_, index, "not a JSON object").value();
  }
  void finish_event(size_t start, size_t end) {
    const size_t index = seen_events_++;
    if (error) return;
    if (index >= proto::channel::kMaxEventsPerBatch) {
      error = too_many(agent_key_, index + 1, proto::channel::kMaxEventsPerBatch).value();
      return;
    }
    EventColumns row;
    if (auto why = make_row(std::move(fields_), row)) {
      error = bad_event(agent_key_, index, *why).value();
      return;
    }
    row.json = std::string(text_.substr(start, end - start));
    add_row(batch, std::move(row));
  }

  std::string_view text_;
  JsonScanner s_;
  std::string_view agent_key_;
  size_t seen_events_ = 0;
  Fields fields_;
  std::string timestamp_;  // an escaped @timestamp, decoded (fields_ views it)
};

}  // namespace

Result<std::optional<EventBatch>> scan_events_message(std::string_view agent_key,
                                                      std::string_view text, bool* resent) {
  if (text.size() > proto::channel::kMaxMessageBytes) return std::nullopt;
  EventsScan scan(text, agent_key);
  // Too deep for the decoder (json_depth.h), which says so.
  if (!scan.run() || scan.max_depth() > kMaxJsonDepth) return std::nullopt;
  if (scan.version != proto::channel::kVersion || !scan.type_is_events || !scan.events_is_array ||
      !scan.resent_is_boolean)
    return std::nullopt;
  if (scan.error) return tl::unexpected(std::move(*scan.error));
  if (resent) *resent = scan.resent;
  return std::optional<EventBatch>(std::move(scan.batch));
}

Result<EventBatch> extract_event_batch(std::string_view agent_key,
                                       std::span<const nlohmann::json> events) {
  EventBatch batch;
  if (events.size() > kMaxEventBatch) return too_many(agent_key, events.size(), kMaxEventBatch);
  batch.rows.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const nlohmann::json& e = events[i];
    if (!e.is_object()) return bad_event(agent_key, i, "not a JSON object");
    Fields f;
    if (const nlohmann::json* id = field(e, "event", "id"); id && id->is_string()) f.id = *id;
    if (const nlohmann::json* seq = field(e, "event", "sequence"); seq && seq->is_number_integer())
      f.sequence = seq->get<int64_t>();
    f.action = string_field(e, "event", "action");
    f.path = string_field(e, "file", "path");
    f.ip = string_field(e, "source", "ip");
    if (auto ts = e.find("@timestamp"); ts != e.end()) {
      f.has_timestamp = true;
      if (ts->is_string()) f.timestamp = ts->get_ref<const std::string&>();
    }
    if (const nlohmann::json* sev = field(e, "event", "severity"); sev && sev->is_number_integer())
      f.severity = sev->get<int64_t>();
    EventColumns row;
    if (auto why = make_row(std::move(f), row)) return bad_event(agent_key, i, *why);
    // The parsed JSON the channel hands over is valid UTF-8; an object built in the
    // process might not be, and dump() would throw.
    try {
      row.json = e.dump();
    } catch (const nlohmann::json::type_error&) {
      return bad_event(agent_key, i, "text that is not valid UTF-8");
    }
    add_row(batch, std::move(row));
  }
  return batch;
}

const nlohmann::json* json_at(const nlohmann::json& e, std::initializer_list<const char*> path) {
  const nlohmann::json* j = &e;
  for (const char* k : path) {
    if (!j->is_object()) return nullptr;
    auto it = j->find(k);
    if (it == j->end()) return nullptr;
    j = &*it;
  }
  return j;
}

std::string string_at(const nlohmann::json& e, std::initializer_list<const char*> path) {
  const nlohmann::json* j = json_at(e, path);
  return j && j->is_string() ? j->get<std::string>() : std::string();
}

}  // namespace mamori::manager
