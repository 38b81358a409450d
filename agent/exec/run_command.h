#pragma once
// Runs an administrator's command (an argv, never a shell line) to completion, bounded in
// time and output: the spawn-and-watch part shared by the heal hook (agent/heal, which
// runs it on a thread of its own) and the ban hook backend (agent/ban/hook).
//
// posix_spawn() with every descriptor but 0-2 closed, in a process group of its own, with
// default signal dispositions and an empty signal mask; stdin is a socket that carries
// `input` then EOF (a socket, not a pipe, so a command that exits without reading cannot
// raise SIGPIPE in the agent); stdout and stderr go to one pipe of which the first
// kMaxOutput bytes are kept. At `timeout` the whole process group gets SIGTERM, kKillGrace
// later SIGKILL. The exit is watched through a pidfd, so nothing else in the process may
// reap its children with waitpid(-1). Timeouts use the monotonic clock: processes run in
// real time whatever clock the caller injects.
//
// Threads: any thread; blocks the caller until the command has exited.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"

namespace mamori::exec {

inline constexpr size_t kMaxOutput = 4096;
inline constexpr std::chrono::seconds kKillGrace{2};

struct CommandResult {
  std::string argv0;
  std::optional<int> exit_code;  // set when the command exited
  std::optional<int> signal;     // set when a signal ended it
  bool timed_out = false;        // we sent SIGTERM (and maybe SIGKILL) at the timeout
  int64_t duration_ms = 0;
  std::string output;  // stdout and stderr interleaved, at most kMaxOutput bytes
  bool output_truncated = false;
  std::optional<Error> error;  // it could not be started (ENOENT, EACCES, ...), or was stopped

  bool succeeded() const { return !error && !timed_out && exit_code == 0; }
  // "exited 3: <output>", "timed out after 30000 ms", the start error, ...: for an Error's
  // detail when the command did not succeed.
  std::string describe() const;
};

// Runs `argv` (argv[0] is a path: no PATH search) with `input` on stdin and `env`
// ("NAME=value", added to this process's environment, replacing a variable of the same
// name). When `stop_fd` (an eventfd or pipe, may be -1) becomes readable, the process
// group is killed at once and the result carries an error.
CommandResult run_command(const std::vector<std::string>& argv, std::string_view input,
                          const std::vector<std::string>& env, std::chrono::milliseconds timeout,
                          int stop_fd = -1);

}  // namespace mamori::exec
