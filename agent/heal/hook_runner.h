#pragma once
// Runs the administrator's heal hook (an argv, never a shell line) on a thread of its own,
// so a slow or hanging hook never holds up the agent's main thread. Each run is
// exec::run_command (agent/exec/run_command.h: own process group, input on stdin, output
// kept up to kMaxOutput, SIGTERM at `timeout` and SIGKILL kKillGrace later).
//
// Runs happen one after another. At most kMaxQueued wait; start() refuses more. Timeouts
// use the monotonic clock: processes run in real time whatever clock the caller injects.
//
// Threads: start(), take_results(), running() and wait_idle_for_test() may be called from
// any thread. The destructor SIGKILLs the process group of a run in progress, drops runs
// not yet started and joins the thread.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/exec/run_command.h"
#include "core/base/mutex.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::heal {

using HookResult = exec::CommandResult;

class HookRunner {
 public:
  static constexpr size_t kMaxOutput = exec::kMaxOutput;
  static constexpr size_t kMaxQueued = 4;
  static constexpr std::chrono::seconds kKillGrace = exec::kKillGrace;

  // `argv` must not be empty; argv[0] is a path (no PATH search).
  HookRunner(std::vector<std::string> argv, std::chrono::milliseconds timeout);
  ~HookRunner();
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  // Queues one run with `input` on stdin and `env` ("NAME=value", added to the agent's
  // environment, replacing a variable of the same name). False when kMaxQueued runs are
  // already waiting (the run is dropped).
  bool start(std::string input, std::vector<std::string> env) MAMORI_EXCLUDES(mu_);
  // Results of the runs finished since the last call, oldest first.
  std::vector<HookResult> take_results() MAMORI_EXCLUDES(mu_);
  // Runs queued or in progress.
  size_t running() const MAMORI_EXCLUDES(mu_);
  // Blocks until no run is queued or in progress.
  void wait_idle_for_test() MAMORI_EXCLUDES(mu_);

 private:
  struct Job {
    std::string input;
    std::vector<std::string> env;
  };
  void thread_main();

  const std::vector<std::string> argv_;
  const std::chrono::milliseconds timeout_;
  UniqueFd wake_;  // eventfd: the destructor's "stop now" to a run in progress

  mutable Mutex mu_;
  CondVar changed_;
  std::deque<Job> queue_ MAMORI_GUARDED_BY(mu_);
  std::vector<HookResult> results_ MAMORI_GUARDED_BY(mu_);
  bool busy_ MAMORI_GUARDED_BY(mu_) = false;  // a run is in progress
  bool stopping_ MAMORI_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace mamori::heal
