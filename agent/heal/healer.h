#pragma once
// Self-healing (the "Zombie Web" idea): when the events say the node is under attack, it
// stops claiming to be healthy, so its load balancer drains it and autoscaling replaces it.
//
// Conditions ([heal] in the config), judged on every event the agent publishes:
//   tamper-storm          the guard's storm event (on_storm)
//   file-restore-failed   the guard's final attempt for a path (on_restore_failed; see
//                         observe() for how "final" is recognised)
//   file-quarantined      of an executable script: .php .phtml .php3-.php8 .phar .pl .py
//                         .sh .cgi .jsp .jspx .asp .aspx .rb .lua (on_script_quarantined)
//   state-failed          the agent's own baseline or store failed verification
//   page-injected         the page monitor's event (on_page_injected; docs/pages.md): the
//                         agent passes it on from the page monitor's thread at its tick,
//                         and its recovery verify is clean only while no page shows one
//   tamper rate           more than tamper_count tamper events (file-restored, -repaired,
//                         -quarantined, -changed, -created, -deleted, -restore-failed; a
//                         tamper-storm-summary or file-restore-repeated counts its
//                         mamori.summary.path_count) within the last tamper_window_s
// Events of a deploy never count: mamori.mode "deploy", or any event of a root between
// its deploy-started and deploy-ended.
//
// Unhealthy (once per episode; a condition firing again only pushes recovery back): the
// state is persisted, then the health file is removed or rewritten "DOWN <reason>", the
// endpoint answers 503, the hook runs with the triggering event's JSON line on stdin and
// MAMORI_HEAL_REASON set, and node-unhealthy is emitted. Healthy: the health file holds
// "ok\n" (mode 0644, for the web server), the endpoint answers 200, node-healthy.
// Recovery: recover_after_s after the last condition, tick() runs a full verify; clean =
// healthy, otherwise it waits another recover_after_s. A manual fail() waits for clear().
//
// STATE_DIR/heal.json (0600, replaced atomically) makes an unhealthy node stay out of
// rotation across restarts:
//   {"version":1,"healthy":false,"reason":"tamper-storm","manual":false,
//    "since_ns":N,"last_trigger_ns":N,"trigger_event_id":"...","trigger_action":"..."}
// Missing = healthy. Unreadable or malformed = unhealthy (fail-safe) with reason
// "state file unreadable", recovering as after a condition.
//
// Failures of the actions (no such directory, port in use, hook cannot run) never stop
// the agent: each becomes a health-action-failed (or hook-failed) event, once per
// distinct error, and the actions are tried again at every tick until they succeed.
//
// Threads: one owner thread (the agent's main thread) calls everything, including Emit
// and VerifyAll. Nothing here blocks for long except VerifyAll itself: the hook runs on
// HookRunner's thread, the endpoint on HealthEndpoint's.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/heal/health_endpoint.h"
#include "agent/heal/hook_runner.h"
#include "core/base/env.h"
#include "core/base/result.h"
#include "core/config/config.h"
#include "core/event/event.h"
#include "core/proto/control.h"

namespace mamori::heal {

// True for a path whose extension names a script a web server may execute.
bool is_executable_script(std::string_view path);

class Healer {
 public:
  using Emit = std::function<void(event::Event)>;
  // A full verify of every root: true when it found nothing.
  using VerifyAll = std::function<Result<bool>()>;

  // Reads the state and applies it at once (see above). Fails only when `state_dir`
  // cannot be created or is not a directory; everything else is reported through `emit`.
  static Result<std::unique_ptr<Healer>> open(Env& env, const config::HealConfig& config,
                                              const std::string& state_dir, Emit emit,
                                              VerifyAll verify_all);
  ~Healer();
  Healer(const Healer&) = delete;
  Healer& operator=(const Healer&) = delete;

  // Every event the agent publishes (the Healer's own included: they are ignored).
  // file-restore-failed: the guard emits one per attempt (the first and each of its
  // retries, once a second, with mamori.trigger "retry") and does not mark the last. The
  // Healer mirrors the guard's count per path and fires on attempt kRestoreAttempts; a
  // restore of the path, or a failure that is not a retry, starts the count again.
  void observe(const event::Event& e);
  // Once a second: hook results (hook-ran, hook-failed), actions that failed before,
  // the tamper window, recovery.
  void tick();
  // `mamori heal --clear`: healthy at once; node-healthy with mamori.heal.cleared_by.
  // The state is applied even when persisting it fails (the error is returned).
  Status clear(std::string_view by);
  // `mamori heal --fail REASON`: a manual drain, as if a condition fired; recovery then
  // waits for clear().
  Status fail(std::string reason);

  // {"healthy","reason","manual","since","trigger_event_id","trigger_action","recover_at",
  //  "health_file","endpoint","hooks_running","action_error"}
  proto::HealStatus status() const;
  bool healthy() const { return state_.healthy; }
  // The endpoint's bound port; 0 when there is none.
  uint16_t endpoint_port() const { return endpoint_ ? endpoint_->port() : 0; }
  void wait_hooks_for_test();

  // The guard's first attempt plus its kMaxRetries (agent/guard/guard.h) retries.
  static constexpr int kRestoreAttempts = 6;
  static constexpr size_t kMaxTrackedFailures = 10000;
  static constexpr size_t kMaxReason = 200;

 private:
  struct State {
    bool healthy = true;
    bool manual = false;
    std::string reason;
    int64_t since_ns = 0;
    int64_t last_trigger_ns = 0;
    std::string trigger_event_id;
    std::string trigger_action;
  };

  Healer(Env& env, const config::HealConfig& config, std::string state_path, Emit emit,
         VerifyAll verify_all);
  int64_t now_ns() const;
  // The reason `e` makes the node unhealthy ("tamper-storm", ...), if it does.
  std::optional<std::string> condition(const event::Event& e);
  bool count_tamper(const event::Event& e);
  void expire_tampers(int64_t now_ns);
  bool restore_failed_finally(const event::Event& e);
  // Returns the persisting error; the actions are taken regardless.
  Status trigger(std::string reason, const event::Event* cause, bool manual);
  Status become_healthy(std::string_view field, std::string_view value);
  // Persists state_, then makes the health file and the endpoint say what it says.
  // Returns the persisting error; every error is also reported as an event, once.
  Status apply_actions();
  void collect_hook_results();

  Env& env_;
  const config::HealConfig config_;
  const std::string state_path_;
  Emit emit_;
  VerifyAll verify_all_;
  State state_;
  uint64_t triggers_ = 0;                  // conditions fired so far
  std::optional<int64_t> next_verify_ns_;  // when tick() runs the recovery verify

  std::deque<std::pair<int64_t, uint64_t>> tamper_seconds_;  // (second, count), oldest first
  uint64_t tamper_total_ = 0;
  std::set<std::string> deploying_;              // roots between deploy-started and -ended
  std::map<std::string, int> restore_failures_;  // root NUL path -> consecutive attempts

  std::unique_ptr<HealthEndpoint> endpoint_;
  std::unique_ptr<HookRunner> hooks_;       // none without a hook
  std::vector<std::string> action_errors_;  // of the last apply_actions(); empty = none
};

}  // namespace mamori::heal
