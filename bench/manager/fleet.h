#pragma once
// bench/manager's simulated fleet: N agents that speak the real agent protocol
// (core/proto/channel.h, docs/formats/manager-channel.md) over real TLS to one `mamori
// manager`, as agent/link does it:
//   - enrollment: POST /api/v1/enroll with a (multi-use) token, one distinct agent id and
//     host name per agent; or credentials saved by an earlier run (save_credentials);
//   - the channel: TLS with the manager's certificate pinned by its fingerprint, a
//     WebSocket upgrade with `Authorization: Bearer KEY:CREDENTIAL`, hello/welcome, then a
//     heartbeat every heartbeat_s (each period drawn in +-10 %), the WebSocket's own
//     keep-alive pings (idle timeout lost_after_s), as the agent's link sets them;
//   - events: offer() queues events on an agent's "outbox"; the agent sends them in
//     batches of at most batch_events with at most max_in_flight batches unacknowledged
//     (agent/link/outflow.h), and the ack's through_sequence retires them: what is acked
//     is durably stored (the manager commits before it acks);
//   - commands: every `command` is answered with a `result` (ping, status-like answers)
//     and its arrival recorded (CommandArrival) for the fan-out measurement;
//   - liveness: cut() closes an agent's socket without bye (what kill -9 leaves),
//     freeze() makes it silent with the socket open (what SIGSTOP leaves: nothing read,
//     nothing written, no ping, no heartbeat);
//   - an agent whose channel ends unexpectedly reconnects after a back-off (1 s doubling
//     to 30 s), as the real one does, and the ends are counted.
//
// Threads: one. Everything runs in handlers of the io_context given to the constructor;
// the caller drives it (run_one_for) and reads the fleet between handlers.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/env.h"
#include "core/base/result.h"

namespace mamori::bench {

// What one simulated agent needs to reconnect; a line of the credentials file.
struct AgentCredentials {
  std::string agent_key;
  std::string credential;
  std::string agent_id;  // STATE/agent-id of the simulated host (a UUID)
  std::string hostname;
  uint64_t next_sequence = 1;  // its outbox's next event.sequence
};

// The credentials file: JSON lines, the first {"url","fp"} (the manager they belong to),
// then one AgentCredentials each. Mode 0600: they are secrets.
Result<std::vector<AgentCredentials>> load_credentials(const std::string& path,
                                                       const std::string& fp);
Status save_credentials(Env& env, const std::string& path, const std::string& url,
                        const std::string& fp, const std::vector<AgentCredentials>& agents);

struct FleetOptions {
  std::string host;  // the manager's address (an IP literal or a name)
  std::string port;
  std::string fp;  // SHA-256 of its certificate's DER, lower-case hex
  size_t batch_events = 500;
  size_t max_in_flight = 4;
  size_t connect_concurrency = 64;  // TCP+TLS+upgrade+hello in flight at once
  size_t enroll_concurrency = 16;
  int connect_timeout_s = 10;
};

// When a command reached an agent (the fan-out measurement: a ban pushed to the fleet).
struct CommandArrival {
  uint32_t agent = 0;
  int64_t at_ns = 0;  // wall clock (Clock::now_ns): comparable with the manager's @timestamp
  std::string command_id;
  std::string what;  // the request's "cmd" and its arguments, ids left out
};

// One acknowledged batch.
struct AckSample {
  int64_t at_mono_ns = 0;  // when the ack arrived
  int64_t latency_ns = 0;  // ack - the batch's send
  int64_t oldest_ns = 0;   // ack - when its oldest event was offered (queueing included)
  uint32_t events = 0;
};

struct FleetCounters {
  uint64_t enrolled = 0, enroll_failures = 0;
  uint64_t connects = 0, connect_failures = 0, reconnects = 0;
  uint64_t ended_unexpectedly = 0;  // channels the manager (or the network) ended
  uint64_t manager_errors = 0;      // `error` messages received
  uint64_t heartbeats = 0, batches = 0, events_sent = 0, events_acked = 0, results = 0;
  uint64_t pings_sent = 0;
  uint64_t resends = 0;  // the manager dropped a window of batches and asked for it again
  std::string last_error;
  std::map<std::string, uint64_t> end_reasons;  // why channels ended unexpectedly
};

class Fleet {
 public:
  Fleet(boost::asio::io_context& io, const Clock& clock, FleetOptions o);
  ~Fleet();

  // Enrolls `count` new agents with `token_secret` (enroll_concurrency at once), appending
  // to agents(); `done` when every one has an answer.
  void enroll(size_t count, const std::string& token_secret, const std::string& name_prefix,
              std::function<void()> done);
  void add(std::vector<AgentCredentials> agents);
  std::vector<AgentCredentials> credentials() const;
  size_t size() const;

  // Connects every agent that is not connected (connect_concurrency at once).
  void connect_all();
  size_t online() const;      // welcomed and neither cut nor frozen
  size_t connecting() const;  // an attempt in progress or waiting to reconnect

  // Queues `n` events on random online agents (the total rate is the caller's pacing).
  void offer(size_t n);
  size_t backlog() const;  // events offered and not yet acked

  // Liveness: the `count` online agents from index `first` on. Return the wall-clock time
  // of the cut / freeze of each, by agent_key.
  std::vector<std::pair<std::string, int64_t>> cut(size_t first, size_t count);
  std::vector<std::pair<std::string, int64_t>> freeze(size_t first, size_t count);
  // When each frozen agent last sent anything (wall clock), by agent_key.
  std::vector<std::pair<std::string, int64_t>> last_sent(size_t first, size_t count) const;
  // The cut and frozen agents start again: their sockets are closed, and each connects
  // anew (hello again, as a restarted agent does).
  void revive();
  // Sends one event batch now from agent `index` (e.g. the ip-banned event that starts a
  // fleet-wide ban): the wall-clock time it was written, or 0 when it is not online.
  int64_t send_event_now(size_t index, const std::string& action, const std::string& source_ip);

  // The manager's responsiveness: a WebSocket ping on `count` online agents (taken in
  // turn); each pong's round trip goes to probes(). The manager answers pings from its
  // read handler, so the round trip is how late its one thread runs.
  void probe(size_t count);
  struct Probe {
    int64_t at_mono_ns = 0;  // when the pong arrived
    int64_t rtt_ns = 0;
  };
  std::vector<Probe>& probes();

  // bye on every online channel; frozen ones are closed.
  void stop();
  size_t open_channels() const;

  FleetCounters& counters();
  std::vector<AckSample>& acks();
  std::vector<CommandArrival>& commands();
  // Ack samples are kept only while this is true (the measurement window).
  void record_acks(bool on);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::bench
