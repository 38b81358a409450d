#pragma once
// The durable event outbox: every event as one line of ECS JSON appended to a file
// (default /var/log/mamori/events.jsonl), made durable with fdatasync() before any sink
// or reader is told about it. Sinks (syslog, mail, webhooks, the manager) follow the file
// with a cursor of their own, so a slow sink never holds up detection.
//
// Writes are batched: append() queues, flush() writes the batch and syncs it once. A
// batch that grows past Limits::spill_bytes is written (and synced) by append() itself,
// so a burst of events (a verify that finds 100,000 files) never waits in memory.
//
// Drop policy (docs/formats/events.md). Only while writes fail (a full disk, an
// unwritable file) do events stay in memory, and then by severity:
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
// A write cut short (ENOSPC half-way) leaves no torn line behind: the file is cut back
// to the last whole line, which readers may already have seen (and which stays), so no
// reader's cursor is ever past the end. reopen() follows a log rotation.
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

namespace mamori::outbox {

struct Limits {
  uint64_t spill_bytes = 8ull << 20;
  uint64_t max_low_bytes = 64ull << 20;
  uint64_t max_security_bytes = 512ull << 20;
};

class Outbox {
 public:
  // Opens (creating, mode 0600, and its directory, mode 0700) the log for appending.
  static Result<Outbox> open(Env& env, std::string path, Limits limits = {});

  // Queues `e`; past Limits::spill_bytes queued, writes the queue (unless the last write
  // failed: then the next flush() retries). Applies the drop policy above.
  void append(const event::Event& e);
  // Writes and syncs everything queued (and a pending events-dropped report). On failure
  // the events not yet in the file stay queued.
  Status flush();
  // Closes and reopens the path (after logrotate moved the file away).
  Status reopen();

  const std::string& path() const { return path_; }
  uint64_t written() const { return written_; }
  uint64_t dropped() const { return dropped_low_ + dropped_security_; }
  uint64_t dropped_security() const { return dropped_security_; }
  size_t queued() const { return low_.size() + security_.size(); }
  uint64_t queued_bytes() const { return low_bytes_ + security_bytes_; }
  // True while the last write failed: something waits for a retry.
  bool failing() const { return failing_; }

 private:
  Outbox(Env& env, std::string path, UniqueFd fd, Limits limits)
      : env_(&env), path_(std::move(path)), fd_(std::move(fd)), limits_(limits) {}

  struct Line {
    uint64_t seq;        // append order across both queues
    std::string text;    // with its '\n'
    std::string action;  // for the events-dropped report
  };
  void drop_oldest(std::deque<Line>& q, uint64_t& bytes, bool security);
  void queue_drop_report();
  Status write_queued();

  Env* env_;
  std::string path_;
  UniqueFd fd_;
  Limits limits_;
  uint64_t next_seq_ = 0;
  std::deque<Line> low_, security_;  // each in append order
  uint64_t low_bytes_ = 0, security_bytes_ = 0;
  bool failing_ = false;
  bool unsynced_ = false;  // lines in the file since the last fdatasync
  uint64_t written_ = 0;
  uint64_t dropped_low_ = 0, dropped_security_ = 0;
  // Drops not yet reported by an events-dropped event.
  uint64_t unreported_low_ = 0, unreported_security_ = 0;
  std::map<std::string, uint64_t> unreported_by_action_;
  int64_t first_unreported_ns_ = 0;
};

}  // namespace mamori::outbox
