#pragma once
// Console logins' argon2id verifications (password.h: 30-60 ms of CPU each) on a thread of
// their own, so that a flood of logins from many addresses never holds up the io thread,
// whose heartbeats, channels and fleet bans must keep their seconds.
//
// Bounded: at most kMaxQueued checks wait or run, at most kMaxPerAddress of them for one
// client address; submit() refuses the rest (the API answers 429), so a botnet costs one
// core at most and a login from elsewhere still gets a place within a second or two.
//
// Threads: submit() from the io thread; `done` runs where `post` puts it (the io thread).
// The destructor joins the thread; checks still queued are dropped, their `done` never run.

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "core/base/mutex.h"

namespace mamori::manager {

class PasswordChecks {
 public:
  static constexpr size_t kMaxQueued = 32;
  static constexpr size_t kMaxPerAddress = 2;

  using Post = std::function<void(std::function<void()>)>;
  explicit PasswordChecks(Post post);
  ~PasswordChecks();
  PasswordChecks(const PasswordChecks&) = delete;
  PasswordChecks& operator=(const PasswordChecks&) = delete;

  // Queues verify_password(phc, password); `done(matches)` follows through post. false:
  // refused, over one of the bounds (done is not called).
  bool submit(const std::string& address, std::string phc, std::string password,
              std::function<void(bool matches)> done);

 private:
  struct Check {
    std::string address, phc, password;
    std::function<void(bool)> done;
  };
  void run();

  Post post_;
  Mutex mu_;
  CondVar wake_;
  std::deque<Check> queue_ MAMORI_GUARDED_BY(mu_);
  size_t running_ MAMORI_GUARDED_BY(mu_) = 0;
  std::map<std::string, size_t> per_address_ MAMORI_GUARDED_BY(mu_);
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace mamori::manager
