// The gate's watchdog against a real fanotify group with no gate answering (as when the
// agent is stopped): an open in the marked directory still completes, allowed, and the
// takeover is counted. Needs root (CAP_SYS_ADMIN), as the agent does.
#include "agent/gate/watchdog.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <future>

#include <gtest/gtest.h>

#include "core/base/unique_fd.h"
#include "testing/temp_dir.h"

namespace mamori::gate {
namespace {

TEST(WatchdogTest, AnswersWhatNoGateAnswers) {
  ASSERT_EQ(::geteuid(), 0u) << "the open gate's tests run as root (fanotify permission events)";
  testing::TempDir dir;
  const std::string file = dir.path() + "/page.html";
  {
    UniqueFd f(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(f.valid());
  }
  UniqueFd group(::fanotify_init(FAN_CLOEXEC | FAN_NONBLOCK | FAN_CLASS_CONTENT,
                                 O_RDONLY | O_LARGEFILE | O_CLOEXEC));
  ASSERT_TRUE(group.valid());
  auto dog = Watchdog::start(group.get(), 50);
  ASSERT_TRUE(dog) << dog.error().message();
  // A gate that started a batch and never finished it (a stuck decision, a stopped agent).
  dog->page().busy_since_ns.store(1);
  ASSERT_EQ(::fanotify_mark(group.get(), FAN_MARK_ADD, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD, AT_FDCWD,
                            dir.path().c_str()),
            0);
  // The open waits on the group; it runs on a thread of its own so that a hang fails the
  // test instead of stopping it.
  auto opened = std::async(std::launch::async, [&] {
    UniqueFd f(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    return f.valid();
  });
  ASSERT_EQ(opened.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "the open was left waiting";
  EXPECT_TRUE(opened.get()) << "the watchdog's answer is an allow";
  EXPECT_EQ(dog->page().takeovers.load(), 1u);
  EXPECT_GE(dog->page().answered.load(), 1u);
  EXPECT_TRUE(dog->alive());
}

TEST(WatchdogTest, LeavesALiveGateAlone) {
  ASSERT_EQ(::geteuid(), 0u);
  UniqueFd group(::fanotify_init(FAN_CLOEXEC | FAN_NONBLOCK | FAN_CLASS_CONTENT,
                                 O_RDONLY | O_LARGEFILE | O_CLOEXEC));
  ASSERT_TRUE(group.valid());
  auto dog = Watchdog::start(group.get(), 200);
  ASSERT_TRUE(dog);
  // The gate wakes every tick: 20 ticks of 50 ms without a takeover.
  for (int i = 0; i < 20; ++i) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    dog->page().alive_ns.store(static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec);
    ::poll(nullptr, 0, Watchdog::tick_ms(200));
  }
  EXPECT_EQ(dog->page().takeovers.load(), 0u);
}

}  // namespace
}  // namespace mamori::gate
