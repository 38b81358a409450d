#include "agent/app/agent.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "agent/app/async_publisher.h"
#include "agent/ban/options.h"
#include "agent/control/control.h"
#include "agent/control/handlers.h"
#include "agent/gate/open_gate.h"
#include "agent/guard/guard.h"
#include "agent/heal/healer.h"
#include "agent/link/link.h"
#include "agent/link/outflow.h"
#include "agent/logwatch/logwatch.h"
#include "agent/opcache/opcache.h"
#include "agent/pages/discovery.h"
#include "agent/pages/page_monitor.h"
#include "agent/relay/honeypot_relay.h"
#include "agent/sinks/sink_set.h"
#include "agent/triage/lookup_worker.h"
#include "agent/watch/fanotify/fanotify_watcher.h"
#include "agent/watch/inotify/inotify_watcher.h"
#include "core/base/quote.h"
#include "core/baseline/state.h"
#include "core/decoy/decoy.h"
#include "core/evidence/evidence.h"
#include "core/fs/admin_files.h"
#include "core/fs/beneath.h"
#include "core/outbox/outbox.h"
#include "core/proto/actions.h"
#include "core/scan/lookup.h"

namespace mamori::agent {
namespace {

// Exit codes shared with the CLI (cli/app.h).
constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitFailed = 3;

void log(const std::string& line) {
  std::fprintf(stderr, "mamori agent: %s\n", line.c_str());
  std::fflush(stderr);
}

// Shows every event the guard publishes to `observe` (the healer) on the way to the
// outbox, on the guard's thread.
class ObservingPublisher final : public guard::Publisher {
 public:
  ObservingPublisher(guard::Publisher& inner, std::function<void(const event::Event&)> observe)
      : inner_(inner), observe_(std::move(observe)) {}
  Status publish(std::vector<event::Event>&& events,
                 std::vector<guard::Rewritten>&& rewritten) override {
    for (const auto& e : events) observe_(e);
    return inner_.publish(std::move(events), std::move(rewritten));
  }

 private:
  guard::Publisher& inner_;
  std::function<void(const event::Event&)> observe_;
};

// What loop() reads from its signalfd: stop (TERM, INT) and reopen the event log (HUP).
sigset_t handled_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  return mask;
}

Result<std::unique_ptr<watch::Watcher>> make_watcher(config::Backend backend) {
  if (backend != config::Backend::kInotify) {
    auto f = watch::FanotifyWatcher::create();
    if (f) return std::unique_ptr<watch::Watcher>(std::move(*f));
    if (backend == config::Backend::kFanotify) return tl::unexpected(std::move(f).error());
    log(fmt::format("fanotify unavailable ({}); using inotify", f.error().message()));
  }
  auto i = MAMORI_TRY(watch::InotifyWatcher::create());
  return std::unique_ptr<watch::Watcher>(std::move(i));
}

}  // namespace

class Agent::Impl {
 public:
  Impl(Env& env, Executor& executor, const AgentOptions& options)
      : env_(env), executor_(executor), options_(options), config_(options.config) {}

  // The start-up steps, in order (agent.h describes each).
  struct Step {
    std::string_view name;
    Status (Impl::*run)();
  };
  // A function: the member pointers need the class complete.
  static const std::array<Step, 16>& steps() {
    static constexpr std::array<Step, 16> kSteps = {{
        {"listen", &Impl::listen},
        {"open_state", &Impl::open_state},
        {"load_origin", &Impl::load_origin},
        {"open_outbox", &Impl::open_outbox},
        {"start_sinks", &Impl::start_sinks},
        {"start_link", &Impl::start_link},
        {"open_evidence", &Impl::open_evidence},
        {"open_heal", &Impl::open_heal},
        {"open_roots", &Impl::open_roots},
        {"start_watchers", &Impl::start_watchers},
        {"start_gate", &Impl::start_gate},
        {"verify_roots", &Impl::verify_roots},
        {"start_logwatch", &Impl::start_logwatch},
        {"start_pages", &Impl::start_pages},
        {"serve_control", &Impl::serve_control},
        {"notify_ready", &Impl::notify_ready},
    }};
    return kSteps;
  }

  Status start(std::string_view last) {
    const auto& kSteps = steps();
    if (!last.empty() &&
        std::none_of(kSteps.begin(), kSteps.end(), [&](const Step& s) { return s.name == last; }))
      return fail_msg("start", std::string(last), "is not a start-up step");
    started_ns_ = env_.clock().now_ns();
    // Before any thread starts, so every thread inherits the mask: a signal the kernel
    // hands to a thread that does not block it would kill the agent, not reach loop().
    const sigset_t mask = handled_signals();
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    // The guard's lease probes (fs/open_for_writing.h) make the kernel send SIGIO when a
    // writer opens the file meanwhile; its default action would kill the agent.
    ::signal(SIGIO, SIG_IGN);
    for (const auto& step : kSteps) {
      if (auto st = (this->*step.run)(); !st) {
        // "open_roots: root '/srv/www': has no baseline yet...", as before the list.
        return fail_msg(std::string(step.name), "", st.error().message());
      }
      if (step.name == last) break;
    }
    return ok();
  }

  // relay_ uses scanner_ and lookups_ (captured files), which are declared after it and
  // so destroyed before it: stopped first, whether run() ran or a start step failed.
  ~Impl() {
    if (relay_) relay_->stop();
  }

  // The loop until told to stop, then the orderly stop. Needs start() to have run every step.
  int run() {
    const int code = loop();
    sd_notify(0, "STOPPING=1");
    guard_->capture_due(/*all=*/true);
    guard_->tick();
    // Every change queued before the last wake-up was read and handled by then.
    if (code == kExitOk && last_wake_ns_) save_reported_until(last_wake_ns_);
    if (relay_) relay_->stop();
    if (logwatch_) logwatch_->stop();
    pages_.reset();  // stops a fetch in progress; its events are queued already
    emit_lifecycle(proto::action::kAgentStopped, "stopped");
    flush();
    publisher_->drain();
    sinks_->stop();            // one last delivery attempt each, in parallel
    if (link_) link_->stop();  // what is written, then bye (bounded)
    return code;
  }

  control::Handlers& handlers() { return *handlers_; }

 private:
  // First: a second agent must refuse before it restores or reports anything. Requests
  // wait in the backlog until loop() serves them.
  Status listen() {
    server_.emplace(MAMORI_TRY(control::Server::listen(config_.agent.socket)));
    return ok();
  }

  Status open_state() {
    state_ =
        MAMORI_TRY(baseline::open_state(env_, config_.state_dir, baseline::StateAccess::kRead));
    // The baseline, bans and evidence are root's alone, whatever made the directory.
    auto was = MAMORI_TRY(fs::make_private_dir(config_.state_dir));
    if (was)
      log(
          fmt::format("state directory {} was mode {:04o} (others could read the baseline, bans "
                      "and evidence): made 0700",
                      quote(config_.state_dir), static_cast<unsigned>(*was)));
    return ok();
  }

  // Every event's agent.id, agent.name, host.* (STATE/agent-id: core/event/origin.h). A
  // corrupt id stops here: a new one would split the host's history everywhere.
  Status load_origin() {
    origin_.emplace(MAMORI_TRY(event::Origin::load(env_, config_.state_dir, config_.agent.name)));
    return ok();
  }

  Status open_outbox() {
    outbox_.emplace(
        MAMORI_TRY(outbox::Outbox::open(env_, {outbox::outbox_dir(config_.state_dir),
                                               config_.agent.event_log,
                                               {.quota_bytes = config_.agent.outbox_quota_mb << 20},
                                               &*origin_})));
    return ok();
  }

  // Before anything is written, so a new sink starts with this run's first event.
  Status start_sinks() {
    sinks_ = MAMORI_TRY(sinks::SinkSet::start(
        env_, config_, outbox_->dir(), outbox_->next_sequence(), *origin_,
        [](const std::string& sink, const std::string& error) {
          log(error.empty() ? "sink " + quote(sink) + " delivers again" : error);
        }));
    publisher_.emplace(
        *outbox_, *origin_, [](const Error& e) { log("event log: " + e.message()); },
        [this] {
          sinks_->notify();
          // Set by start_link, the next step, before anything is published.
          if (link_) link_->notify();
        });
    observed_.emplace(*publisher_, [this](const event::Event& e) { observe(e); });
    return ok();
  }

  // The manager link (agent/link/link.h), when [manager] names one: its cursor is
  // registered here, before anything more is written, and it enrolls and connects in the
  // background (the guard never waits for the manager). Without [manager], the cursor
  // of an earlier configuration goes, so it holds no segment.
  Status start_link() {
    const auto& m = config_.manager;
    if (m.url.empty() && m.token_file.empty()) {
      if (auto st = link::Outflow::remove(outbox_->dir()); !st) log(st.error().message());
      return ok();
    }
    link::LinkOptions o;
    o.url = m.url;
    o.token_file = m.token_file;
    o.state_dir = config_.state_dir;
    o.outbox_dir = outbox_->dir();
    o.start_sequence = outbox_->next_sequence();
    const auto& f = origin_->fields();
    o.agent_id = f.agent_id;
    o.agent_name = f.agent_name;
    o.agent_version = f.agent_version;
    o.hostname = f.host_hostname;
    for (const auto& rc : config_.roots) o.roots.push_back({rc.path, rc.mode, false});
    // The sealed root hash: the catalog's own verify (check_own_state) runs later.
    if (auto h = state_->catalog.stored_root_hash(); h && *h) o.baseline_root_hash = (*h)->hex();
    o.log = [](const std::string& line) { log(line); };
    link_ = MAMORI_TRY(link::Link::create(env_, std::move(o)));
    link_->start();
    return ok();
  }

  Status open_evidence() {
    evidence::Options eo;
    eo.quota_bytes = config_.agent.evidence_quota_mb << 20;
    eo.max_item_bytes = config_.agent.evidence_max_file_mb << 20;
    evidence_ = MAMORI_TRY(evidence::EvidenceStore::open(
        env_, config_.state_dir, evidence::EvidenceStore::Access::kWrite, eo));
    guard_ = std::make_unique<guard::Guard>(env_, *state_, evidence_.get(), *observed_, executor_,
                                            config_.agent);
    if (config_.agent.yara) {
      // A rule file of the administrator's that does not compile stops the start, naming
      // file and line: an agent that silently triages with fewer rules is worse.
      scan::RuleOptions ro;
      ro.dirs = config_.agent.yara_rules;
      auto rules = MAMORI_TRY(scan::RuleSet::compile(ro));
      scan::Limits limits;
      limits.max_scan_bytes = uint64_t{config_.agent.yara_max_kb} << 10;
      limits.timeout = std::chrono::seconds(1);  // libyara's least: the guard's thread waits
      scanner_ = std::make_unique<scan::Scanner>(std::move(rules), limits);
      guard_->set_scanner(scanner_.get());
    }
    if (!config_.lookup.api_key_file.empty()) MAMORI_TRY(start_lookups());
    return ok();
  }

  // [lookup]: the SHA-256 of what the guard quarantines or restores is asked of VirusTotal
  // on a thread of its own (agent/triage/lookup_worker.h). A key file that cannot be used
  // stops the start, as a rule file that does not compile does.
  Status start_lookups() {
    const auto& lc = config_.lookup;
    const std::string key = MAMORI_TRY(scan::read_api_key_file(lc.api_key_file));
    MAMORI_TRY(scan::VtClient::make({.base_url = lc.base_url, .api_key = key}));
    triage::LookupWorkerOptions o;
    o.state_path = config_.state_dir + "/lookup.json";
    o.limits.per_minute = lc.per_minute;
    o.limits.per_day = lc.per_day;
    o.make_client = [base = lc.base_url, key]() -> Result<std::unique_ptr<scan::HashLookup>> {
      auto client = MAMORI_TRY(scan::VtClient::make({.base_url = base, .api_key = key}));
      return std::unique_ptr<scan::HashLookup>(std::move(client));
    };
    // AsyncPublisher::publish() only queues and cannot fail; the writer reports.
    o.publish = [this](std::vector<event::Event>&& events) {
      (void)publisher_->publish(std::move(events), {});
    };
    o.log = [](const std::string& line) { log(line); };
    lookups_ = std::make_unique<triage::LookupWorker>(env_, std::move(o));
    return ok();
  }

  Status open_heal() {
    healer_ = MAMORI_TRY(heal::Healer::open(
        env_, config_.heal, config_.state_dir,
        [this](event::Event e) { heal_events_.push_back(std::move(e)); },
        [this] { return verify_all(); }));
    return ok();
  }

  // The commands of the control socket, over everything opened before.
  Status serve_control() {
    handlers_ = std::make_unique<control::Handlers>(control::Services{
        env_, *guard_, *watcher_, *healer_, *sinks_, logwatch_.get(),
        [this] {
          const auto o = publisher_->outbox_figures();
          return control::EventLogStats{publisher_->dropped(),
                                        publisher_->dropped_security(),
                                        publisher_->waits(),
                                        {outbox::outbox_dir(config_.state_dir), o.next_sequence,
                                         config_.agent.outbox_quota_mb, o.quota_dropped,
                                         o.quota_dropped_security, o.export_behind}};
        },
        [this] { flush(); }, [](const std::string& line) { log(line); }, config_.agent.event_log,
        started_ns_, [this] { return link_ ? link_->status() : proto::ManagerLinkStatus{}; },
        ban::options_from(config_), ban::list_path(config_), evidence_.get(), state_.get(),
        config_.state_dir, [this] { return gate_status(); }});
    return ok();
  }

  Status notify_ready() {
    emit_lifecycle(
        proto::action::kAgentStarted,
        fmt::format("guarding {} root(s) with {}", guard_->root_count(), watcher_->name()));
    flush();
    sd_notifyf(0, "READY=1\nSTATUS=guarding %zu root(s) with %s", guard_->root_count(),
               std::string(watcher_->name()).c_str());
    log(fmt::format("ready: guarding {} root(s) with {}; events to {}", guard_->root_count(),
                    watcher_->name(), quote(config_.agent.event_log)));
    return ok();
  }

  Status open_roots() {
    for (const auto& rc : config_.roots) {
      auto row = MAMORI_TRY(state_->catalog.find_root(rc.path));
      if (!row) {
        return fail("root", rc.path, ENOENT, "has no baseline yet: run 'mamori init' first");
      }
      guard::GuardedRoot r;
      r.path = rc.path;
      r.fd = MAMORI_TRY(fs::open_root(rc.path));
      r.catalog_id = row->id;
      r.mode = rc.mode;
      r.exclude = MAMORI_TRY(fs::PathMatcher::compile(rc.exclude));
      r.uploads = MAMORI_TRY(fs::UploadPolicy::compile(rc.allow_new, rc.deny_new));
      guard_->add_root(std::move(r));
    }
    if (guard_->root_count() == 0)
      return fail("config", options_.config_path, EINVAL, "no [[root]] to guard");
    add_decoys();
    if (config_.opcache.mode != config::OpcacheMode::kOff) MAMORI_TRY(start_opcache());
    return ok();
  }

  // [opcache] (agent/opcache/opcache.h): before the start-up verify, so what it restores
  // is dropped from PHP's opcache too. A helper that cannot be installed safely, or a
  // socket that is no socket address, stops the start: the operator asked for it.
  Status start_opcache() {
    const auto& oc = config_.opcache;
    opcache::WorkerOptions o;
    o.mode = oc.mode;
    o.helper_path = oc.helper;
    o.pid_file = oc.pid_file;
    o.call.timeout = std::chrono::seconds(oc.timeout_s);
    if (oc.mode == config::OpcacheMode::kInvalidate) {
      o.endpoint = MAMORI_TRY(opcache::parse_endpoint(oc.socket));
      MAMORI_TRY(opcache::install_helper(env_, oc.helper));
    }
    for (size_t i = 0; i < guard_->root_count(); ++i) {
      // PHP names the scripts it caches by their real path.
      const std::string& path = guard_->root(i).path;
      char real[PATH_MAX];
      o.roots[path] = ::realpath(path.c_str(), real) ? std::string(real) : path;
    }
    o.publish = [this](std::vector<event::Event>&& events) {
      (void)publisher_->publish(std::move(events), {});  // only queues; the writer reports
    };
    o.log = [](const std::string& line) { log(line); };
    opcache_ = std::make_unique<opcache::Worker>(env_, std::move(o));
    guard_->set_acted_hook([w = opcache_.get()](const std::string& root, const std::string& rel,
                                                std::string_view action,
                                                const std::string& event_id) {
      w->acted(root, rel, action, event_id);
    });
    return ok();
  }

  // The decoys `mamori decoys plant` recorded (docs/decoys.md). A damaged record costs
  // the open reports only (the access-log rules are their own file): said, not fatal.
  void add_decoys() {
    auto decoys = decoy::load(config_.state_dir + "/decoys.json");
    if (!decoys) return log("decoys: " + decoys.error().message());
    decoys_ = std::move(*decoys);
    for (const auto& d : decoys_.files)
      for (size_t i = 0; i < guard_->root_count(); ++i)
        if (guard_->root(i).path == d.root) guard_->add_decoy(i, d.rel, d.token);
  }

  Status start_watchers() {
    watcher_ = MAMORI_TRY(options_.make_watcher ? options_.make_watcher(config_.agent.backend)
                                                : make_watcher(config_.agent.backend));
    for (size_t i = 0; i < guard_->root_count(); ++i) {
      // The watcher compares kernel paths with the root's real path (/var/www/html may
      // be a symlink to /srv/www).
      char real[PATH_MAX];
      if (!::realpath(guard_->root(i).path.c_str(), real))
        return fail_errno("realpath", guard_->root(i).path);
      real_roots_.emplace_back(real);
      MAMORI_TRY(watcher_->add_root(i, real, guard_->root(i).fd.get()));
    }
    return ok();
  }

  // The open gate (agent/gate, docs/open-gate.md), once the watchers see every change:
  // from here on no other process reads a guarded file whose content is not its
  // baseline's. Where the kernel will not, the agent guards as before and says so.
  Status start_gate() {
    auto& g = gate_status_;
    const auto mode = config_.agent.open_gate;
    if (mode == config::GateMode::kOff) {
      g.reason = "[agent] open_gate = \"off\"";
      return ok();
    }
    size_t enforced = 0;
    Status started = [&]() -> Status {
      auto gate = MAMORI_TRY(
          gate::OpenGate::create(config_.state_dir, {config_.agent.open_gate_timeout_ms}));
      // Alert mode changes nothing, reads neither: an agent of alert roots only runs no
      // gate. Beside a root it enforces, an alert root is marked too, not enforced until
      // `mamori mode` puts it in restore or preserve (the guard's enforcing hook).
      for (size_t i = 0; i < guard_->root_count(); ++i)
        if (guard_->root(i).mode != config::Mode::kAlert) ++enforced;
      if (enforced == 0) return ok();
      for (size_t i = 0; i < guard_->root_count(); ++i) {
        const auto& r = guard_->root(i);
        MAMORI_TRY(gate->add_root(
            {i, real_roots_[i], r.catalog_id, r.exclude, r.uploads, r.mode != config::Mode::kAlert},
            r.fd.get()));
      }
      MAMORI_TRY(gate->start());
      gate_ = std::move(gate);
      return ok();
    }();
    if (!started) {
      if (mode == config::GateMode::kOn) return started;
      g.state = "unavailable";
      g.reason = started.error().message();
      log("open gate unavailable: " + g.reason);
      guard_->emit(
          std::move(event::Event(proto::action::kOpenGateUnavailable, event::Severity::kWarning,
                                 env_.clock().now_ns())
                        .set("event.category", nlohmann::json::array({"configuration"}))
                        .set("error.message", g.reason)
                        .message("the open gate is unavailable (" + g.reason +
                                 "): a tampered file can be read until the guard restores it")));
      return ok();
    }
    if (!gate_) {
      g.reason = "no root in restore or preserve mode";
      return ok();
    }
    g.state = "on";
    g.read_check = std::string(gate::OpenGate::kReadCheck);
    guard_->set_enforcing_hook(
        [gate = gate_.get()](size_t root, bool on) { gate->set_enforcing(root, on); });
    return ok();
  }

  proto::OpenGateStatus gate_status() {
    proto::OpenGateStatus g = gate_status_;
    if (!gate_) return g;
    const auto s = gate_->stats();
    g.directories = s.directories;
    g.reads_unasked = s.reads_unasked;
    g.opens_unasked = s.opens_unasked;
    g.mark_failures = s.mark_failures;
    g.events = s.events;
    g.verified = s.verified;
    g.denied = s.denied;
    g.takeovers = s.takeovers;
    g.unchecked = s.unchecked;
    g.watchdog = s.watchdog_alive;
    return g;
  }

  // Once a second: the gate's refusals as events (one per path), and the opens its
  // watchdog had to allow unjudged.
  void report_gate() {
    if (!gate_) return;
    uint64_t dropped = 0;
    std::map<std::pair<size_t, std::string>, std::pair<gate::Denial, uint64_t>> by_path;
    for (auto& d : gate_->take_denials(dropped)) {
      auto key = std::make_pair(d.root, d.rel);
      ++by_path.try_emplace(std::move(key), std::move(d), 0).first->second.second;
    }
    for (const auto& [key, v] : by_path) {
      const auto& [d, count] = v;
      const std::string& root = guard_->root(d.root).path;
      const std::string path = fs::join(root, d.rel);
      event::Event e(proto::action::kOpenDenied, event::Severity::kWarning, d.time_ns);
      e.set("event.category", nlohmann::json::array({"file", "intrusion_detection"}))
          .set("event.outcome", std::string("success"))
          .set("file.path", path)
          .set("mamori.root", root)
          .set("mamori.path", d.rel)
          .set("mamori.gate.reason", d.reason)
          .set("mamori.gate.denied", count);
      if (auto p = guard::who_json(d.who); !p.empty()) e.set("process", p);
      if (d.who.uid >= 0) {
        e.set("user.id", std::to_string(d.who.uid));
        if (!d.who.user.empty()) e.set("user.name", d.who.user);
      }
      e.message(fmt::format(
          "refused {} {} of {}: {}",
          d.who.executable.empty() ? "pid " + std::to_string(d.who.pid) : d.who.executable,
          count == 1 ? "a read" : fmt::format("{} reads", count), quote(path),
          d.reason == "tampered"          ? "its content is not the baseline's"
          : d.reason == "not-in-baseline" ? "a new file the guard does not let stay"
                                          : "it is no longer a regular file"));
      guard_->emit(std::move(e));
    }
    if (dropped)
      guard_->emit(std::move(
          event::Event(proto::action::kOpenDenied, event::Severity::kWarning, env_.clock().now_ns())
              .set("event.category", nlohmann::json::array({"file", "intrusion_detection"}))
              .set("mamori.gate.denied", dropped)
              .message(fmt::format("refused {} more reads of tampered or new files (past {} "
                                   "reported a second)",
                                   dropped, gate::OpenGate::kMaxDenials))));
    const auto s = gate_->stats();
    if (s.takeovers > gate_takeovers_) {
      guard_->emit(
          std::move(event::Event(proto::action::kOpenGateTimeout, event::Severity::kWarning,
                                 env_.clock().now_ns())
                        .set("event.category", nlohmann::json::array({"process"}))
                        .set("mamori.gate.unchecked", s.unchecked - gate_unchecked_)
                        .set("mamori.gate.timeout_ms", config_.agent.open_gate_timeout_ms)
                        .message(fmt::format(
                            "the open gate did not answer within {} ms: its watchdog "
                            "allowed {} opens or reads unjudged",
                            config_.agent.open_gate_timeout_ms, s.unchecked - gate_unchecked_))));
    }
    gate_takeovers_ = s.takeovers;
    gate_unchecked_ = s.unchecked;
  }

  Status verify_roots() {
    check_own_state();
    guard_->set_allowed_reported_until(load_reported_until());
    for (size_t i = 0; i < guard_->root_count(); ++i)
      MAMORI_TRY(guard_->verify(i, guard::Trigger::kStartup));
    // The writers had the whole downtime to finish: the start-up's evidence is taken now,
    // so every event of the start-up verify (those waiting for evidence included) is
    // written before agent-started, in the order of its timestamps.
    guard_->capture_due(/*all=*/true);
    flush();
    // The watchers have run since before the verify: everything older is reported.
    save_reported_until(env_.clock().now_ns());
    return ok();
  }

  // STATE/agent-reported.json (docs/agent.md): until when every allowed new entry has
  // been reported, so the next start does not report the uploads again. Missing or
  // unreadable: 0, and they are all reported (once) as before.
  std::string reported_path() const { return config_.state_dir + "/agent-reported.json"; }
  int64_t load_reported_until() {
    auto text = fs::read_small_file(reported_path(), 4096);
    if (!text) {
      if (text.error().errnum != ENOENT) log(text.error().message());
      return 0;
    }
    const auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_object() && j.value("version", 0) == 1 && j.contains("allowed_reported_until_ns") &&
        j["allowed_reported_until_ns"].is_number_integer())
      return j["allowed_reported_until_ns"].get<int64_t>();
    log(quote(reported_path()) + " is not an agent-reported file (version 1): ignored");
    return 0;
  }
  // A change's ctime is the kernel's coarse clock, up to a tick behind the time we take:
  // a change made just after `ns` must not look older than it.
  static constexpr int64_t kCoarseClockSlackNs = 20'000'000;
  void save_reported_until(int64_t ns) {
    const nlohmann::json j = {{"version", 1},
                              {"allowed_reported_until_ns", ns - kCoarseClockSlackNs}};
    if (auto st = fs::write_file_atomic(env_, reported_path(), j.dump() + "\n", 0600); !st)
      log(st.error().message());
  }

  // The log watch runs for the honeypot relay and the decoys' credential log too, even
  // without a [[log]]: a decoy's credential used is banned by it.
  Status start_logwatch() {
    if (config_.logs.empty() && config_.agent.honeypot_outbox.empty() &&
        decoys_.credential_log.empty())
      return ok();
    auto publish = [this](std::vector<event::Event>&& events) {
      // AsyncPublisher::publish() only queues and cannot fail; the writer reports.
      (void)publisher_->publish(std::move(events), {});
    };
    // [pages] discovery counts the logs' requests (agent/pages/discovery.h).
    logwatch::Logwatch::RequestObserver on_request;
    if (config_.page_discovery.discover > 0 && !config_.logs.empty()) {
      discovery_ = std::make_shared<pages::Discoverer>(env_, config_,
                                                       [](const std::string& line) { log(line); });
      on_request = [d = discovery_](const std::string& path, const logparse::Entry& e) {
        d->note(path, e);
      };
    }
    logwatch_ = MAMORI_TRY(logwatch::Logwatch::start(
        env_, config_, publish, [](const std::string& line) { log(line); }, on_request));
    if (!config_.agent.honeypot_outbox.empty()) start_relay(publish);
    return ok();
  }

  // [[page]] (docs/pages.md): the page monitor fetches each page on its own thread.
  Status start_pages() {
    if (config_.pages.empty() && !discovery_) return ok();
    pages::PageMonitorOptions o;
    o.state_dir = config_.state_dir;
    o.pages = config_.pages;
    o.discovery = discovery_;
    // AsyncPublisher::publish() only queues and cannot fail; the writer reports.
    o.publish = [this](std::vector<event::Event>&& events) {
      (void)publisher_->publish(std::move(events), {});
    };
    o.log = [](const std::string& line) { log(line); };
    pages_ = std::make_unique<pages::PageMonitor>(env_, std::move(o));
    pages_->start();
    return ok();
  }

  void start_relay(std::function<void(std::vector<event::Event>&&)> publish) {
    relay::RelayOptions o;
    o.outbox_dir = config_.agent.honeypot_outbox;
    o.cursor_path = config_.state_dir + "/relay/honeypot.cursor";
    o.decoys = decoys_.files;
    o.origin = &*origin_;
    o.publish = std::move(publish);
    o.on_credential = [this](const relay::CredentialSeen& c) {
      logwatch_->credential_used({c.decoy->token, c.decoy->root + "/" + c.decoy->rel, c.ip, "ssh",
                                  c.user, c.event_id, c.time_ns});
    };
    o.log = [](const std::string& line) { log(line); };
    // The honeypot's captured files ([downloads] fetch): YARA on the relay's scan worker,
    // each whole file's hash to the VirusTotal look-ups ([lookup]).
    o.downloads_dir = relay::honeypot_downloads_dir(config_.agent.honeypot_outbox);
    o.scanner = scanner_.get();
    if (lookups_)
      o.on_captured = [this](const hash::Digest& sha256, const std::string& event_id) {
        (void)lookups_->submit(sha256, event_id);  // false: counted in its dropped()
      };
    relay_ = std::make_unique<relay::HoneypotRelay>(env_, std::move(o));
    relay_->start();
  }

  // Every event the guard publishes, on its way to the outbox: the healer judges it, and
  // a file put back or quarantined tells the log watch whose request touched it.
  void observe(const event::Event& e) {
    if (healer_) healer_->observe(e);
    if (lookups_) lookups_->observe(e);  // copies the hash into its inbox: never waits
    // A file put back: what the attacker did next may be in the database.
    if (pages_ && (e.action() == proto::action::kFileRestored ||
                   e.action() == proto::action::kFileQuarantined)) {
      const auto& root = e.get("mamori.root");
      const auto& rel = e.get("mamori.path");
      pages_->poke({root.is_string() ? root.get<std::string>() : "",
                    rel.is_string() ? rel.get<std::string>() : "", e.id()});  // never waits
    }
    if (!logwatch_) return;
    const auto& action = e.action();
    if (action != proto::action::kFileRestored && action != proto::action::kFileQuarantined &&
        action != proto::action::kFileChanged && action != proto::action::kFileCreated)
      return;
    const auto& root = e.get("mamori.root");
    const auto& rel = e.get("mamori.path");
    if (root.is_string() && rel.is_string())
      logwatch_->note_tampered(
          root.get<std::string>(), rel.get<std::string>(), env_.clock().now_ns(), e.id(),
          action == proto::action::kFileQuarantined || action == proto::action::kFileCreated ||
              e.get("mamori.change") == "added");
  }

  // Flushes the guard's events, then what the healer said about them (a condition seen
  // in one batch makes node-unhealthy the next).
  void flush() {
    for (int round = 0; round < 3; ++round) {
      if (auto st = guard_->flush(); !st) log(st.error().message());
      if (heal_events_.empty()) return;
      for (auto& e : std::exchange(heal_events_, {})) guard_->emit(std::move(e));
    }
  }

  // The agent's own baseline (catalog integrity, root hash, every content in the store)
  // at start-up and with each scheduled verify: restoring from a damaged baseline would
  // write the attacker's version back.
  void check_own_state() {
    if (auto st = state_->catalog.verify(); !st) {
      guard_->emit(std::move(
          event::Event(proto::action::kStateFailed, event::Severity::kCritical,
                       env_.clock().now_ns())
              .set("event.category", nlohmann::json::array({"intrusion_detection"}))
              .set("error.message", st.error().message())
              .message("mamori's own baseline failed verification: " + st.error().message())));
    }
  }

  // For the healer's recovery: a full verify of every root; clean when it found nothing.
  Result<bool> verify_all() {
    const uint64_t before = guard_->counters().changes;
    for (size_t i = 0; i < guard_->root_count(); ++i)
      MAMORI_TRY(guard_->verify(i, guard::Trigger::kScheduled));
    // A page still serving an injection is not clean either (docs/pages.md).
    if (config_.heal.on_page_injected && pages_ && pages_->injected()) return false;
    return guard_->counters().changes == before;
  }

  void emit_lifecycle(std::string_view action, std::string message) {
    guard_->emit(std::move(event::Event(action, event::Severity::kInfo, env_.clock().now_ns())
                               .set("event.category", nlohmann::json::array({"process"}))
                               .set("mamori.backend", std::string(watcher_ ? watcher_->name() : ""))
                               .message(std::move(message))));
  }

  // A deploy whose CLI died without resuming (killed, crashed) must not leave the roots
  // paused: they are resumed and verified, which rolls back what nobody accepted.
  void end_abandoned_deploy() {
    const auto* d = guard_->deploy();
    if (!d || d->root_alive()) return;
    const pid_t pid = d->root();
    guard_->end_deploy();
    for (size_t i = 0; i < guard_->root_count(); ++i) {
      if (!guard_->root(i).paused) continue;
      guard_->set_paused(i, false);
      guard_->emit(std::move(
          event::Event(proto::action::kDeployAbandoned, event::Severity::kWarning,
                       env_.clock().now_ns())
              .set("mamori.root", guard_->root(i).path)
              .set("mamori.deploy.pid", pid)
              .message(fmt::format("the deploy (pid {}) ended without resuming the guard: "
                                   "guarding again; what it changed is rolled back",
                                   pid))));
      if (auto st = guard_->verify(i, guard::Trigger::kResume); !st) log(st.error().message());
    }
  }

  int loop() {
    const sigset_t mask = handled_signals();
    UniqueFd sig(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    const itimerspec second{{1, 0}, {1, 0}};
    ::timerfd_settime(timer.get(), 0, &second, nullptr);
    if (!sig.valid() || !timer.valid()) {
      log("signalfd/timerfd failed");
      return kExitFailed;
    }
    uint64_t watchdog_us = 0;
    const bool watchdog = sd_watchdog_enabled(0, &watchdog_us) > 0;
    const auto start = env_.clock().monotonic();
    auto last_verify = start;
    std::vector<watch::Change> changes;
    while (true) {
      pollfd fds[6] = {{watcher_->fd(), POLLIN, 0},
                       {server_->fd(), POLLIN, 0},
                       {sig.get(), POLLIN, 0},
                       {timer.get(), POLLIN, 0},
                       {options_.stop_fd, POLLIN, 0},  // fd -1: ignored by poll
                       {link_ ? link_->command_fd() : -1, POLLIN, 0}};
      // Evidence waits for its writer to go quiet (guard.h): wake up to take it.
      int timeout_ms = -1;
      if (guard_->busy())  // lost opens to ask, a root to rescan: a slice each turn
        timeout_ms = 0;
      else if (auto due = guard_->next_capture_ns())
        timeout_ms =
            static_cast<int>(std::max<int64_t>(1, (*due - env_.clock().now_ns()) / 1'000'000));
      if (::poll(fds, 6, timeout_ms) < 0) {
        if (errno == EINTR) continue;
        log(fmt::format("poll: {}", std::strerror(errno)));
        return kExitFailed;
      }
      last_wake_ns_ = env_.clock().now_ns();
      if ((fds[0].revents & POLLIN) || guard_->busy()) {
        changes.clear();
        if (fds[0].revents & POLLIN)
          if (auto st = watcher_->read(changes); !st) log(st.error().message());
        if (gate_) gate_->note_changes(changes);  // new directories: marked before anything else
        guard_->handle(changes);
        flush();
      }
      if (guard_->next_capture_ns()) {
        guard_->capture_due();
        flush();
      }
      if (fds[1].revents & POLLIN)
        server_->serve_one([&](const nlohmann::json& r) { return handlers_->serve(r); });
      // The manager's commands: the same handlers as the socket's, on this thread.
      if (fds[5].revents & POLLIN)
        link_->serve_commands([&](const nlohmann::json& r) { return handlers_->serve(r); });
      if (fds[2].revents & POLLIN) {
        signalfd_siginfo si{};
        while (::read(sig.get(), &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) {
            if (auto st = publisher_->reopen(); !st) log(st.error().message());
            continue;
          }
          log(fmt::format("stopping on signal {}", si.ssi_signo));
          return kExitOk;
        }
      }
      if (fds[4].revents & POLLIN) {
        log("stopping: asked by the embedding program");
        return kExitOk;
      }
      if (fds[3].revents & POLLIN) {
        uint64_t ticks = 0;
        (void)!::read(timer.get(), &ticks, sizeof ticks);
        guard_->tick();
        report_gate();
        if (pages_)  // [heal] on = ["page-injected"]: judged here, on the healer's thread
          for (const auto& e : pages_->take_injected()) healer_->observe(e);
        healer_->tick();
        if (link_) link_->set_healthy(healer_->healthy());
        end_abandoned_deploy();
        const auto now = env_.clock().monotonic();
        const auto interval = std::chrono::seconds(config_.agent.verify_interval_s);
        if (config_.agent.verify_interval_s && now - last_verify >= interval) {
          last_verify = now;
          check_own_state();
          for (size_t i = 0; i < guard_->root_count(); ++i)
            if (auto st = guard_->verify(i, guard::Trigger::kScheduled); !st)
              log(st.error().message());
          save_reported_until(last_wake_ns_);
        }
        flush();
        if (watchdog) sd_notify(0, "WATCHDOG=1");
        if (options_.run_seconds && now - start >= std::chrono::seconds(options_.run_seconds))
          return kExitOk;
      }
    }
  }

  Env& env_;
  Executor& executor_;
  const AgentOptions& options_;
  const config::Config& config_;
  std::unique_ptr<baseline::State> state_;
  std::optional<event::Origin> origin_;  // before outbox_: the outbox stamps with it
  std::optional<outbox::Outbox> outbox_;
  std::unique_ptr<sinks::SinkSet> sinks_;    // notified by the publisher: outlives it
  std::unique_ptr<link::Link> link_;         // the same; null without [manager]
  std::optional<AsyncPublisher> publisher_;  // after outbox_: destroyed (drained) first
  std::optional<ObservingPublisher> observed_;
  std::unique_ptr<heal::Healer> healer_;
  std::unique_ptr<logwatch::Logwatch> logwatch_;  // publishes through publisher_
  decoy::Record decoys_;                          // STATE/decoys.json, read once by open_roots
  std::unique_ptr<relay::HoneypotRelay> relay_;   // tells logwatch_: destroyed first
  std::vector<event::Event> heal_events_;         // what the healer said, emitted at the next flush
  std::unique_ptr<evidence::EvidenceStore> evidence_;
  std::unique_ptr<scan::Scanner> scanner_;  // before guard_: it outlives it
  std::unique_ptr<guard::Guard> guard_;
  std::unique_ptr<triage::LookupWorker> lookups_;  // publishes through publisher_: goes first
  // Declared after guard_, so gone before it (the guard's enforcing hook points here).
  // Closing it releases every open still waiting on it.
  std::unique_ptr<gate::OpenGate> gate_;
  std::vector<std::string> real_roots_;  // each root's real path, by index (start_watchers)
  proto::OpenGateStatus gate_status_;
  uint64_t gate_takeovers_ = 0, gate_unchecked_ = 0;
  std::unique_ptr<opcache::Worker> opcache_;      // the same; the guard's hook calls it
  std::unique_ptr<pages::PageMonitor> pages_;     // the same
  std::shared_ptr<pages::Discoverer> discovery_;  // fed by logwatch_, read by pages_
  std::unique_ptr<watch::Watcher> watcher_;
  std::optional<control::Server> server_;
  std::unique_ptr<control::Handlers> handlers_;  // the control commands, over the parts above
  int64_t started_ns_ = 0;
  int64_t last_wake_ns_ = 0;  // when poll() last returned
};

Agent::Agent(Env& env, Executor& executor, const AgentOptions& options)
    : impl_(std::make_unique<Impl>(env, executor, options)) {}
Agent::~Agent() = default;

std::vector<std::string_view> Agent::step_names() {
  std::vector<std::string_view> out;
  for (const auto& s : Impl::steps()) out.push_back(s.name);
  return out;
}

Status Agent::start(std::string_view last_step) { return impl_->start(last_step); }
int Agent::run() { return impl_->run(); }
control::Handlers& Agent::handlers() { return impl_->handlers(); }

int run_agent(Env& env, Executor& executor, const AgentOptions& options) {
  if (::geteuid() != 0) {
    log("must run as root: it restores files of any owner and watches with fanotify");
    return kExitUsage;
  }
  Agent agent(env, executor, options);
  if (auto st = agent.start(); !st) {
    log(st.error().message());
    sd_notifyf(0, "STATUS=failed at %s", st.error().op.c_str());
    return kExitFailed;
  }
  return agent.run();
}

}  // namespace mamori::agent
