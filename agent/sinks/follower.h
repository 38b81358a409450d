#pragma once
// Feeds one sink from the outbox's segments (core/outbox), on a thread of its own, so a
// sink that is slow or down never holds up the guard or another sink.
//
// The follower reads records from its registered cursor (core/outbox/cursor.h, named
// "sink.NAME": the outbox keeps every segment until the cursor has passed it), keeps the
// events the sink's filter passes, and hands them to Sink::deliver() in batches: at
// once, or gathered for `digest_s` (one mail per interval in a storm, not ten
// thousand). The cursor (the next sequence number) moves only after a batch was
// delivered, so after a crash or an outage the sink gets the batch again: at least
// once, with the event ids and sequences unchanged. A failed delivery is retried after a
// back-off that doubles from 1 s to 5 min; the batch does not grow meanwhile.
//
// Gaps: records the sink never saw because they are gone (the outbox's disk quota
// removed them while the sink was down, or damage) show as a jump in event.sequence;
// the sink then gets a `sink-gap` event naming how many it missed and their sequence
// range (mamori.gap.*), counted in stats().missed, and delivery goes on.
//
// Where it starts: at its cursor; a sink new to this machine at `start_sequence` (the
// events written from now on); a damaged cursor at the oldest record still there
// (events may come twice, none is lost silently). Upgrade from the release that
// followed events.jsonl (a "mamori-cursor 1" file at `legacy_cursor_path`): the new
// cursor starts with the segment stream, and if the old cursor had not reached the end
// of the old log the sink first gets a sink-gap (reason "upgrade") with the number of
// lines it had not delivered; then the old file is removed.
//
// Threads: the public methods may be called from any thread; deliver() runs on the
// follower's thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/sinks/sink.h"
#include "core/base/env.h"
#include "core/base/mutex.h"
#include "core/config/config.h"
#include "core/event/origin.h"
#include "core/outbox/reader.h"

namespace mamori::sinks {

struct FollowerOptions {
  std::string outbox_dir;       // the segments (STATE/outbox)
  uint64_t start_sequence = 1;  // where a new sink starts (the outbox's next_sequence())
  // The previous release's cursor (STATE/sinks/NAME.cursor) and the log it followed.
  std::string legacy_cursor_path, legacy_log_path;
  config::SinkFilter filter;
  uint32_t digest_s = 0;
  int64_t first_backoff_ms = 1000;
  int64_t max_backoff_ms = 300'000;
  // Called on the follower's thread when delivery starts or stops failing (for the
  // daemon's log), with the error text or "" when it recovered.
  std::function<void(const std::string& sink, const std::string& error)> on_state;
  // Stamps the follower's own sink-gap events like every other (null: unstamped, tests).
  const event::Origin* origin = nullptr;
};

struct FollowerStats {
  uint64_t delivered = 0;      // events the sink accepted
  uint64_t filtered = 0;       // events the filter kept from it
  uint64_t failures = 0;       // failed deliveries
  uint64_t skipped_lines = 0;  // records that were not events, damaged records skipped
  uint64_t missed = 0;         // events gone before this sink got them (sink-gap events)
  uint64_t next_sequence = 0;  // where reading stands
  uint64_t pending = 0;        // events read, waiting to be delivered
  bool failing = false;
  std::string last_error;
};

class Follower {
 public:
  static constexpr size_t kMaxBatch = 1000;  // events per deliver()
  // The cursor's name in the outbox for a sink.
  static std::string cursor_name(const std::string& sink) { return "sink." + sink; }

  Follower(Env& env, std::unique_ptr<Sink> sink, FollowerOptions options);
  ~Follower();  // stop()s

  const std::string& name() const { return sink_->name(); }
  // Starts the thread. Reading starts at the saved cursor.
  void start();
  // New events were written to the outbox.
  void notify();
  // Delivers what is pending if the sink is not in back-off (one attempt), then stops
  // and joins. Undelivered events stay in the outbox for the next start.
  void stop();
  // stop() without the join, so several followers make their last attempt in parallel.
  void request_stop();
  FollowerStats stats() const;

 private:
  int64_t now_ms() const;  // monotonic
  void run();
  void open_cursor();
  void migrate_legacy();
  void read_available();
  void add_gap(uint64_t first, uint64_t last, const char* reason, int64_t count);
  bool deliver_due(bool stopping);
  void save_cursor();

  Env& env_;
  std::unique_ptr<Sink> sink_;
  FollowerOptions options_;
  std::string cursor_;

  mutable Mutex mu_;
  CondVar wake_;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  bool dirty_ MAMORI_GUARDED_BY(mu_) = false;  // notify() since the last read
  FollowerStats stats_ MAMORI_GUARDED_BY(mu_);
  std::thread thread_;

  // Owned by the follower's thread (start() sets them up before the thread runs).
  outbox::SegmentReader reader_;
  bool gap_known_ = true;   // false after a damaged cursor: no gap before the first record
  uint64_t at_ = 0;         // the next sequence wanted: past everything read
  uint64_t committed_ = 0;  // what the saved cursor says
  uint64_t saved_ = ~0ull;
  std::vector<nlohmann::json> batch_;
  int64_t batch_started_ms_ = 0;
  int64_t next_attempt_ms_ = 0;
  int64_t backoff_ms_ = 0;
};

}  // namespace mamori::sinks
