#pragma once
// A clock that tests move: wait() advances it instead of sleeping. Starts at the real
// time, so files a test just wrote have realistic ages. advance() and wait() move both
// the wall and the monotonic time; set() moves only the wall clock (a jump: NTP, `date`).
// Thread-safe.

#include <atomic>
#include <chrono>

#include "core/base/env.h"

namespace mamori::testing {

class SimClock final : public Clock {
 public:
  SimClock()
      : ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count()) {}

  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(ns_.load())));
  }
  std::chrono::nanoseconds monotonic() const override {
    return std::chrono::nanoseconds(mono_ns_.load());
  }
  void wait(std::chrono::nanoseconds d) const override {
    ns_ += d.count();
    mono_ns_ += d.count();
  }
  void advance(std::chrono::nanoseconds d) {
    ns_ += d.count();
    mono_ns_ += d.count();
  }
  void set(std::chrono::system_clock::time_point t) {
    ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }

 private:
  mutable std::atomic<int64_t> ns_;
  mutable std::atomic<int64_t> mono_ns_{0};
};

}  // namespace mamori::testing
