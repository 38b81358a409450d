#pragma once
// A mutex, its scoped lock and a condition variable that clang's -Wthread-safety can
// follow (core/base/thread_annotations.h): std::mutex carries no annotations in
// libstdc++, so a member MAMORI_GUARDED_BY a std::mutex would never be checked.
//
//   MutexLock lock(mu_);                    // held to the end of the scope
//   cv_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return !queue_.empty(); });
//
// A predicate reads guarded members, and the analysis treats a lambda as a function of
// its own: annotate it MAMORI_REQUIRES(the mutex), as above (it runs with it held).
//
// Threads: a Mutex is shared by the threads it serialises; a MutexLock belongs to the
// thread that made it.

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/base/thread_annotations.h"

namespace mamori {

class MAMORI_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() MAMORI_ACQUIRE() { mu_.lock(); }
  void unlock() MAMORI_RELEASE() { mu_.unlock(); }
  bool try_lock() MAMORI_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` from construction to destruction; unlock() and lock() let a loop leave it
// for a slow step (a disk write) and take it back.
class MAMORI_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) MAMORI_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() MAMORI_RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() MAMORI_RELEASE() {
    held_ = false;
    mu_.unlock();
  }
  void lock() MAMORI_ACQUIRE() {
    mu_.lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// std::condition_variable over a Mutex. Each wait is called with `mu` held, releases it
// while asleep and holds it again when it returns; `pred` runs with it held.
class CondVar {
 public:
  void notify_one() { cv_.notify_one(); }
  void notify_all() { cv_.notify_all(); }

  // The body hands the held std::mutex to std::condition_variable and takes it back:
  // the analysis cannot see through std::unique_lock's adopt/release, hence the opt-out
  // on these three bodies; the REQUIRES contract is still checked at every call.
  template <class Pred>
  void wait(Mutex& mu, Pred pred) MAMORI_REQUIRES(mu) MAMORI_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock, pred);
    lock.release();
  }
  // Waits until `pred` holds or `timeout` passed (a monotonic clock); returns pred().
  template <class Pred>
  bool wait_for(Mutex& mu, std::chrono::nanoseconds timeout, Pred pred)
      MAMORI_REQUIRES(mu) MAMORI_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool met = cv_.wait_for(lock, timeout, pred);
    lock.release();
    return met;
  }
  // One wait of at most `timeout`; wakes early on a notify (or spuriously).
  void wait_for(Mutex& mu, std::chrono::nanoseconds timeout)
      MAMORI_REQUIRES(mu) MAMORI_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait_for(lock, timeout);
    lock.release();
  }

 private:
  std::condition_variable cv_;
};

}  // namespace mamori
