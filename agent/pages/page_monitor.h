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
// Pages come from [[page]] and from discovery ([pages], discovery.h): the most requested
// HTML pages of the access logs, added and dropped as the discovered set changes (a
// dropped page's record is removed; a [[page]] of the same URL wins).
//
// After the guard restored or quarantined a file under a page's root (any root when the
// page names none), the page is checked at once, and that check's page-injected events
// name the guard's event in mamori.related_event (docs/formats/events.md, Incidents).
//
// Never on the guard's path: the guard only calls poke() (a flag and a notify). Fetches
// are bounded by the page's timeout and max_kb; at most kMaxEventsPerCheck events per
// page and check (the rest are reported at the next checks).
//
// Threads: start(), poke(), take_injected(), injected() and the destructor from the
// agent's thread; refresh() from any; one worker thread; publish and log are called from
// it. check_all() is for tests, without start().

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

class Discoverer;

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
  // [pages] discovery; null when off. Shared with the log watch, which feeds it.
  std::shared_ptr<Discoverer> discovery;
};

// A file the guard restored or quarantined: ROOT/PATH in its event EVENT_ID.
struct GuardPoke {
  std::string root;
  std::string path;
  std::string event_id;
};

class PageMonitor {
 public:
  static constexpr size_t kMaxEventsPerCheck = 32;
  // Guard events waiting for the thread; past it, every page is checked, unlinked.
  static constexpr size_t kMaxPokes = 64;
  // page-injected events kept for take_injected() between two calls.
  static constexpr size_t kMaxInjectedKept = 64;

  PageMonitor(Env& env, PageMonitorOptions options);
  // Stops the fetch in progress (at libcurl's next progress call) and the thread.
  ~PageMonitor();
  PageMonitor(const PageMonitor&) = delete;
  PageMonitor& operator=(const PageMonitor&) = delete;

  // Starts the thread: every page is checked at once, then every interval.
  void start();
  // The guard restored or quarantined a file: every page under its root is checked as
  // soon as the thread is free (what the attacker did next may be in the database), and
  // names the event in its page-injected events.
  void poke(GuardPoke poke) MAMORI_EXCLUDES(mu_);
  // The discovered set changed: the thread takes it.
  void refresh() MAMORI_EXCLUDES(mu_);
  // One check of every page on the calling thread (tests; start() not called).
  void check_all() MAMORI_EXCLUDES(mu_);
  uint64_t checks() const MAMORI_EXCLUDES(mu_);
  // The page-injected events published since the last call (at most kMaxInjectedKept):
  // the healer judges them on the agent's thread ([heal] on = ["page-injected"]).
  std::vector<event::Event> take_injected() MAMORI_EXCLUDES(mu_);
  // Whether a page's last complete check found active content neither in its baseline
  // nor allowed (reported or not): the healer's recovery waits until none does.
  bool injected() const MAMORI_EXCLUDES(mu_);
  // The URLs watched now, [[page]]s then discovered ones (tests).
  std::vector<std::string> urls_for_test() const MAMORI_EXCLUDES(mu_);

 private:
  struct Page {
    config::PageConfig config;
    std::string record_path;
    bool discovered = false;
    bool failing = false;   // page-fetch-failed was said for the current failure
    bool injected = false;  // its last complete check found something new
    std::string related;    // the guard event that asked for the next check
    std::chrono::nanoseconds due{0};
  };
  void run() MAMORI_EXCLUDES(mu_);
  // Applies the pokes and the discovered set's change to pages_ (the worker's).
  void take_pokes(std::chrono::nanoseconds now) MAMORI_REQUIRES(mu_);
  void sync_discovered() MAMORI_EXCLUDES(mu_);
  static bool under(const config::PageConfig& page, const GuardPoke& poke);
  void check(Page& page) MAMORI_EXCLUDES(mu_);
  // Saves `why` in the record and says it once per failure.
  void failed(Page& page, const std::string& why, long status);

  Env& env_;
  PageMonitorOptions options_;
  // The worker's (or check_all()'s caller's); run() holds no Page* across a sync.
  std::vector<Page> pages_;
  mutable Mutex mu_;
  CondVar wake_;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  bool refresh_ MAMORI_GUARDED_BY(mu_) = false;
  std::vector<GuardPoke> pokes_ MAMORI_GUARDED_BY(mu_);
  bool poke_all_ MAMORI_GUARDED_BY(mu_) = false;  // more than kMaxPokes came
  uint64_t checks_ MAMORI_GUARDED_BY(mu_) = 0;
  std::vector<event::Event> injected_events_ MAMORI_GUARDED_BY(mu_);
  size_t injected_pages_ MAMORI_GUARDED_BY(mu_) = 0;
  std::vector<std::string> urls_ MAMORI_GUARDED_BY(mu_);
  std::atomic<bool> cancel_{false};  // the destructor's: stops a transfer in progress
  std::thread thread_;
};

}  // namespace mamori::pages
