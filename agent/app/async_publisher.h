#pragma once
// Publishes the guard's batches on a thread of its own: syncs the restored files, then
// writes and fdatasync()s the events (guard/publisher.h). publish() only queues, so
// a slow disk, a full one or a stalled fsync never delays a restore in progress.
//
// Back-pressure: the writer takes everything queued at the start of each round, so the
// queue only grows while a round is being written. Past kMaxQueuedEvents publish() waits
// (at most kMaxWait) for the writer to take the queue: the guard, between two batches,
// may wait for its own durable write, so a flood of events is written rather than held
// in memory. It never waits longer: a disk that hangs must not stop the guard, and then
// the queue grows (memory) with nothing dropped here; the outbox applies its drop policy
// (core/outbox/outbox.h) to what it cannot write.
//
// A failed write (a full disk) is retried every kRetryInterval even when nothing new is
// published, so events held in memory are written once space returns.
//
// Threads: publish() from any thread (the guard's batches come from the agent's main
// thread, the log watch's bans from its own thread); drain(), reopen(), dropped(),
// dropped_security() and waits() from any thread too. The writer thread does the syncs
// and writes. mu_ guards the queue, box_mu_ the outbox; the writer never holds both.

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <thread>

#include "agent/guard/publisher.h"
#include "core/base/mutex.h"

namespace mamori::agent {

class AsyncPublisher final : public guard::Publisher {
 public:
  static constexpr size_t kMaxQueuedEvents = 4096;
  static constexpr std::chrono::milliseconds kMaxWait{2000};
  static constexpr std::chrono::milliseconds kRetryInterval{1000};

  // `on_error` is called on the writer thread for each failed batch (it stays queued
  // in the outbox and is retried with the next one); `on_written` after each batch is
  // durable in the outbox (the sinks follow it from there).
  // `box` and `origin` outlive the publisher; events are stamped (core/event/origin.h)
  // on the writer thread, as they enter the outbox.
  AsyncPublisher(outbox::Outbox& box, const event::Origin& origin,
                 std::function<void(const Error&)> on_error, std::function<void()> on_written);
  ~AsyncPublisher() override;  // drains, then joins

  Status publish(std::vector<event::Event>&& events,
                 std::vector<guard::Rewritten>&& rewritten) override MAMORI_EXCLUDES(mu_);
  // Returns once everything published so far is written (or failed).
  void drain() MAMORI_EXCLUDES(mu_);
  Status reopen() MAMORI_EXCLUDES(box_mu_);
  uint64_t dropped();
  uint64_t dropped_security();
  // The outbox's figures for `mamori status` (copies kept by the writer thread).
  struct OutboxFigures {
    uint64_t next_sequence = 0;
    uint64_t quota_dropped = 0, quota_dropped_security = 0;
    uint64_t export_behind = 0;
  };
  OutboxFigures outbox_figures();
  // How often publish() had to wait for the writer (back-pressure).
  uint64_t waits() MAMORI_EXCLUDES(mu_);

 private:
  struct Batch {
    std::vector<event::Event> events;
    std::vector<guard::Rewritten> rewritten;
  };
  void run() MAMORI_EXCLUDES(mu_, box_mu_);

  Mutex mu_;
  Mutex box_mu_;
  outbox::Outbox& box_ MAMORI_GUARDED_BY(box_mu_);
  const event::Origin& origin_;
  std::function<void(const Error&)> on_error_;
  std::function<void()> on_written_;
  CondVar wake_, idle_, taken_;  // with mu_
  std::deque<Batch> queue_ MAMORI_GUARDED_BY(mu_);
  size_t queued_events_ MAMORI_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> dropped_{0}, dropped_security_{0};
  std::atomic<uint64_t> next_sequence_{0}, quota_dropped_{0}, quota_dropped_security_{0},
      export_behind_{0};
  uint64_t waits_ MAMORI_GUARDED_BY(mu_) = 0;
  bool busy_ MAMORI_GUARDED_BY(mu_) = false;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace mamori::agent
