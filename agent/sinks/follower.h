#pragma once
// Feeds one sink from the outbox file (core/outbox), on a thread of its own, so a sink
// that is slow or down never holds up the guard or another sink.
//
// The follower reads complete lines from its cursor, keeps the events the sink's filter
// passes, and hands them to Sink::deliver() in batches: at once, or gathered for
// `digest_s` (one mail per interval in a storm, not ten thousand). The cursor (file
// identity + offset, STATE/sinks/NAME.cursor, replaced atomically) moves only after a
// batch was delivered, so after a crash or an outage the sink gets the batch again: at
// least once, with the event ids unchanged. A failed delivery is retried after a
// back-off that doubles from 1 s to 5 min; the batch does not grow meanwhile.
//
// Rotation: the follower keeps reading the file it has open until the agent reopens the
// log (outbox_reopened(); every write before the reopen went to the old file), then
// finishes the old file and starts the new one at offset 0. A file shorter than the
// cursor, or one whose last read line is no longer where it was, was truncated in place
// (copytruncate): it is read from the start. At start-up a
// cursor whose file was rotated away is looked for as PATH.1 (logrotate's name).
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
#include "core/base/unique_fd.h"
#include "core/config/config.h"

namespace mamori::sinks {

struct FollowerOptions {
  std::string outbox_path;  // the event log
  std::string cursor_path;  // where this sink's cursor is kept
  config::SinkFilter filter;
  uint32_t digest_s = 0;
  int64_t first_backoff_ms = 1000;
  int64_t max_backoff_ms = 300'000;
  // Called on the follower's thread when delivery starts or stops failing (for the
  // daemon's log), with the error text or "" when it recovered.
  std::function<void(const std::string& sink, const std::string& error)> on_state;
};

struct FollowerStats {
  uint64_t delivered = 0;      // events the sink accepted
  uint64_t filtered = 0;       // events the filter kept from it
  uint64_t failures = 0;       // failed deliveries
  uint64_t skipped_lines = 0;  // lines that were not events (torn tails, garbage)
  uint64_t pending = 0;        // events read, waiting to be delivered
  bool failing = false;
  std::string last_error;
};

class Follower {
 public:
  static constexpr size_t kMaxBatch = 1000;         // events per deliver()
  static constexpr size_t kMaxLineBytes = 4 << 20;  // longer lines are skipped

  Follower(Env& env, std::unique_ptr<Sink> sink, FollowerOptions options);
  ~Follower();  // stop()s

  const std::string& name() const { return sink_->name(); }
  // Starts the thread. Reading starts at the saved cursor.
  void start();
  // New events were written to the outbox.
  void notify();
  // The agent reopened the outbox path (after a rotation).
  void outbox_reopened();
  // Delivers what is pending if the sink is not in back-off (one attempt), then stops
  // and joins. Undelivered events stay in the outbox for the next start.
  void stop();
  // stop() without the join, so several followers make their last attempt in parallel.
  void request_stop();
  FollowerStats stats() const;

 private:
  // Where reading stopped, and a fingerprint of the line that ends there: a file
  // truncated and written again past the offset (copytruncate) no longer has that line
  // there.
  struct Cursor {
    uint64_t dev = 0, ino = 0, offset = 0;
    uint64_t last_len = 0, last_hash = 0;
  };
  bool still_there(const Cursor& c) const;
  int64_t now_ms() const;  // monotonic
  void run();
  bool open_at_cursor();
  void read_available();
  bool deliver_due(bool stopping);
  void save_cursor();
  void finish_rotation();

  Env& env_;
  std::unique_ptr<Sink> sink_;
  FollowerOptions options_;

  mutable Mutex mu_;
  CondVar wake_;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  bool dirty_ MAMORI_GUARDED_BY(mu_) = false;  // notify() since the last read
  uint64_t reopen_generation_ MAMORI_GUARDED_BY(mu_) = 0;
  FollowerStats stats_ MAMORI_GUARDED_BY(mu_);
  std::thread thread_;

  // Owned by the follower's thread.
  UniqueFd fd_;
  Cursor at_;         // the open file and how far it was read
  Cursor committed_;  // what the saved cursor says
  uint64_t seen_generation_ = 0;
  std::string partial_;  // the start of a line whose end is not written yet
  bool skipping_long_line_ = false;
  std::vector<nlohmann::json> batch_;
  int64_t batch_started_ms_ = 0;
  int64_t next_attempt_ms_ = 0;
  int64_t backoff_ms_ = 0;
};

}  // namespace mamori::sinks
