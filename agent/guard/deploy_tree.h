#pragma once
// Which processes belong to a running `mamori deploy`: its root process (the CLI that
// runs the deploy command) and every process descended from it. While a deploy runs,
// the guard asks owns(pid) for each real-time change (fanotify names the writer): a
// change by the deploy's tree is the deploy's; any other writer's is a tamper during
// the deploy (docs/agent.md, "Deploys").
//
// Two sources, because a deploy's writers are often gone by the time their change is
// handled (`cp` writes, exits and is reaped within microseconds):
//   - the kernel's process connector (netlink fork events), read by update() before each
//     batch of changes. The kernel queues a fork event before the child runs, so every
//     descendant is known before any change it made is judged, even after it exited.
//     A pid reused by a process outside the tree is dropped when its fork is seen.
//   - a walk up /proc/PID/stat's parent chain, for when the connector is unavailable or
//     lost events (its socket overflowed): cached by pid and start time, so a reused
//     pid is never taken for a deploy process.
// A writer that is neither known nor still in /proc is not the deploy's: conservative,
// its change is handled as a tamper (and a legitimate one is then missing from the
// accepted set, never an attacker's in it).
//
// Threads: one owner (the guard's thread).

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::guard {

class DeployTree {
 public:
  // Starts following `root` (a live process) and its descendants. `proc` is the procfs
  // mount. Fails when `root` is not a live process; a connector that cannot be opened
  // (no CAP_NET_ADMIN, a kernel without it) leaves only the /proc walk, as does
  // `follow_forks` false (tests of the walk).
  static Result<std::unique_ptr<DeployTree>> start(pid_t root, std::string proc = "/proc",
                                                   bool follow_forks = true);

  // Reads the fork events queued so far, without blocking.
  void update();
  // Whether `pid` (a thread group id, as fanotify reports it) is the root or descends
  // from it.
  bool owns(pid_t pid);

  pid_t root() const { return root_; }
  // False once the root process has exited (or its pid was reused).
  bool root_alive() const;
  bool following_forks() const { return nl_.valid(); }
  uint64_t lost_events() const { return lost_; }

  // Bounds on what an attacker (or a deploy that forks without end) can make us keep.
  static constexpr size_t kMaxMembers = 1 << 20;
  static constexpr size_t kMaxWalked = 1 << 14;
  static constexpr int kMaxDepth = 256;

 private:
  DeployTree(pid_t root, uint64_t start, std::string proc)
      : root_(root), root_start_(start), proc_(std::move(proc)) {}
  // Parent pid and start time from /proc/PID/stat; false when the process is gone.
  bool stat_of(pid_t pid, pid_t& ppid, uint64_t& start) const;

  pid_t root_;
  uint64_t root_start_;
  std::string proc_;
  UniqueFd nl_;  // the process connector, when it could be opened
  uint64_t lost_ = 0;
  std::unordered_set<pid_t> members_;                            // from fork events
  std::unordered_map<pid_t, std::pair<uint64_t, bool>> walked_;  // pid -> start, member
};

}  // namespace mamori::guard
