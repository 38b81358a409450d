#include "agent/heal/healer.h"

#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/fs/admin_files.h"
#include "core/proto/actions.h"

namespace mamori::heal {
namespace {

using event::Severity;
using nlohmann::json;

constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr size_t kMaxStateFile = 64 * 1024;
constexpr size_t kMaxDeployRoots = 4096;
constexpr std::string_view kUnreadable = "state file unreadable";

bool is_own_action(std::string_view a) {
  return a == proto::action::kNodeUnhealthy || a == proto::action::kNodeHealthy ||
         a == proto::action::kHookRan || a == proto::action::kHookFailed ||
         a == proto::action::kHealthActionFailed;
}

bool is_tamper_action(std::string_view a) {
  static constexpr std::array<std::string_view, 7> kTamper = {
      proto::action::kFileRestored,     proto::action::kFileRepaired,
      proto::action::kFileQuarantined,  proto::action::kFileChanged,
      proto::action::kFileCreated,      proto::action::kFileDeleted,
      proto::action::kFileRestoreFailed};
  return std::find(kTamper.begin(), kTamper.end(), a) != kTamper.end();
}

std::string string_field(const event::Event& e, std::string_view dotted) {
  const json& v = e.get(dotted);
  return v.is_string() ? v.get<std::string>() : std::string();
}

// One line, bounded: it goes into the health file, an HTTP body and heal.json.
std::string clean_reason(std::string_view text) {
  std::string out(text.substr(0, Healer::kMaxReason));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out;
}

std::string iso_time(int64_t ns) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z",
                     fmt::gmtime(static_cast<std::time_t>(ns / kNsPerSecond)));
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string dirname_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

bool is_executable_script(std::string_view path) {
  static constexpr std::array<std::string_view, 19> kScripts = {
      "php", "phtml", "php3", "php4", "php5", "php6", "php7", "php8", "phar", "pl",
      "py",  "sh",    "cgi",  "jsp",  "jspx", "asp",  "aspx", "rb",   "lua"};
  const auto name = path.substr(path.rfind('/') + 1);
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  std::string ext(name.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(kScripts.begin(), kScripts.end(), ext) != kScripts.end();
}

Result<std::unique_ptr<Healer>> Healer::open(Env& env, const config::HealConfig& config,
                                             const std::string& state_dir, Emit emit,
                                             VerifyAll verify_all) {
  MAMORI_TRY(fs::make_private_dirs(state_dir));
  struct stat st {};
  if (::stat(state_dir.c_str(), &st) != 0) return fail_errno("stat", state_dir);
  if (!S_ISDIR(st.st_mode)) return ::mamori::fail("heal state", state_dir, ENOTDIR);

  std::unique_ptr<Healer> h(
      new Healer(env, config, state_dir + "/heal.json", std::move(emit), std::move(verify_all)));
  const int64_t now = h->now_ns();
  State& s = h->state_;
  s.since_ns = now;
  std::optional<std::string> unreadable;
  if (auto text = fs::read_small_file(h->state_path_, kMaxStateFile); !text) {
    if (text.error().errnum != ENOENT) unreadable = text.error().message();
  } else {
    const json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    auto str = [&](const char* k) { return j.contains(k) && j[k].is_string(); };
    auto num = [&](const char* k) { return j.contains(k) && j[k].is_number_integer(); };
    auto flag = [&](const char* k) { return j.contains(k) && j[k].is_boolean(); };
    if (!j.is_object() || j.value("version", json()) != 1 || !flag("healthy") || !num("since_ns")) {
      unreadable = fmt::format("{}: not a heal state (version 1)", quote(h->state_path_));
    } else {
      s.healthy = j["healthy"].get<bool>();
      s.since_ns = j["since_ns"].get<int64_t>();
      s.manual = flag("manual") && j["manual"].get<bool>();
      s.last_trigger_ns = num("last_trigger_ns") ? j["last_trigger_ns"].get<int64_t>() : s.since_ns;
      if (str("reason")) s.reason = clean_reason(j["reason"].get<std::string>());
      if (str("trigger_event_id")) s.trigger_event_id = j["trigger_event_id"].get<std::string>();
      if (str("trigger_action")) s.trigger_action = j["trigger_action"].get<std::string>();
    }
  }
  if (unreadable) {
    // Fail-safe: a node that cannot tell whether it was drained stays drained.
    s = State{false, false, std::string(kUnreadable), now, now, "", ""};
    ++h->triggers_;
    h->emit_(std::move(
        event::Event(proto::action::kNodeUnhealthy, Severity::kCritical, now)
            .set("event.category", json::array({"host"}))
            .set("event.type", json::array({"change"}))
            .set("mamori.heal.reason", s.reason)
            .set("error.message", *unreadable)
            .message(fmt::format("node out of rotation: {}: {}", s.reason, *unreadable))));
  }
  if (!s.healthy && !s.manual && config.recover_after_s > 0)
    h->next_verify_ns_ = s.last_trigger_ns + int64_t{config.recover_after_s} * kNsPerSecond;
  (void)h->apply_actions();  // its errors are events; the agent goes on guarding
  return h;
}

Healer::Healer(Env& env, const config::HealConfig& config, std::string state_path, Emit emit,
               VerifyAll verify_all)
    : env_(env),
      config_(config),
      state_path_(std::move(state_path)),
      emit_(std::move(emit)),
      verify_all_(std::move(verify_all)) {
  if (!config_.hook.empty())
    hooks_ =
        std::make_unique<HookRunner>(config_.hook, std::chrono::seconds(config_.hook_timeout_s));
}

Healer::~Healer() = default;

int64_t Healer::now_ns() const { return env_.clock().now_ns(); }

void Healer::observe(const event::Event& e) {
  if (is_own_action(e.action())) return;
  // A failure to persist has been reported as an event; the actions were taken anyway.
  if (auto reason = condition(e)) (void)trigger(std::move(*reason), &e, /*manual=*/false);
}

std::optional<std::string> Healer::condition(const event::Event& e) {
  const std::string& action = e.action();
  const std::string root = string_field(e, "mamori.root");
  if (action == proto::action::kDeployStarted) {
    if (deploying_.size() < kMaxDeployRoots) deploying_.insert(root);
    return std::nullopt;
  }
  if (action == proto::action::kDeployEnded) {
    deploying_.erase(root);
    return std::nullopt;
  }
  // A deploy changes files on purpose (and may well raise a storm).
  if (string_field(e, "mamori.mode") == "deploy" || deploying_.contains(root)) return std::nullopt;

  // Every tamper event counts, whichever condition it also fires.
  const bool too_many = count_tamper(e);
  const bool final_failure = restore_failed_finally(e);
  if (action == proto::action::kTamperStorm && config_.on_storm)
    return std::string(proto::heal_condition::kTamperStorm);
  if (final_failure && config_.on_restore_failed)
    return std::string(proto::heal_condition::kRestoreFailed);
  if (action == proto::action::kFileQuarantined && config_.on_script_quarantined &&
      is_executable_script(string_field(e, "file.path")))
    return std::string(proto::heal_condition::kScriptQuarantined);
  if (action == proto::action::kStateFailed && config_.on_state_failed)
    return std::string(proto::heal_condition::kStateFailed);
  if (action == proto::action::kPageInjected && config_.on_page_injected)
    return std::string(proto::heal_condition::kPageInjected);
  if (too_many) return std::string(proto::heal_condition::kTamperRate);
  return std::nullopt;
}

bool Healer::count_tamper(const event::Event& e) {
  if (config_.tamper_count == 0) return false;
  uint64_t n = 0;
  if (is_tamper_action(e.action())) {
    n = 1;
  } else if (e.action() == proto::action::kTamperStormSummary ||
             e.action() == proto::action::kFileRestoreRepeated) {
    const json& count = e.get("mamori.summary.path_count");
    n = count.is_number_integer() && count.get<int64_t>() > 0 ? count.get<uint64_t>() : 1;
  }
  if (n == 0) return false;
  const int64_t now = now_ns();
  const int64_t second = now / kNsPerSecond;
  if (!tamper_seconds_.empty() && tamper_seconds_.back().first == second)
    tamper_seconds_.back().second += n;
  else
    tamper_seconds_.emplace_back(second, n);
  tamper_total_ += n;
  expire_tampers(now);
  return tamper_total_ > config_.tamper_count;
}

void Healer::expire_tampers(int64_t now_ns) {
  // Whole seconds: the window holds at most tamper_window_s buckets, whatever the rate.
  const int64_t oldest = now_ns / kNsPerSecond - std::max<int64_t>(1, config_.tamper_window_s);
  while (!tamper_seconds_.empty() && tamper_seconds_.front().first <= oldest) {
    tamper_total_ -= tamper_seconds_.front().second;
    tamper_seconds_.pop_front();
  }
}

bool Healer::restore_failed_finally(const event::Event& e) {
  const std::string& action = e.action();
  const bool failed = action == proto::action::kFileRestoreFailed;
  if (!failed && action != proto::action::kFileRestored && action != proto::action::kFileRepaired &&
      action != proto::action::kFileQuarantined)
    return false;
  std::string key = string_field(e, "mamori.root");
  key += '\0';
  key += string_field(e, "mamori.path");
  auto it = restore_failures_.find(key);
  if (!failed) {
    if (it != restore_failures_.end()) restore_failures_.erase(it);
    return false;
  }
  if (it == restore_failures_.end()) {
    // The guard does not retry past as many paths either (guard.h kMaxRetryPaths): then
    // this failure is its last.
    if (restore_failures_.size() >= kMaxTrackedFailures) return true;
    it = restore_failures_.emplace(std::move(key), 0).first;
  }
  // The guard starts counting again for a failure that is not one of its retries.
  if (string_field(e, "mamori.trigger") != "retry") it->second = 0;
  if (++it->second < kRestoreAttempts) return false;
  restore_failures_.erase(it);
  return true;
}

Status Healer::trigger(std::string reason, const event::Event* cause, bool manual) {
  const int64_t now = now_ns();
  ++triggers_;
  if (!state_.healthy) {
    // The same episode: it lasts longer, and a manual drain makes it wait for clear().
    state_.last_trigger_ns = now;
    next_verify_ns_.reset();
    if (!state_.manual && !manual && config_.recover_after_s > 0)
      next_verify_ns_ = now + int64_t{config_.recover_after_s} * kNsPerSecond;
    if (!manual || state_.manual) return ok();
    state_.manual = true;
    return apply_actions();
  }
  state_ = State{false,
                 manual,
                 clean_reason(reason),
                 now,
                 now,
                 cause ? cause->id() : "",
                 cause ? cause->action() : "manual"};
  next_verify_ns_.reset();
  if (!manual && config_.recover_after_s > 0)
    next_verify_ns_ = now + int64_t{config_.recover_after_s} * kNsPerSecond;
  Status persisted = apply_actions();

  event::Event down(proto::action::kNodeUnhealthy, Severity::kCritical, now);
  down.set("event.category", json::array({"host"}))
      .set("event.type", json::array({"change"}))
      .set("mamori.heal.reason", state_.reason)
      .set("mamori.heal.manual", manual);
  std::string because = "by hand";
  if (cause) {
    down.set("mamori.heal.trigger.id", cause->id())
        .set("mamori.heal.trigger.action", cause->action());
    because = "after " + cause->action();
    if (auto path = string_field(*cause, "file.path"); !path.empty())
      because += " of " + quote(path);
    else if (auto root = string_field(*cause, "mamori.root"); !root.empty())
      because += " in " + quote(root);
  }
  down.message(fmt::format("node out of rotation: {} ({})", state_.reason, because));
  if (hooks_) {
    // A manual drain has no event of its own to hand over: the hook gets this one.
    const std::string input = (cause ? cause->to_json_line() : down.to_json_line()) + "\n";
    if (!hooks_->start(input, {"MAMORI_HEAL_REASON=" + state_.reason,
                               "MAMORI_HEAL_TRIGGER_ID=" + state_.trigger_event_id,
                               "MAMORI_HEAL_TRIGGER_ACTION=" + state_.trigger_action})) {
      emit_(std::move(
          event::Event(proto::action::kHookFailed, Severity::kWarning, now)
              .set("event.category", json::array({"process"}))
              .outcome("failure")
              .set("process.executable", config_.hook[0])
              .set("error.message", "too many hook runs outstanding; this one was dropped")
              .message(fmt::format("heal hook {} not run: too many runs outstanding",
                                   quote(config_.hook[0])))));
    }
  }
  emit_(std::move(down));
  return persisted;
}

Status Healer::become_healthy(std::string_view field, std::string_view value) {
  const int64_t now = now_ns();
  const State before = std::exchange(state_, State{true, false, "", now, 0, "", ""});
  next_verify_ns_.reset();
  tamper_seconds_.clear();
  tamper_total_ = 0;
  restore_failures_.clear();
  Status persisted = apply_actions();
  emit_(std::move(event::Event(proto::action::kNodeHealthy, Severity::kNotice, now)
                      .set("event.category", json::array({"host"}))
                      .set("event.type", json::array({"change"}))
                      .set("mamori.heal.previous_reason", before.reason)
                      .set("mamori.heal.unhealthy_for_s", (now - before.since_ns) / kNsPerSecond)
                      .set(field, std::string(value))
                      .message(fmt::format("node back in rotation ({}: {}) after {}", field, value,
                                           before.reason))));
  return persisted;
}

Status Healer::clear(std::string_view by) {
  if (state_.healthy) return ok();
  return become_healthy("mamori.heal.cleared_by", clean_reason(by));
}

Status Healer::fail(std::string reason) {
  reason = clean_reason(reason);
  return trigger(reason.empty() ? "manual" : reason, nullptr, /*manual=*/true);
}

Status Healer::apply_actions() {
  std::vector<std::string> errors;
  Status persisted = ok();
  {
    json j = {{"version", 1},
              {"healthy", state_.healthy},
              {"manual", state_.manual},
              {"reason", state_.reason},
              {"since_ns", state_.since_ns},
              {"last_trigger_ns", state_.last_trigger_ns},
              {"trigger_event_id", state_.trigger_event_id},
              {"trigger_action", state_.trigger_action}};
    persisted = fs::write_file_atomic(env_, state_path_, dump(j) + "\n", 0600);
    if (!persisted) errors.push_back("heal state: " + persisted.error().message());
  }
  if (const std::string& file = config_.health_file; !file.empty()) {
    Status st = ok();
    struct stat dir {};
    const std::string parent = dirname_of(file);
    if (::stat(parent.c_str(), &dir) != 0 || !S_ISDIR(dir.st_mode)) {
      errors.push_back(fmt::format("health file directory {} does not exist", quote(parent)));
    } else if (state_.healthy) {
      st = fs::write_file_atomic(env_, file, "ok\n", 0644);
    } else if (config_.health_file_action == config::HealthFileAction::kRemove) {
      st = fs::remove_file(file);
    } else {
      st = fs::write_file_atomic(env_, file, "DOWN " + state_.reason + "\n", 0644);
    }
    if (!st) errors.push_back("health file: " + st.error().message());
  }
  if (!config_.health_listen.empty()) {
    if (endpoint_) {
      endpoint_->set(state_.healthy, state_.reason);
    } else if (auto ep =
                   HealthEndpoint::start(config_.health_listen, state_.healthy, state_.reason)) {
      endpoint_ = std::move(*ep);
    } else {
      errors.push_back("health endpoint: " + ep.error().message());
    }
  }
  // Each error once, until it goes away: tick() retries every second.
  for (const auto& error : errors) {
    if (std::find(action_errors_.begin(), action_errors_.end(), error) != action_errors_.end())
      continue;
    // A node that cannot take itself out of rotation is a critical problem.
    emit_(
        std::move(event::Event(proto::action::kHealthActionFailed,
                               state_.healthy ? Severity::kWarning : Severity::kCritical, now_ns())
                      .set("event.category", json::array({"host"}))
                      .outcome("failure")
                      .set("mamori.heal.healthy", state_.healthy)
                      .set("error.message", error)
                      .message(fmt::format("heal action failed while {}: {}",
                                           state_.healthy ? "healthy" : "unhealthy", error))));
  }
  action_errors_ = std::move(errors);
  return persisted;
}

void Healer::collect_hook_results() {
  if (!hooks_) return;
  for (auto& r : hooks_->take_results()) {
    const bool ok = r.succeeded();
    event::Event e(ok ? proto::action::kHookRan : proto::action::kHookFailed,
                   ok ? Severity::kInfo : Severity::kWarning, now_ns());
    e.set("event.category", json::array({"process"}))
        .set("event.type", json::array({"end"}))
        .outcome(ok ? "success" : "failure")
        .set("process.executable", r.argv0)
        .set("event.duration", r.duration_ms * 1'000'000)
        .set("mamori.hook.duration_ms", r.duration_ms)
        .set("mamori.hook.timed_out", r.timed_out);
    if (r.exit_code) e.set("mamori.hook.exit_code", *r.exit_code);
    if (r.signal) e.set("mamori.hook.signal", *r.signal);
    if (!r.output.empty()) e.set("mamori.hook.output", r.output);
    if (r.output_truncated) e.set("mamori.hook.output_truncated", true);
    std::string what;
    if (r.error) {
      what = r.error->message();
    } else if (r.timed_out) {
      what = fmt::format("timed out after {} s and was killed", config_.hook_timeout_s);
    } else if (r.signal) {
      const char* name = ::sigabbrev_np(*r.signal);
      what = fmt::format("killed by signal {} (SIG{})", *r.signal, name ? name : "?");
    } else if (!ok) {
      what = fmt::format("exited with status {}", r.exit_code.value_or(-1));
    }
    if (!ok) e.set("error.message", what);
    e.message(ok ? fmt::format("heal hook {} ran in {} ms", quote(r.argv0), r.duration_ms)
                 : fmt::format("heal hook {} failed: {}", quote(r.argv0), what));
    emit_(std::move(e));
  }
}

void Healer::tick() {
  collect_hook_results();
  // A retry of actions that failed; each failure was reported once, as an event.
  if (!action_errors_.empty()) (void)apply_actions();
  const int64_t now = now_ns();
  expire_tampers(now);
  if (state_.healthy || !next_verify_ns_ || now < *next_verify_ns_) return;
  const uint64_t before = triggers_;
  auto clean = verify_all_();
  // A condition that fired during the verify (its events pass through observe()) wins.
  if (triggers_ != before) return;
  if (clean && *clean) {
    // Healthy in memory even when an action fails: apply_actions() reports the failure
    // as an event, and tick() retries it every second.
    (void)become_healthy("mamori.heal.recovered", "verify-clean");
  } else {
    next_verify_ns_ = now_ns() + int64_t{config_.recover_after_s} * kNsPerSecond;
  }
}

proto::HealStatus Healer::status() const {
  auto text_or_null = [](const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string>(s);
  };
  proto::HealStatus h;
  h.healthy = state_.healthy;
  h.reason = text_or_null(state_.reason);
  h.manual = state_.manual;
  h.since = iso_time(state_.since_ns);
  h.trigger_event_id = text_or_null(state_.trigger_event_id);
  h.trigger_action = text_or_null(state_.trigger_action);
  if (next_verify_ns_) h.recover_at = iso_time(*next_verify_ns_);
  h.health_file = text_or_null(config_.health_file);
  if (endpoint_) h.endpoint = endpoint_->address();
  h.hooks_running = hooks_ ? hooks_->running() : 0;
  h.action_errors = action_errors_;
  return h;
}

void Healer::wait_hooks_for_test() {
  if (hooks_) hooks_->wait_idle_for_test();
}

}  // namespace mamori::heal
