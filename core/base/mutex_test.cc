#include "core/base/mutex.h"

#include <gtest/gtest.h>

#include <thread>

#include "core/base/env.h"

namespace mamori {
namespace {

struct Box {
  Mutex mu;
  CondVar changed;
  int value MAMORI_GUARDED_BY(mu) = 0;
};

TEST(CondVar, WaitReturnsOnceThePredicateHoldsWithTheLockHeld) {
  Box box;
  std::thread writer([&] {
    for (int i = 1; i <= 3; ++i) {
      MutexLock lock(box.mu);
      box.value = i;
      box.changed.notify_all();
    }
  });
  {
    MutexLock lock(box.mu);
    box.changed.wait(box.mu, [&]() MAMORI_REQUIRES(box.mu) { return box.value == 3; });
    EXPECT_EQ(box.value, 3);
    box.value = 4;  // still held: the writer cannot have run in between
  }
  writer.join();
  MutexLock lock(box.mu);
  EXPECT_EQ(box.value, 4);
}

TEST(CondVar, WaitForTimesOutWithThePredicateFalse) {
  Box box;
  const SystemClock clock;
  MutexLock lock(box.mu);
  const auto start = clock.monotonic();
  EXPECT_FALSE(box.changed.wait_for(box.mu, std::chrono::milliseconds(20),
                                    [&]() MAMORI_REQUIRES(box.mu) { return box.value != 0; }));
  EXPECT_GE(clock.monotonic() - start, std::chrono::milliseconds(20));
  box.value = 1;  // the lock is held again after the wait
}

TEST(MutexLock, UnlockAndLockAgainInOneScope) {
  Box box;
  MutexLock lock(box.mu);
  box.value = 1;
  lock.unlock();
  bool released = false;
  if (box.mu.try_lock()) {  // really released
    released = true;
    box.mu.unlock();
  }
  EXPECT_TRUE(released);
  lock.lock();
  box.value = 2;
  EXPECT_EQ(box.value, 2);
}

}  // namespace
}  // namespace mamori
