#include "manager/server/password_checks.h"

#include "core/base/thread_name.h"
#include "manager/server/password.h"

namespace mamori::manager {

PasswordChecks::PasswordChecks(Post post) : post_(std::move(post)), thread_([this] { run(); }) {}

PasswordChecks::~PasswordChecks() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

bool PasswordChecks::submit(const std::string& address, std::string phc, std::string password,
                            std::function<void(bool matches)> done) {
  {
    MutexLock lock(mu_);
    if (queue_.size() + running_ >= kMaxQueued) return false;
    size_t& mine = per_address_[address];
    if (mine >= kMaxPerAddress) return false;
    ++mine;
    queue_.push_back({address, std::move(phc), std::move(password), std::move(done)});
  }
  wake_.notify_one();
  return true;
}

void PasswordChecks::run() {
  name_this_thread("mamori-password");
  for (;;) {
    Check c;
    {
      MutexLock lock(mu_);
      wake_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return !queue_.empty() || stop_; });
      if (stop_) return;
      c = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    const bool matches = verify_password(c.phc, c.password);
    {
      MutexLock lock(mu_);
      --running_;
      if (auto it = per_address_.find(c.address); it != per_address_.end() && --it->second == 0)
        per_address_.erase(it);
    }
    post_([done = std::move(c.done), matches] { done(matches); });
  }
}

}  // namespace mamori::manager
