#pragma once
// Runs the administrator's heal hook (an argv, never a shell line) on a thread of its own,
// so a slow or hanging hook never holds up the agent's main thread.
//
// Each run: posix_spawn() with every descriptor but 0-2 closed, in a process group of its
// own, with default signal dispositions and an empty signal mask; stdin is a socket that
// carries `input` then EOF (a socket, not a pipe, so a hook that exits without reading
// cannot raise SIGPIPE in the agent); stdout and stderr go to one pipe of which the first
// kMaxOutput bytes are kept. At `timeout` the whole process group gets SIGTERM, kKillGrace
// later SIGKILL. The process's exit is watched through a pidfd, so nothing else in the
// agent may reap our children (nothing does: the agent does not waitpid(-1)).
//
// Runs happen one after another. At most kMaxQueued wait; start() refuses more. Timeouts
// use the monotonic clock: processes run in real time whatever clock the caller injects.
//
// Threads: start(), take_results(), running() and wait_idle_for_test() may be called from
// any thread. The destructor SIGKILLs the process group of a run in progress, drops runs
// not yet started and joins the thread.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::heal {

struct HookResult {
  std::string argv0;
  std::optional<int> exit_code;  // set when the hook exited
  std::optional<int> signal;     // set when a signal ended it
  bool timed_out = false;        // we sent SIGTERM (and maybe SIGKILL) at the timeout
  int64_t duration_ms = 0;
  std::string output;  // stdout and stderr interleaved, at most kMaxOutput bytes
  bool output_truncated = false;
  std::optional<Error> error;  // it could not be started (ENOENT, EACCES, ...)

  bool succeeded() const { return !error && !timed_out && exit_code == 0; }
};

class HookRunner {
 public:
  static constexpr size_t kMaxOutput = 4096;
  static constexpr size_t kMaxQueued = 4;
  static constexpr std::chrono::seconds kKillGrace{2};

  // `argv` must not be empty; argv[0] is a path (no PATH search).
  HookRunner(std::vector<std::string> argv, std::chrono::milliseconds timeout);
  ~HookRunner();
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  // Queues one run with `input` on stdin and `env` ("NAME=value", added to the agent's
  // environment, replacing a variable of the same name). False when kMaxQueued runs are
  // already waiting (the run is dropped).
  bool start(std::string input, std::vector<std::string> env);
  // Results of the runs finished since the last call, oldest first.
  std::vector<HookResult> take_results();
  // Runs queued or in progress.
  size_t running() const;
  // Blocks until no run is queued or in progress.
  void wait_idle_for_test();

 private:
  struct Job {
    std::string input;
    std::vector<std::string> env;
  };
  void thread_main();
  HookResult run(const Job& job);
  // Spawns the hook; fills `result.error` when that fails.
  std::optional<pid_t> spawn(const Job& job, int stdin_fd, int output_fd, HookResult& result);

  const std::vector<std::string> argv_;
  const std::chrono::milliseconds timeout_;
  UniqueFd wake_;  // eventfd: the destructor's "stop now" to a run in progress

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Job> queue_;            // guarded by mu_
  std::vector<HookResult> results_;  // guarded by mu_
  bool busy_ = false;                // guarded by mu_: a run is in progress
  bool stopping_ = false;            // guarded by mu_
  std::thread thread_;               // last: started once everything above exists
};

}  // namespace mamori::heal
