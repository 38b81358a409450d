#include "testing/fault_env.h"

#include <stdio.h>
#include <unistd.h>

namespace mamori::testing {

ssize_t FaultEnv::write(int fd, const void* buf, size_t n) {
  if (write_fail_ && ++writes_ >= write_fail_) {
    errno = write_err_;
    return -1;
  }
  if (room_ != ~uint64_t{0}) {
    if (room_ == 0) {
      errno = room_err_;
      return -1;
    }
    if (n > room_) n = room_;
    const ssize_t w = ::write(fd, buf, n);
    if (w > 0) room_ -= static_cast<uint64_t>(w);
    return w;
  }
  return ::write(fd, buf, n);
}

ssize_t FaultEnv::pwrite(int fd, const void* buf, size_t n, off_t offset) {
  if (write_fail_ && ++writes_ >= write_fail_) {
    errno = write_err_;
    return -1;
  }
  return ::pwrite(fd, buf, n, offset);
}

int FaultEnv::fsync(int fd) {
  ++fsyncs_;
  if (fsync_fail_ && fsyncs_ >= fsync_fail_) {
    errno = fsync_err_;
    return -1;
  }
  return ::fsync(fd);
}

int FaultEnv::renameat2(int old_dir, const char* old_name, int new_dir, const char* new_name,
                        unsigned flags) {
  if (rename_fail_ && ++renames_ >= rename_fail_) {
    errno = rename_err_;
    return -1;
  }
  return ::renameat2(old_dir, old_name, new_dir, new_name, flags);
}

}  // namespace mamori::testing
