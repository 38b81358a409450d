#pragma once
// Where the guard's events go, with the restores they report. A restore is not fsync()ed
// on the real-time path (core/fs/atomic_replace.h Sync::kDeferred); a batch's events
// are made durable only after the filesystems of the roots it touched are synced, so an
// event never claims a restore that a power cut could undo.
//
// SyncPublisher does that on the caller's thread (tests, short-lived tools).
// agent/app/async_publisher.h does it on a thread of its own, so the guard never waits
// for a disk between two restores.

#include <vector>

#include "core/base/result.h"
#include "core/event/event.h"
#include "core/outbox/outbox.h"

namespace mamori::guard {

class Publisher {
 public:
  virtual ~Publisher() = default;
  // Takes a batch in order: syncs the filesystems of `sync_fds`, then appends the
  // events to the outbox and makes them durable.
  virtual Status publish(std::vector<event::Event>&& events, const std::vector<int>& sync_fds) = 0;
};

class SyncPublisher final : public Publisher {
 public:
  explicit SyncPublisher(outbox::Outbox& box) : box_(box) {}
  Status publish(std::vector<event::Event>&& events, const std::vector<int>& sync_fds) override;

 private:
  outbox::Outbox& box_;
};

// syncfs() on each fd (one per filesystem is enough; duplicates cost little).
Status sync_filesystems(const std::vector<int>& fds);

}  // namespace mamori::guard
