#pragma once
// A thread with a database connection of its own for the manager's store chores that
// need no answer before the io thread goes on: its heartbeat row and the reaping of a
// stopped manager's agents (every second), retention (hourly), the copy of its own events
// into the store (reporter.h). SQLite has one writer: a write waits for the event
// writer's transaction in progress (seconds under load), and on the io thread that wait
// held every channel with it (docs/performance.md, "Admission control").
//
// Threads: run() from any thread; the jobs, in order, on the worker's thread, which owns
// the Store. A job hands what the io thread must do next to a poster of its own.

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "core/base/mutex.h"
#include "manager/db/store.h"

namespace mamori::manager {

class StoreWorker {
 public:
  using Job = std::function<void(Store&)>;

  explicit StoreWorker(std::unique_ptr<Store> store);
  // Runs what is queued, then joins.
  ~StoreWorker();

  void run(Job job) MAMORI_EXCLUDES(mu_);

 private:
  void loop() MAMORI_EXCLUDES(mu_);

  std::unique_ptr<Store> store_;  // the worker thread's only
  Mutex mu_;
  CondVar wake_;
  std::deque<Job> jobs_ MAMORI_GUARDED_BY(mu_);
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace mamori::manager
