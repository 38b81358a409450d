#include "manager/server/server.h"

#include <openssl/ssl.h>

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "core/event/origin.h"
#include "core/fs/admin_files.h"
#include "core/proto/actions.h"
#include "core/proto/channel.h"
#include "manager/server/reporter.h"
#include "manager/server/store_calls.h"

namespace mamori::manager {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
namespace ch = proto::channel;
using tcp = asio::ip::tcp;
using beast::error_code;
using nlohmann::json;

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
// How long a channel has to answer a ping when a second connection claims its identity.
constexpr auto kProbeTimeout = std::chrono::seconds(2);
// How long an ended channel may take to say goodbye before its socket is closed.
constexpr auto kCloseGrace = std::chrono::seconds(5);
constexpr size_t kMaxHeaderBytes = 16 * 1024;
// Heartbeats move last_seen in memory; the store hears of it at most this often.
constexpr int64_t kLastSeenWriteNs = 30'000'000'000;

void log(const std::string& s) { std::fprintf(stderr, "mamori manager: %s\n", s.c_str()); }

std::string new_uuid() {
  auto b = random_bytes(16);
  std::string r = b ? *b : std::string(16, '\0');
  r[6] = static_cast<char>((r[6] & 0x0f) | 0x40);
  r[8] = static_cast<char>((r[8] & 0x3f) | 0x80);
  std::string s;
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += fmt::format("{:02x}", static_cast<uint8_t>(r[i]));
  }
  return s;
}

// Splits "HOST:PORT" / "[V6]:PORT".
Result<tcp::endpoint> parse_listen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec)
    return fail("parse [manager] listen", listen, EINVAL,
                "the host must be an IP address (0.0.0.0, ::, 127.0.0.1 ...)");
  const unsigned long port = std::stoul(listen.substr(colon + 1));
  if (port > 65535) return fail("parse [manager] listen", listen, EINVAL, "port out of range");
  return tcp::endpoint(addr, static_cast<uint16_t>(port));
}

}  // namespace

std::string public_url_of(const config::ManagerConfig& m, const std::string& host_name) {
  if (!m.public_url.empty()) return m.public_url;
  return "https://" + host_name + ":" + m.listen.substr(m.listen.rfind(':') + 1);
}

// ---- the server ---------------------------------------------------------------------

class Channel;

class Server::Impl {
 public:
  Impl(Env& env, const config::Config& config, StorePtr store, Identity identity,
       std::unique_ptr<Reporter> reporter)
      : env_(env),
        config_(config),
        m_(config.manager),
        store_(std::move(store)),
        identity_(std::move(identity)),
        reporter_(std::move(reporter)),
        host_name_(event::system_hostname()) {}

  Status bind() {
    ssl_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(ssl_.native_handle(), TLS1_2_VERSION);
    error_code ec;
    ssl_.use_certificate_chain(asio::buffer(identity_.cert_pem), ec);
    if (!ec) ssl_.use_private_key(asio::buffer(identity_.key_pem), ssl::context::pem, ec);
    if (ec) return fail_msg("load the manager's certificate", identity_.cert_path, ec.message());

    const tcp::endpoint ep = MAMORI_TRY(parse_listen(m_.listen));
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("listen", m_.listen, ec.value(), ec.message());
    return {};
  }

  Status run(bool handle_signals) {
    reporter_->set_poster([this](std::function<void()> f) { asio::post(io_, std::move(f)); });
    if (handle_signals) {
      signals_.emplace(io_, SIGTERM, SIGINT);
      signals_->async_wait([this](const error_code& ec, int) {
        if (!ec) shutdown();
      });
    }
    // Agents the store says are online but that do not come back within lost_after after
    // a restart are lost (their connections ended while no manager was listening).
    sweep_.expires_after(std::chrono::seconds(m_.lost_after_s));
    sweep_.async_wait([this](const error_code& ec) {
      if (!ec) sweep_stale_online();
    });
    accept();
    io_.run();
    return {};
  }

  void stop() {
    asio::post(io_, [this] { shutdown(); });
  }

  std::string local_address() const {
    error_code ec;
    const auto ep = acceptor_.local_endpoint(ec);
    if (ec) return "";
    const auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" +
           std::to_string(ep.port());
  }

  std::string public_url() const {
    config::ManagerConfig m = m_;
    if (m.public_url.empty()) {
      const std::string bound = local_address();
      if (!bound.empty()) m.listen = bound;
    }
    return public_url_of(m, host_name_);
  }

  const Identity& identity() const { return identity_; }

  // ---- used by the connections and channels (all on the io thread) ----------------

  Env& env() { return env_; }
  Store& store() { return *store_; }
  Reporter& reporter() { return *reporter_; }
  const config::ManagerConfig& m() const { return m_; }
  ssl::context& ssl() { return ssl_; }
  bool stopping() const { return stopping_; }
  int64_t now_ns() const { return env_.clock().now_ns(); }

  void connection_closed() { --connections_; }

  // The live channel of `key`; nullptr when none.
  std::shared_ptr<Channel> live(const std::string& key) {
    auto it = live_.find(key);
    return it == live_.end() ? nullptr : it->second.lock();
  }
  void set_live(const std::string& key, const std::shared_ptr<Channel>& c) { live_[key] = c; }
  void drop_live(const std::string& key, const Channel* c) {
    auto it = live_.find(key);
    if (it != live_.end() && (it->second.expired() || it->second.lock().get() == c))
      live_.erase(it);
  }

  // The manager's events (reporter.h), with the agent named.
  void report(std::string_view action, event::Severity sev, const std::string& message,
              const AgentRow* agent, const std::string& address,
              const std::function<void(event::Event&)>& more = {}) {
    event::Event e(action, sev, now_ns());
    e.set("event.dataset", "mamori.manager").message(message);
    if (agent) {
      e.set("mamori.managed_agent.key", agent->agent_key)
          .set("mamori.managed_agent.id", agent->agent_id)
          .set("mamori.managed_agent.name", agent->name)
          .set("mamori.managed_agent.hostname", agent->hostname)
          .set("mamori.managed_agent.group", agent->group);
    }
    if (!address.empty()) e.set("mamori.managed_agent.address", address);
    if (more) more(e);
    reporter_->report(e);
  }

 private:
  void accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (stopping_) return;
      if (!ec) on_accept(std::move(socket));
      accept();
    });
  }

  void on_accept(tcp::socket socket);

  void sweep_stale_online() {
    auto agents = list_agents(*store_);
    if (!agents) return log("sweep: " + agents.error().message());
    for (const auto& a : *agents) {
      if (a.status != kStatusOnline || live(a.agent_key)) continue;
      if (auto s = set_status(*store_, a.agent_key, kStatusLost, now_ns()); !s)
        log("sweep: " + s.error().message());
      report(proto::action::kAgentLost, event::Severity::kWarning,
             fmt::format("agent {} ({}) did not come back after the manager restarted", a.name,
                         a.hostname),
             &a, "", [](event::Event& e) { e.set("mamori.reason", "manager-restarted"); });
    }
  }

  void shutdown();

  Env& env_;
  const config::Config& config_;
  const config::ManagerConfig m_;
  StorePtr store_;
  Identity identity_;
  std::unique_ptr<Reporter> reporter_;
  std::string host_name_;

  // Before io_: the connections still queued in io_ when it is destroyed count down here.
  size_t connections_ = 0;
  asio::io_context io_{1};
  ssl::context ssl_{ssl::context::tls_server};
  tcp::acceptor acceptor_{io_};
  std::optional<asio::signal_set> signals_;
  asio::steady_timer sweep_{io_};
  bool stopping_ = false;
  std::map<std::string, std::weak_ptr<Channel>> live_;

  friend class Connection;
};

// ---- one channel (after the WebSocket upgrade) ---------------------------------------

using Ws = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  Channel(Server::Impl& server, Ws ws, AgentRow agent, std::string address)
      : server_(server),
        ws_(std::move(ws)),
        agent_(std::move(agent)),
        address_(std::move(address)),
        idle_(ws_.get_executor()),
        probe_timer_(ws_.get_executor()),
        linger_(ws_.get_executor()) {}

  ~Channel() { server_.connection_closed(); }

  void start(http::request<http::string_body> req) {
    ws_.set_option(
        websocket::stream_base::timeout{kHandshakeTimeout, websocket::stream_base::none(), false});
    ws_.read_message_max(ch::kMaxMessageBytes);
    ws_.async_accept(req,
                     [self = shared_from_this()](const error_code& ec) { self->accepted(ec); });
  }

  // Closes the channel without counting it lost (the manager stops).
  void shut() {
    end();
    send(ch::Error{std::string(ch::kShuttingDown), "the manager is stopping"}, true);
  }

 private:
  void accepted(const error_code& ec) {
    if (ec) return;  // never spoke the protocol: nothing to record
    // From here the close handshake is bounded by end()'s kCloseGrace, not by Beast's
    // timeout: Beast 1.74 asserts (debug builds) when its close timeout fires while a read
    // is pending (boostorg/beast#1760, #2264), which a loop running late makes happen:
    // the grace and Beast's timer then both expire in one turn.
    ws_.set_option(websocket::stream_base::timeout{websocket::stream_base::none(),
                                                   websocket::stream_base::none(), false});
    // Pongs answer probe(); any frame at all shows the peer alive.
    ws_.control_callback([w = weak_from_this()](websocket::frame_type kind, beast::string_view) {
      if (auto self = w.lock(); self && kind == websocket::frame_type::pong) self->probed(true);
    });
    auto old = server_.live(agent_.agent_key);
    if (!old) return admit();
    // Another connection holds this identity. Either it is dead and the kernel does not
    // know yet (the agent's network dropped and it reconnected: let it in), or both are
    // alive (a cloned image, a copied credential): refuse the newcomer.
    old->probe([self = shared_from_this(), old](bool alive) {
      if (!alive) {
        old->supersede();
        return self->admit();
      }
      self->refuse_duplicate();
    });
  }

  void admit() {
    server_.set_live(agent_.agent_key, shared_from_this());
    registered_ = true;
    arm_idle();
    read();
  }

  void refuse_duplicate() {
    duplicate_ = true;
    end();
    server_.report(proto::action::kAgentDuplicate, event::Severity::kWarning,
                   fmt::format("agent {} ({}): a second connection with the same identity "
                               "was refused",
                               agent_.name, agent_.hostname),
                   &agent_, address_);
    send(ch::Error{std::string(ch::kDuplicateIdentity),
                   "this agent_key is connected already: enroll again with a token"},
         true);
    read();  // until the close completes
  }

 public:
  // Whether the peer is still there: a ping answered (or any message) within
  // kProbeTimeout. A channel that is ending is not.
  void probe(std::function<void(bool alive)> done) {
    if (ended_ || closing_) return done(false);
    probes_.push_back(std::move(done));
    if (probes_.size() > 1) return;
    probe_timer_.expires_after(kProbeTimeout);
    probe_timer_.async_wait([w = weak_from_this()](const error_code& ec) {
      if (auto self = w.lock(); self && !ec) self->probed(false);
    });
    ws_.async_ping({}, [w = weak_from_this()](const error_code& ec) {
      if (auto self = w.lock(); self && ec) self->probed(false);
    });
  }

  // A newer connection of the same agent replaced this dead one: no event, no status
  // change (the agent is back already), the socket closed now.
  void supersede() {
    superseded_ = ended_ = true;
    idle_.cancel();
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

 private:
  void probed(bool alive) {
    probe_timer_.cancel();
    auto waiting = std::move(probes_);
    probes_.clear();
    for (auto& d : waiting) d(alive);
  }

  void arm_idle() {
    idle_.expires_after(std::chrono::seconds(server_.m().lost_after_s));
    idle_.async_wait([w = weak_from_this()](const error_code& ec) {
      auto self = w.lock();
      if (!ec && self) self->silent();
    });
  }

  // lost_after seconds without a message.
  void silent() {
    if (ended_) return;
    lose(fmt::format("agent {} ({}) sent nothing for {} s", agent_.name, agent_.hostname,
                     server_.m().lost_after_s),
         server_.m().lost_after_s);
    send(ch::Error{std::string(ch::kLost), "nothing received within lost_after"}, true);
  }

  // The channel is over (whatever the socket still does): a new connection of this agent
  // is no duplicate from now on.
  void end() {
    ended_ = true;
    idle_.cancel();
    if (registered_) server_.drop_live(agent_.agent_key, this);
    // The goodbye (an error, the close handshake) gets kCloseGrace; a peer that reads
    // nothing (a dead host: the write never completes) is cut off then.
    linger_.expires_after(kCloseGrace);
    linger_.async_wait([w = weak_from_this()](const error_code& ec) {
      if (auto self = w.lock(); self && !ec) {
        error_code ignored;
        beast::get_lowest_layer(self->ws_).socket().close(ignored);
      }
    });
  }

  void lose(const std::string& why, uint32_t silent_s) {
    end();
    if (!hello_) return;  // never said hello: not an agent yet on this connection
    if (auto s = set_status(server_.store(), agent_.agent_key, kStatusLost, server_.now_ns()); !s)
      log(s.error().message());
    server_.report(proto::action::kAgentLost, event::Severity::kWarning, why, &agent_, address_,
                   [&](event::Event& e) {
                     e.set("mamori.managed_agent.silent_s", silent_s)
                         .set("mamori.reason", silent_s ? "silent" : "connection-closed");
                   });
  }

  void read() {
    ws_.async_read(
        in_, [self = shared_from_this()](const error_code& ec, size_t) { self->on_read(ec); });
  }

  void on_read(const error_code& ec) {
    if (ec) {
      probed(false);
      if (!ended_)
        lose(fmt::format("agent {} ({}): the connection ended without goodbye ({})", agent_.name,
                         agent_.hostname, ec.message()),
             0);
      if (registered_) server_.drop_live(agent_.agent_key, this);
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
    if (!ws_.got_text()) return refuse(ch::kBadMessage, "messages are text frames");
    auto m = ch::decode_agent_message(text);
    if (!m) return refuse(m.error().code, m.error().message);
    if (!hello_ && !std::holds_alternative<ch::Hello>(*m))
      return refuse(ch::kBadMessage, "the first message must be hello");
    std::visit([this](auto& x) { on(x); }, *m);
    if (!ended_) read();
  }

  void refuse(std::string_view code, const std::string& message) {
    lose(fmt::format("agent {} ({}): closed for a protocol error: {}", agent_.name, agent_.hostname,
                     message),
         0);
    send(ch::Error{std::string(code), message}, true);
    read();
  }

  void on(ch::Hello& h) {
    if (hello_) return refuse(ch::kBadMessage, "hello twice");
    hello_ = true;
    const int64_t now = server_.now_ns();
    const bool was_lost = agent_.status == kStatusLost;
    HelloUpdate u{h.agent.id,
                  h.agent.name,
                  h.agent.version,
                  h.host.hostname,
                  json(ch::to_json(h)["roots"]).dump(),
                  h.baseline_root_hash,
                  now,
                  address_};
    if (auto s = record_hello(server_.store(), agent_.agent_key, u); !s) {
      log(s.error().message());
      return refuse(ch::kInternal, "the manager could not record the hello");
    }
    agent_.agent_id = h.agent.id;
    agent_.name = h.agent.name;
    agent_.hostname = h.host.hostname;
    agent_.status = kStatusOnline;
    last_seen_written_ = now;
    check_baseline(h.baseline_root_hash, now);
    send(ch::Welcome{server_.m().heartbeat_s, server_.m().lost_after_s});
    if (was_lost) {
      server_.report(proto::action::kAgentRecovered, event::Severity::kNotice,
                     fmt::format("agent {} ({}) is back; a verify was asked of it", agent_.name,
                                 agent_.hostname),
                     &agent_, address_);
      send(ch::Command{new_uuid(), json{{"v", 2}, {"cmd", "verify"}}});
    }
  }

  // A root hash that differs from the last one reported, with no deploy or accept from
  // the agent in between, is a baseline changed behind the manager's back.
  void check_baseline(const std::string& hash, int64_t now) {
    auto prev = last_baseline(server_.store(), agent_.agent_key);
    if (!prev) return log(prev.error().message());
    const std::optional<BaselineRow>& last = *prev;
    bool expected = true;
    if (last && !last->hash.empty() && last->hash != hash) {
      auto deployed = deploy_or_accept_since(server_.store(), agent_.agent_key, last->at_ns);
      if (!deployed) log(deployed.error().message());
      expected = deployed && *deployed;
      if (!expected)
        server_.report(proto::action::kBaselineChangedUnexpectedly, event::Severity::kWarning,
                       fmt::format("agent {} ({}): its baseline changed with no deploy or accept "
                                   "reported",
                                   agent_.name, agent_.hostname),
                       &agent_, address_, [&](event::Event& e) {
                         e.set("mamori.baseline.root_hash", hash)
                             .set("mamori.baseline.previous_root_hash", last->hash);
                       });
    }
    if (!last || last->hash != hash)
      if (auto s = record_baseline(server_.store(), agent_.agent_key, hash, now, expected); !s)
        log(s.error().message());
  }

  void on(ch::Events& ev) {
    if (ev.events.empty()) return;
    const uint64_t through = ev.highest_sequence();
    auto n = insert_events(server_.store(), agent_.agent_key, ev.events, server_.now_ns());
    if (!n) {
      log(n.error().message());
      return refuse(ch::kInternal, "the manager could not store the events; send them again");
    }
    touch(true);
    // Stored (committed) before the ack: the agent may forget them now.
    send(ch::Ack{through});
  }

  void on(ch::Heartbeat&) { touch(false); }

  void on(ch::CommandResult& r) {
    log(fmt::format("agent {}: command {} answered {}", agent_.agent_key, r.command_id,
                    r.answer.dump().substr(0, 200)));
    touch(false);
  }

  void on(ch::Bye& b) {
    end();
    if (auto s = set_status(server_.store(), agent_.agent_key, kStatusStopped, server_.now_ns());
        !s)
      log(s.error().message());
    server_.report(proto::action::kAgentStopped, event::Severity::kInfo,
                   fmt::format("agent {} ({}) stopped: {}", agent_.name, agent_.hostname,
                               b.reason.substr(0, 200)),
                   &agent_, address_,
                   [&](event::Event& e) { e.set("mamori.reason", b.reason.substr(0, 200)); });
    // Closed from here too (normal closure), after what is queued: an agent that waits
    // for the close is not kept.
    close_code_ = websocket::close_code::normal;
    if (out_.empty()) {
      closing_ = true;
      close();
    } else {
      closing_ = true;
    }
    read();  // until the close completes
  }

  // last_seen: in memory at every message, in the store at most every 30 s (or now).
  void touch(bool force) {
    const int64_t now = server_.now_ns();
    if (!force && now - last_seen_written_ < kLastSeenWriteNs) return;
    last_seen_written_ = now;
    if (auto s = set_last_seen(server_.store(), agent_.agent_key, now); !s)
      log(s.error().message());
  }

  template <typename M>
  void send(const M& m, bool then_close = false) {
    if (closing_) return;
    out_.push_back(ch::encode(ch::ManagerMessage{m}));
    if (then_close) closing_ = true;
    if (out_.size() == 1) write_next();
  }

  void write_next() {
    ws_.text(true);
    ws_.async_write(asio::buffer(out_.front()),
                    [self = shared_from_this()](const error_code& ec, size_t) {
                      self->out_.pop_front();
                      if (ec) return;
                      if (!self->out_.empty()) return self->write_next();
                      if (self->closing_) self->close();
                    });
  }

  void close() {
    ws_.async_close(close_code_, [self = shared_from_this()](const error_code&) {});
  }

  Server::Impl& server_;
  Ws ws_;
  AgentRow agent_;
  std::string address_;
  asio::steady_timer idle_;
  beast::flat_buffer in_;
  std::deque<std::string> out_;
  bool hello_ = false;
  bool ended_ = false;      // lost, stopped or shut: no further liveness event
  bool closing_ = false;    // the last message is queued: close after it
  bool duplicate_ = false;  // refused as a duplicate
  bool registered_ = false;
  bool superseded_ = false;
  websocket::close_code close_code_ =
      websocket::close_code::policy_error;  // replaced by a newer connection of the agent
  asio::steady_timer probe_timer_;
  std::vector<std::function<void(bool)>> probes_;
  asio::steady_timer linger_;  // after end(): the socket's last seconds
  int64_t last_seen_written_ = 0;
};

// ---- one connection before the upgrade ----------------------------------------------

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket), server.ssl()) {
    error_code ec;
    const auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) address_ = ep.address().to_string();
  }
  ~Connection() {
    if (!handed_over_) server_.connection_closed();
  }

  void start() {
    beast::get_lowest_layer(stream_).expires_after(kHandshakeTimeout);
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](const error_code& ec) {
                              if (!ec) self->read_request();
                            });
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(ch::kMaxMessageBytes);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](const error_code& ec, size_t) {
                       if (!ec) self->route();
                     });
  }

  void route() {
    auto& req = parser_->get();
    const std::string_view target(req.target().data(), req.target().size());
    if (target == "/api/v1/enroll") {
      if (req.method() != http::verb::post) return respond(http::status::method_not_allowed, {});
      return enroll(req.body());
    }
    if (target == "/api/v1/channel") {
      if (req.method() != http::verb::get || !websocket::is_upgrade(req))
        return respond(http::status::upgrade_required,
                       ch::to_json(ch::EnrollError{std::string(ch::kBadMessage),
                                                   "a WebSocket upgrade is expected"}));
      return channel(parser_->release());
    }
    respond(http::status::not_found,
            ch::to_json(ch::EnrollError{std::string(ch::kBadMessage), "no such endpoint"}));
  }

  void enroll(const std::string& body) {
    auto r = ch::decode_enroll_request(body);
    if (!r)
      return respond(http::status::bad_request,
                     ch::to_json(ch::EnrollError{r.error().code, r.error().message}));
    const int64_t now = server_.now_ns();
    auto group = consume_token(server_.store(), sha256_hex(r->token_secret), now);
    if (!group) {
      log("enroll: " + group.error().message());
      return respond(http::status::internal_server_error,
                     ch::to_json(ch::EnrollError{std::string(ch::kInternal), "store failed"}));
    }
    if (!group->ok) {
      log(fmt::format("enroll refused from {}: {}", address_, group->why));
      return respond(http::status::unauthorized,
                     ch::to_json(ch::EnrollError{std::string(ch::kBadToken), group->why}));
    }
    auto secret = random_bytes(32);
    if (!secret)
      return respond(http::status::internal_server_error,
                     ch::to_json(ch::EnrollError{std::string(ch::kInternal), "no randomness"}));
    const std::string credential = ch::base64url(*secret);
    AgentRow a;
    a.agent_key = new_uuid();
    a.credential_hash = sha256_hex(credential);
    a.group = group->group;
    a.hostname = r->host.hostname;
    a.machine_id = r->host.machine_id;
    a.agent_id = r->agent.id;
    a.name = r->agent.name;
    a.version = r->agent.version;
    a.roots_json = ch::to_json(*r)["roots"].dump();
    a.baseline_root_hash = r->baseline_root_hash;
    a.enrolled_at_ns = now;
    if (auto s = create_agent(server_.store(), a); !s) {
      log("enroll: " + s.error().message());
      return respond(http::status::internal_server_error,
                     ch::to_json(ch::EnrollError{std::string(ch::kInternal), "store failed"}));
    }
    if (!a.baseline_root_hash.empty())
      if (auto s = record_baseline(server_.store(), a.agent_key, a.baseline_root_hash, now, true);
          !s)
        log(s.error().message());
    server_.report(
        proto::action::kAgentEnrolled, event::Severity::kNotice,
        fmt::format("agent {} ({}) enrolled in group \"{}\"", a.name, a.hostname, a.group), &a,
        address_);
    respond(http::status::ok,
            ch::to_json(ch::EnrollAnswer{a.agent_key, credential, server_.m().heartbeat_s,
                                         server_.m().lost_after_s}));
  }

  void channel(http::request<http::string_body> req) {
    auto who = authenticate(req);
    if (!who)
      return respond(http::status::unauthorized,
                     ch::to_json(ch::EnrollError{std::string(ch::kUnauthorized),
                                                 "Authorization: Bearer agent_key:credential "
                                                 "is missing or wrong"}));
    beast::get_lowest_layer(stream_).expires_never();
    handed_over_ = true;
    auto c = std::make_shared<Channel>(server_, Ws(std::move(stream_)), std::move(*who), address_);
    c->start(std::move(req));
  }

  // The agent the request's credential belongs to.
  std::optional<AgentRow> authenticate(const http::request<http::string_body>& req) {
    const auto it = req.find(http::field::authorization);
    if (it == req.end()) return std::nullopt;
    std::string_view v(it->value().data(), it->value().size());
    if (!v.starts_with("Bearer ")) return std::nullopt;
    v.remove_prefix(7);
    const size_t colon = v.find(':');
    if (colon == std::string_view::npos || colon > 64) return std::nullopt;
    const std::string key(v.substr(0, colon));
    const std::string presented = sha256_hex(v.substr(colon + 1));
    auto a = find_agent(server_.store(), key);
    if (!a) {
      log("channel: " + a.error().message());
      return std::nullopt;
    }
    // Compared in constant time; an unknown key costs the same hash as a known one.
    if (!*a || !equal_constant_time(presented, (*a)->credential_hash) ||
        (*a)->status == kStatusRetired)
      return std::nullopt;
    return std::move(**a);
  }

  void respond(http::status status, const json& body) {
    auto res = std::make_shared<http::response<http::string_body>>(status, 11);
    res->set(http::field::content_type, "application/json");
    res->set(http::field::server, "mamori-manager");
    res->keep_alive(false);
    res->body() = body.is_null() ? std::string() : body.dump();
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](const error_code& ec, size_t) {
                        if (!ec) self->stream_.async_shutdown([self](const error_code&) {});
                      });
  }

  Server::Impl& server_;
  beast::ssl_stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string address_;
  bool handed_over_ = false;  // the Channel counts the connection now
};

void Server::Impl::on_accept(tcp::socket socket) {
  if (connections_ >= m_.max_agents) {
    error_code ec;
    socket.close(ec);  // over the limit: no TLS, no parsing, nothing
    return;
  }
  ++connections_;
  std::make_shared<Connection>(*this, std::move(socket))->start();
}

void Server::Impl::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  error_code ec;
  acceptor_.close(ec);
  sweep_.cancel();
  if (signals_) signals_->cancel();
  // shut() ends the channel, which removes it from live_: walk a copy (iterating live_
  // itself looped forever or crashed when an agent was connected).
  const auto live = std::exchange(live_, {});
  for (const auto& [key, w] : live)
    if (auto c = w.lock()) c->shut();
  // The agents' connections end with the manager: they are not lost (the next start gives
  // them lost_after to come back). What is left to write gets a second.
  auto grace = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(1));
  grace->async_wait([this, grace](const error_code&) { io_.stop(); });
}

// ---- Server ---------------------------------------------------------------------------

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::start(Env& env, const config::Config& config) {
  const auto& m = config.manager;
  MAMORI_TRY(fs::make_private_dir(m.state_dir));
  Identity identity =
      MAMORI_TRY(load_or_create_identity(env, m.state_dir, event::system_hostname()));
  if (identity.created)
    log(fmt::format("made the certificate {} (fingerprint {})", identity.cert_path,
                    identity.fingerprint));
  StorePtr store = MAMORI_TRY(open_store_url(env, m.database));
  auto reporter = MAMORI_TRY(Reporter::open(env, config, *store));
  auto impl = std::make_unique<Impl>(env, config, std::move(store), std::move(identity),
                                     std::move(reporter));
  MAMORI_TRY(impl->bind());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::run(bool handle_signals) { return impl_->run(handle_signals); }
void Server::stop() { impl_->stop(); }
const Identity& Server::identity() const { return impl_->identity(); }
std::string Server::local_address() const { return impl_->local_address(); }
std::string Server::public_url() const { return impl_->public_url(); }

}  // namespace mamori::manager
