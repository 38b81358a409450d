#pragma once
// Publishes the guard's batches on a thread of its own: syncs the restored files, then
// writes and fdatasync()s the events (guard/publisher.h). publish() only queues, so
// a slow disk, a full one or a stalled fsync never delays the next restore.
//
// Threads: publish(), drain(), reopen() and dropped() from the agent's main thread; the
// writer thread does the syncs and writes. mu_ guards the queue, box_mu_ the outbox.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "agent/guard/publisher.h"

namespace mamori::agent {

class AsyncPublisher final : public guard::Publisher {
 public:
  // `on_error` is called on the writer thread for each failed batch (it stays queued
  // in the outbox and is retried with the next one); `on_written` after each batch is
  // durable in the outbox (the sinks follow it from there).
  AsyncPublisher(outbox::Outbox& box, std::function<void(const Error&)> on_error,
                 std::function<void()> on_written);
  ~AsyncPublisher() override;  // drains, then joins

  Status publish(std::vector<event::Event>&& events,
                 std::vector<guard::Rewritten>&& rewritten) override;
  // Returns once everything published so far is written (or failed).
  void drain();
  Status reopen();
  uint64_t dropped();

 private:
  struct Batch {
    std::vector<event::Event> events;
    std::vector<guard::Rewritten> rewritten;
  };
  void run();

  outbox::Outbox& box_;
  std::function<void(const Error&)> on_error_;
  std::function<void()> on_written_;
  std::mutex mu_;
  std::mutex box_mu_;
  std::condition_variable wake_, idle_;
  std::deque<Batch> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace mamori::agent
