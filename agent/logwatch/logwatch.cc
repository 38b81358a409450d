#include "agent/logwatch/logwatch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "agent/ban/banner.h"
#include "agent/ban/options.h"
#include "agent/logwatch/decoy_links.h"
#include "agent/logwatch/default_rules.h"
#include "agent/logwatch/detector.h"
#include "agent/logwatch/event_detector.h"
#include "agent/logwatch/good_bots.h"
#include "agent/logwatch/journal.h"
#include "agent/logwatch/tailer.h"
#include "core/base/mutex.h"
#include "core/base/quote.h"
#include "core/decoy/decoy.h"
#include "core/proto/actions.h"
#include "core/rules/rules_file.h"

namespace mamori::logwatch {
namespace {

// Lines per tailer read: large enough to be cheap, small enough that a note from the
// guard waits at most a few milliseconds behind a flood.
constexpr size_t kLinesPerRead = 4096;

event::Severity severity_of(int s) {
  if (s >= 7) return event::Severity::kCritical;
  if (s >= 5) return event::Severity::kWarning;
  if (s >= 3) return event::Severity::kNotice;
  return event::Severity::kInfo;
}

// The rule files: the decoys' (STATE/decoys.rules, written by `mamori decoys plant`,
// first so that the administrator's files may override them), then each entry of
// [logwatch] rules, a file or a directory of *.rules (rules.d; an empty or missing
// directory adds nothing).
Result<std::vector<std::string>> rule_files(const config::Config& c) {
  std::vector<std::string> files;
  const std::string decoys = c.state_dir + "/decoys.rules";
  if (struct stat st{}; ::lstat(decoys.c_str(), &st) == 0) files.push_back(decoys);
  for (const auto& path : c.logwatch.rules) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      auto in_dir = MAMORI_TRY(rules::rule_files_in(path));
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else {
      files.push_back(path);  // a missing file is an error, with its name, at load
    }
  }
  return files;
}

// The [[log]]s, and the decoys' credential log when `mamori decoys plant` recorded one
// (docs/decoys.md): WordPress's decoy plugin appends to it, in the combined format, as
// the web server's user, trusted no more than with the access log that user writes
// already; the tailer opens it like any log (no symlink, a regular file, lines capped).
config::Config with_credential_log(const config::Config& c, const Result<decoy::Record>& record) {
  config::Config out = c;
  if (record && !record->credential_log.empty() &&
      std::none_of(out.logs.begin(), out.logs.end(),
                   [&](const auto& l) { return l.path == record->credential_log; }))
    out.logs.push_back({record->credential_log, "combined", "", {}});
  return out;
}

// STATE/logwatch/journal.cursor for the system journal; a directory's is named after it.
std::string journal_cursor_name(std::string dir) {
  std::replace(dir.begin(), dir.end(), '/', '_');
  return "journal" + dir.substr(0, 200) + ".cursor";
}

}  // namespace

struct Logwatch::Impl {
  Impl(Env& e, config::Config c, Publish p, Log l)
      : env(e), config(std::move(c)), publish(std::move(p)), log(std::move(l)) {}

  Env& env;
  const config::Config config;  // with_credential_log()'s: logs[i] is detectors[i]'s
  Publish publish;
  Log log;
  // One per [[log]]: an access log's Detector, or (the other logs: nginx-error,
  // apache-error, sshd) an EventDetector; the other entry is null.
  std::vector<std::unique_ptr<Detector>> detectors;
  std::vector<std::unique_ptr<EventDetector>> event_detectors;
  std::unique_ptr<Tailer> tailer;
  std::vector<size_t> tailed;  // the tailer's file i is logs[tailed[i]]
  // The [[log]]s read from the journal (source = "journal"), and the forged sshd
  // messages not reported yet (at most one log-forged event per kForgedEveryNs).
  struct Journal {
    size_t log;
    std::unique_ptr<JournalReader> reader;
    std::optional<ForgedEntry> forged_first;
    uint64_t forged_since = 0;
    int64_t forged_reported_ns = 0;
  };
  std::vector<Journal> journals;
  std::optional<ban::BanList> list;
  std::unique_ptr<ban::BanBackend> backend;
  std::unique_ptr<ban::Banner> banner;
  // Decisions for requests that claim to be a search engine's crawler, waiting for its
  // DNS check (good_bots.h), by ticket.
  struct Waiting {
    size_t log;
    Decision decision;
    std::string file;
  };
  std::unique_ptr<GoodBots> good_bots;
  std::map<uint64_t, Waiting> waiting;
  UniqueFd wake;
  int64_t list_version = 0;

  struct Tampered {
    std::string root, rel;
    int64_t time_s;
    std::string event_id;
    bool planted;
  };
  mutable Mutex mu;
  std::vector<Tampered> pending MAMORI_GUARDED_BY(mu);
  std::vector<CredentialUse> pending_uses MAMORI_GUARDED_BY(mu);
  DecoyLinks decoy_links;
  std::map<std::string, std::string, std::less<>> decoy_paths;  // token -> ROOT/REL
  bool stopping MAMORI_GUARDED_BY(mu) = false;
  std::atomic<uint64_t> lines{0}, truncated{0}, bans{0}, ban_failures{0}, unbans{0};
  // Whether each log reads in its format, for status(): refreshed each second and on a
  // change. unparseable_since: the logwatch thread's, 0 while the log reads.
  std::vector<proto::LogParsing> parsing MAMORI_GUARDED_BY(mu);
  std::vector<int64_t> unparseable_since;
  std::thread thread;

  void run();
  void handle_line(size_t log, std::string_view line, bool cut);
  bool read_journal(Journal& j);
  void report_forged(Journal& j);
  void decided(size_t log, const Decision& d, const std::string& file);
  void ban_decided(size_t log, const Decision& d, const std::string& file);
  void crawler_answers();
  bool ban_into(const logparse::IpAddress& ip, const ban::BanRequest& request, event::Event e,
                std::vector<event::Event>& events);
  void link_use(const std::string& token, const logparse::IpAddress& ip, const std::string& use_id,
                std::string_view used_on, const std::string& user, int64_t time_ns,
                std::vector<event::Event>& events);
  void attributed(size_t log, const Attribution& a);
  void parsing_changed(size_t log, logparse::ParseHealth::Change change,
                       const logparse::ParseHealth& health);
  void refresh_parsing();
  void each_second();
};

Result<std::unique_ptr<Logwatch>> Logwatch::start(Env& env, const config::Config& config,
                                                  Publish publish, Log log,
                                                  RequestObserver on_request) {
  // STATE/decoys.json, read once: its credential log and its files' names.
  const auto decoys = decoy::load(config.state_dir + "/decoys.json");
  auto impl = std::make_unique<Impl>(env, with_credential_log(config, decoys), std::move(publish),
                                     std::move(log));
  auto files = MAMORI_TRY(rule_files(config));
  auto matcher = load_matcher(files, config.logwatch.default_rules);
  if (!matcher) return tl::unexpected(matcher.error().to_error());
  auto shared = std::make_shared<const rules::Matcher>(std::move(*matcher));
  std::vector<logparse::Cidr> allow;
  for (const auto& a : config.logwatch.allowlist)
    allow.push_back(MAMORI_TRY(logparse::Cidr::parse(a)));
  TailerOptions to;
  std::map<logparse::EventLog, std::shared_ptr<const rules::Matcher>> event_matchers;
  for (size_t li = 0; li < impl->config.logs.size(); ++li) {
    const auto& l = impl->config.logs[li];
    if (const auto kind = logparse::event_log_named(l.format)) {
      // The other logs: their kind's rules, and the [[log]]'s own files after them.
      std::shared_ptr<const rules::Matcher> m = l.rules.empty() ? event_matchers[*kind] : nullptr;
      if (!m) {
        auto compiled = load_event_matcher(*kind, l.rules);
        if (!compiled) return tl::unexpected(compiled.error().to_error());
        m = std::make_shared<const rules::Matcher>(std::move(*compiled));
        if (l.rules.empty()) event_matchers[*kind] = m;
      }
      auto detector = MAMORI_TRY(EventDetector::create(logparse::EventLogFormat(*kind), m, allow));
      detector.set_reference_time(env.clock().now_ns() / 1'000'000'000);
      const size_t index = impl->event_detectors.size();
      Impl* self = impl.get();
      detector.set_health_observer(
          [self, index](logparse::ParseHealth::Change c, const logparse::ParseHealth& h) {
            self->parsing_changed(index, c, h);
          });
      impl->detectors.push_back(nullptr);
      impl->event_detectors.push_back(std::make_unique<EventDetector>(std::move(detector)));
      if (l.source == "journal") {
        JournalOptions jo{l.path, config.state_dir + "/logwatch/" + journal_cursor_name(l.path)};
        impl->journals.push_back({li, MAMORI_TRY(JournalReader::open(env, std::move(jo)))});
        continue;
      }
      if (*kind == logparse::EventLog::kSshd)
        impl->log("logwatch: " + quote(l.path) +
                  ": any local user can write lines tagged sshd there (logger); sshd's "
                  "messages read from the journal cannot be forged (source = \"journal\")");
      to.paths.push_back(l.path);
      impl->tailed.push_back(li);
      continue;
    }
    auto format = MAMORI_TRY(logparse::LogFormat::compile(l.format));
    auto detector = MAMORI_TRY(Detector::create(format, shared, allow));
    detector.set_correlation_window(config.logwatch.correlation_window_s);
    const size_t index = impl->detectors.size();
    Impl* self = impl.get();
    detector.set_on_attribution(
        [self, index](const Attribution& a) { self->attributed(index, a); });
    detector.set_health_observer(
        [self, index](logparse::ParseHealth::Change c, const logparse::ParseHealth& h) {
          self->parsing_changed(index, c, h);
        });
    if (on_request)
      detector.set_entry_observer(
          [on_request, path = l.path](const logparse::Entry& e) { on_request(path, e); });
    impl->detectors.push_back(std::make_unique<Detector>(std::move(detector)));
    impl->event_detectors.push_back(nullptr);
    to.paths.push_back(l.path);
    impl->tailed.push_back(li);
  }
  to.positions_path = config.state_dir + "/logwatch/positions.json";
  Impl* raw = impl.get();
  to.on_error = [raw](size_t i, const std::optional<Error>& e) {
    if (i == Tailer::kPositions)
      raw->log(e ? "access-log positions: " + e->message() : "access-log positions readable again");
    else
      raw->log(e ? "access log: " + e->message()
                 : "access log " + quote(raw->config.logs[raw->tailed[i]].path) +
                       " readable again");
  };
  impl->tailer = MAMORI_TRY(Tailer::create(env, std::move(to)));
  impl->unparseable_since.assign(impl->detectors.size(), 0);
  impl->refresh_parsing();

  const ban::BanOptions bo = ban::options_from(config);
  impl->list.emplace(MAMORI_TRY(ban::BanList::open(ban::list_path(config), bo)));
  impl->backend = MAMORI_TRY(ban::open_backend(bo, env.clock()));
  impl->banner = std::make_unique<ban::Banner>(*impl->list, *impl->backend, env.clock());
  // Bans outlive the agent and the firewall's in-kernel state: apply them all again.
  MAMORI_TRY(impl->banner->sync());
  impl->list_version = impl->list->data_version().value_or(0);

  // What each decoy token names, for the events of a credential used; a damaged record
  // only costs the file names in those events.
  if (decoys)
    for (const auto& d : decoys->files) impl->decoy_paths[d.token] = d.root + "/" + d.rel;
  else
    impl->log("logwatch: decoys: " + decoys.error().message());

  impl->wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!impl->wake.valid()) return fail_errno("eventfd", "logwatch");
  impl->good_bots = std::make_unique<GoodBots>(system_resolver(), [raw] {
    const uint64_t one = 1;
    (void)!::write(raw->wake.get(), &one, sizeof one);
  });
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<Logwatch>(new Logwatch(std::move(impl)));
}

Logwatch::Logwatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Logwatch::~Logwatch() { stop(); }

void Logwatch::note_tampered(const std::string& root, const std::string& rel, int64_t time_ns,
                             const std::string& event_id, bool planted) {
  {
    MutexLock lock(impl_->mu);
    if (impl_->pending.size() >= 10000) return;  // a storm: the first ones name the attacker
    impl_->pending.push_back({root, rel, time_ns / 1'000'000'000, event_id, planted});
  }
  const uint64_t one = 1;
  (void)!::write(impl_->wake.get(), &one, sizeof one);
}

void Logwatch::credential_used(CredentialUse use) {
  {
    MutexLock lock(impl_->mu);
    if (impl_->pending_uses.size() >= kMaxPendingUses) return;
    impl_->pending_uses.push_back(std::move(use));
  }
  const uint64_t one = 1;
  (void)!::write(impl_->wake.get(), &one, sizeof one);
}

void Logwatch::stop() {
  {
    MutexLock lock(impl_->mu);
    impl_->stopping = true;
  }
  const uint64_t one = 1;
  (void)!::write(impl_->wake.get(), &one, sizeof one);
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->good_bots) impl_->good_bots->stop();
}

proto::LogwatchStatus Logwatch::status() const {
  proto::LogwatchStatus s;
  for (const auto& l : impl_->config.logs) s.logs.push_back(config::log_name(l));
  s.lines = impl_->lines.load();
  s.lines_truncated = impl_->truncated.load();
  s.bans = impl_->bans.load();
  s.ban_failures = impl_->ban_failures.load();
  s.unbans = impl_->unbans.load();
  MutexLock lock(impl_->mu);
  s.parsing = impl_->parsing;
  return s;
}

void Logwatch::Impl::run() {
  auto last_second = env.clock().monotonic();
  while (true) {
    std::vector<pollfd> fds = {{tailer->fd(), POLLIN, 0}, {wake.get(), POLLIN, 0}};
    for (const auto& j : journals) fds.push_back({j.reader->fd(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) {
      log(fmt::format("logwatch: poll: {}", std::strerror(errno)));
      return;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t n = 0;
      (void)!::read(wake.get(), &n, sizeof n);
    }
    std::vector<Tampered> tampered;
    std::vector<CredentialUse> uses;
    bool stop_now = false;
    {
      MutexLock lock(mu);
      tampered.swap(pending);
      uses.swap(pending_uses);
      stop_now = stopping;
    }
    crawler_answers();
    for (const auto& u : uses) {
      const auto ip = logparse::IpAddress::parse(u.ip);
      if (!ip || !decoy_links.first_use(u.token, *ip, env.clock().now_ns())) continue;
      std::vector<event::Event> events;
      link_use(u.token, *ip, u.event_id, u.used_on, u.user, u.time_ns, events);
      publish(std::move(events));
    }
    for (const auto& t : tampered) {
      for (size_t i = 0; i < config.logs.size(); ++i) {
        if (config.logs[i].root != t.root || !detectors[i]) continue;
        const std::string file = t.root + "/" + t.rel;
        detectors[i]->note_tampered(
            "/" + t.rel, t.time_s,
            t.planted ? Detector::Tamper::kPlanted : Detector::Tamper::kRestored,
            [&](const Decision& d) { decided(i, d, file); }, TamperedFile{file, t.event_id});
      }
    }
    // Everything new, in bounded steps, so notes from the guard are not kept waiting.
    for (int step = 0; step < 64; ++step) {
      auto more =
          tailer->read([&](size_t i, std::string_view line,
                           const LinePos& pos) { handle_line(tailed[i], line, pos.truncated); },
                       kLinesPerRead);
      if (!more) {
        log("logwatch: " + more.error().message());
        break;
      }
      if (!*more) break;
    }
    for (auto& j : journals)
      for (int step = 0; step < 64 && read_journal(j); ++step) {
      }
    if (env.clock().monotonic() - last_second >= std::chrono::seconds(1) || stop_now) {
      last_second = env.clock().monotonic();
      each_second();
    }
    if (stop_now) return;
  }
}

// sshd's messages from the journal (journal.h); false once none is waiting.
bool Logwatch::Impl::read_journal(Journal& j) {
  auto more = j.reader->read([&](std::string_view line) { handle_line(j.log, line, false); },
                             [&](const ForgedEntry& f) {
                               if (j.forged_since++ == 0) j.forged_first = f;
                               report_forged(j);
                             },
                             kLinesPerRead);
  if (!more) {
    log("logwatch: " + more.error().message());
    return false;
  }
  return *more;
}

// A forged message is reported at once, the ones after it within kForgedEveryNs counted
// into the next report: a local user flooding the journal cannot flood the outbox.
void Logwatch::Impl::report_forged(Journal& j) {
  constexpr int64_t kForgedEveryNs = 60'000'000'000;
  const int64_t t = env.clock().now_ns();
  if (!j.forged_first || (j.forged_reported_ns && t - j.forged_reported_ns < kForgedEveryNs))
    return;
  const ForgedEntry f = *std::exchange(j.forged_first, std::nullopt);
  const uint64_t count = std::exchange(j.forged_since, 0);
  j.forged_reported_ns = t;
  event::Event e(proto::action::kLogForged, event::Severity::kWarning, t);
  e.set("event.category", nlohmann::json::array({"intrusion_detection", "process"}))
      .set("event.type", nlohmann::json::array({"indicator"}))
      .set("log.file.path", config::log_name(config.logs[j.log]))
      .set("mamori.log.format", config.logs[j.log].format)
      .set("user.id", std::to_string(f.uid))
      .set("event.original", f.message)
      .set("mamori.log.forged", static_cast<int64_t>(count));
  if (f.pid) e.set("process.pid", static_cast<int64_t>(f.pid));
  if (!f.comm.empty()) e.set("process.name", f.comm);
  if (!f.exe.empty()) e.set("process.executable", f.exe);
  e.message(
      fmt::format("uid {} (pid {}{}) wrote {} message{} tagged sshd to the journal; "
                  "sshd logs as root: not judged. First: {}",
                  f.uid, f.pid, f.exe.empty() ? "" : ", " + quote(f.exe), count,
                  count == 1 ? "" : "s", quote(f.message)));
  log("logwatch: " + e.fields().value("message", std::string()));
  std::vector<event::Event> events;
  events.push_back(std::move(e));
  publish(std::move(events));
}

void Logwatch::Impl::handle_line(size_t i, std::string_view line, bool cut) {
  lines.fetch_add(1, std::memory_order_relaxed);
  // An over-long line arrives as its first 16 KiB (tailer.h) and is judged by them (an
  // access log's; the other logs skip it, event_detector.h).
  const size_t max_line = detectors[i] ? detectors[i]->max_line() : event_detectors[i]->max_line();
  if (cut || line.size() > max_line) truncated.fetch_add(1, std::memory_order_relaxed);
  const auto on_decision = [&](const Decision& d) { decided(i, d, ""); };
  if (detectors[i])
    detectors[i]->feed(line, 0, on_decision, cut);
  else
    event_detectors[i]->feed(line, 0, on_decision, cut);
}

// A search engine's crawler is never banned (good_bots.h): a request that claims to be
// one waits for the DNS check; the others are banned at once.
void Logwatch::Impl::decided(size_t i, const Decision& d, const std::string& file) {
  uint64_t ticket = 0;
  std::string host;
  switch (good_bots->check(d.ip, d.user_agent, env.clock().now_ns(), &ticket, &host)) {
    case GoodBots::Verdict::kVerified:
      log(fmt::format("logwatch: {} is {}, a search engine's crawler: not banned ({})",
                      d.ip.to_string(), host, d.rule_id));
      return;
    case GoodBots::Verdict::kPending:
      waiting[ticket] = {i, d, file};
      return;
    case GoodBots::Verdict::kNotClaimed:
    case GoodBots::Verdict::kFailed:
      break;
  }
  ban_decided(i, d, file);
}

void Logwatch::Impl::crawler_answers() {
  for (const auto& done : good_bots->take_done(env.clock().now_ns())) {
    auto it = waiting.find(done.ticket);
    if (it == waiting.end()) continue;
    const Waiting w = std::move(it->second);
    waiting.erase(it);
    if (done.verified)
      log(fmt::format("logwatch: {} is {}, a search engine's crawler: not banned ({})",
                      w.decision.ip.to_string(), done.host, w.decision.rule_id));
    else
      ban_decided(w.log, w.decision, w.file);
  }
}

void Logwatch::Impl::ban_decided(size_t i, const Decision& d, const std::string& file) {
  const bool correlated = d.rule_id == "guard-correlation";
  event::Event e(proto::action::kIpBanned, severity_of(d.severity), env.clock().now_ns());
  e.set("event.category", nlohmann::json::array({"network", "intrusion_detection"}))
      .set("event.type", nlohmann::json::array({"denied"}))
      .set("source.ip", d.ip.to_string())
      .set("rule.name", d.rule_id)
      .set("event.reason", d.reason)
      .set("log.file.path", config::log_name(config.logs[i]));
  if (event_detectors[i]) {
    // An error log's or sshd's line: its message, not a request line.
    e.set("event.original", d.request).set("mamori.log.format", config.logs[i].format);
    if (d.status) e.set("http.response.status_code", d.status);
  } else {
    e.set("url.original", d.request).set("http.response.status_code", d.status);
  }
  if (!d.user_agent.empty()) e.set("user_agent.original", d.user_agent);
  if (d.time_s) e.set("mamori.ban.request_time_s", d.time_s);
  if (d.truncated) e.set("mamori.line.truncated", true);
  if (correlated) {
    // The incident's links (docs/formats/events.md, Incidents): the file the guard acted
    // on and its event, whether the request came before the guard's note or after.
    if (!d.file_path.empty())
      e.set("file.path", d.file_path);
    else if (!file.empty())
      e.set("file.path", file);
    if (!d.related_event.empty()) e.set("mamori.related_event", d.related_event);
  }
  // A decoy's rule (decoy_links.h): a fetch is remembered, a credential used is linked
  // to the fetches; the user's ban names that link.
  std::string token;
  const DecoyRule decoy = decoy_rule(d.rule_id, &token);
  std::string use_id;
  if (decoy == DecoyRule::kCredential) {
    use_id = event::Event::new_id();
    e.set("mamori.related_event", use_id);
  }
  ban::BanRequest request;
  request.rule = d.rule_id;
  request.reason = d.reason;
  request.source = correlated ? "correlation" : "logwatch";
  std::vector<event::Event> events;
  const bool reported = ban_into(d.ip, request, std::move(e), events);
  if (decoy == DecoyRule::kFetch)
    decoy_links.fetched(token, d.ip, reported ? events.front().id() : "", env.clock().now_ns());
  if (decoy == DecoyRule::kCredential)
    link_use(token, d.ip, use_id, "http", "", env.clock().now_ns(), events);
  if (!events.empty()) publish(std::move(events));
}

// Bans `ip` and appends its ip-banned event `e` (and a prefix escalation's) to `events`;
// false when the address was banned already (nothing new to report).
bool Logwatch::Impl::ban_into(const logparse::IpAddress& ip, const ban::BanRequest& request,
                              event::Event e, std::vector<event::Event>& events) {
  auto result = banner->ban(ip, request, e.fields());
  if (!result) {
    ban_failures.fetch_add(1, std::memory_order_relaxed);
    e.outcome("failure").set("error.message", result.error().message());
    e.message(fmt::format("could not ban {} ({}): {}", ip.to_string(), request.rule,
                          result.error().message()));
  } else {
    if (result->outcome == ban::BanOutcome::kAlreadyBanned) return false;
    bans.fetch_add(1, std::memory_order_relaxed);
    e.outcome("success")
        .set("mamori.ban.ttl_s", static_cast<int64_t>(result->ttl.count()))
        .set("mamori.ban.offences", result->entry.offences)
        .set("mamori.ban.backend", std::string(backend->name()));
    e.message(
        fmt::format("banned {} for {} s: {}", ip.to_string(), result->ttl.count(), request.reason));
  }
  events.push_back(std::move(e));
  if (result && result->prefix_ban) {
    // Prefix escalation (ban_list.h): one more ban, for the whole network.
    const auto& p = *result->prefix_ban;
    const std::string net = p.entry.key();
    event::Event pe(proto::action::kIpBanned, event::Severity::kCritical, env.clock().now_ns());
    pe.set("event.category", nlohmann::json::array({"network", "intrusion_detection"}))
        .set("event.type", nlohmann::json::array({"denied"}))
        .set("source.ip", p.entry.ip.to_string())
        .set("mamori.ban.prefix", net)
        .set("mamori.ban.prefix_offenders", p.offenders)
        .set("rule.name", p.entry.rule)
        .set("event.reason", p.entry.reason)
        .set("mamori.ban.ttl_s", static_cast<int64_t>(p.ttl.count()))
        .set("mamori.ban.offences", p.entry.offences)
        .set("mamori.ban.backend", std::string(backend->name()));
    if (p.error) {
      ban_failures.fetch_add(1, std::memory_order_relaxed);
      pe.outcome("failure").set("error.message", p.error->message());
      pe.message(fmt::format("could not ban {}: {}", net, p.error->message()));
    } else {
      bans.fetch_add(1, std::memory_order_relaxed);
      pe.outcome("success");
      pe.message(fmt::format("banned {} for {} s: {}", net, p.ttl.count(), p.entry.reason));
    }
    events.push_back(std::move(pe));
  }
  return true;
}

// The credential of decoy `token` was used by `ip` on `used_on`: one decoy-credential-used
// event (id `use_id`) that names every address that fetched the decoy (remembered, or
// still banned for it after a restart: the ban list says so) and links to the newest
// fetch's ban; then the user (unless the access-log rule banned it already) and each
// fetcher whose ban is over are banned, their events linked to it. One incident.
void Logwatch::Impl::link_use(const std::string& token, const logparse::IpAddress& ip,
                              const std::string& use_id, std::string_view used_on,
                              const std::string& user, int64_t time_ns,
                              std::vector<event::Event>& events) {
  std::vector<DecoyFetch> fetches = decoy_links.fetchers(token);
  const std::string fetch_rule = "decoy-" + token;
  if (auto entries = list->list()) {
    for (const auto& b : *entries)
      if (b.rule == fetch_rule && !b.is_prefix() &&
          std::none_of(fetches.begin(), fetches.end(),
                       [&](const DecoyFetch& f) { return f.ip == b.ip; }))
        fetches.push_back({b.ip, "", b.last_ban * 1'000'000'000});
  }
  const auto path = decoy_paths.find(token);
  const std::string what =
      path == decoy_paths.end() ? "decoy " + token : "decoy " + quote(path->second);

  nlohmann::json fetched_by = nlohmann::json::array();
  nlohmann::json related = nlohmann::json::array({ip.to_string()});
  std::string names;
  for (const auto& f : fetches) {
    fetched_by.push_back(f.ip.to_string());
    if (!(f.ip == ip)) related.push_back(f.ip.to_string());
    names += (names.empty() ? "" : ", ") + f.ip.to_string();
  }
  event::Event use(use_id, proto::action::kDecoyCredentialUsed, event::Severity::kCritical,
                   time_ns);
  use.set("event.category", nlohmann::json::array({"intrusion_detection"}))
      .set("event.type", nlohmann::json::array({"indicator"}))
      .set("source.ip", ip.to_string())
      .set("related.ip", std::move(related))
      .set("mamori.decoy.token", token)
      .set("mamori.decoy.used_on", std::string(used_on))
      .set("mamori.decoy.fetched_by", std::move(fetched_by));
  if (path != decoy_paths.end()) use.set("mamori.decoy.path", path->second);
  if (!user.empty()) use.set("user.name", user);
  if (!fetches.empty() && !fetches.front().event_id.empty())
    use.set("mamori.related_event", fetches.front().event_id);
  use.message(fmt::format(
      "the credential of {} was used by {} on {}; {}", what, ip.to_string(), used_on,
      names.empty() ? "no fetch of the file seen (read on the host?)" : "fetched by " + names));
  events.push_back(std::move(use));

  auto ban_linked = [&](const logparse::IpAddress& who, const std::string& rule,
                        const std::string& reason) {
    if (list->allowlisted(who)) return;  // never banned: the link event names it still
    event::Event e(proto::action::kIpBanned, event::Severity::kCritical, env.clock().now_ns());
    e.set("event.category", nlohmann::json::array({"network", "intrusion_detection"}))
        .set("event.type", nlohmann::json::array({"denied"}))
        .set("source.ip", who.to_string())
        .set("rule.name", rule)
        .set("event.reason", reason)
        .set("mamori.related_event", use_id);
    ban::BanRequest request;
    request.rule = rule;
    request.reason = reason;
    request.source = "decoy";
    ban_into(who, request, std::move(e), events);
  };
  if (used_on != "http")
    ban_linked(ip, credential_rule_id(token),
               fmt::format("used the credential of {} on {}", what, used_on));
  for (const auto& f : fetches)
    if (!(f.ip == ip))
      ban_linked(f.ip, fetch_rule,
                 fmt::format("fetched {}, whose credential {} used", what, ip.to_string()));
}

void Logwatch::Impl::attributed(size_t i, const Attribution& a) {
  // @timestamp is the request's own time (when it happened; second precision, the log's);
  // event.created says when mamori found it.
  const int64_t at = a.time_s ? a.time_s * 1'000'000'000 : env.clock().now_ns();
  event::Event e(proto::action::kTamperAttributed, event::Severity::kWarning, at);
  e.set("event.category", nlohmann::json::array({"web", "intrusion_detection"}))
      .set("event.type", nlohmann::json::array({"info"}))
      .set("source.ip", a.ip.to_string())
      .set("file.path", a.file.path)
      .set("log.file.path", config::log_name(config.logs[i]))
      .set("url.original", a.request)
      .set("http.response.status_code", a.status)
      .set("mamori.attribution", std::string(a.before && a.writes ? "wrote" : "called"));
  if (!a.method.empty()) e.set("http.request.method", a.method);
  if (!a.user_agent.empty()) e.set("user_agent.original", a.user_agent);
  if (!a.file.event_id.empty()) e.set("mamori.related_event", a.file.event_id);
  if (a.allowlisted) e.set("mamori.allowlisted", true);
  e.message(fmt::format("{} {} {}: {}", a.ip.to_string(),
                        a.before && a.writes ? "wrote" : "requested", quote(a.file.path),
                        a.request));
  std::vector<event::Event> events;
  events.push_back(std::move(e));
  publish(std::move(events));
}

// A log that stopped fitting its format (logparse/health.h) bans nobody: said once per
// episode, with a sample, and once when it reads again.
void Logwatch::Impl::parsing_changed(size_t i, logparse::ParseHealth::Change change,
                                     const logparse::ParseHealth& h) {
  const int64_t now = env.clock().now_ns();
  const auto& l = config.logs[i];
  const bool bad = change == logparse::ParseHealth::Change::kUnparseable;
  event::Event e(bad ? proto::action::kLogUnparseable : proto::action::kLogParseable,
                 bad ? event::Severity::kWarning : event::Severity::kInfo, now);
  e.set("event.category", nlohmann::json::array({"configuration"}))
      .set("event.type", nlohmann::json::array({bad ? "error" : "info"}))
      .set("log.file.path", config::log_name(l))
      .set("mamori.log.format", l.format)
      .set("mamori.log.lines", static_cast<int64_t>(h.lines()))
      .set("mamori.log.unparsed", static_cast<int64_t>(h.failures()));
  if (bad) {
    unparseable_since[i] = now;
    nlohmann::json reasons = nlohmann::json::object();
    std::string why;
    for (size_t k = 0; k < logparse::kParseStatusCount; ++k) {
      const auto st = static_cast<logparse::ParseStatus>(k);
      if (!logparse::is_format_failure(st) || h.in_window(st) == 0) continue;
      const std::string name(logparse::parse_status_name(st));
      reasons[name] = static_cast<int64_t>(h.in_window(st));
      why += fmt::format("{}{} {}", why.empty() ? "" : ", ", name, h.in_window(st));
    }
    const std::string sample = escape(h.sample());
    e.set("mamori.log.unparsed_by_reason", std::move(reasons))
        .set("mamori.log.sample", sample)
        .set("mamori.log.sample_reason", std::string(parse_status_name(h.sample_status())));
    e.message(
        fmt::format("access log {} does not fit its format {}: {} of the last {} lines "
                    "refused ({}); they can ban nobody",
                    quote(config::log_name(l)), quote(l.format), h.failures(), h.lines(), why));
  } else {
    const int64_t for_s = unparseable_since[i] ? (now - unparseable_since[i]) / 1'000'000'000 : 0;
    unparseable_since[i] = 0;
    e.set("mamori.log.unparseable_for_s", for_s);
    e.message(
        fmt::format("access log {} fits its format {} again ({} of the last {} lines "
                    "refused)",
                    quote(config::log_name(l)), quote(l.format), h.failures(), h.lines()));
  }
  log("logwatch: " + e.fields().value("message", std::string()));
  std::vector<event::Event> events;
  events.push_back(std::move(e));
  publish(std::move(events));
  refresh_parsing();
}

void Logwatch::Impl::refresh_parsing() {
  std::vector<proto::LogParsing> now;
  for (size_t i = 0; i < detectors.size(); ++i) {
    const auto& h = detectors[i] ? detectors[i]->health() : event_detectors[i]->health();
    proto::LogParsing p{
        config::log_name(config.logs[i]), h.unparseable(), h.lines(), h.failures(), "", ""};
    if (h.unparseable()) {
      p.sample = escape(h.sample());
      p.sample_reason = std::string(logparse::parse_status_name(h.sample_status()));
    }
    now.push_back(std::move(p));
  }
  MutexLock lock(mu);
  parsing = std::move(now);
}

void Logwatch::Impl::each_second() {
  for (auto& d : event_detectors)
    if (d) d->set_reference_time(env.clock().now_ns() / 1'000'000'000);
  if (auto st = tailer->save(); !st) log("logwatch: " + st.error().message());
  for (auto& j : journals) {
    if (auto st = j.reader->save(); !st) log("logwatch: journal: " + st.error().message());
    report_forged(j);
  }
  refresh_parsing();
  std::vector<event::Event> events;
  if (auto expired = banner->expire()) {
    for (const auto& entry : expired->entries) {
      unbans.fetch_add(1, std::memory_order_relaxed);
      for (auto& d : detectors)
        if (d) d->forget(entry.ip);
      for (auto& d : event_detectors)
        if (d) d->forget(entry.ip);
      events.push_back(std::move(
          event::Event(proto::action::kIpUnbanned, event::Severity::kInfo, env.clock().now_ns())
              .set("event.category", nlohmann::json::array({"network"}))
              .set("event.type", nlohmann::json::array({"allowed"}))
              .set("source.ip", entry.ip.to_string())
              .set("rule.name", entry.rule)
              .set("event.reason", std::string("expired"))
              .message(fmt::format("ban of {} expired", entry.ip.to_string()))));
    }
    for (const auto& err : expired->errors) log("logwatch: " + err.message());
  } else {
    log("logwatch: " + expired.error().message());
  }
  // `mamori bans del` (another connection) changed the list: let every address be
  // decided again, so one lifted by hand is banned again if it attacks again.
  if (auto v = list->data_version(); v && *v != list_version) {
    list_version = *v;
    for (auto& d : detectors)
      if (d) d->forget_all();
    for (auto& d : event_detectors)
      if (d) d->forget_all();
  }
  if (!events.empty()) publish(std::move(events));
}

}  // namespace mamori::logwatch
