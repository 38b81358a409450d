#pragma once
// One security event: a detection or an action, in Elastic Common Schema field names
// (event.action, file.path, process.pid, user.name, ...; mamori.* for the rest), so it
// drops into a SIEM without a mapping. Events are data: they go to the outbox
// (core/outbox), never to a log line. Where they come from (agent.*, host.*,
// event.dataset, event.created) is stamped where they enter the event log
// (core/event/origin.h), not here: an Event is only what happened.

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mamori::event {

// ECS event.severity: a number, higher is worse; event.kind follows from it.
enum class Severity : int { kInfo = 1, kNotice = 3, kWarning = 5, kCritical = 7 };

class Event {
 public:
  // `action` is event.action ("file-restored", "tamper-storm", ...); the id is fresh (the
  // time in ms, then 80 random bits: 32 hex digits), stable across every sink and retry.
  Event(std::string_view action, Severity severity, int64_t time_ns);
  // The same with an id made earlier (evidence kept before its event was written).
  Event(std::string id, std::string_view action, Severity severity, int64_t time_ns);
  static std::string new_id();

  // Sets a field by its dotted ECS name: set("file.path", "wp/index.php").
  // Strings may hold any bytes: invalid UTF-8 is escaped when serialised.
  Event& set(std::string_view dotted, nlohmann::json value);
  Event& message(std::string text) { return set("message", std::move(text)); }
  Event& outcome(std::string_view o) { return set("event.outcome", std::string(o)); }

  const std::string& id() const { return id_; }
  const std::string& action() const { return action_; }
  Severity severity() const { return severity_; }
  const nlohmann::json& fields() const { return fields_; }
  // Looks up a dotted field; null when absent.
  const nlohmann::json& get(std::string_view dotted) const;

  // One line of JSON, no trailing newline. Invalid UTF-8 becomes U+FFFD; the exact
  // bytes of a path are kept beside it in mamori.*_b64 when they differ.
  std::string to_json_line() const;

 private:
  std::string id_;
  std::string action_;
  Severity severity_;
  nlohmann::json fields_ = nlohmann::json::object();
};

// ECS time text: UTC, microseconds ("2023-11-14T22:13:20.123456Z").
std::string iso_time(int64_t ns);

}  // namespace mamori::event
