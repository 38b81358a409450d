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
// Threads: publish(), drain(), reopen() and dropped() from the agent's main thread; the
// writer thread does the syncs and writes. mu_ guards the queue, box_mu_ the outbox.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "agent/guard/publisher.h"

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
                 std::vector<guard::Rewritten>&& rewritten) override;
  // Returns once everything published so far is written (or failed).
  void drain();
  Status reopen();
  uint64_t dropped();
  uint64_t dropped_security();
  // How often publish() had to wait for the writer (back-pressure).
  uint64_t waits();

 private:
  struct Batch {
    std::vector<event::Event> events;
    std::vector<guard::Rewritten> rewritten;
  };
  void run();

  outbox::Outbox& box_;
  const event::Origin& origin_;
  std::function<void(const Error&)> on_error_;
  std::function<void()> on_written_;
  std::mutex mu_;
  std::mutex box_mu_;
  std::condition_variable wake_, idle_, taken_;
  std::deque<Batch> queue_;
  size_t queued_events_ = 0;
  std::atomic<uint64_t> dropped_{0}, dropped_security_{0};
  uint64_t waits_ = 0;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace mamori::agent
