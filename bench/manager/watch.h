#pragma once
// bench/manager's view of the manager from outside, as an operator would have it:
//   - its process: CPU time (utime + stime of /proc/PID/stat), VmRSS and VmHWM
//     (/proc/PID/status);
//   - its database's bytes on disk (the SQLite file and its -wal);
//   - its own events, read from its outbox (STATE/outbox, core/outbox's SegmentReader,
//     the reader its sinks use): agent-lost events carry the manager's decision time in
//     @timestamp (microseconds, the wall clock), so "lost detected" is measured to the
//     microsecond however often the outbox is polled.
//
// Threads: one owner.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "core/outbox/reader.h"

namespace mamori::bench {

struct ProcSample {
  int64_t cpu_ns = 0;  // user + system since the process started
  int64_t rss_bytes = 0;
  int64_t hwm_bytes = 0;
};
// nullopt when the process is gone.
std::optional<ProcSample> sample_process(int pid);
// This process's own CPU time (user + system).
int64_t own_cpu_ns();

// The database file plus its -wal (0 for a file that is missing).
int64_t db_bytes(const std::string& db_path);

// "2026-12-04T11:39:40.721948Z" -> nanoseconds since the epoch; nullopt when malformed.
std::optional<int64_t> parse_iso_time(const std::string& text);

struct ManagerEvent {
  std::string action;     // agent-lost, agent-recovered, ...
  std::string agent_key;  // mamori.managed_agent.key
  std::string reason;     // mamori.reason
  int64_t at_ns = 0;      // @timestamp: when the manager decided
};

// Follows the manager's outbox from where it ends when this is made.
class OutboxFollower {
 public:
  explicit OutboxFollower(std::string dir);
  // Everything new since the last call, in order.
  Result<std::vector<ManagerEvent>> poll();
  uint64_t records() const { return records_; }

 private:
  outbox::SegmentReader reader_;
  uint64_t records_ = 0;
};

// The nearest-rank percentile of `v` (sorted in place); 0 for an empty one.
int64_t percentile(std::vector<int64_t>& v, double p);

}  // namespace mamori::bench
