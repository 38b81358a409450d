#pragma once
// Scans file contents with compiled YARA rules (core/scan/rules.h): a file by descriptor
// or a buffer, within limits, verdicts cached by the SHA-256 of what was scanned.
//
// Threads: one Scanner is shared by every thread that scans; each scan borrows a
// YR_SCANNER from a pool (libyara's scanners hold per-scan state and must not be shared),
// so N threads scanning hold at most N of them. The rules are read-only.
//
// No logging, no threads of its own: a timeout or a cut-off scan is in the Verdict and
// in stats(), for the caller to report.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/mutex.h"
#include "core/base/result.h"
#include "core/hash/sha256.h"
#include "core/scan/rules.h"
#include "core/scan/verdict_cache.h"

struct YR_SCAN_CONTEXT;  // libyara's YR_SCANNER is a typedef of it

namespace mamori::scan {

struct Limits {
  // A file is scanned up to this many bytes; past it the verdict says `truncated` (a
  // 10 GB sparse file planted to stall triage costs one capped read). Web shells and
  // injected scripts are small; the cap is far above any of them. Each scan running holds
  // up to this much memory (the bytes read), so the cap also bounds triage's memory.
  uint64_t max_scan_bytes = 16 << 20;
  // Per scan. libyara counts whole seconds; a scan past it gives up with `timed_out`.
  std::chrono::seconds timeout{10};
  // Verdicts remembered (about 100 bytes each when clean).
  size_t cache_entries = 65'536;
};

struct Verdict {
  hash::Digest sha256;  // of the bytes scanned: the whole content unless truncated
  Matches matches;      // never null; empty when nothing matched
  uint64_t size = 0;    // the file's size (a buffer's length)
  uint64_t scanned = 0;
  bool truncated = false;  // size > max_scan_bytes: only the first `scanned` bytes were
  bool timed_out = false;  // the scan gave up: no verdict on the rest (matches empty)
  bool cached = false;     // from the cache, not scanned this time

  bool matched() const { return !matches->empty(); }
};

struct ScanStats {
  uint64_t scans = 0;       // YARA scans run
  uint64_t cache_hits = 0;  // verdicts given from the cache instead
  uint64_t truncated = 0;
  uint64_t timeouts = 0;
  uint64_t matched = 0;  // verdicts with a match (scanned or cached)
};

class Scanner {
 public:
  Scanner(std::shared_ptr<const RuleSet> rules, Limits limits);
  ~Scanner();
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  // Scans `data` (only its first max_scan_bytes).
  Result<Verdict> scan_buffer(std::string_view data) MAMORI_EXCLUDES(mu_);
  // Reads the regular file open at `fd` from offset 0 with pread (the caller's file
  // offset is left alone) and scans it; `name` names it in errors. With `known`, the
  // SHA-256 of the whole file the caller already has (the baseline's), a cached verdict
  // is given without reading. Fails on a read error or anything but a regular file.
  // Reading, not mmap: a file truncated under us by an attacker must give a short read,
  // not SIGBUS in a root daemon.
  Result<Verdict> scan_fd(int fd, std::string_view name,
                          const std::optional<hash::Digest>& known = std::nullopt)
      MAMORI_EXCLUDES(mu_);

  ScanStats stats() const MAMORI_EXCLUDES(mu_);
  const Limits& limits() const { return limits_; }
  const RuleSet& rules() const { return *rules_; }
  size_t cached_verdicts() const { return cache_.size(); }

 private:
  // Runs YARA over `data` (already capped), filling `v`; consults and fills the cache.
  Status scan_capped(std::string_view data, Verdict& v) MAMORI_EXCLUDES(mu_);
  Result<YR_SCAN_CONTEXT*> borrow() MAMORI_EXCLUDES(mu_);
  void give_back(YR_SCAN_CONTEXT* s) MAMORI_EXCLUDES(mu_);
  void count(const Verdict& v) MAMORI_EXCLUDES(mu_);

  std::shared_ptr<const RuleSet> rules_;
  const Limits limits_;
  VerdictCache cache_;
  mutable Mutex mu_;
  std::vector<YR_SCAN_CONTEXT*> idle_ MAMORI_GUARDED_BY(mu_);
  ScanStats stats_ MAMORI_GUARDED_BY(mu_);
};

}  // namespace mamori::scan
