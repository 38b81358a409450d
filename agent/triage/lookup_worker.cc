#include "agent/triage/lookup_worker.h"

#include <cerrno>
#include <optional>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/proto/actions.h"

namespace mamori::triage {
namespace {

// Guard events whose file.hash.sha256 names content an attacker wrote or planted.
bool looked_up(std::string_view action) {
  return action == proto::action::kFileQuarantined || action == proto::action::kFileRestored ||
         action == proto::action::kFileReplaced || action == proto::action::kFileChanged ||
         action == proto::action::kFileCreated;
}

// Longest a wait lasts before the clock is read again (it may have been set).
constexpr std::chrono::seconds kMaxWait{60};

}  // namespace

event::Event lookup_event(const hash::Digest& sha256, const scan::CachedVerdict& v,
                          const std::string& related_event, bool cached,
                          const std::string& link_base, int64_t now_ns) {
  const scan::VtVerdict& vt = v.verdict;
  const auto& s = vt.stats;
  const event::Severity severity = !vt.known          ? event::Severity::kInfo
                                   : s.malicious > 0  ? event::Severity::kCritical
                                   : s.suspicious > 0 ? event::Severity::kWarning
                                                      : event::Severity::kInfo;
  event::Event e(proto::action::kFileLookup, severity, now_ns);
  e.set("event.category", nlohmann::json::array({"file", "threat"}));
  e.set("event.type", nlohmann::json::array({"indicator"}));
  e.set("file.hash.sha256", sha256.hex());
  e.set("mamori.lookup.found", vt.known);
  e.set("mamori.lookup.cached", cached);
  e.set("mamori.lookup.link", link_base + sha256.hex());
  if (!related_event.empty()) e.set("mamori.related_event", related_event);
  if (vt.known) {
    e.set("mamori.lookup.malicious", s.malicious);
    e.set("mamori.lookup.suspicious", s.suspicious);
    e.set("mamori.lookup.undetected", s.undetected);
    e.set("mamori.lookup.harmless", s.harmless);
    // Names from the network: any bytes (the event escapes what is not UTF-8).
    if (!vt.name.empty()) e.set("mamori.lookup.name", vt.name);
    if (!vt.label.empty()) e.set("mamori.lookup.label", vt.label);
  }
  const uint64_t engines = uint64_t{s.malicious} + s.suspicious + s.undetected + s.harmless;
  e.message(!vt.known
                ? fmt::format("virustotal has never seen {}", sha256.hex())
                : fmt::format("virustotal: {} of {} engines call {} malicious, {} suspicious{}",
                              s.malicious, engines, sha256.hex(), s.suspicious,
                              vt.label.empty() ? "" : " (" + escape(vt.label) + ")"));
  return e;
}

LookupWorker::LookupWorker(Env& env, LookupWorkerOptions options)
    : env_(env), options_(std::move(options)), thread_([this] { run(); }) {}

LookupWorker::~LookupWorker() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void LookupWorker::observe(const event::Event& e) {
  if (!looked_up(e.action())) return;
  const auto& hex = e.get("file.hash.sha256");
  if (!hex.is_string()) return;
  if (auto d = hash::Digest::from_hex(hex.get<std::string>())) (void)submit(*d, e.id());
}

bool LookupWorker::submit(const hash::Digest& sha256, std::string related_event) {
  {
    MutexLock lock(mu_);
    if (inbox_.size() >= kMaxInbox) {
      ++dropped_;
      return false;
    }
    inbox_.emplace_back(sha256, std::move(related_event));
  }
  wake_.notify_one();
  return true;
}

uint64_t LookupWorker::dropped() const {
  MutexLock lock(mu_);
  return dropped_;
}

uint64_t LookupWorker::rounds() const {
  MutexLock lock(mu_);
  return rounds_;
}

void LookupWorker::wait_idle_for_test() {
  MutexLock lock(mu_);
  done_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return inbox_.empty() && !running_; });
}

void LookupWorker::round_for_test() {
  MutexLock lock(mu_);
  const uint64_t before = rounds_;
  poked_ = true;
  wake_.notify_all();
  done_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return rounds_ > before; });
}

void LookupWorker::run() {
  Inbox pending;  // taken in, not yet in the queue (its lock was busy)
  // A first round at once: hashes a previous run left waiting in the queue.
  std::optional<std::chrono::system_clock::time_point> due = env_.clock().now();
  const auto woken = [&]() MAMORI_REQUIRES(mu_) { return stop_ || !inbox_.empty() || poked_; };
  MutexLock lock(mu_);
  while (true) {
    running_ = false;
    done_.notify_all();
    while (!woken()) {
      if (!due) {
        wake_.wait(mu_, woken);
        continue;
      }
      const auto left = *due - env_.clock().now();
      if (left <= std::chrono::system_clock::duration::zero()) break;
      // At most kMaxWait: the wall clock may have been set meanwhile.
      wake_.wait_for(mu_, std::min<std::chrono::nanoseconds>(left, kMaxWait), woken);
    }
    poked_ = false;
    running_ = true;
    const bool stopping = stop_;
    for (auto& item : inbox_) {
      if (pending.size() >= kMaxInbox) {
        ++dropped_;
        continue;
      }
      pending.push_back(std::move(item));
    }
    inbox_.clear();
    lock.unlock();
    due = round(pending, /*ask=*/!stopping);
    if (!pending.empty() && !due) due = env_.clock().now() + kLockRetry;
    lock.lock();
    ++rounds_;
    if (stopping) {
      running_ = false;
      done_.notify_all();
      return;
    }
  }
}

std::optional<std::chrono::system_clock::time_point> LookupWorker::round(Inbox& pending, bool ask) {
  const auto say = [&](const std::string& line) {
    // The same trouble every round is said once, until it changes.
    if (line == last_error_) return;
    last_error_ = line;
    if (options_.log) options_.log(line);
  };
  auto q = scan::LookupQueue::open(env_, options_.state_path, options_.limits);
  if (!q) {
    // Held by `mamori scan --lookup`: its run is short; the inbox waits for it.
    if (q.error().errnum == EWOULDBLOCK) return env_.clock().now() + kLockRetry;
    say("virustotal look-ups: " + q.error().message());
    return env_.clock().now() + kErrorRetry;
  }
  std::vector<event::Event> events;
  for (auto& [sha, related] : pending) {
    if (auto v = q->cached(sha))
      events.push_back(
          lookup_event(sha, *v, related, true, options_.link_base, env_.clock().now_ns()));
    else
      (void)q->enqueue(sha, related);  // waiting already: the id is added to it
  }
  pending.clear();
  std::optional<std::chrono::system_clock::time_point> next;
  bool failed = false;
  if (ask && q->waiting_count() > 0 && q->may_send()) {
    if (!client_) {
      auto c = options_.make_client();
      if (c)
        client_ = std::move(*c);
      else
        say("virustotal look-ups: " + c.error().message());
    }
    if (client_) {
      auto d = q->drain(*client_);
      if (!d) {
        // The key refused, or the state file unwritable: the hash waits in the queue.
        say("virustotal look-ups stopped: " + d.error().message());
        failed = true;
      } else {
        last_error_.clear();
        for (const auto& sha : d->answered_hashes) {
          auto v = q->cached(sha);
          auto related = q->take_related(sha);
          if (!v) continue;
          if (related.empty()) related.emplace_back();
          for (const auto& r : related)
            events.push_back(
                lookup_event(sha, *v, r, false, options_.link_base, env_.clock().now_ns()));
        }
        for (const auto& sha : d->failed_hashes) (void)q->take_related(sha);
      }
    } else {
      failed = true;
    }
  }
  if (auto st = q->save(); !st) say("virustotal look-ups: " + st.error().message());
  if (failed)
    next = env_.clock().now() + kErrorRetry;
  else if (q->waiting_count() > 0)
    next = q->next_slot();
  if (!events.empty() && options_.publish) options_.publish(std::move(events));
  return next;
}

}  // namespace mamori::triage
