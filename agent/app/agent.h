#pragma once
// `mamori agent`: the real-time daemon. Start-up is an ordered list of named steps, each
// of which either succeeds or stops the agent with an error naming the step:
//   listen          the control socket first, so a second agent refuses before it
//                   touches anything (requests wait in the backlog until the loop)
//   open_state      the catalog (read only: the CLI stays the baseline's one writer)
//                   and the content store
//   open_outbox     the ECS event log
//   start_sinks     a follower per [[sink]], before anything is written, so a new sink
//                   starts with this run's first event
//   open_evidence   the evidence store
//   open_heal       the heal state (an unhealthy node stays out of rotation) and its
//                   actions: health file, health endpoint
//   open_roots      every configured root that has a baseline
//   start_watchers  fanotify, else inotify (config agent.backend): watching begins
//                   *before* the verify, so nothing changed in between is missed
//   verify_roots    every root against its baseline, acting by mode: what changed
//                   while the agent was down (or killed) is found and reported so
//   notify_ready    sd_notify READY=1 (systemd Type=notify)
// Then one thread loops: watcher events -> guard, control requests, a 1 s tick
// (summaries, heal, watchdog, scheduled verify with a check of mamori's own baseline),
// SIGTERM/SIGINT to stop, SIGHUP to reopen the event log (the sinks follow it).

#include <memory>
#include <string>

#include "core/base/env.h"
#include "core/base/parallel.h"
#include "core/config/config.h"

namespace mamori::agent {

struct AgentOptions {
  config::Config config;
  std::string config_path;
  // Runs the loop only this long (0 = until a signal): for tests and benchmarks.
  unsigned run_seconds = 0;
};

// Runs the agent until it is told to stop. Returns the process exit code; errors are
// printed on stderr (journald) with the step that failed.
int run_agent(Env& env, Executor& executor, const AgentOptions& options);

}  // namespace mamori::agent
