#pragma once
// The agent's side of the manager channel (docs/manager.md,
// docs/formats/manager-channel.md), on a thread of its own, so a manager that is slow,
// down or unreachable never holds up the guard:
//   - enrollment: without STATE/manager.json, the token file's token is presented to
//     POST /api/v1/enroll and the credential received is stored (0600, atomically);
//   - the channel: one WebSocket over TLS, the manager's certificate pinned by the
//     SHA-256 of its DER (no CA), `Authorization: Bearer AGENT_KEY:CREDENTIAL`;
//     hello/welcome, then events from the outbox (outflow.h: cursor `manager`, moved
//     only on ack, a bounded window of unacknowledged batches), a heartbeat every
//     heartbeat_s, results of commands, and bye on an orderly stop;
//   - commands: a `command` message's request goes through the CommandQueue to the
//     agent's loop thread, which runs it with the control socket's handlers
//     (serve_commands()) and hands the answer back as a `result`;
//   - failures: every failed attempt (unreachable, TLS, refused) is retried after a
//     back-off from 1 s doubling to 30 s, with jitter; a `duplicate-identity` error
//     makes the link delete STATE/manager.json and enroll again with its token (a
//     clone of a golden image becomes an agent of its own).
// Nothing here is ever logged with a secret in it.
//
// Threads: start(), stop(), serve_commands() on the agent's main thread; notify(),
// set_healthy() and status() from any thread; the network on the link's thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/proto/control.h"

namespace mamori::link {

class CommandQueue;

struct LinkOptions {
  std::string url;         // [manager] url (may be empty when the token file names it)
  std::string token_file;  // [manager] token_file
  std::string state_dir;   // STATE/manager.json lives there
  std::string outbox_dir;
  uint64_t start_sequence = 1;  // the outbox's next_sequence() at start-up
  // What enroll and hello say about this agent.
  std::string agent_id, agent_name, agent_version, hostname;
  std::vector<proto::RootStatus> roots;
  std::string baseline_root_hash;  // "" when there is none
  // Limits (manager-channel.md).
  size_t batch_events = 500;
  size_t batch_bytes = 1u << 20;
  size_t max_in_flight = 4;
  int64_t first_backoff_ms = 1000;
  int64_t max_backoff_ms = 30'000;
  int connect_timeout_s = 10;  // TCP + TLS + HTTP/WebSocket handshake, each attempt
  // A line for the agent's log, from the link's thread (state changes, errors).
  std::function<void(const std::string&)> log;
};

class Link {
 public:
  // Registers the outbox cursor and makes the command queue; the thread starts with
  // start(). Fails on what the config gets wrong (a bad url).
  static Result<std::unique_ptr<Link>> create(Env& env, LinkOptions options);
  ~Link();  // stop()s

  void start();
  // The orderly stop: bye if connected (bounded: a few seconds at most), then joins.
  void stop();
  // New events were written to the outbox.
  void notify();
  // What heartbeats say (the healer's verdict), set by the loop thread.
  void set_healthy(bool healthy);
  // The loop thread's side of the command queue: poll this fd; when it is readable call
  // serve_commands(), which runs each waiting command through `serve` (a control-protocol
  // request in, its answer out) and queues the answers for the manager.
  int command_fd() const;
  void serve_commands(const std::function<nlohmann::json(const nlohmann::json&)>& serve);

  proto::ManagerLinkStatus status() const;

  class Impl;

 private:
  explicit Link(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mamori::link
