#include "agent/app/async_publisher.h"

namespace mamori::agent {

AsyncPublisher::AsyncPublisher(outbox::Outbox& box, std::function<void(const Error&)> on_error,
                               std::function<void()> on_written)
    : box_(box),
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
    std::lock_guard lock(mu_);
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

uint64_t AsyncPublisher::dropped() {
  std::lock_guard lock(box_mu_);
  return box_.dropped();
}

void AsyncPublisher::run() {
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything is written
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
    busy_ = true;
    lock.unlock();  // publish() must never wait for a disk
    const auto synced = guard::make_durable(rewritten);
    Status flushed;
    {
      std::lock_guard box_lock(box_mu_);
      for (const auto& e : events) box_.append(e);
      flushed = box_.flush();
    }
    if (!synced) on_error_(synced.error());
    if (!flushed)
      on_error_(flushed.error());
    else if (on_written_)
      on_written_();
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_.notify_all();
  }
}

}  // namespace mamori::agent
