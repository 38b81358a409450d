#pragma once
// The agent's access-log defense, on a thread of its own so that a flood of log lines
// never delays a restore: follows every [[log]] (tailer.h), judges each line (detector.h)
// and bans what the rules decide (agent/ban), in milliseconds. The guard tells it which
// files it restored or quarantined (note_tampered()); the address that requested such a
// file within [logwatch].correlation_window is banned too, with the file in the event.
//
// Every ban and unban is an event (ip-banned, ip-unbanned; ECS source.ip, rule.name, ...),
// handed to `publish` from the logwatch thread. A request the correlation ties to a file
// the guard acted on is a tamper-attributed event (source.ip, the request, file.path,
// mamori.related_event = the guard's event id), written before the ban it may lead to;
// that ban carries file.path and mamori.related_event too (docs/formats/events.md,
// Incidents).
//
// Threads: start(), note_tampered(), stop() and status() from the owner (the agent's main
// thread); everything else runs on the logwatch thread.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "core/config/config.h"
#include "core/event/event.h"
#include "core/proto/control.h"

namespace mamori::logparse {
struct Entry;
}

namespace mamori::logwatch {

class Logwatch {
 public:
  using Publish = std::function<void(std::vector<event::Event>&&)>;
  using Log = std::function<void(const std::string&)>;

  // Every parsed line of the [[log]] at `log_path`, on the logwatch thread (the page
  // monitor's discovery, agent/pages/discovery.h).
  using RequestObserver =
      std::function<void(const std::string& log_path, const logparse::Entry& entry)>;

  // Compiles the rules, opens the ban list and backend (re-applying every ban: they
  // survive restarts and reboots), and starts following the logs. Fails on bad rules
  // (file:line:col), an unusable ban backend or ban list.
  static Result<std::unique_ptr<Logwatch>> start(Env& env, const config::Config& config,
                                                 Publish publish, Log log,
                                                 RequestObserver on_request = {});
  ~Logwatch();  // stop()s

  // The guard restored (`planted` false: a baselined file) or quarantined or reported
  // (`planted` true: a new file) ROOT/REL at `time_ns`, in its event `event_id`. See
  // Detector::note_tampered for which requests are correlated.
  void note_tampered(const std::string& root, const std::string& rel, int64_t time_ns,
                     const std::string& event_id, bool planted);

  // A decoy's fake credential was used (decoy_links.h): on the logwatch thread, a
  // decoy-credential-used event (id `event_id`, minted by the caller so its own event can
  // name it in mamori.related_event) links `ip` with the addresses that fetched the
  // decoy, and all of them are banned. At most kMaxPendingUses wait; more are dropped
  // (and logged): the first ones name the attacker.
  struct CredentialUse {
    std::string token;       // the decoy's (core/decoy)
    std::string decoy_path;  // the file that held the credential
    std::string ip;          // who used it
    std::string used_on;     // "ssh"
    std::string user;        // the user name given with it
    std::string event_id;
    int64_t time_ns = 0;
  };
  static constexpr size_t kMaxPendingUses = 1000;
  void credential_used(CredentialUse use);
  void stop();
  proto::LogwatchStatus status() const;

  struct Impl;

 private:
  explicit Logwatch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::logwatch
