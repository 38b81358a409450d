#pragma once
// The durable event outbox: every event becomes one record in mamori's own segment files
// (STATE/outbox/NNNNNNNNNNNNNNNN.seg, format.h, docs/formats/outbox.md), made durable
// with fdatasync() before any sink or reader is told about it. Consumers (each sink's
// follower, the events.jsonl export, later the manager link) read the segments from a
// registered cursor of their own (cursor.h, reader.h), so a slow consumer never holds up
// detection, and a segment is deleted only once every cursor has passed it.
//
// Sequence: each record gets event.sequence, one more than the record before it, also
// across restarts (recovered at open from the last intact record) and across writers.
// It is stamped when the record is written, so a gap in it means records were lost
// after they were written (a quota drop, damage): consumers report such gaps.
//
// Writes are batched: append() queues, flush() writes the batch and syncs it once. A
// batch that grows past Limits::spill_bytes is written (and synced) by append() itself,
// so a burst of events (a verify that finds 100,000 files) never waits in memory.
//
// Drop policy while writes fail (a full or unwritable state directory), in memory, by
// severity:
//   - low-severity events (Severity::kInfo: allowed files, lifecycle) are kept up to
//     Limits::max_low_bytes; past it the oldest of them are dropped;
//   - security events (notice and above: every detection and action) are never dropped
//     for low-severity ones, and are kept up to the much larger
//     Limits::max_security_bytes; only past that are the oldest of them dropped.
// Every drop is counted (dropped(), dropped_security()) and reported by an
// `events-dropped` event (critical when a security event went), written ahead of the
// next flush, so a gap in the log is itself in the log. Whatever is kept is written by
// the next flush that succeeds: a full disk delays events, it does not lose them.
//
// Disk quota (Limits::quota_bytes, all segments together), checked whenever a segment is
// closed. Past it, the policy "low severity first, oldest first": the oldest segments
// not yet passed by every cursor lose their low-severity records (the segment is
// rewritten without them, its records keep their sequence numbers); only when every
// closed segment holds security events alone are the oldest segments deleted whole.
// Each step is reported by an `outbox-dropped` event and counted (quota_dropped()); a
// consumer whose cursor pointed into the dropped records sees the gap and reports it.
//
// A write cut short (ENOSPC half-way) leaves no torn record behind: the segment is cut
// back to the last whole record, and the records that landed whole keep their sequence.
//
// Export: with Options::export_path, every record is also appended as one JSON line to
// that file (events.jsonl, the SIEM's copy, which logrotate may rotate; reopen() after a
// rotation), after the segments were synced. The export is a consumer like the others:
// when its file cannot be written (its own full disk), it falls behind and catches up
// from the segments later (failing() stays true meanwhile, so the owner retries); it is
// not fsynced, and at open it resumes after the last event.sequence its file holds, so a
// crash re-exports what the page cache lost instead of losing it.
//
// Several writers (the agent, `mamori bans` while the agent runs) may hold the same
// outbox: each flush takes an flock() on DIR/lock and first takes in what another writer
// appended since, so sequence numbers stay unique and contiguous.
//
// Threads: one owner.

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "core/event/event.h"
#include "core/event/origin.h"

namespace mamori::outbox {

struct Limits {
  uint64_t spill_bytes = 8ull << 20;
  uint64_t max_low_bytes = 64ull << 20;
  uint64_t max_security_bytes = 512ull << 20;
  uint64_t segment_bytes = 4ull << 20;  // a segment is closed once it holds about this much
  uint64_t quota_bytes = 1ull << 30;    // all segments together (agent.outbox_quota_mb)
};

struct Options {
  std::string dir;          // the segments (STATE/outbox); made 0700 if missing
  std::string export_path;  // events.jsonl; empty: no export
  Limits limits;
  // Stamps the outbox's own events (events-dropped, outbox-dropped) as the writer's
  // publisher stamps the rest; null: left unstamped (tests). Outlives the Outbox.
  const event::Origin* origin = nullptr;
};

class Outbox {
 public:
  // The export's cursor name (registered like a sink's).
  static constexpr const char* kExportCursor = "export";

  // Opens (creating) the outbox: recovers the sequence from the newest segment, cuts a
  // torn tail left by a crash, opens the export file.
  static Result<Outbox> open(Env& env, Options options);
  Outbox(Outbox&&) = default;
  Outbox& operator=(Outbox&&) = default;
  // Saves the export's cursor, so the next open (with its file rotated or moved
  // meanwhile) resumes exactly there.
  ~Outbox();

  // Queues `e`; past Limits::spill_bytes queued, writes the queue (unless the last write
  // failed: then the next flush() retries). Applies the drop policy above.
  void append(const event::Event& e);
  // Writes and syncs everything queued (and a pending drop report), then exports it. On
  // failure the events not yet in a segment stay queued.
  Status flush();
  // Closes and reopens the export path (after logrotate moved the file away).
  Status reopen();

  const std::string& dir() const { return options_.dir; }
  const std::string& export_path() const { return options_.export_path; }
  // The sequence number the next record written gets (one past the newest).
  uint64_t next_sequence() const { return next_seq_; }
  uint64_t written() const { return written_; }
  uint64_t dropped() const { return dropped_low_ + dropped_security_; }
  uint64_t dropped_security() const { return dropped_security_; }
  // Records removed from disk by the quota (low-severity, security).
  uint64_t quota_dropped() const { return quota_low_ + quota_security_; }
  uint64_t quota_dropped_security() const { return quota_security_; }
  // Records written but not yet in the export file.
  uint64_t export_behind() const { return next_seq_ - export_next_; }
  size_t queued() const { return low_.size() + security_.size(); }
  uint64_t queued_bytes() const { return low_bytes_ + security_bytes_; }
  // True while the last write failed: something waits for a retry.
  bool failing() const { return failing_; }

 private:
  Outbox(Env& env, Options options) : env_(&env), options_(std::move(options)) {}

  struct Line {
    uint64_t order;    // append order across both queues
    std::string text;  // JSON, no newline
    size_t seq_at;     // where "sequence":N, goes (just inside the top-level "event")
    uint8_t severity;
    std::string action;  // for the events-dropped report
  };
  void drop_oldest(std::deque<Line>& q, uint64_t& bytes, bool security);
  void queue_report(event::Event e);
  void queue_drop_report();
  Status recover();
  Status resync_if_changed();
  Status write_queued();
  Status write_chunk(std::string& chunk, const std::vector<size_t>& ends);
  Status roll();
  Status roll_once();
  Status collect();
  Status enforce_quota(std::vector<uint64_t>& segments, uint64_t total);
  Status export_pending();
  Status export_some();
  uint64_t export_position_from_file();

  Env* env_;
  Options options_;
  UniqueFd dir_fd_, lock_fd_, seg_fd_, export_fd_;
  uint64_t seg_first_ = 0, seg_end_ = 0;  // the newest segment and its size
  uint64_t next_seq_ = 1;
  uint64_t export_next_ = 1;
  bool collect_due_ = false;
  int64_t export_saved_ns_ = 0;
  uint64_t export_saved_ = 0;
  uint64_t next_order_ = 0;
  std::deque<Line> low_, security_;  // each in append order
  uint64_t low_bytes_ = 0, security_bytes_ = 0;
  bool failing_ = false;
  bool unsynced_ = false;   // records in the segment since the last fdatasync
  std::string export_buf_;  // records of this flush, for the export
  bool export_buf_complete_ = true;
  uint64_t export_buf_first_ = 0;
  uint64_t written_ = 0;
  uint64_t dropped_low_ = 0, dropped_security_ = 0;
  uint64_t quota_low_ = 0, quota_security_ = 0;
  // Drops not yet reported by an events-dropped event.
  uint64_t unreported_low_ = 0, unreported_security_ = 0;
  std::map<std::string, uint64_t> unreported_by_action_;
  int64_t first_unreported_ns_ = 0;
};

// The outbox of the state directory `state_dir`.
inline std::string outbox_dir(const std::string& state_dir) { return state_dir + "/outbox"; }

// Where the sequence number goes in `json` (a serialised event): just after the '{' of
// its top-level "event" object; npos when it has none.
size_t sequence_insert_point(std::string_view json);
// `json` with "sequence":seq stamped at `at`.
std::string stamp_sequence(std::string_view json, size_t at, uint64_t seq);

}  // namespace mamori::outbox
