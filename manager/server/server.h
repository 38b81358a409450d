#pragma once
// The manager's server (`mamori manager`, docs/manager.md): HTTPS on [manager] listen
// with the manager's self-signed certificate (identity.h), serving
//   POST /api/v1/enroll   an agent enrolls with a token and gets its agent_key and
//                         credential (docs/formats/manager-channel.md);
//   GET  /api/v1/channel  the agent's WebSocket channel (Authorization: Bearer
//                         agent_key:credential): hello/welcome, events and their acks,
//                         heartbeats, command results, bye.
// and the agents' liveness: a channel that ends without `bye` makes its agent lost at
// once (agent-lost), so does lost_after seconds without a message (and the connection is
// closed); the next hello of a lost agent makes it recovered (agent-recovered) and the
// manager sends it a `verify` command. A second connection for an agent_key already
// connected is refused (duplicate-identity, agent-duplicate). The manager's events go to
// its own outbox (STATE/outbox), its [[sink]]s (agent/sinks) and its store, under its own
// agent id (STATE/agent-id).
//
// Limits on what a remote peer controls: TLS 1.2 or newer; 10 s to finish the TLS
// handshake and send the HTTP request; an HTTP body or WebSocket message of at most
// 4 MiB; at most 1000 events a batch; at most [manager] max_agents connections at once
// (more are closed at accept); a channel silent for lost_after seconds is closed.
//
// The parts: hub.h (what connections share), http_connection.h (TLS, one HTTP request,
// enrollment), agent_channel.h (an agent's WebSocket), reporter.h (the manager's events).
//
// Threads: everything (network, sessions, the store, the outbox) runs on the thread that
// calls run(); stop() may be called from any thread (and SIGTERM/SIGINT call it when
// run() was asked to handle them). The sinks deliver on their own threads (SinkSet).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/config/config.h"
#include "manager/server/identity.h"

namespace mamori::manager {

class Hub;

class Server {
 public:
  // Makes the state directory (0700), loads or makes the certificate, opens the store
  // ([manager] database), the outbox and the sinks, and binds the listen address. Nothing
  // is served until run().
  static Result<std::unique_ptr<Server>> start(Env& env, const config::Config& config);
  ~Server();

  // Serves until stop() (or SIGTERM/SIGINT with handle_signals). Returns when every
  // connection is closed.
  Status run(bool handle_signals);
  void stop();

  const Identity& identity() const;
  // The address and port bound (the port the kernel chose for port 0).
  std::string local_address() const;
  // What tokens carry: [manager] public_url or https://<host name>:<port>.
  std::string public_url() const;
  // This process's id among the managers sharing the database (manager_id of the agents
  // it holds); a new one at each start.
  const std::string& manager_id() const;

 private:
  explicit Server(std::unique_ptr<Hub> hub);
  std::unique_ptr<Hub> hub_;
};

// https://<host name>:<port of listen> unless [manager] public_url says otherwise.
std::string public_url_of(const config::ManagerConfig& m, const std::string& host_name);

}  // namespace mamori::manager
