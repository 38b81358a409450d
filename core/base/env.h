#pragma once
// The operating system, passed in rather than called globally, so tests can inject
// faults (ENOSPC on the Nth fsync, EIO on a rename) and a clock they control.
// Only the calls whose failure changes what mamori leaves on disk go through Env:
// the write side of the store and of atomic replacement.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "core/base/result.h"

namespace mamori {

// Two times. now() is the wall clock: for timestamps a person or another host reads
// (@timestamp, ban expiry in the firewall). monotonic() never jumps (NTP, an
// administrator's `date`, a VM resumed) and is what intervals, timeouts, back-off and
// deadlines are measured with. Nothing outside core/base reads std::chrono's clocks
// directly (tools/lint): they take a Clock, so tests drive time (testing/sim_clock.h).
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const = 0;
  // Time since an arbitrary start (boot, for SystemClock); only differences mean anything.
  virtual std::chrono::nanoseconds monotonic() const = 0;
  // Blocks the calling thread for `d` (a simulated clock advances instead).
  virtual void wait(std::chrono::nanoseconds d) const = 0;
  // Nanoseconds since the Unix epoch.
  int64_t now_ns() const;
  int64_t monotonic_ns() const { return monotonic().count(); }
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override;
  std::chrono::nanoseconds monotonic() const override;  // CLOCK_MONOTONIC
  void wait(std::chrono::nanoseconds d) const override;
};

class Env {
 public:
  virtual ~Env() = default;
  // Each returns what the system call returns and sets errno the same way.
  virtual ssize_t write(int fd, const void* buf, size_t n);
  virtual ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset);
  virtual int fsync(int fd);
  virtual int renameat2(int old_dir, const char* old_name, int new_dir, const char* new_name,
                        unsigned flags);
  virtual const Clock& clock() const = 0;
};

class RealEnv final : public Env {
 public:
  const Clock& clock() const override { return clock_; }

 private:
  SystemClock clock_;
};

// Writes all of `data`, retrying short writes and EINTR. `path` names the file in errors.
Status write_all(Env& env, int fd, std::span<const uint8_t> data, std::string_view path);
Status pwrite_all(Env& env, int fd, std::span<const uint8_t> data, off_t offset,
                  std::string_view path);

}  // namespace mamori
