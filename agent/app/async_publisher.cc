#include "agent/app/async_publisher.h"

namespace mamori::agent {

AsyncPublisher::AsyncPublisher(outbox::Outbox& box, const event::Origin& origin,
                               std::function<void(const Error&)> on_error,
                               std::function<void()> on_written)
    : box_(box),
      origin_(origin),
      on_error_(std::move(on_error)),
      on_written_(std::move(on_written)),
      thread_([this] { run(); }) {}

AsyncPublisher::~AsyncPublisher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

Status AsyncPublisher::publish(std::vector<event::Event>&& events,
                               std::vector<guard::Rewritten>&& rewritten) {
  if (events.empty() && rewritten.empty()) return ok();
  {
    std::unique_lock lock(mu_);
    if (queued_events_ >= kMaxQueuedEvents) {
      ++waits_;
      taken_.wait_for(lock, kMaxWait, [&] { return queued_events_ < kMaxQueuedEvents; });
    }
    queued_events_ += events.size();
    queue_.push_back({std::move(events), std::move(rewritten)});
  }
  wake_.notify_one();
  return ok();
}

void AsyncPublisher::drain() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

Status AsyncPublisher::reopen() {
  std::lock_guard lock(box_mu_);
  return box_.reopen();
}

// Copies kept by the writer: the guard's thread must not wait on box_mu_ (held across
// a write) to answer a status request.
uint64_t AsyncPublisher::dropped() { return dropped_.load(std::memory_order_relaxed); }

uint64_t AsyncPublisher::dropped_security() {
  return dropped_security_.load(std::memory_order_relaxed);
}

uint64_t AsyncPublisher::waits() {
  std::lock_guard lock(mu_);
  return waits_;
}

void AsyncPublisher::run() {
  std::unique_lock lock(mu_);
  bool retry = false;  // the last write failed: events wait in the outbox
  while (true) {
    if (retry)
      wake_.wait_for(lock, kRetryInterval, [&] { return stop_ || !queue_.empty(); });
    else
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && (stop_ || !retry)) return;  // stopping, everything written or tried
    // Everything queued so far as one write and one sync: a storm costs one fdatasync
    // per round, not one per event.
    std::vector<guard::Rewritten> rewritten;
    std::vector<event::Event> events;
    while (!queue_.empty()) {
      auto& b = queue_.front();
      for (auto& r : b.rewritten) rewritten.push_back(std::move(r));
      for (auto& e : b.events) events.push_back(std::move(e));
      queue_.pop_front();
    }
    queued_events_ = 0;
    taken_.notify_all();
    busy_ = true;
    lock.unlock();  // publish() waits for the writer to take its queue, never for a disk
    const auto synced = guard::make_durable(rewritten);
    Status flushed;
    const bool was_failing = retry;
    {
      std::lock_guard box_lock(box_mu_);
      for (auto& e : events) {
        origin_.stamp(e);
        box_.append(e);
      }
      flushed = box_.flush();
      retry = box_.failing();
      dropped_.store(box_.dropped(), std::memory_order_relaxed);
      dropped_security_.store(box_.dropped_security(), std::memory_order_relaxed);
    }
    if (!synced) on_error_(synced.error());
    if (!flushed && !was_failing) on_error_(flushed.error());  // once per outage, not per retry
    if (flushed && on_written_) on_written_();
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

}  // namespace mamori::agent
