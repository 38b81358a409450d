#include "manager/server/store_worker.h"

#include <utility>

#include "core/base/thread_name.h"

namespace mamori::manager {

StoreWorker::StoreWorker(std::unique_ptr<Store> store)
    : store_(std::move(store)), thread_([this] { loop(); }) {}

StoreWorker::~StoreWorker() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void StoreWorker::run(Job job) {
  {
    MutexLock lock(mu_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void StoreWorker::loop() {
  name_this_thread("mamori-store");
  for (;;) {
    Job job;
    {
      MutexLock lock(mu_);
      wake_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return !jobs_.empty() || stop_; });
      if (jobs_.empty()) return;  // stopping, and nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job(*store_);
  }
}

}  // namespace mamori::manager
