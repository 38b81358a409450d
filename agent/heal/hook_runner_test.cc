#include "agent/heal/hook_runner.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "core/base/env.h"
#include "testing/temp_dir.h"

namespace mamori::heal {
namespace {

using std::chrono::milliseconds;

class HookRunnerTest : public ::testing::Test {
 protected:
  // Writes an executable shell script and returns its path.
  std::string script(const std::string& name, const std::string& body) {
    tmp_.write(name, "#!/bin/sh\n" + body, 0755);
    ::chmod((tmp_ / name).c_str(), 0755);
    return tmp_ / name;
  }
  static HookResult run_one(HookRunner& runner, std::string input = {},
                            std::vector<std::string> env = {}) {
    EXPECT_TRUE(runner.start(std::move(input), std::move(env)));
    runner.wait_idle_for_test();
    auto results = runner.take_results();
    EXPECT_EQ(results.size(), 1u);
    return results.empty() ? HookResult{} : std::move(results[0]);
  }

  testing::TempDir tmp_;
};

TEST_F(HookRunnerTest, PassesInputOnStdinAndEnvironment) {
  HookRunner runner(
      {script("hook.sh", "cat > \"$1\"\necho \"reason=$MAMORI_HEAL_REASON\"\n"), tmp_ / "in.json"},
      milliseconds(10'000));
  const HookResult r = run_one(runner, "{\"event\":1}\n", {"MAMORI_HEAL_REASON=tamper-storm"});
  EXPECT_TRUE(r.succeeded()) << r.output;
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.output, "reason=tamper-storm\n");
  EXPECT_EQ(tmp_.read("in.json"), "{\"event\":1}\n");
  EXPECT_EQ(r.argv0, tmp_ / "hook.sh");
  EXPECT_EQ(runner.running(), 0u);
}

TEST_F(HookRunnerTest, ReportsExitStatusAndOutput) {
  HookRunner runner({script("hook.sh", "echo boom >&2\nexit 3\n")}, milliseconds(10'000));
  const HookResult r = run_one(runner);
  EXPECT_FALSE(r.succeeded());
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.output, "boom\n");
  EXPECT_FALSE(r.error);
}

TEST_F(HookRunnerTest, MissingOrNotExecutableIsAFailureResult) {
  HookRunner missing({tmp_ / "no-such-hook"}, milliseconds(10'000));
  HookResult r = run_one(missing);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->errnum, ENOENT);
  EXPECT_FALSE(r.succeeded());

  tmp_.write("plain.sh", "#!/bin/sh\nexit 0\n", 0644);
  ::chmod((tmp_ / "plain.sh").c_str(), 0644);
  HookRunner denied({tmp_ / "plain.sh"}, milliseconds(10'000));
  r = run_one(denied);
  ASSERT_TRUE(r.error);
  // Even root needs an x bit to execute.
  EXPECT_EQ(r.error->errnum, EACCES);
}

TEST_F(HookRunnerTest, TimeoutSendsTermToTheGroup) {
  HookRunner runner({script("hook.sh", "sleep 100\n")}, milliseconds(100));
  const HookResult r = run_one(runner);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.succeeded());
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_GE(r.duration_ms, 100);
  EXPECT_LT(r.duration_ms, 2000);
}

TEST_F(HookRunnerTest, KillsAHookThatIgnoresTerm) {
  // An ignored signal stays ignored across exec: sleep ignores SIGTERM too.
  HookRunner runner({script("hook.sh", "trap '' TERM\nsleep 100\n")}, milliseconds(100));
  const HookResult r = run_one(runner);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_GE(r.duration_ms, 100 + 2000);
}

TEST_F(HookRunnerTest, KeepsOnlyTheFirstOutputBytes) {
  HookRunner runner({script("hook.sh", "head -c 100000 /dev/zero | tr '\\0' x\n")},
                    milliseconds(10'000));
  const HookResult r = run_one(runner);
  EXPECT_TRUE(r.succeeded());
  EXPECT_EQ(r.output, std::string(HookRunner::kMaxOutput, 'x'));
  EXPECT_TRUE(r.output_truncated);
}

TEST_F(HookRunnerTest, AHookThatIgnoresStdinDoesNotHurt) {
  // 4 MiB cannot fit in the socket buffer: the rest is dropped when the hook exits.
  HookRunner runner({script("hook.sh", "exit 0\n")}, milliseconds(10'000));
  const HookResult r = run_one(runner, std::string(4 << 20, 'j'));
  EXPECT_TRUE(r.succeeded());
}

TEST_F(HookRunnerTest, DoesNotWaitForBackgroundChildren) {
  // The background sleep holds the output pipe open; the run still ends with the hook.
  HookRunner runner({script("hook.sh", "sleep 100 &\necho $! > \"$1\"\nexit 0\n"), tmp_ / "bg.pid"},
                    milliseconds(10'000));
  const HookResult r = run_one(runner);
  EXPECT_TRUE(r.succeeded());
  EXPECT_LT(r.duration_ms, 5000);
  const pid_t bg = std::stoi(tmp_.read("bg.pid"));
  EXPECT_EQ(::kill(bg, SIGKILL), 0);
}

TEST_F(HookRunnerTest, BoundsTheQueue) {
  HookRunner runner({script("hook.sh", "sleep 100\n")}, milliseconds(100));
  ASSERT_TRUE(runner.start({}, {}));
  // The first run takes 100 ms (it may still be queued); the others queue behind it until
  // kMaxQueued wait, and the last is refused.
  size_t accepted = 1;
  for (size_t i = 0; i < HookRunner::kMaxQueued + 1; ++i) accepted += runner.start({}, {});
  EXPECT_GE(accepted, HookRunner::kMaxQueued);
  EXPECT_LE(accepted, HookRunner::kMaxQueued + 1);
  EXPECT_GT(runner.running(), 0u);
  runner.wait_idle_for_test();
  EXPECT_EQ(runner.take_results().size(), accepted);
}

TEST_F(HookRunnerTest, DestructorStopsARunningHook) {
  const auto t0 = SystemClock().monotonic();
  {
    HookRunner runner({script("hook.sh", "echo started > \"$1\"\nsleep 100\n"), tmp_ / "s"},
                      milliseconds(100'000));
    ASSERT_TRUE(runner.start({}, {}));
  }
  EXPECT_LT(SystemClock().monotonic() - t0, std::chrono::seconds(5));
}

}  // namespace
}  // namespace mamori::heal
