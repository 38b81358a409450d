#pragma once
// A sink delivers events from the outbox (core/outbox) to somewhere people or programs
// watch: syslog, e-mail, a webhook. Sinks never see the guard: a worker thread per sink
// (agent/sinks/follower.h) reads the outbox file from the sink's own cursor, filters, and
// hands each batch to deliver(); the cursor moves only after deliver() succeeded, so a
// sink that is down gets its events later (at least once; receivers deduplicate on
// event.id).
//
// Threads: deliver() is called from the sink's worker thread only. It must give up
// within its configured timeout: it never blocks forever.

#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/base/result.h"

namespace mamori::sinks {

class Sink {
 public:
  virtual ~Sink() = default;
  // The configured name (sink.name), for messages and the cursor file.
  virtual const std::string& name() const = 0;
  // Delivers `events` (parsed outbox lines, in order). An error means none may be
  // assumed delivered: the batch is offered again after a back-off.
  virtual Status deliver(std::span<const nlohmann::json> events) = 0;
};

// A field of an outbox event by its dotted ECS name ("file.path"): the events are
// nested JSON objects. Null when absent.
const nlohmann::json& field(const nlohmann::json& event, std::string_view dotted);
// The field as text: strings as they are, numbers and booleans printed, arrays joined
// with ", "; empty when absent.
std::string text(const nlohmann::json& event, std::string_view dotted);

}  // namespace mamori::sinks
