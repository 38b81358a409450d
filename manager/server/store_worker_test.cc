#include "manager/server/store_worker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "core/base/env.h"
#include "core/db/sqlite.h"
#include "testing/temp_dir.h"

namespace mamori::manager {
namespace {

class StoreWorkerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> open() {
    auto s = open_store(env_, "sqlite://" + dir_ / "manager.db");
    EXPECT_TRUE(s) << s.error().message();
    return s ? std::move(*s) : nullptr;
  }

  RealEnv env_;
  testing::TempDir dir_;
};

// The io thread hands a job over and goes on, whatever the job waits for.
TEST_F(StoreWorkerTest, AJobWaitingForTheWriteLockDoesNotHoldTheCaller) {
  auto worker = std::make_unique<StoreWorker>(open());
  auto blocker = db::Db::open(dir_ / "manager.db", db::Db::Mode::kReadWrite);
  ASSERT_TRUE(blocker) << blocker.error().message();
  ASSERT_TRUE(blocker->begin());
  ASSERT_TRUE(blocker->exec("CREATE TABLE held(x)"));  // the write lock, held
  const SystemClock clock;
  const auto start = clock.monotonic();
  worker->run([](Store& s) { ASSERT_TRUE(s.manager_heartbeat("m1", "host", 1)); });
  EXPECT_LT(clock.monotonic() - start, std::chrono::milliseconds(100));
  ASSERT_TRUE(blocker->commit());
  worker.reset();  // runs what it holds, then joins
  auto count = blocker->prepare("SELECT count(*) FROM managers WHERE id = 'm1'");
  ASSERT_TRUE(count) << count.error().message();
  ASSERT_TRUE(count->step().value_or(false));
  EXPECT_EQ(count->int64(0), 1);
}

TEST_F(StoreWorkerTest, JobsRunInOrderAndAllRunBeforeItIsGone) {
  std::vector<int> ran;
  {
    StoreWorker worker(open());
    for (int i = 0; i < 100; ++i) worker.run([&ran, i](Store&) { ran.push_back(i); });
  }
  ASSERT_EQ(ran.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(ran[i], i);
}

}  // namespace
}  // namespace mamori::manager
