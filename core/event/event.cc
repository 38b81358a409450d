#include "core/event/event.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "core/base/env.h"

namespace mamori::event {
namespace {

// 48 bits of milliseconds since the epoch, then 80 random bits, as 32 hex digits: an
// agent's ids grow with time, so the manager's unique (agent, id) index takes each new one
// next to the agent's last instead of on a random page of an index larger than its cache.
// 80 random bits still make two ids of one agent in one millisecond differ.
std::string fresh_id() {
  uint8_t raw[16] = {};
  const auto ms = static_cast<uint64_t>(SystemClock().now_ns() / 1'000'000);
  for (int i = 0; i < 6; ++i) raw[i] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
  size_t got = 6;
  while (got < sizeof raw) {
    const ssize_t n = ::getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0 && errno == EINTR) continue;
    // Never a made-up id: the manager stores an event once per (agent, id), so a repeated
    // one would be dropped as already stored.
    if (n <= 0) {
      std::fprintf(stderr, "mamori: getrandom failed for an event id: %s\n", std::strerror(errno));
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
  std::string out;
  for (uint8_t b : raw) out += fmt::format("{:02x}", b);
  return out;
}

}  // namespace

std::string iso_time(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1'000'000'000);
  struct tm tm {};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, (ns % 1'000'000'000) / 1000);
}

namespace {

std::string_view kind_for(Severity s) { return s >= Severity::kWarning ? "alert" : "event"; }

}  // namespace

std::string Event::new_id() { return fresh_id(); }

Event::Event(std::string_view action, Severity severity, int64_t time_ns)
    : Event(fresh_id(), action, severity, time_ns) {}

Event::Event(std::string id, std::string_view action, Severity severity, int64_t time_ns)
    : id_(std::move(id)), action_(action), severity_(severity) {
  set("@timestamp", iso_time(time_ns));
  set("ecs.version", "8.11.0");
  set("event.id", id_);
  set("event.action", std::string(action));
  set("event.kind", std::string(kind_for(severity)));
  set("event.severity", static_cast<int>(severity));
  set("event.module", "mamori");
}

Event& Event::set(std::string_view dotted, nlohmann::json value) {
  nlohmann::json* node = &fields_;
  size_t start = 0;
  for (size_t dot = dotted.find('.'); dot != std::string_view::npos;
       dot = dotted.find('.', start)) {
    // "@timestamp" and friends have no dots; ECS names never start or end with one.
    node = &(*node)[std::string(dotted.substr(start, dot - start))];
    if (!node->is_object()) *node = nlohmann::json::object();
    start = dot + 1;
  }
  (*node)[std::string(dotted.substr(start))] = std::move(value);
  return *this;
}

const nlohmann::json& Event::get(std::string_view dotted) const {
  static const nlohmann::json kNull;
  const nlohmann::json* node = &fields_;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    const std::string key(dotted.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (!node->is_object()) return kNull;
    auto it = node->find(key);
    if (it == node->end()) return kNull;
    node = &*it;
    if (dot == std::string_view::npos) return *node;
    start = dot + 1;
  }
}

std::string Event::to_json_line() const {
  // Paths come from the filesystem and may be any bytes; replace keeps the line valid
  // JSON. Callers that need the exact bytes add them base64-encoded (mamori.path_b64).
  return fields_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mamori::event
