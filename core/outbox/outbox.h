#pragma once
// The durable event outbox: every event as one line of ECS JSON appended to a file
// (default /var/log/mamori/events.jsonl), made durable with fdatasync() before any sink
// or reader is told about it. Sinks (syslog, mail, webhooks, the manager) follow the file
// with a cursor of their own, so a slow sink never holds up detection.
//
// Writes are batched: append() queues, flush() writes the batch and syncs it once. When
// the disk is full or the file unwritable, the batch stays queued (bounded by
// kMaxQueuedBytes; past it the oldest are dropped and counted) and the next flush tries
// again, so a transient failure loses nothing. reopen() follows a log rotation.
//
// Threads: one owner.

#include <cstdint>
#include <deque>
#include <string>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "core/event/event.h"

namespace mamori::outbox {

class Outbox {
 public:
  static constexpr uint64_t kMaxQueuedBytes = 64ull << 20;

  // Opens (creating, mode 0600, and its directory, mode 0700) the log for appending.
  static Result<Outbox> open(Env& env, std::string path);

  void append(const event::Event& e);
  // Writes and syncs everything queued. On failure the events stay queued.
  Status flush();
  // Closes and reopens the path (after logrotate moved the file away).
  Status reopen();

  const std::string& path() const { return path_; }
  uint64_t written() const { return written_; }
  uint64_t dropped() const { return dropped_; }
  size_t queued() const { return queue_.size(); }

 private:
  Outbox(Env& env, std::string path, UniqueFd fd)
      : env_(&env), path_(std::move(path)), fd_(std::move(fd)) {}

  Env* env_;
  std::string path_;
  UniqueFd fd_;
  std::deque<std::string> queue_;  // lines with their '\n'
  uint64_t queued_bytes_ = 0;
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace mamori::outbox
