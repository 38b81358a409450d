#pragma once
// An Env whose write-side calls fail on demand, to prove that a failure at any step
// leaves no corrupt state behind.

#include <cerrno>
#include <cstdint>

#include "core/base/env.h"

namespace mamori::testing {

class FaultEnv final : public Env {
 public:
  // The Nth call (1-based) of that kind and every later one fail with `err`; 0 = never.
  void fail_fsync_from(int n, int err = EIO) {
    fsync_fail_ = n;
    fsync_err_ = err;
  }
  void fail_write_from(int n, int err = ENOSPC) {
    write_fail_ = n;
    write_err_ = err;
  }
  void fail_rename_from(int n, int err = EIO) {
    rename_fail_ = n;
    rename_err_ = err;
  }
  // A disk with `n` bytes left: write() writes what fits (a short write), then fails
  // with `err`, the way a full file system cuts a write short. ~0 = unlimited.
  void room_for_bytes(uint64_t n, int err = ENOSPC) {
    room_ = n;
    room_err_ = err;
  }

  ssize_t write(int fd, const void* buf, size_t n) override;
  ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) override;
  int fsync(int fd) override;
  int renameat2(int old_dir, const char* old_name, int new_dir, const char* new_name,
                unsigned flags) override;
  const Clock& clock() const override { return clock_; }

  int fsyncs() const { return fsyncs_; }

 private:
  SystemClock clock_;
  int fsync_fail_ = 0, fsync_err_ = EIO, fsyncs_ = 0;
  int write_fail_ = 0, write_err_ = ENOSPC, writes_ = 0;
  int rename_fail_ = 0, rename_err_ = EIO, renames_ = 0;
  uint64_t room_ = ~uint64_t{0};
  int room_err_ = ENOSPC;
};

}  // namespace mamori::testing
