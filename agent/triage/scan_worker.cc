#include "agent/triage/scan_worker.h"

#include <utility>

namespace mamori::triage {

ScanWorker::ScanWorker(scan::Scanner& scanner, size_t max_queued)
    : scanner_(scanner), max_queued_(max_queued), thread_([this] { run(); }) {}

ScanWorker::~ScanWorker() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool ScanWorker::submit(ScanJob job) {
  {
    MutexLock lock(mu_);
    if (jobs_.size() + running_ + done_.size() >= max_queued_) {
      ++refused_;
      return false;
    }
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

std::vector<ScanDone> ScanWorker::take_done() {
  MutexLock lock(mu_);
  return std::exchange(done_, {});
}

size_t ScanWorker::outstanding() const {
  MutexLock lock(mu_);
  return jobs_.size() + running_ + done_.size();
}

uint64_t ScanWorker::refused() const {
  MutexLock lock(mu_);
  return refused_;
}

void ScanWorker::wait_idle() {
  MutexLock lock(mu_);
  idle_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return jobs_.empty() && running_ == 0; });
}

void ScanWorker::run() {
  MutexLock lock(mu_);
  while (true) {
    wake_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    ScanJob job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    ScanDone done;
    done.id = job.id;
    if (auto v = scanner_.scan_fd(job.fd.get(), job.name))
      done.verdict = std::move(*v);
    else
      done.error = v.error().message();
    job.fd.reset();
    lock.lock();
    --running_;
    done_.push_back(std::move(done));
    idle_.notify_all();
  }
}

}  // namespace mamori::triage
