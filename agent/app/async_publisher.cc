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
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

Status AsyncPublisher::publish(std::vector<event::Event>&& events,
                               std::vector<guard::Rewritten>&& rewritten) {
  if (events.empty() && rewritten.empty()) return ok();
  {
    MutexLock lock(mu_);
    if (queued_events_ >= kMaxQueuedEvents) {
      ++waits_;
      taken_.wait_for(mu_, kMaxWait,
                      [&]() MAMORI_REQUIRES(mu_) { return queued_events_ < kMaxQueuedEvents; });
    }
    queued_events_ += events.size();
    queue_.push_back({std::move(events), std::move(rewritten)});
  }
  wake_.notify_one();
  return ok();
}

void AsyncPublisher::drain() {
  MutexLock lock(mu_);
  idle_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return queue_.empty() && !busy_; });
}

Status AsyncPublisher::reopen() {
  MutexLock lock(box_mu_);
  return box_.reopen();
}

// Copies kept by the writer: the guard's thread must not wait on box_mu_ (held across
// a write) to answer a status request.
uint64_t AsyncPublisher::dropped() { return dropped_.load(std::memory_order_relaxed); }

uint64_t AsyncPublisher::dropped_security() {
  return dropped_security_.load(std::memory_order_relaxed);
}

AsyncPublisher::OutboxFigures AsyncPublisher::outbox_figures() {
  constexpr auto r = std::memory_order_relaxed;
  return {next_sequence_.load(r), quota_dropped_.load(r), quota_dropped_security_.load(r),
          export_behind_.load(r)};
}

uint64_t AsyncPublisher::waits() {
  MutexLock lock(mu_);
  return waits_;
}

void AsyncPublisher::run() {
  MutexLock lock(mu_);
  bool retry = false;  // the last write failed: events wait in the outbox
  const auto woken = [&]() MAMORI_REQUIRES(mu_) { return stop_ || !queue_.empty(); };
  while (true) {
    if (retry)
      wake_.wait_for(mu_, kRetryInterval, woken);
    else
      wake_.wait(mu_, woken);
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
      MutexLock box_lock(box_mu_);
      for (auto& e : events) {
        origin_.stamp(e);
        box_.append(e);
      }
      flushed = box_.flush();
      retry = box_.failing();
      dropped_.store(box_.dropped(), std::memory_order_relaxed);
      dropped_security_.store(box_.dropped_security(), std::memory_order_relaxed);
      next_sequence_.store(box_.next_sequence(), std::memory_order_relaxed);
      quota_dropped_.store(box_.quota_dropped(), std::memory_order_relaxed);
      quota_dropped_security_.store(box_.quota_dropped_security(), std::memory_order_relaxed);
      export_behind_.store(box_.export_behind(), std::memory_order_relaxed);
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
