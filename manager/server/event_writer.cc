#include "manager/server/event_writer.h"

#include <algorithm>
#include <utility>

#include "core/base/thread_name.h"

namespace mamori::manager {

EventWriter::EventWriter(std::unique_ptr<Store> store, std::function<int64_t()> now_ns, Poster post,
                         std::function<void(const Error&)> on_error)
    : store_(std::move(store)),
      now_ns_(std::move(now_ns)),
      post_(std::move(post)),
      on_error_(std::move(on_error)),
      thread_([this] { run(); }) {}

EventWriter::~EventWriter() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void EventWriter::submit(std::string agent_key, EventBatch events, Done done) {
  {
    MutexLock lock(mu_);
    const size_t bytes = batch_bytes(events);
    queued_.events += events.rows.size();
    queued_.bytes += bytes;
    queue_.push_back({std::move(agent_key), std::move(events), std::move(done), bytes});
  }
  wake_.notify_one();
}

void EventWriter::note_seen(const std::string& agent_key, int64_t at_ns) {
  MutexLock lock(mu_);
  int64_t& at = seen_[agent_key];
  at = std::max(at, at_ns);
}

EventWriter::Queued EventWriter::queued() {
  MutexLock lock(mu_);
  return queued_;
}

size_t EventWriter::batch_bytes(const EventBatch& b) {
  size_t n = sizeof b + b.rows.capacity() * sizeof(EventColumns);
  for (const EventColumns& c : b.rows)
    n += c.id.capacity() + c.action.capacity() + c.path.capacity() + c.ip.capacity() +
         c.json.capacity();
  return n;
}

uint64_t EventWriter::commits() {
  MutexLock lock(mu_);
  return commits_;
}

void EventWriter::run() {
  name_this_thread("mamori-events");
  std::vector<Pending> group;
  std::vector<SeenMark> seen;
  for (;;) {
    {
      MutexLock lock(mu_);
      // Batches are written at once; marks alone wait for kSeenFlush or a batch to go with.
      wake_.wait_for(mu_, kSeenFlush,
                     [&]() MAMORI_REQUIRES(mu_) { return !queue_.empty() || stop_; });
      if (stop_ && queue_.empty() && seen_.empty()) return;
      group.swap(queue_);
      for (const auto& [key, at] : seen_) seen.push_back({key, at});
      seen_.clear();
    }
    if (group.empty() && seen.empty()) continue;
    write(group, seen);
    group.clear();
    seen.clear();
  }
}

void EventWriter::write(std::vector<Pending>& group, std::vector<SeenMark>& seen) {
  std::vector<AgentBatch> batches;
  batches.reserve(group.size());
  for (const Pending& p : group) batches.push_back({p.agent_key, &p.events});
  auto results = store_->store_batches(batches, seen, now_ns_());
  if (!results) on_error_(results.error());
  {  // Counted out before the answers go: whoever sees an answer sees the count without it.
    Queued done;
    for (const Pending& p : group) {
      done.events += p.events.rows.size();
      done.bytes += p.bytes;
    }
    MutexLock lock(mu_);
    queued_.events -= done.events;
    queued_.bytes -= done.bytes;
    ++commits_;
  }
  std::vector<Result<InsertResult>> answers;
  answers.reserve(group.size());
  for (size_t i = 0; i < group.size(); ++i)
    answers.push_back(results ? Result<InsertResult>((*results)[i])
                              : Result<InsertResult>(tl::unexpected(results.error())));
  // All the answers in one turn of the caller's thread, and the batches with them: their
  // memory was allocated there and is freed there (a free from this thread would take
  // that thread's malloc arena lock for every string, against its own allocations).
  post_([group = std::move(group), answers = std::move(answers)] {
    for (size_t i = 0; i < group.size(); ++i) group[i].done(answers[i]);
  });
  group.clear();  // moved from: valid, now empty for the next group
}

}  // namespace mamori::manager
