#pragma once
// YARA off the guard's thread (docs/scan.md, "What is scanned when"): the guard hands
// over the descriptor of a tampered file it has already put back (or, in alert mode, of
// the file itself) and goes on; the verdict comes back through take_done(), which the
// guard polls. So a restore never waits for a scan, and neither does the next one: a
// 1 MB file or a scan that runs into its time limit holds this thread, not the guard's.
//
// Bounded: at most `max_queued` jobs wait (each holds one descriptor); past it submit()
// refuses and the caller reports the file as not scanned. Results not yet taken are
// bounded by the same count (a job's result replaces it).
//
// Threads: submit(), take_done(), outstanding() and wait_idle() from the owner's thread
// (the guard's); one worker thread of its own scans. The Scanner is shared (scanner.h
// allows scans from any thread) and outlives the worker.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/base/mutex.h"
#include "core/base/unique_fd.h"
#include "core/scan/scanner.h"

namespace mamori::triage {

struct ScanJob {
  uint64_t id = 0;   // the caller's, handed back with the result
  UniqueFd fd;       // a regular file, read from offset 0 with pread
  std::string name;  // names it in errors
};

struct ScanDone {
  uint64_t id = 0;
  std::optional<scan::Verdict> verdict;  // none: the scan failed (`error` says why)
  std::string error;
};

class ScanWorker {
 public:
  static constexpr size_t kMaxQueued = 1024;
  explicit ScanWorker(scan::Scanner& scanner, size_t max_queued = kMaxQueued);
  // Stops the thread after the scan in progress; jobs not started are dropped.
  ~ScanWorker();
  ScanWorker(const ScanWorker&) = delete;
  ScanWorker& operator=(const ScanWorker&) = delete;

  // Queues `job`; false (the job dropped, its descriptor closed) when `max_queued` jobs
  // wait or wait to be taken already.
  bool submit(ScanJob job) MAMORI_EXCLUDES(mu_);
  // The results finished since the last call, in the order they finished.
  std::vector<ScanDone> take_done() MAMORI_EXCLUDES(mu_);
  // Submitted and not yet taken.
  size_t outstanding() const MAMORI_EXCLUDES(mu_);
  // Blocks until every job submitted is finished (not taken): at shutdown, and where a
  // caller must see every verdict (a start-up verify, tests).
  void wait_idle() MAMORI_EXCLUDES(mu_);
  uint64_t refused() const MAMORI_EXCLUDES(mu_);

 private:
  void run() MAMORI_EXCLUDES(mu_);

  scan::Scanner& scanner_;
  const size_t max_queued_;
  mutable Mutex mu_;
  CondVar wake_;  // a job came, or stop
  CondVar idle_;  // a job finished
  std::deque<ScanJob> jobs_ MAMORI_GUARDED_BY(mu_);
  std::vector<ScanDone> done_ MAMORI_GUARDED_BY(mu_);
  size_t running_ MAMORI_GUARDED_BY(mu_) = 0;
  uint64_t refused_ MAMORI_GUARDED_BY(mu_) = 0;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace mamori::triage
