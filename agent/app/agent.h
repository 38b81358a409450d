#pragma once
// `mamori agent`: the real-time daemon. Start-up is an ordered list of named steps, each
// of which either succeeds or stops the agent with an error naming the step:
//   listen          the control socket first, so a second agent refuses before it
//                   touches anything (requests wait in the backlog until the loop)
//   open_state      the catalog (read only: the CLI stays the baseline's one writer)
//                   and the content store
//   load_origin     this agent's id (STATE/agent-id, made at the first start; a corrupt
//                   one stops here) and name, stamped on every event
//   open_outbox     the event outbox (STATE/outbox) and its ECS export agent.event_log
//   start_sinks     a follower per [[sink]], before anything is written, so a new sink
//                   starts with this run's first event
//   start_link      the manager link ([manager] url/token_file, agent/link/link.h): its
//                   outbox cursor registered like a new sink's; it enrolls and connects
//                   on its own thread, never holding up start-up or guarding
//   open_evidence   the evidence store, YARA triage, and with [lookup] the VirusTotal
//                   look-up worker (agent/triage/lookup_worker.h)
//   open_heal       the heal state (an unhealthy node stays out of rotation) and its
//                   actions: health file, health endpoint
//   open_roots      every configured root that has a baseline
//   start_watchers  fanotify, else inotify (config agent.backend): watching begins
//                   *before* the verify, so nothing changed in between is missed
//   start_gate      the open gate (agent/gate, [agent] open_gate): from here on no
//                   reader gets a guarded file whose content is not its baseline's
//   verify_roots    every root against its baseline, acting by mode: what changed
//                   while the agent was down (or killed) is found and reported so
//   start_logwatch  the access-log tailer and its bans ([[log]]); the honeypot relay
//                   (agent/relay, [agent] honeypot_outbox)
//   start_pages     the page monitor ([[page]], agent/pages): fetches and compares each
//                   page's active content on its own thread
//   serve_control   the control commands (agent/control/handlers.h) over all of the above
//   notify_ready    agent-started, sd_notify READY=1 (systemd Type=notify)
// Then one thread loops: watcher events -> guard, control requests (the socket's and the
// manager's, through the same handlers), a 1 s tick
// (summaries, heal, watchdog, scheduled verify with a check of mamori's own baseline),
// SIGTERM/SIGINT to stop, SIGHUP to reopen the event log (the sinks follow it).

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/env.h"
#include "core/base/parallel.h"
#include "core/config/config.h"

namespace mamori::control {
class Handlers;
}
namespace mamori::watch {
class Watcher;
}

namespace mamori::agent {

struct AgentOptions {
  config::Config config;
  std::string config_path;
  // Runs the loop only this long (0 = until a signal): for tests and benchmarks.
  unsigned run_seconds = 0;
  // Makes the watcher for config agent.backend; unset: fanotify, else inotify. Tests
  // inject a watch::ReplayWatcher here to drive the real loop with scripted changes.
  std::function<Result<std::unique_ptr<watch::Watcher>>(config::Backend)> make_watcher;
  // When readable, the loop stops as on SIGTERM (-1: none). For programs that embed the
  // agent (tests), where a signal would reach the whole process.
  int stop_fd = -1;
};

// One agent: start() runs the start-up steps, run() the loop and the orderly stop.
// Threads: start() and run() on one thread, which becomes the agent's main thread; it
// blocks SIGTERM, SIGINT and SIGHUP (read by the loop) and ignores SIGIO.
class Agent {
 public:
  Agent(Env& env, Executor& executor, const AgentOptions& options);  // keeps references
  ~Agent();

  // The start-up steps' names, in order.
  static std::vector<std::string_view> step_names();
  // Runs the steps in order, up to and including `last_step` (every step when empty).
  // A failure stops there: the error's op is the step's name, its detail the cause.
  Status start(std::string_view last_step = {});
  // After a complete start(): serves until a signal, stop_fd or run_seconds, then writes
  // agent-stopped and lets the sinks deliver. Returns the process exit code.
  int run();
  // After the serve_control step: the control commands, for in-process callers.
  control::Handlers& handlers();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs the agent until it is told to stop. Returns the process exit code; errors are
// printed on stderr (journald) with the step that failed.
int run_agent(Env& env, Executor& executor, const AgentOptions& options);

}  // namespace mamori::agent
