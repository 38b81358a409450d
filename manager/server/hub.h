#pragma once
// What the manager's connections share (server.h): the config, the store, the manager's
// own events, the TLS context, and the registry of live agent channels (one per
// agent_key). Connections (http_connection.h) and agent channels (agent_channel.h) hold
// a Hub& and call it; the Server owns the Hub and runs its io_context.
//
// Threads: everything here runs on the server's one io thread, except stop().

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/config/config.h"
#include "core/event/event.h"
#include "manager/db/store.h"
#include "manager/server/admission.h"
#include "manager/server/console_files.h"
#include "manager/server/event_writer.h"
#include "manager/server/identity.h"
#include "manager/server/reporter.h"
#include "manager/server/store_worker.h"

namespace mamori::manager {

class AgentChannel;
class Api;
class Fleet;

// The limits on what a peer controls before it is authenticated (server.h).
inline constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
inline constexpr size_t kMaxHeaderBytes = 16 * 1024;

// One line on stderr (the journal), prefixed "mamori manager: ".
void log_line(const std::string& s);
// A random (version 4) UUID, for agent keys and command ids.
std::string new_uuid();

class Hub {
 public:
  // `store` serves the io thread; `writer_store` and `chores_store`, more connections to
  // the same database, the event writer's thread and the store worker's.
  Hub(Env& env, const config::Config& config, std::unique_ptr<Store> store,
      std::unique_ptr<Store> writer_store, std::unique_ptr<Store> chores_store, Identity identity,
      std::unique_ptr<Reporter> reporter);
  ~Hub();

  Status bind();
  Status run(bool handle_signals);
  // From any thread.
  void stop();

  std::string local_address() const;
  std::string public_url() const;
  const Identity& identity() const { return identity_; }

  // ---- for the connections and channels (io thread) --------------------------------

  Env& env() { return env_; }
  Store& store() { return *store_; }
  // Where agents' event batches and last_seen marks go (event_writer.h).
  EventWriter& writer() { return *writer_; }
  // Which paused channel takes events next while the writer is behind (admission.h).
  Admission& admission() { return admission_; }
  // Lets waiting channels read again as far as the writer's queue allows.
  void let_in() { admission_.let_in(writer_->queued().bytes); }
  const config::ManagerConfig& m() const { return m_; }
  boost::asio::ssl::context& ssl() { return ssl_; }
  int64_t now_ns() const { return env_.clock().now_ns(); }
  // This process's id among the managers sharing the database (a new one each start).
  const std::string& manager_id() const { return manager_id_; }

  // Every accepted socket counts until its Connection or AgentChannel is destroyed.
  void connection_closed() { --connections_; }

  // The live channel of `key`; nullptr when none.
  std::shared_ptr<AgentChannel> live(const std::string& key);
  void set_live(const std::string& key, const std::shared_ptr<AgentChannel>& c);
  // Removes `c` if it is the one registered for `key` (or the registered one is gone).
  void drop_live(const std::string& key, const AgentChannel* c);
  // Every live channel, by agent_key.
  std::vector<std::pair<std::string, std::shared_ptr<AgentChannel>>> live_channels();
  // Fleet control (fleet.h).
  Fleet& fleet() { return *fleet_; }
  // The REST API for people and scripts (api.h).
  Api& api() { return *api_; }
  // The web console's files; nullptr when there is no console (console_files.h).
  const ConsoleFiles* console() const { return console_ ? &*console_ : nullptr; }

  // An agent's channel ended (Store::release_agent): queued, and written with every
  // other release of this turn of the loop in one transaction. `done` gets the status
  // before, nullopt when another manager holds the agent now (it reconnected there).
  using Released = std::function<void(const Result<std::optional<AgentStatus>>&)>;
  void release(const std::string& key, AgentStatus s, Released done);
  // Writes the queued releases now: an agent's hello must follow its earlier release.
  void flush_releases();

  // Each of the manager's own [[sink]]s: what it delivered, whether it is failing.
  std::vector<proto::SinkStatus> sink_status() const { return reporter_->sink_status(); }
  // One of the manager's events (reporter.h), naming the agent when there is one.
  void report(std::string_view action, event::Severity sev, const std::string& message,
              const AgentRow* agent, const std::string& address,
              const std::function<void(event::Event&)>& more = {});

 private:
  void accept();
  void on_accept(boost::asio::ip::tcp::socket socket);
  // Every second: this manager's heartbeat in the store, and (from lost_after after the
  // start) the agents whose manager stopped heartbeating made lost or retired; the
  // agents of this manager that said hello elsewhere. On the store worker, one tick at a
  // time (a slow store skips ticks, never piles them up); ticked() takes the answers.
  void tick();
  struct TickAnswers {
    std::vector<AgentRow> reaped;
    std::vector<std::string> moved;
  };
  void ticked(const TickAnswers& a);
  // At start, then hourly, on the store worker: the events [manager] retention_days and
  // max_events_per_agent no longer allow are deleted, bans over and commands made before
  // retention_days, and the console sessions that ended.
  Status load_console();
  void prune();
  void prune_store(Store& store);
  void shutdown();

  Env& env_;
  const config::Config& config_;
  const config::ManagerConfig m_;
  std::unique_ptr<Store> store_;
  Identity identity_;
  std::unique_ptr<Reporter> reporter_;
  std::string host_name_;
  std::string manager_id_;
  int64_t started_ns_ = 0;
  std::optional<ConsoleFiles> console_;

  // Before io_: the connections still queued in io_ when it is destroyed count down here,
  // and give back what they were let in for.
  size_t connections_ = 0;
  Admission admission_{size_t{m_.event_queue_mb} << 20};
  boost::asio::io_context io_{1};
  boost::asio::ssl::context ssl_{boost::asio::ssl::context::tls_server};
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  std::optional<boost::asio::signal_set> signals_;
  boost::asio::steady_timer tick_{io_};
  bool ticking_ = false;  // a tick's chores are on the store worker
  bool prune_started_ = false;
  boost::asio::steady_timer prune_{io_};
  bool stopping_ = false;
  std::map<std::string, std::weak_ptr<AgentChannel>> live_;
  std::vector<Store::Release> releases_;
  std::vector<Released> released_;
  bool releases_posted_ = false;
  // After io_: its timer goes first.
  std::unique_ptr<Fleet> fleet_;
  // After io_: it finishes its writes and posts their answers while io_ still exists.
  std::unique_ptr<EventWriter> writer_;
  std::unique_ptr<StoreWorker> chores_;  // likewise
  std::unique_ptr<Api> api_;
};

}  // namespace mamori::manager
