#include "manager/db/event_columns.h"

#include <array>
#include <cstdio>
#include <ctime>
#include <iterator>

#include "core/proto/channel.h"

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

namespace {

// What a row is made of, however the event was read: each field as the event holds it
// (absent, or not of the type the column takes, leaves it empty).
struct Fields {
  std::optional<std::string> id;         // event.id, a string
  std::optional<int64_t> sequence;       // event.sequence, an integer
  std::string action, path, ip;          // event.action, file.path, source.ip, strings
  bool has_timestamp = false;            // @timestamp, of any type
  std::optional<std::string> timestamp;  // @timestamp, a string
  int64_t severity = 0;                  // event.severity, an integer
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

// Reads the text it is given one character at a time, counting them: the SAX callbacks
// below learn where an event's object starts and ends. (The parser reads one character
// past a number and keeps it; never past a '{' or a '}'.)
class CountingIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;
  CountingIterator(const char* p, size_t* count) : p_(p), count_(count) {}
  reference operator*() const { return *p_; }
  CountingIterator& operator++() {
    ++p_;
    ++*count_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const CountingIterator& o) const { return p_ == o.p_; }

 private:
  const char* p_;
  size_t* count_;
};

// The SAX reader of an events message: the envelope's "v" and "type", and of each object
// of its "events" array the fields of Fields and its text. Duplicate keys count as the
// parsed object counts them: the last one wins, whole (a second "event" object replaces
// the first with everything in it).
class EventsReader final : public nlohmann::json_sax<nlohmann::json> {
 public:
  EventsReader(std::string_view text, const size_t& consumed, std::string_view agent_key)
      : text_(text), consumed_(consumed), agent_key_(agent_key) {}

  std::optional<int64_t> version;
  std::optional<std::string> type;
  bool events_is_array = false;
  EventBatch batch;
  std::optional<Error> error;  // the first bad event (or too many); the parse goes on

  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t v) override { return integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return integer(static_cast<int64_t>(v));  // as get<int64_t>() reads it
  }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return scalar(); }
  bool string(string_t& v) override {
    if (depth_ == 1 && key_[0] == "type") type = v;
    if (in_event() && depth_ == 3 && key_[2] == "@timestamp") fields_.timestamp = v;
    if (in_event() && depth_ == 4) {
      const std::string& outer = key_[2];
      const std::string& inner = key_[3];
      if (outer == "event" && inner == "id") fields_.id = v;
      if (outer == "event" && inner == "action") fields_.action = v;
      if (outer == "file" && inner == "path") fields_.path = v;
      if (outer == "source" && inner == "ip") fields_.ip = v;
    }
    return true;
  }
  bool start_object(std::size_t) override {
    if (events_here()) {  // an event begins
      event_start_ = consumed_ - 1;
      fields_ = Fields{};
    }
    push(false);
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ > kMaxDepth) return true;
    key_[depth_ - 1] = k;
    // A key seen again replaces its value whole (as the parsed object's last one does).
    if (in_event() && depth_ == 3) {
      if (k == "event") {
        fields_.id.reset();
        fields_.sequence.reset();
        fields_.action.clear();
        fields_.severity = 0;
      } else if (k == "file") {
        fields_.path.clear();
      } else if (k == "source") {
        fields_.ip.clear();
      } else if (k == "@timestamp") {
        fields_.has_timestamp = true;
        fields_.timestamp.reset();
      }
    } else if (in_event() && depth_ == 4) {
      const std::string& outer = key_[2];
      if (outer == "event" && k == "id") fields_.id.reset();
      if (outer == "event" && k == "sequence") fields_.sequence.reset();
      if (outer == "event" && k == "action") fields_.action.clear();
      if (outer == "event" && k == "severity") fields_.severity = 0;
      if (outer == "file" && k == "path") fields_.path.clear();
      if (outer == "source" && k == "ip") fields_.ip.clear();
    } else if (depth_ == 1 && k == "v") {
      version.reset();
    } else if (depth_ == 1 && k == "type") {
      type.reset();
    } else if (depth_ == 1 && k == "events") {
      events_is_array = false;  // until its array starts
      seen_events_ = 0;
      batch = EventBatch{};
      error.reset();
    }
    return true;
  }
  bool end_object() override {
    pop();
    if (events_here()) finish_event();
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 1 && key_[0] == "events") events_is_array = true;
    if (events_here()) not_an_object();
    push(true);
    return true;
  }
  bool end_array() override {
    pop();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  static constexpr size_t kMaxDepth = 5;  // deeper keys are never looked at

  // At depth 2, directly in the top-level "events" array: each value is an event.
  bool events_here() const {
    return depth_ == 2 && events_is_array && key_[0] == "events" && is_array_[1];
  }
  // Inside an event object (depth 3 and deeper).
  bool in_event() const {
    return depth_ >= 3 && key_[0] == "events" && is_array_[1] && !is_array_[2];
  }
  void push(bool array) {
    if (depth_ < kMaxDepth) {
      is_array_[depth_] = array;
      key_[depth_].clear();
    }
    ++depth_;
  }
  void pop() { --depth_; }
  bool scalar() {
    if (events_here()) not_an_object();
    return true;
  }
  bool integer(int64_t v) {
    if (depth_ == 1 && key_[0] == "v") version = v;
    if (in_event() && depth_ == 4 && key_[2] == "event") {
      if (key_[3] == "sequence") fields_.sequence = v;
      if (key_[3] == "severity") fields_.severity = v;
    }
    return scalar();
  }
  void not_an_object() {
    const size_t index = seen_events_++;
    if (!error) error = bad_event(agent_key_, index, "not a JSON object").value();
  }
  void finish_event() {
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
    row.json = std::string(text_.substr(event_start_, consumed_ - event_start_));
    add_row(batch, std::move(row));
  }

  std::string_view text_;
  const size_t& consumed_;
  std::string_view agent_key_;
  size_t depth_ = 0;
  std::array<std::string, kMaxDepth> key_;
  std::array<bool, kMaxDepth> is_array_{};
  size_t event_start_ = 0;
  size_t seen_events_ = 0;
  Fields fields_;
};

}  // namespace

Result<std::optional<EventBatch>> scan_events_message(std::string_view agent_key,
                                                      std::string_view text) {
  if (text.size() > proto::channel::kMaxMessageBytes) return std::nullopt;
  size_t consumed = 0;
  EventsReader reader(text, consumed, agent_key);
  CountingIterator first(text.data(), &consumed), last(text.data() + text.size(), &consumed);
  if (!nlohmann::json::sax_parse(first, last, &reader)) return std::nullopt;
  if (reader.version != proto::channel::kVersion || reader.type != "events" ||
      !reader.events_is_array)
    return std::nullopt;
  if (reader.error) return tl::unexpected(std::move(*reader.error));
  return std::optional<EventBatch>(std::move(reader.batch));
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
      if (ts->is_string()) f.timestamp = ts->get<std::string>();
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
