#include "manager/server/agent_channel.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/proto/actions.h"
#include "manager/db/event_columns.h"
#include "manager/server/fleet.h"

namespace mamori::manager {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ch = proto::channel;
using beast::error_code;
using nlohmann::json;

// How long a channel has to answer a ping when a second connection claims its identity.
constexpr auto kProbeTimeout = std::chrono::seconds(2);
// How long an ended channel may take to say goodbye before its socket is closed.
constexpr auto kCloseGrace = std::chrono::seconds(5);
// How often an open channel looks whether its agent's credential was revoked.
constexpr int64_t kRevocationCheckNs = 30'000'000'000;
// A channel stops taking events (so its agent slows down) while this many of its batches
// wait for the writer (an agent keeps at most 4 unacknowledged), or while the writer
// holds more than [manager] event_queue_mb from all channels.
constexpr size_t kMaxBatchesWaiting = 8;
// Batches a paused channel holds for its agent: a window's worth (link.h); an agent that
// sends more without an ack has them dropped and sent again.
constexpr size_t kMaxHeldBatches = 4;
// What a channel's read buffer keeps between messages: a heartbeat's worth. A batch's
// buffer is given back once read (10,000 channels × the 64 KiB kept before was a third
// of the manager's memory under an event stream; an allocation per batch costs nothing
// beside reading it).
constexpr size_t kKeptReadBuffer = 4 * 1024;
// What a channel let in by admission.h is expected to bring at least: a small last batch
// says little of what its agent gathered while it waited.
constexpr size_t kMinReserve = 256 * 1024;
// Unread bytes below which the agent's TCP window is certainly open (Linux opens at least
// 64 KiB of it), so that silence on the socket is the agent's own and not a loop that
// runs late.
constexpr size_t kSurelyOpenWindow = 32 * 1024;

}  // namespace

AgentChannel::AgentChannel(Hub& hub, WsStream ws, AgentRow agent, std::string address)
    : hub_(hub),
      ws_(std::move(ws)),
      agent_(std::move(agent)),
      address_(std::move(address)),
      idle_(ws_.get_executor()),
      probe_timer_(ws_.get_executor()),
      linger_(ws_.get_executor()) {}

AgentChannel::~AgentChannel() {
  if (reserved_) hub_.admission().release(reserved_);
  forget_held();
  hub_.connection_closed();
}

void AgentChannel::start(http::request<http::string_body> req) {
  ws_.set_option(
      websocket::stream_base::timeout{kHandshakeTimeout, websocket::stream_base::none(), false});
  ws_.read_message_max(ch::kMaxMessageBytes);
  ws_.async_accept(req, [self = shared_from_this()](const error_code& ec) { self->accepted(ec); });
}

void AgentChannel::shut() {
  end();
  send(ch::Error{std::string(ch::kShuttingDown), "the manager is stopping"}, true);
}

void AgentChannel::accepted(const error_code& ec) {
  if (ec) return;  // never spoke the protocol: nothing to record
  // From here the close handshake is bounded by end()'s kCloseGrace, not by Beast's
  // timeout: Beast 1.74 asserts (debug builds) when its close timeout fires while a read
  // is pending (boostorg/beast#1760, #2264), which a loop running late makes happen: the
  // grace and Beast's timer then both expire in one turn.
  ws_.set_option(websocket::stream_base::timeout{websocket::stream_base::none(),
                                                 websocket::stream_base::none(), false});
  // Pongs answer probe(); any frame at all shows the peer alive.
  ws_.control_callback([w = weak_from_this()](websocket::frame_type kind, beast::string_view) {
    if (auto self = w.lock(); self && kind == websocket::frame_type::pong) self->probed(true);
  });
  auto old = hub_.live(agent_.agent_key);
  if (!old) return admit();
  // Another connection holds this identity. Either it is dead and the kernel does not
  // know yet (the agent's network dropped and it reconnected: let it in), or both are
  // alive (a cloned image, a copied credential): refuse the newcomer.
  old->probe([self = shared_from_this(), old](bool alive) {
    if (!alive) {
      old->supersede();
      return self->admit();
    }
    self->refuse_duplicate("a second connection with the same identity was refused");
  });
}

void AgentChannel::admit() {
  hub_.set_live(agent_.agent_key, shared_from_this());
  registered_ = true;
  arm_idle();
  read();
}

void AgentChannel::claimed_elsewhere() {
  if (ended_ || claimed_ || !hello_) return;
  claimed_ = true;
  probe([self = shared_from_this()](bool alive) {
    if (!alive) {
      self->supersede();
      return;
    }
    self->refuse_duplicate(
        "connected here while another manager took a hello with the same identity: this "
        "connection was refused");
  });
}

void AgentChannel::refuse_duplicate(const std::string& why) {
  end();
  hub_.report(proto::action::kAgentDuplicate, event::Severity::kWarning,
              fmt::format("agent {} ({}): {}", agent_.info.name, agent_.info.hostname, why),
              &agent_, address_);
  send(ch::Error{std::string(ch::kDuplicateIdentity),
                 "this agent_key is connected already: enroll again with a token"},
       true);
  read();  // until the close completes
}

void AgentChannel::probe(std::function<void(bool alive)> done) {
  if (ended_ || closing_) return done(false);
  probes_.push_back(std::move(done));
  if (probes_.size() > 1) return;
  probe_timer_.expires_after(kProbeTimeout);
  probe_timer_.async_wait([w = weak_from_this()](const error_code& ec) {
    if (auto self = w.lock(); self && !ec) self->probed(false);
  });
  // The channel is always read, so the pong is seen. One ping at a time: an earlier one
  // still being written (a peer that reads nothing) gets the pong too, or never.
  if (pinging_) return;
  pinging_ = true;
  ws_.async_ping({}, [w = weak_from_this()](const error_code& ec) {
    auto self = w.lock();
    if (!self) return;
    self->pinging_ = false;
    if (ec) self->probed(false);
  });
}

void AgentChannel::supersede() {
  ended_ = true;
  idle_.cancel();
  error_code ignored;
  ws_.next_layer().socket().close(ignored);
}

void AgentChannel::probed(bool alive) {
  probe_timer_.cancel();
  auto waiting = std::move(probes_);
  probes_.clear();
  for (auto& d : waiting) d(alive);
}

void AgentChannel::arm_idle(std::chrono::milliseconds after) {
  idle_.expires_after(after);
  idle_.async_wait([w = weak_from_this()](const error_code& ec) {
    auto self = w.lock();
    if (!ec && self) self->silent();
  });
}

void AgentChannel::arm_idle() { arm_idle(std::chrono::seconds(hub_.m().lost_after_s)); }

// lost_after seconds without a message read. The manager may be the late one (its loop
// behind): the kernel knows when the agent last sent anything, read or not.
void AgentChannel::silent() {
  if (ended_) return;
  const std::chrono::milliseconds lost_after = std::chrono::seconds(hub_.m().lost_after_s);
  const auto quiet = agent_quiet_for();
  if (!quiet) return arm_idle();  // it may be the manager that holds it back: no verdict
  if (*quiet < lost_after) return arm_idle(lost_after - *quiet);
  lose(fmt::format("agent {} ({}) sent nothing for {} s", agent_.info.name, agent_.info.hostname,
                   hub_.m().lost_after_s),
       hub_.m().lost_after_s);
  send(ch::Error{std::string(ch::kLost), "nothing received within lost_after"}, true);
}

// How long ago the agent's last bytes arrived (TCP_INFO), when that says whether it is
// silent: unless what the manager has not read yet fills the window the agent may send
// into, a live agent's heartbeats would have arrived whatever the manager was doing. A
// frozen host sends nothing at all.
std::optional<std::chrono::milliseconds> AgentChannel::agent_quiet_for() {
  auto& socket = ws_.next_layer().socket();
  error_code ec;
  const size_t unread = socket.available(ec);
  if (ec || unread >= kSurelyOpenWindow) return std::nullopt;
  tcp_info info{};
  socklen_t size = sizeof info;
  if (::getsockopt(socket.native_handle(), IPPROTO_TCP, TCP_INFO, &info, &size) != 0)
    return std::nullopt;
  return std::chrono::milliseconds(info.tcpi_last_data_recv);
}

// The channel is over (whatever the socket still does): a new connection of this agent
// is no duplicate from now on.
void AgentChannel::end() {
  ended_ = true;
  idle_.cancel();
  forget_held();  // the agent sends them again on its next channel
  if (registered_) hub_.drop_live(agent_.agent_key, this);
  // The goodbye (an error, the close handshake) gets kCloseGrace; a peer that reads
  // nothing (a dead host: the write never completes) is cut off then.
  linger_.expires_after(kCloseGrace);
  linger_.async_wait([w = weak_from_this()](const error_code& ec) {
    if (auto self = w.lock(); self && !ec) {
      error_code ignored;
      self->ws_.next_layer().socket().close(ignored);
    }
  });
}

void AgentChannel::lose(const std::string& why, uint32_t silent_s) {
  end();
  if (!hello_) return;  // never said hello: not an agent yet on this connection
  // A drained node that goes away is an auto-scaling group replacing it: no alarm.
  const bool drained = drained_;
  hub_.release(agent_.agent_key, drained ? AgentStatus::kRetired : AgentStatus::kLost,
               [self = shared_from_this(), why, silent_s,
                drained](const Result<std::optional<AgentStatus>>& before) {
                 if (!before) log_line(before.error().message());
                 // Another manager holds the agent now: it reconnected there, nothing was lost.
                 if (before && !*before) return;
                 self->hub_.report(
                     drained ? proto::action::kAgentRetired : proto::action::kAgentLost,
                     drained ? event::Severity::kInfo : event::Severity::kWarning,
                     drained ? why + " after its node was drained: retired" : why, &self->agent_,
                     self->address_, [&](event::Event& e) {
                       e.set("mamori.managed_agent.silent_s", silent_s)
                           .set("mamori.reason", silent_s ? "silent" : "connection-closed");
                     });
               });
}

void AgentChannel::dropped(const error_code& ec) {
  lose(fmt::format("agent {} ({}): the connection ended without goodbye ({})", agent_.info.name,
                   agent_.info.hostname, ec.message()),
       0);
}

void AgentChannel::read() {
  if (reading_) return;
  reading_ = true;
  ws_.async_read(in_, [self = shared_from_this()](const error_code& ec, size_t) {
    self->reading_ = false;
    self->on_read(ec);
  });
}

void AgentChannel::on_read(const error_code& ec) {
  if (reserved_) {  // what it was let in for has come (or never will): room for the next
    hub_.admission().release(std::exchange(reserved_, 0));
    hub_.let_in();
  }
  if (ec) {
    probed(false);
    if (!ended_) dropped(ec);
    if (registered_) hub_.drop_live(agent_.agent_key, this);
    return;
  }
  probed(true);
  if (ended_) {  // draining towards our close
    in_.consume(in_.size());
    return read();
  }
  arm_idle();
  const std::string text = beast::buffers_to_string(in_.data());
  in_.consume(in_.size());
  if (in_.capacity() > kKeptReadBuffer) in_.shrink_to_fit();
  if (!ws_.got_text()) return refuse(ch::kBadMessage, "messages are text frames");
  // Events, most of what agents send, are read straight into their rows, no objects
  // built (event_columns.h); anything else, or a malformed message, goes to the decoder.
  if (hello_ && text.find("\"events\"") != std::string::npos) {
    bool resent = false;
    auto batch = scan_events_message(agent_.agent_key, text, &resent);
    if (!batch) return refuse(ch::kBadMessage, batch.error().detail);
    if (*batch) {
      on_events(std::move(**batch), resent);
      if (!ended_) read();
      return;
    }
  }
  auto m = ch::decode_agent_message(text);
  if (!m) return refuse(m.error().code, m.error().message);
  if (!hello_ && !std::holds_alternative<ch::Hello>(*m))
    return refuse(ch::kBadMessage, "the first message must be hello");
  std::visit([this](auto& x) { on(x); }, *m);
  if (!ended_) read();
}

// Admission control. While the writer is behind, a channel gives the writer no more
// events: the batches its agent sends meanwhile (at most its window: it sends no more
// until an ack) are held for it while the held ones of all channels stay under
// event_queue_mb (admission.h), and dropped past that, to be asked for again (resend)
// once the channel may give events again. The channel itself is read all along, so the
// agent's heartbeats and pongs, its command results and its silence are seen as they
// happen, however long it waits. Once its batch is stored the channel waits for room
// (admission.h), so the channels take turns, first paused first back, and memory stays
// near twice event_queue_mb (plus what the channels let in bring).
void AgentChannel::pause_if_behind() {
  const size_t limit = size_t{hub_.m().event_queue_mb} << 20;
  if (batches_waiting_ < kMaxBatchesWaiting && hub_.writer().queued().bytes < limit) return;
  paused_ = true;
}

// A batch that cannot go to the writer now: held, or dropped (then so is every one until
// the resent one, so that what is stored stays in the agent's order).
void AgentChannel::hold_or_drop(EventBatch batch) {
  const size_t bytes = EventWriter::batch_bytes(batch);
  if (!gap_ && held_.size() < kMaxHeldBatches && hub_.admission().hold(bytes)) {
    held_.push_back({std::move(batch), bytes});
    return;
  }
  gap_ = true;
  ask_resend();
}

// Back from a pause: the held batches first, as long as the writer takes them.
void AgentChannel::give_held() {
  while (!held_.empty() && !paused_ && !ended_) {
    Held h = std::move(held_.front());
    held_.pop_front();
    hub_.admission().unhold(h.bytes);
    give(std::move(h.batch));
  }
}

void AgentChannel::forget_held() {
  for (const Held& h : held_) hub_.admission().unhold(h.bytes);
  held_.clear();
}

// After a dropped batch, once every batch before it is acknowledged (an ack after the
// resend would be for events the agent sends again) and events may be given again: one
// resend at a time, and until the batch that answers it every other one is dropped too.
void AgentChannel::ask_resend() {
  if (!gap_ || resend_asked_ || paused_ || !held_.empty() || batches_waiting_ || ended_) return;
  resend_asked_ = true;
  send(ch::Resend{});
}

void AgentChannel::resume_when_room() {
  if (!paused_ || ended_ || waiting_room_) return;
  waiting_room_ = true;
  const size_t reserve = std::max(last_batch_bytes_, kMinReserve);
  // The queue owns the channel meanwhile: nothing else does while it neither reads nor
  // has a batch in the writer (its timers hold weak references), and a channel dropped
  // here would close its agent's connection.
  hub_.admission().wait(
      [self = shared_from_this(), reserve] {
        self->waiting_room_ = false;
        if (!self->paused_ || self->ended_) return false;
        self->reserved_ = reserve;
        self->resume();
        return true;
      },
      reserve);
  hub_.let_in();
}

void AgentChannel::resume() {
  if (!paused_ || ended_) return;
  paused_ = false;
  give_held();
  ask_resend();
}

void AgentChannel::refuse(std::string_view code, const std::string& message) {
  lose(fmt::format("agent {} ({}): closed for a protocol error: {}", agent_.info.name,
                   agent_.info.hostname, message),
       0);
  send(ch::Error{std::string(code), message}, true);
  read();
}

void AgentChannel::on(ch::Hello& h) {
  if (hello_) return refuse(ch::kBadMessage, "hello twice");
  hello_ = true;
  hub_.flush_releases();  // this agent's previous channel may have ended this very turn
  const int64_t now = hub_.now_ns();
  AgentInfo info = agent_.info;  // machine_id comes from the enrollment only
  info.agent_id = h.agent.id;
  info.name = h.agent.name;
  info.version = h.agent.version;
  info.hostname = h.host.hostname;
  info.roots_json = json(ch::to_json(h)["roots"]).dump();
  info.baseline_root_hash = h.baseline_root_hash;
  auto before = hub_.store().agent_hello(agent_.agent_key, info, now, hub_.manager_id());
  if (!before) {
    log_line(before.error().message());
    return refuse(ch::kInternal, "the manager could not record the hello");
  }
  agent_.info = std::move(info);
  agent_.status = AgentStatus::kOnline;
  revocation_checked_ns_ = now;
  send(ch::Welcome{hub_.m().heartbeat_s, hub_.m().lost_after_s});
  hub_.fleet().on_hello(*this, agent_.agent_key);
  hello_root_hash_ = h.baseline_root_hash;
  hello_next_sequence_ = static_cast<int64_t>(h.next_sequence);
  auto stored = hub_.store().sequences(agent_.agent_key);
  if (!stored) log_line(stored.error().message());
  if (!stored || stored->max_sequence + 1 >= hello_next_sequence_) check_baseline();
  if (*before == AgentStatus::kLost || *before == AgentStatus::kRetired) {
    hub_.report(proto::action::kAgentRecovered, event::Severity::kNotice,
                fmt::format("agent {} ({}) is back; a verify was asked of it", agent_.info.name,
                            agent_.info.hostname),
                &agent_, address_);
    send(ch::Command{new_uuid(), json{{"v", 2}, {"cmd", "verify"}}});
  }
}

// Whether the agent reported a deploy, a mode change or an accept at or after `sequence`.
Result<bool> AgentChannel::catalog_change_reported_since(int64_t sequence) {
  for (std::string_view action : {proto::action::kDeployStarted, proto::action::kDeployEnded,
                                  proto::action::kModeChanged, proto::action::kBaselineAccepted}) {
    EventQuery q;
    q.agent_key = agent_.agent_key;
    q.action = std::string(action);
    q.min_sequence = sequence;
    q.limit = 1;
    if (!MAMORI_TRY(hub_.store().query_events(q)).empty()) return true;
  }
  return false;
}

// A root hash that differs from the last one reported, with no deploy or mode change
// reported by the agent in between, is a baseline changed behind the manager's back.
void AgentChannel::check_baseline() {
  if (!hello_root_hash_) return;
  const std::string hash = std::exchange(hello_root_hash_, std::nullopt).value();
  auto history = hub_.store().baseline_history(agent_.agent_key);
  if (!history) return log_line(history.error().message());
  const BaselineRow* last = history->empty() ? nullptr : &history->back();
  if (last && last->root_hash == hash) return;
  bool expected = true;
  if (last && !last->root_hash.empty()) {
    auto reported = catalog_change_reported_since(last->next_sequence);
    if (!reported) log_line(reported.error().message());
    expected = reported && *reported;
    if (!expected)
      hub_.report(proto::action::kBaselineChangedUnexpectedly, event::Severity::kWarning,
                  fmt::format("agent {} ({}): its baseline changed with no deploy or mode change "
                              "reported",
                              agent_.info.name, agent_.info.hostname),
                  &agent_, address_, [&](event::Event& e) {
                    e.set("mamori.baseline.root_hash", hash)
                        .set("mamori.baseline.previous_root_hash", last->root_hash);
                  });
  }
  if (auto s = hub_.store().record_baseline(
          {agent_.agent_key, hash, hub_.now_ns(), expected, hello_next_sequence_});
      !s)
    log_line(s.error().message());
}

// Only when the scan above did not take the message (it takes every well-formed one).
void AgentChannel::on(ch::Events& ev) {
  auto batch = extract_event_batch(agent_.agent_key, ev.events);
  if (!batch) return refuse(ch::kBadMessage, batch.error().detail);
  on_events(std::move(*batch), ev.resent);
}

void AgentChannel::on_events(EventBatch batch, bool resent) {
  seen();
  if (ended_) return;                                         // its credential was revoked
  if (resent && resend_asked_) resend_asked_ = gap_ = false;  // the answer: taken from here
  if (batch.rows.empty()) return;
  // A ban decided by this agent goes to the others now, not after the commit, nor after
  // its channel's turn.
  hub_.fleet().on_events(agent_, batch);
  if (paused_ || gap_) return hold_or_drop(std::move(batch));
  give(std::move(batch));
}

void AgentChannel::give(EventBatch batch) {
  const uint64_t through = static_cast<uint64_t>(batch.max_sequence);
  note_accepts(batch);
  ++batches_waiting_;
  last_batch_bytes_ = EventWriter::batch_bytes(batch);
  hub_.writer().submit(
      agent_.agent_key, std::move(batch),
      [self = shared_from_this(), through](Result<InsertResult> r) { self->stored(through, r); });
  pause_if_behind();
}

// An operator's accept resealed the agent's baseline: its new root hash is the agent's
// now (the fleet page shows it before any hello), and an expected one.
void AgentChannel::note_accepts(const EventBatch& batch) {
  for (const auto& row : batch.rows) {
    if (row.action != proto::action::kBaselineAccepted) continue;
    std::string hash =
        string_at(json::parse(row.json, nullptr, false), {"mamori", "baseline", "root_hash"});
    if (!ch::is_fingerprint(hash)) continue;
    agent_.info.baseline_root_hash = std::move(hash);
    if (auto s = hub_.store().record_baseline({agent_.agent_key, agent_.info.baseline_root_hash,
                                               hub_.now_ns(), true, row.sequence + 1});
        !s)
      log_line(s.error().message());
  }
}

void AgentChannel::stored(uint64_t through, const Result<InsertResult>& r) {
  --batches_waiting_;
  hub_.let_in();       // the writer has room again
  if (ended_) return;  // the agent sends them again on its next channel
  if (!r) {
    log_line(r.error().message());
    return refuse(ch::kInternal, "the manager could not store the events; send them again");
  }
  // Stored (committed) before the ack: the agent may forget them now.
  send(ch::Ack{through});
  if (hello_root_hash_ && static_cast<int64_t>(through) + 1 >= hello_next_sequence_)
    check_baseline();
  resume_when_room();
  ask_resend();
}

void AgentChannel::on(ch::Heartbeat& h) {
  if (drained_ == h.healthy) {
    drained_ = !h.healthy;
    if (auto s = hub_.store().set_agent_status(
            agent_.agent_key, drained_ ? AgentStatus::kUnhealthy : AgentStatus::kOnline,
            hub_.now_ns());
        !s)
      log_line(s.error().message());
  }
  seen();
}

void AgentChannel::on(ch::CommandResult& r) {
  hub_.fleet().on_result(agent_.agent_key, r);
  seen();
}

void AgentChannel::on(ch::Bye& b) {
  end();
  hub_.release(agent_.agent_key, AgentStatus::kStopped,
               [](const Result<std::optional<AgentStatus>>& s) {
                 if (!s) log_line(s.error().message());
               });
  hub_.report(proto::action::kAgentStopped, event::Severity::kInfo,
              fmt::format("agent {} ({}) stopped: {}", agent_.info.name, agent_.info.hostname,
                          b.reason.substr(0, 200)),
              &agent_, address_,
              [&](event::Event& e) { e.set("mamori.reason", b.reason.substr(0, 200)); });
  // Closed from here too (normal closure), after what is queued: an agent that waits for
  // the close is not kept.
  close_code_ = websocket::close_code::normal;
  closing_ = true;
  if (out_.empty()) close();
  read();  // until the close completes
}

// last_seen goes to the store with the writer's next commit; a credential revoked while
// the channel is open ends it here, within kRevocationCheckNs.
void AgentChannel::seen() {
  const int64_t now = hub_.now_ns();
  hub_.writer().note_seen(agent_.agent_key, now);
  if (now - revocation_checked_ns_ < kRevocationCheckNs) return;
  revocation_checked_ns_ = now;
  auto row = hub_.store().find_agent(agent_.agent_key);
  if (row && *row && (*row)->status == AgentStatus::kRevoked) {
    end();
    hub_.report(proto::action::kAgentStopped, event::Severity::kNotice,
                fmt::format("agent {} ({}): its credential was revoked; the channel is closed",
                            agent_.info.name, agent_.info.hostname),
                &agent_, address_, [](event::Event& e) { e.set("mamori.reason", "revoked"); });
    send(ch::Error{std::string(ch::kUnauthorized), "this agent's credential was revoked"}, true);
    read();  // until the close completes
  }
}

void AgentChannel::send(const ch::ManagerMessage& m, bool then_close) {
  if (closing_) return;
  out_.push_back(ch::encode(m));
  if (then_close) closing_ = true;
  if (out_.size() == 1) write_next();
}

void AgentChannel::write_next() {
  ws_.text(true);
  ws_.async_write(asio::buffer(out_.front()),
                  [self = shared_from_this()](const error_code& ec, size_t) {
                    self->out_.pop_front();
                    if (ec) return;
                    if (!self->out_.empty()) return self->write_next();
                    if (self->closing_) self->close();
                  });
}

void AgentChannel::close() {
  ws_.async_close(close_code_, [self = shared_from_this()](const error_code&) {});
}

}  // namespace mamori::manager
