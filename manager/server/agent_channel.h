#pragma once
// One agent's WebSocket channel, after the upgrade (docs/formats/manager-channel.md):
// hello/welcome, events stored then acked, heartbeats, command results, bye; the agent's
// liveness on this connection (lost when it ends without bye or stays silent for
// lost_after seconds); a second connection for a live agent_key refused as a duplicate
// unless the first is dead (it does not answer a ping within 2 s).
//
// Threads: the server's io thread (hub.h).

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "core/proto/channel.h"
#include "manager/db/store.h"
#include "manager/server/hub.h"
#include "manager/server/tls_stream.h"

namespace mamori::manager {

using WsStream = boost::beast::websocket::stream<TlsStream>;

class AgentChannel : public std::enable_shared_from_this<AgentChannel> {
 public:
  AgentChannel(Hub& hub, WsStream ws, AgentRow agent, std::string address);
  ~AgentChannel();

  // Completes the upgrade of `req` and starts reading.
  void start(boost::beast::http::request<boost::beast::http::string_body> req);
  // Closes the channel without counting the agent lost (the manager stops).
  void shut();
  // Whether the peer is still there: a ping answered (or any message) within 2 s. A
  // channel that is ending is not.
  void probe(std::function<void(bool alive)> done);
  // A newer connection of the same agent replaced this dead one: no event, no status
  // change (the agent is back already), the socket closed now.
  void supersede();
  // Another manager took this agent's hello while this channel is open: a dead channel
  // is superseded, a live one is a clone's twin and is refused as a duplicate (the store
  // follows the newer hello, so this one yields). Once per channel.
  void claimed_elsewhere();
  // Whether it said hello and is not ending: commands may be sent.
  bool ready() const { return hello_ && !ended_ && !closing_; }
  // Sends a command (fleet.h records it).
  void deliver(const proto::channel::Command& c) { send(c); }

 private:
  void accepted(const boost::beast::error_code& ec);
  void admit();
  void refuse_duplicate(const std::string& why);
  void probed(bool alive);
  void arm_idle();
  void arm_idle(std::chrono::milliseconds after);
  void silent();
  std::optional<std::chrono::milliseconds> agent_quiet_for();
  void end();
  void lose(const std::string& why, uint32_t silent_s);
  // The connection ended (a read or a write failed) without bye.
  void dropped(const boost::beast::error_code& ec);
  void read();
  void on_read(const boost::beast::error_code& ec);
  void refuse(std::string_view code, const std::string& message);

  void on(proto::channel::Hello& h);
  void on(proto::channel::Events& ev);
  void on_events(EventBatch batch, bool resent);
  // To the writer (then acked once stored).
  void give(EventBatch batch);
  void note_accepts(const EventBatch& batch);
  void on(proto::channel::Heartbeat& h);
  void on(proto::channel::CommandResult& r);
  void on(proto::channel::Bye& b);

  // The writer's answer for a batch (event_writer.h): ack, or refuse.
  void stored(uint64_t through, const Result<InsertResult>& r);
  void pause_if_behind();
  void hold_or_drop(EventBatch batch);
  void give_held();
  void forget_held();
  void ask_resend();
  // Waits its turn (admission.h) to take events again after a pause.
  void resume_when_room();
  void resume();
  void check_baseline();
  Result<bool> catalog_change_reported_since(int64_t sequence);
  void seen();
  void send(const proto::channel::ManagerMessage& m, bool then_close = false);
  void write_next();
  void close();

  Hub& hub_;
  WsStream ws_;
  AgentRow agent_;
  std::string address_;
  boost::asio::steady_timer idle_;
  boost::beast::flat_buffer in_;
  std::deque<std::string> out_;
  bool hello_ = false;
  bool ended_ = false;    // lost, stopped or shut: no further liveness event
  bool closing_ = false;  // the last message is queued: close after it
  bool registered_ = false;
  bool claimed_ = false;  // claimed_elsewhere() is probing
  // Why the manager closes (normal after bye; policy_error otherwise).
  boost::beast::websocket::close_code close_code_ =
      boost::beast::websocket::close_code::policy_error;
  boost::asio::steady_timer probe_timer_;
  std::vector<std::function<void(bool)>> probes_;
  boost::asio::steady_timer linger_;  // after end(): the socket's last seconds
  int64_t revocation_checked_ns_ = 0;
  bool reading_ = false;  // a read is pending: never two
  bool pinging_ = false;  // a ping is being written: never two
  bool paused_ = false;   // giving the writer no events while it is behind (pause_if_behind)
  struct Held {
    EventBatch batch;
    size_t bytes;  // counted by Admission::hold
  };
  std::deque<Held> held_;        // received while paused, in order, for the writer
  bool gap_ = false;             // a batch was dropped: every one is, until the resent one
  bool resend_asked_ = false;    // a resend is out, its resent batch not yet here
  size_t batches_waiting_ = 0;   // submitted to the writer, no answer yet
  size_t last_batch_bytes_ = 0;  // what the last batch held in the writer's queue
  bool waiting_room_ = false;    // in the admission queue
  size_t reserved_ = 0;          // let in for this many bytes, until the next read
  // The last heartbeat said the node is unhealthy (drained by its load balancer): the
  // agent's status is unhealthy, and if the channel then ends it is retired, not lost.
  bool drained_ = false;
  // The root hash of the hello, checked once the events the agent had written before it
  // (sequences below hello_next_sequence_) are stored: a deploy reported in that backlog
  // explains a changed hash.
  std::optional<std::string> hello_root_hash_;
  int64_t hello_next_sequence_ = 0;
};

}  // namespace mamori::manager
