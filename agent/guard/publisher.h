#pragma once
// Where the guard's events go, with the restores they report. A restore is not fsync()ed
// on the real-time path (core/fs/atomic_replace.h Sync::kDeferred); a batch's events
// are made durable only after the files it restored (and their directories) are, so an
// event never claims a restore that a power cut could undo.
//
// SyncPublisher does that on the caller's thread (tests, short-lived tools).
// agent/app/async_publisher.h does it on a thread of its own, so the guard never waits
// for a disk between two restores.

#include <string>
#include <vector>

#include "core/base/result.h"
#include "core/event/event.h"
#include "core/event/origin.h"
#include "core/outbox/outbox.h"

namespace mamori::guard {

// A file the guard rewrote: `rel` beneath the root open as `root_fd`.
struct Rewritten {
  int root_fd = -1;
  std::string rel;
};

class Publisher {
 public:
  virtual ~Publisher() = default;
  // Takes a batch in order: makes `rewritten` durable, then stamps the events with the
  // agent's origin (core/event/origin.h), appends them to the outbox and makes them
  // durable.
  virtual Status publish(std::vector<event::Event>&& events,
                         std::vector<Rewritten>&& rewritten) = 0;
};

class SyncPublisher final : public Publisher {
 public:
  // Both outlive the publisher.
  SyncPublisher(outbox::Outbox& box, const event::Origin& origin) : box_(box), origin_(origin) {}
  Status publish(std::vector<event::Event>&& events, std::vector<Rewritten>&& rewritten) override;

 private:
  outbox::Outbox& box_;
  const event::Origin& origin_;
};

// fsync() of each file and its directory; past kSyncfsPast files, one syncfs() per root
// instead (a storm). A file gone again since is skipped: nothing of ours to keep.
inline constexpr size_t kSyncfsPast = 64;
Status make_durable(const std::vector<Rewritten>& rewritten);

}  // namespace mamori::guard
