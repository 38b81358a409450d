#include "core/base/env.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "core/base/parallel.h"
#include "core/base/unique_fd.h"

namespace mamori {
namespace {

TEST(WriteAll, ReportsPathAndErrno) {
  RealEnv env;
  UniqueFd fd(::open("/dev/full", O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  const std::vector<uint8_t> data(100, 'x');
  auto st = write_all(env, fd.get(), data, "/dev/full");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, ENOSPC);
  EXPECT_EQ(st.error().message(), "write '/dev/full': No space left on device");
}

TEST(SystemClock, MonotonicTimeMovesForwardAcrossAWait) {
  const SystemClock clock;
  const auto before = clock.monotonic();
  clock.wait(std::chrono::milliseconds(2));
  const auto after = clock.monotonic();
  EXPECT_GE(after - before, std::chrono::milliseconds(2));
  EXPECT_EQ(clock.monotonic_ns() >= after.count(), true);
  // The wall clock is a different clock: epoch-based, far from boot-based time.
  EXPECT_GT(clock.now_ns(), after.count());
}

TEST(ThreadExecutor, RunsEveryTaskOnce) {
  ThreadExecutor ex(4);
  std::vector<std::atomic<int>> hits(1000);
  ex.run(hits.size(), [&](size_t i) { hits[i]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  ex.run(0, [&](size_t) { FAIL(); });
}

}  // namespace
}  // namespace mamori
