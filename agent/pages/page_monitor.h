#pragma once
// The page monitor ([[page]], docs/pages.md): injections that never touch a file. On a
// thread of its own, each configured page is fetched through the real web server
// (libcurl) once per user agent it lists, its active content extracted
// (core/page/active_content.h) and merged, and compared with the page's baseline in
// STATE/pages (core/page/record.h). The first complete fetch takes the baseline; later,
// an element the baseline lacks and allow_origins does not allow is a page-injected
// event (once per element, also across restarts, until it goes or is accepted). A page
// that cannot be fetched or judged (an HTTP error, a timeout, too large) is one
// page-fetch-failed when it starts failing.
//
// Never on the guard's path: the guard only calls poke() (a flag and a notify). Fetches
// are bounded by the page's timeout and max_kb; at most kMaxEventsPerCheck events per
// page and check (the rest are reported at the next checks).
//
// Threads: start(), poke() and the destructor from the agent's thread; one worker
// thread; publish and log are called from it. check_all() is for tests, without start().

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/base/env.h"
#include "core/base/mutex.h"
#include "core/config/config.h"
#include "core/event/event.h"
#include "core/page/record.h"

namespace mamori::pages {

struct FetchRequest {
  std::string url;
  std::string user_agent;  // the literal User-Agent header
  std::string connect_to;  // HOST:PORT or ""
  uint32_t timeout_s = 10;
  size_t max_bytes = 2 << 20;
  // Set: the transfer stops at libcurl's next progress call (the agent stops).
  const std::atomic<bool>* cancel = nullptr;
};

struct FetchResult {
  long status = 0;         // HTTP status
  std::string body;        // at most max_bytes
  std::string location;    // a 3xx's Location header, as sent
  bool too_large = false;  // the body went past max_bytes: the transfer was stopped
};

// GET with libcurl: http/https only, no redirects followed (a redirect is content:
// kind::kRedirect), no cookies, TLS verified. An Error for a transport failure.
Result<FetchResult> fetch_with_curl(const FetchRequest& request);

struct PageMonitorOptions {
  std::string state_dir;
  std::vector<config::PageConfig> pages;
  std::function<void(std::vector<event::Event>&&)> publish;
  std::function<void(const std::string&)> log;
  // The network (tests replace it); fetch_with_curl when empty.
  std::function<Result<FetchResult>(const FetchRequest&)> fetch;
};

class PageMonitor {
 public:
  static constexpr size_t kMaxEventsPerCheck = 32;

  PageMonitor(Env& env, PageMonitorOptions options);
  // Stops the fetch in progress (at libcurl's next progress call) and the thread.
  ~PageMonitor();
  PageMonitor(const PageMonitor&) = delete;
  PageMonitor& operator=(const PageMonitor&) = delete;

  // Starts the thread: every page is checked at once, then every interval.
  void start();
  // Every page is checked as soon as the thread is free (the guard restored a file:
  // what the attacker did next may be in the database).
  void poke() MAMORI_EXCLUDES(mu_);
  // One check of every page on the calling thread (tests; start() not called).
  void check_all();
  uint64_t checks() const MAMORI_EXCLUDES(mu_);

 private:
  struct Page {
    config::PageConfig config;
    std::string record_path;
    bool failing = false;  // page-fetch-failed was said for the current failure
    std::chrono::nanoseconds due{0};
  };
  void run() MAMORI_EXCLUDES(mu_);
  void check(Page& page);
  // Saves `why` in the record and says it once per failure.
  void failed(Page& page, const std::string& why, long status);

  Env& env_;
  PageMonitorOptions options_;
  std::vector<Page> pages_;  // the worker's (or check_all()'s caller's)
  mutable Mutex mu_;
  CondVar wake_;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  bool poked_ MAMORI_GUARDED_BY(mu_) = false;
  uint64_t checks_ MAMORI_GUARDED_BY(mu_) = 0;
  std::atomic<bool> cancel_{false};  // the destructor's: stops a transfer in progress
  std::thread thread_;
};

}  // namespace mamori::pages
