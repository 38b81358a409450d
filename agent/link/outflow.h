#pragma once
// The events on their way to the manager: read from the outbox (core/outbox/reader.h)
// from the link's own registered cursor `manager`, cut into batches, and kept track of
// until the manager acknowledges them. The cursor moves only on an ack ("every event
// with sequence <= N is durably stored"), so a connection lost, a manager restarted or
// an agent killed means the unacknowledged events are sent again: at least once, with
// their ids and sequences unchanged (the manager stores them idempotently).
//
// Backpressure: at most `max_in_flight` batches are sent and not yet acknowledged; past
// that next_batch() gives nothing, so a slow manager slows the link and nothing else
// (the outbox keeps the segments the cursor has not passed, up to its quota).
//
// Threads: one owner (the link's thread); open() on the caller's thread before that.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/outbox/reader.h"

namespace mamori::link {

struct OutflowOptions {
  std::string outbox_dir;
  std::string cursor = "manager";
  uint64_t start_sequence = 1;   // where a link new to this outbox starts (next_sequence())
  size_t max_events = 500;       // per batch
  size_t max_bytes = 1u << 20;   // per batch, the events' JSON
  size_t max_in_flight = 4;      // batches sent and not yet acknowledged
  int64_t save_every_ms = 1000;  // the cursor file is rewritten at most this often
};

struct Batch {
  std::string events;  // the JSON array of the events: "[{...},{...}]"
  size_t count = 0;
  uint64_t first = 0, last = 0;  // sequences
};

// The channel's `events` message carrying `b` (proto::channel::Events' JSON form, built
// from the records' text without parsing them again), marked `resent` when it is the
// first batch after the manager's resend.
std::string events_frame(const Batch& b, bool resent = false);

class Outflow {
 public:
  Outflow(Env& env, OutflowOptions options);

  // Registers the cursor (at start_sequence when it is new, so the outbox keeps every
  // segment from there on; a damaged cursor: from the oldest record kept).
  Status open();
  // Unregisters it (the link was taken out of the config: it must not hold segments).
  static Status remove(const std::string& outbox_dir, const std::string& cursor = "manager");

  // A new connection, or the manager's resend: everything not acknowledged will be sent
  // again.
  void rewind();
  // The next batch to send, or nullopt when the window is full or nothing new was
  // written. Records that are not JSON objects are skipped (counted).
  Result<std::optional<Batch>> next_batch();
  // The manager stored every event through `through`. False (nothing moves) for an ack
  // beyond what was sent on this connection: a manager that acks what it never got is
  // broken, and trusting it would lose events.
  bool ack(uint64_t through);
  // Writes the cursor if it moved (at most every save_every_ms unless `force`).
  Status save(bool force);

  uint64_t cursor() const { return committed_; }   // the next sequence not acknowledged
  uint64_t sent_through() const { return sent_; }  // one past the last sequence sent
  size_t in_flight() const { return in_flight_.size(); }
  uint64_t events_sent() const { return events_sent_; }
  uint64_t events_acked() const { return events_acked_; }
  uint64_t skipped() const { return skipped_; }

 private:
  Env& env_;
  OutflowOptions o_;
  outbox::SegmentReader reader_;
  uint64_t committed_ = 0;  // acknowledged: the cursor
  uint64_t saved_ = ~0ull;
  int64_t saved_ms_ = 0;
  uint64_t sent_ = 0;  // reading stands here (one past the last record sent)
  struct InFlight {
    uint64_t last;               // the last record read for it (events or not)
    std::vector<uint64_t> seqs;  // its events not acknowledged yet, ascending
  };
  std::deque<InFlight> in_flight_;
  uint64_t events_sent_ = 0, events_acked_ = 0, skipped_ = 0;
};

}  // namespace mamori::link
