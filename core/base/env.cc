#include "core/base/env.h"

#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace mamori {

int64_t Clock::now_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(now().time_since_epoch()).count();
}

std::chrono::system_clock::time_point SystemClock::now() const {
  return std::chrono::system_clock::now();
}

std::chrono::nanoseconds SystemClock::monotonic() const {
  return std::chrono::steady_clock::now().time_since_epoch();
}

void SystemClock::wait(std::chrono::nanoseconds d) const {
  if (d.count() <= 0) return;
  timespec ts{static_cast<time_t>(d.count() / 1'000'000'000),
              static_cast<long>(d.count() % 1'000'000'000)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
  }
}

ssize_t Env::write(int fd, const void* buf, size_t n) { return ::write(fd, buf, n); }
ssize_t Env::pwrite(int fd, const void* buf, size_t n, off_t offset) {
  return ::pwrite(fd, buf, n, offset);
}
int Env::fsync(int fd) { return ::fsync(fd); }
int Env::renameat2(int old_dir, const char* old_name, int new_dir, const char* new_name,
                   unsigned flags) {
  return ::renameat2(old_dir, old_name, new_dir, new_name, flags);
}

Status write_all(Env& env, int fd, std::span<const uint8_t> data, std::string_view path) {
  while (!data.empty()) {
    const ssize_t n = env.write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write", std::string(path));
    }
    if (n == 0) return fail("write", std::string(path), EIO, "wrote nothing");
    data = data.subspan(static_cast<size_t>(n));
  }
  return ok();
}

Status pwrite_all(Env& env, int fd, std::span<const uint8_t> data, off_t offset,
                  std::string_view path) {
  while (!data.empty()) {
    const ssize_t n = env.pwrite(fd, data.data(), data.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("pwrite", std::string(path));
    }
    if (n == 0) return fail("pwrite", std::string(path), EIO, "wrote nothing");
    data = data.subspan(static_cast<size_t>(n));
    offset += n;
  }
  return ok();
}

}  // namespace mamori
