#include "agent/heal/hook_runner.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace mamori::heal {

HookRunner::HookRunner(std::vector<std::string> argv, std::chrono::milliseconds timeout)
    : argv_(std::move(argv)),
      timeout_(timeout),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      thread_([this] { thread_main(); }) {}

HookRunner::~HookRunner() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  changed_.notify_all();
  const uint64_t one = 1;
  if (wake_.valid()) (void)!::write(wake_.get(), &one, sizeof one);
  thread_.join();
}

bool HookRunner::start(std::string input, std::vector<std::string> env) {
  {
    MutexLock lock(mu_);
    if (stopping_ || queue_.size() >= kMaxQueued) return false;
    queue_.push_back({std::move(input), std::move(env)});
  }
  changed_.notify_all();
  return true;
}

std::vector<HookResult> HookRunner::take_results() {
  MutexLock lock(mu_);
  return std::exchange(results_, {});
}

size_t HookRunner::running() const {
  MutexLock lock(mu_);
  return queue_.size() + (busy_ ? 1 : 0);
}

void HookRunner::wait_idle_for_test() {
  MutexLock lock(mu_);
  changed_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return queue_.empty() && !busy_; });
}

void HookRunner::thread_main() {
  MutexLock lock(mu_);
  while (true) {
    changed_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    HookResult result = exec::run_command(argv_, job.input, job.env, timeout_, wake_.get());
    lock.lock();
    busy_ = false;
    // Bounded even if nobody collects: the oldest results go first.
    if (results_.size() >= 4 * kMaxQueued) results_.erase(results_.begin());
    results_.push_back(std::move(result));
    changed_.notify_all();
  }
}

}  // namespace mamori::heal
