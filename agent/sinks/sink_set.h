#pragma once
// Every configured [[sink]], each with its follower (follower.h), started and stopped as
// one. Cursors are the outbox's (STATE/outbox/cursors/sink.NAME.cursor); the cursor of a
// sink no longer configured is removed at start, so it holds no segment.
//
// Threads: notify() from any thread (the event writer calls
// notify() after each durable batch); the rest from the owner.

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/sinks/follower.h"
#include "core/base/env.h"
#include "core/base/result.h"
#include "core/config/config.h"
#include "core/proto/control.h"

namespace mamori::sinks {

// Builds the sink a [[sink]] table describes (checks what can be checked without the
// network: addresses, password files).
Result<std::unique_ptr<Sink>> make_sink(const config::SinkConfig& config);

class SinkSet {
 public:
  using OnState = std::function<void(const std::string& sink, const std::string& error)>;
  // Builds every sink and starts its follower on the outbox in `outbox_dir`, a new sink
  // at `start_sequence` (the outbox's next_sequence()). Fails, starting none, when a
  // sink's configuration cannot work. `origin` (stamped on the followers' own sink-gap
  // events) outlives the set.
  static Result<std::unique_ptr<SinkSet>> start(Env& env, const config::Config& config,
                                                const std::string& outbox_dir,
                                                uint64_t start_sequence,
                                                const event::Origin& origin, OnState on_state);
  ~SinkSet();  // stop()s

  void notify();
  // Each follower gets one last delivery attempt, then stops.
  void stop();
  // One per sink, in config order (the status document's "sinks").
  std::vector<proto::SinkStatus> status() const;
  size_t size() const { return followers_.size(); }

 private:
  std::vector<std::unique_ptr<Follower>> followers_;
  std::vector<config::SinkType> types_;
};

}  // namespace mamori::sinks
