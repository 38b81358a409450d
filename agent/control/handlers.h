#pragma once
// The control commands (core/proto/control.h), served from the agent's running parts:
// the local socket (agent/control/control.h) and, later, the manager channel call the
// same code, so a command behaves the same whoever asks.
//
// Threads: everything here runs on the agent's main thread, the owner of the guard, the
// watcher and the healer; the log watch's status() is safe from it.

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/ban/banner.h"
#include "agent/guard/guard.h"
#include "agent/heal/healer.h"
#include "agent/logwatch/logwatch.h"
#include "agent/sinks/sink_set.h"
#include "agent/watch/watcher.h"
#include "core/base/env.h"
#include "core/baseline/state.h"
#include "core/evidence/evidence.h"
#include "core/proto/control.h"

namespace mamori::control {

// The event writer's counters and its outbox (agent/app/async_publisher.h), for the
// status document.
struct EventLogStats {
  uint64_t dropped = 0;
  uint64_t dropped_security = 0;
  uint64_t writer_waits = 0;
  proto::OutboxStatus outbox;
};

// What the handlers act on; every reference outlives the Handlers.
struct Services {
  Env& env;
  guard::Guard& guard;
  watch::Watcher& watcher;
  heal::Healer& healer;
  sinks::SinkSet& sinks;
  logwatch::Logwatch* logwatch = nullptr;  // null without [[log]]
  std::function<EventLogStats()> event_log_stats;
  // Writes the guard's pending events (and the healer's answers to them).
  std::function<void()> flush;
  // One line for the agent's log (journald).
  std::function<void(const std::string&)> log;
  std::string event_log;
  int64_t started_ns = 0;
  // The manager link's state (agent/link/link.h); unset: disabled.
  std::function<proto::ManagerLinkStatus()> manager_link;
  // The ban list the log watch and `mamori bans` share (agent/ban/options.h), for the
  // fleet's ban and unban; opened at the first of them.
  ban::BanOptions ban_options;
  std::string ban_list_path;
  // The guard's evidence store (null: none kept) and the baseline: its content store holds
  // what a tampered file should have been (the evidence command), its catalog what the
  // site serves (the site command). Read here, on the thread that owns them.
  evidence::EvidenceStore* evidence = nullptr;
  baseline::State* state = nullptr;
  // Where the baseline lives: accept opens it for writing (agent/control/verdicts.cc).
  std::string state_dir;
  // The open gate's state (agent/gate); unset: off.
  std::function<proto::OpenGateStatus()> gate;
};

class Handlers {
 public:
  explicit Handlers(Services services) : s_(std::move(services)) {}

  // One request as it came off a connection: decoded (a missing "v" is version 1),
  // handled, and answered in the request's version. Never throws.
  nlohmann::json serve(const nlohmann::json& request);
  // The typed form, for in-process callers and tests.
  proto::Answer handle(const proto::Request& request);
  proto::StatusDocument status() const;

 private:
  proto::Answer mode(const proto::ModeRequest& r);
  proto::Answer pause(const proto::PauseRequest& r);
  proto::Answer resume(const proto::ResumeRequest& r);
  proto::Answer verify(const proto::VerifyRequest& r);
  proto::Answer deploy_paths();
  proto::Answer heal(const proto::HealRequest& r);
  // Fleet control: through the same ban list and backend as the log watch, on a
  // connection of their own (BanList is one owner's), honouring the allowlist and the
  // list's limits address by address. Each ban applied is an ip-banned event carrying
  // mamori.ban.origin, which tells the manager it is no local decision to push again.
  proto::Answer ban(const proto::BanRequest& r);
  // One evidence item and the baseline's content for its path, each a prefix of at most
  // proto::kMaxEvidenceBytes.
  proto::Answer evidence(const proto::EvidenceRequest& r);
  // Site digests of the baseline (core/baseline/site.h): the manager compares nodes.
  proto::Answer site(const proto::SiteRequest& r);
  proto::Answer unban(const proto::UnbanRequest& r);
  // An operator's verdict on a path (agent/control/verdicts.cc): accept writes the baseline
  // as `mamori accept` does, and reseals it; restore is the guard's, now.
  proto::Answer accept(const proto::AcceptRequest& r);
  proto::Answer restore(const proto::RestoreRequest& r);
  Status open_bans();
  // The indexes of the roots a request names; every root for "*".
  tl::expected<std::vector<size_t>, proto::ErrorAnswer> chosen(const proto::Roots& roots) const;

  Services s_;
  std::optional<ban::BanList> ban_list_;
  std::unique_ptr<ban::BanBackend> ban_backend_;
  std::unique_ptr<ban::Banner> banner_;
};

// The answer to a command that failed: code `failed`, the error's message.
proto::ErrorAnswer failed(const Error& e);

// The version a raw request speaks, for its answer: its "v" when that is one this agent
// speaks, 1 when it has none (or cannot be read: every client parses a version-1 error),
// kVersion otherwise.
int answer_version(const nlohmann::json& request);

}  // namespace mamori::control
