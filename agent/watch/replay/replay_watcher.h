#pragma once
// A watcher driven by the test: push() scripted changes (a create-then-rename, a delete
// during a restore, an overflow) and the real guard pipeline handles them exactly as it
// would kernel events. fd() is an eventfd that is readable while changes are pending.
// push() may be called from any thread (a test drives an agent running on another);
// the rest from the owner.

#include <sys/eventfd.h>

#include <deque>
#include <memory>

#include "agent/watch/watcher.h"
#include "core/base/mutex.h"
#include "core/base/unique_fd.h"

namespace mamori::watch {

class ReplayWatcher final : public Watcher {
 public:
  ReplayWatcher() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

  void push(Change c) {
    MutexLock lock(mu_);
    pending_.push_back(std::move(c));
    const uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_.get(), &one, sizeof one);
  }

  std::string_view name() const override { return "replay"; }
  Status add_root(size_t, const std::string&, int) override { return ok(); }
  int fd() const override { return fd_.get(); }
  Status read(std::vector<Change>& out) override {
    uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(fd_.get(), &count, sizeof count);
    MutexLock lock(mu_);
    for (auto& c : pending_) {
      if (c.what & kOverflow) ++overflows_;
      out.push_back(std::move(c));
    }
    pending_.clear();
    return ok();
  }
  uint64_t overflows() const override { return overflows_; }

 private:
  UniqueFd fd_;
  Mutex mu_;
  std::deque<Change> pending_ MAMORI_GUARDED_BY(mu_);
  uint64_t overflows_ = 0;
};

}  // namespace mamori::watch
