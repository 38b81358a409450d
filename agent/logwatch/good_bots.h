#pragma once
// Search engines' crawlers are never banned: a request whose user agent claims to be one
// (Googlebot, bingbot, ...) is checked by forward-confirmed reverse DNS, the test the
// search engines themselves document: the address's PTR name must be under the engine's
// domain, and that name must resolve back to the address. A user agent is any string an
// attacker likes, so the claim alone changes nothing: an address that fails the test (or
// cannot be resolved) is banned like any other.
//
// Resolving blocks (a resolver may take seconds), so it runs on a thread of its own and
// the log watch never waits for it: a decision for a claimed crawler is put aside
// (check() returns kPending), and once the answer is in, take_done() hands it back. At
// most kMaxPending checks wait; past that a claim is treated as failed at once (an
// attacker flooding requests with a crawler's user agent gets banned, not a queue).
// Answers are cached per address (kMaxCached, kCacheTtlNs).
//
// Threads: check(), take_done() and stop() from the owner (the log watch thread); the
// resolver runs on its own; `wake` is called from it when an answer is ready.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/base/mutex.h"
#include "core/logparse/ip.h"

namespace mamori::logwatch {

// The crawler a user agent claims to be, with the domains its PTR names end in; nullopt
// when it claims none.
struct Crawler {
  std::string_view name;  // "Googlebot"
  std::vector<std::string_view> domains;
};
std::optional<Crawler> claimed_crawler(std::string_view user_agent);

// The two look-ups (the real ones: getnameinfo NI_NAMEREQD, getaddrinfo); replaceable
// in tests. reverse: "" when the address has no name.
struct Resolver {
  std::function<std::string(const logparse::IpAddress&)> reverse;
  std::function<std::vector<logparse::IpAddress>(const std::string&)> forward;
};
Resolver system_resolver();

// True when `host` is one of `domains` or under one (a label boundary: "evilgoogle.com"
// is not under "google.com").
bool under_domain(std::string_view host, const std::vector<std::string_view>& domains);

class GoodBots {
 public:
  static constexpr size_t kMaxPending = 64;
  static constexpr size_t kMaxCached = 4096;
  static constexpr int64_t kCacheTtlNs = 3600'000'000'000;

  enum class Verdict { kNotClaimed, kPending, kVerified, kFailed };
  struct Done {
    uint64_t ticket;
    bool verified;
    std::string host;  // the confirmed name, when verified
  };

  GoodBots(Resolver resolver, std::function<void()> wake);
  ~GoodBots();  // stop()s

  // For a request from `ip` with `user_agent` at `now_ns`: kPending sets `ticket`, whose
  // answer take_done() gives later; `host` gets the confirmed name when kVerified.
  Verdict check(const logparse::IpAddress& ip, std::string_view user_agent, int64_t now_ns,
                uint64_t* ticket, std::string* host);
  std::vector<Done> take_done(int64_t now_ns);
  void stop();

 private:
  struct Job {
    uint64_t ticket;
    logparse::IpAddress ip;
    Crawler crawler;
  };
  struct Cached {
    bool verified;
    std::string host;
    int64_t at_ns;
  };
  void run();

  Resolver resolver_;
  std::function<void()> wake_;
  std::map<logparse::IpAddress, Cached> cache_;  // the owner's
  uint64_t next_ticket_ = 1;

  Mutex mu_;
  CondVar cv_;
  std::deque<Job> jobs_ MAMORI_GUARDED_BY(mu_);
  size_t in_flight_ MAMORI_GUARDED_BY(mu_) = 0;  // queued or being resolved
  std::vector<std::pair<Job, Done>> done_ MAMORI_GUARDED_BY(mu_);
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace mamori::logwatch
