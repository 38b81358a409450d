#pragma once
// The manager's own events (agent-enrolled, agent-lost, ...; dataset mamori.manager):
// stamped with the manager's origin (STATE/agent-id, its host), written to its own
// outbox (STATE/outbox, core/outbox), delivered by its [[sink]]s (agent/sinks SinkSet,
// the same code as the agent's) and copied into its store under its own agent id, as
// one more consumer of the outbox with the cursor "store" (so a store that failed
// catches up at the next report, and nothing is stored twice but by a crash between the
// insert and the cursor, which the store's idempotent insert absorbs).
//
// Threads: one owner (the server's thread); the sinks deliver on their own threads; the
// copy into the store runs where set_store_runner puts it (store_worker.h), one copy at
// a time, in order.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/config/config.h"
#include "core/event/event.h"
#include "core/event/origin.h"
#include "core/outbox/outbox.h"
#include "core/outbox/reader.h"
#include "core/proto/control.h"

namespace mamori::sinks {
class SinkSet;
}

namespace mamori::manager {

class Store;

class Reporter {
 public:
  static constexpr const char* kStoreCursor = "store";

  // Opens the outbox and starts the sinks of `config` ([[sink]]); `store` outlives it.
  static Result<std::unique_ptr<Reporter>> open(Env& env, const config::Config& config,
                                                Store& store);
  ~Reporter();  // the sinks get their last delivery attempt

  // Stamps and queues `e`; the write (durable), the sinks' notification and the copy into
  // the store follow at once, or, with a poster, in one handler for every event reported
  // meanwhile (a thousand agents lost at once cost one fsync, not a thousand). Failures
  // are logged: the outbox keeps what it could not write for the next flush.
  void report(event::Event e);
  // Runs flushes through `post` (the server's io context) from now on.
  void set_poster(std::function<void(std::function<void()>)> post) { post_ = std::move(post); }
  // Copies into the store through `run` (a thread with a store of its own) from now on;
  // an empty one: here, into the store given to open().
  using StoreRunner = std::function<void(std::function<void(Store&)>)>;
  void set_store_runner(StoreRunner run) { run_in_store_ = std::move(run); }
  void flush();

  const event::Origin& origin() const { return *origin_; }
  // Each [[sink]]'s deliveries so far (the console's Settings).
  std::vector<proto::SinkStatus> sink_status() const;

 private:
  Reporter(Env& env, Store& store);
  // Only ever on one thread at a time: reader_ is its own.
  void copy_to_store(Store& store);

  Env& env_;
  Store& store_;
  std::optional<event::Origin> origin_;  // before outbox_: the outbox stamps with it
  std::optional<outbox::Outbox> outbox_;
  std::unique_ptr<sinks::SinkSet> sinks_;
  std::optional<outbox::SegmentReader> reader_;
  std::function<void(std::function<void()>)> post_;
  StoreRunner run_in_store_;
  bool flush_posted_ = false;
};

}  // namespace mamori::manager
