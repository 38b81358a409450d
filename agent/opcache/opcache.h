#pragma once
// PHP's opcache after a restore (docs/opcache.md, [opcache]). PHP-FPM keeps the compiled
// code of every script in shared memory and looks at the file again only every
// opcache.revalidate_freq seconds (2 by default), never with validate_timestamps=0, and
// then only compares its mtime, which the restore puts back as the baseline had it. So
// the attacker's code, compiled while it was on disk, would keep running after the
// guard restored or quarantined the file. This worker makes the pool drop it:
//
//   invalidate  mamori speaks FastCGI (agent/opcache/fastcgi.h) to the pool's socket and
//               runs its own helper script (helper_source(), installed root-owned 0644
//               outside every root by install_helper()), which drops every cached script
//               at or under the paths given (opcache_invalidate(..., true)) and says
//               which it dropped. Precise and cheap: one request for a batch of paths.
//               When it fails and a pid file is configured, the pool is reloaded instead.
//   reload      SIGUSR2 to php-fpm's master (its pid file): every worker is replaced
//               and the whole cache starts empty. Coarse: every script is compiled
//               again, and requests in flight may be cut; at most one a second.
//
// The guard never waits: acted() only copies the paths into a bounded inbox (kMaxInbox
// entries; past it, counted, and the next round drops whatever is cached under every
// root). One thread of its own does the rest, and writes an opcache-invalidated (or
// opcache-failed) event per guard event, naming it in mamori.related_event. A second
// pass second_pass after the first drops what a request compiled from the tampered file
// before the restore and stored after the first pass (never reported: it cannot tell
// that from code compiled from the restored file since; a failure is logged).
//
// Threads: acted() and the counters from any thread; one worker thread of its own, from
// which publish and log are called.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/opcache/fastcgi.h"
#include "core/base/env.h"
#include "core/base/mutex.h"
#include "core/config/config.h"
#include "core/event/event.h"

namespace mamori::opcache {

// The PHP helper (protocol 1). Its request: FastCGI params MAMORI_OPCACHE=1 (a web
// request cannot set a parameter that does not start with HTTP_), a POST body of
// absolute paths each ended by NUL. Its answer (text/plain): "mamori-opcache 1\n", then
// records each ended by NUL: "dropped PATH" per cached script at or under a path,
// "off REASON" when the pool has no opcache to drop from, "done N" (N: scripts the cache
// held) last.
std::string_view helper_source();
// Writes the helper to `path` (0644, root's, atomically) unless it already holds exactly
// that; creates its directory (0755) when missing. Refuses a directory another user owns
// or group/others may write, or a symlink at `path`: whoever could replace the helper
// would run code in the pool at mamori's request.
Status install_helper(Env& env, const std::string& path);

// The helper's answer, read.
struct HelperReply {
  bool enabled = true;     // false: the pool runs without opcache ("off": nothing is stale)
  std::string off_reason;  // with enabled false
  uint64_t cached = 0;     // scripts the cache held
  std::vector<std::string> dropped;
  bool complete = false;  // "done" came: the helper ran to its end
};
// Fails (EPROTO) on anything but protocol 1; bounded by its input.
Result<HelperReply> parse_helper_reply(std::string_view body);

struct WorkerOptions {
  config::OpcacheMode mode = config::OpcacheMode::kInvalidate;
  Endpoint endpoint;        // invalidate
  std::string helper_path;  // invalidate
  std::string pid_file;     // reload, and invalidate's fallback ("" none)
  CallOptions call;         // timeout, the listener's uid, limits
  // The guarded roots: the path events name (mamori.root) -> its real path, which is
  // how PHP names the scripts it caches (realpath).
  std::map<std::string, std::string> roots;
  std::chrono::milliseconds second_pass{1000};  // 0: none
  std::chrono::milliseconds min_reload_interval{1000};
  // The opcache events (AsyncPublisher::publish, which any thread may call).
  std::function<void(std::vector<event::Event>&&)> publish;
  std::function<void(const std::string&)> log;
};

class Worker {
 public:
  static constexpr size_t kMaxInbox = 4096;
  static constexpr size_t kMaxEventPaths = 100;  // paths and dropped scripts named per event
  // Paths sent in one request, and their bytes; past them, the roots' real paths instead.
  static constexpr size_t kMaxRequestPaths = 10'000;
  static constexpr size_t kMaxRequestBytes = 1 << 20;

  // Starts the thread.
  Worker(Env& env, WorkerOptions options);
  // Stops after the round in progress; what waits in the inbox is dropped (the pool is
  // not ours to wait for at shutdown).
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // The guard's hook (Guard::set_acted_hook): `rel` of the root named `root` was put back
  // or moved out; `event_id` reports it ("" a summary). Never blocks beyond the inbox's
  // lock.
  void acted(const std::string& root, const std::string& rel, std::string_view action,
             const std::string& event_id) MAMORI_EXCLUDES(mu_);

  struct Counters {
    uint64_t rounds = 0;     // requests made (or reloads)
    uint64_t failures = 0;   // rounds that failed
    uint64_t dropped = 0;    // scripts the pool dropped
    uint64_t overflows = 0;  // acted() calls past kMaxInbox
  };
  Counters counters() const MAMORI_EXCLUDES(mu_);
  // Blocks until the inbox is empty, no round runs and no second pass is due.
  void wait_idle_for_test() MAMORI_EXCLUDES(mu_);

 private:
  struct Target {
    std::string related_event;  // "" a summary's path
    std::string root;           // as configured
    std::string path;           // absolute, real
    int64_t seen_ns = 0;        // monotonic, when the guard acted
  };
  void run() MAMORI_EXCLUDES(mu_);
  // One round over `targets` (pass 1 or 2); `all` when the inbox overflowed: every root.
  void round(std::vector<Target>& targets, bool all, int pass);
  Result<HelperReply> invalidate(const std::vector<std::string>& paths);
  Result<pid_t> reload();

  Env& env_;
  WorkerOptions options_;
  int64_t last_reload_ns_ = 0;  // the worker thread's
  mutable Mutex mu_;
  CondVar wake_;
  CondVar idle_;
  std::vector<Target> inbox_ MAMORI_GUARDED_BY(mu_);
  std::vector<Target> second_ MAMORI_GUARDED_BY(mu_);  // due at second_due_ns_
  int64_t second_due_ns_ MAMORI_GUARDED_BY(mu_) = 0;
  bool overflowed_ MAMORI_GUARDED_BY(mu_) = false;
  bool running_ MAMORI_GUARDED_BY(mu_) = false;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  Counters counters_ MAMORI_GUARDED_BY(mu_);
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace mamori::opcache
