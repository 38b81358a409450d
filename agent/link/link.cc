#include "agent/link/link.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <random>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "agent/link/command_queue.h"
#include "agent/link/credentials.h"
#include "agent/link/outflow.h"
#include "core/base/json_depth.h"
#include "core/base/mutex.h"
#include "core/fs/admin_files.h"
#include "core/hash/sha256.h"
#include "core/proto/channel.h"
#include "core/tls/fingerprint.h"

namespace mamori::link {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
namespace ch = proto::channel;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using WsStream = websocket::stream<TlsStream>;

constexpr size_t kMaxEnrollAnswer = 64u << 10;  // the enroll endpoint's answer
constexpr size_t kMaxCommandId = 128;
constexpr size_t kMaxPendingResults = 256;
constexpr int64_t kStopGraceMs = 3000;  // bye + close, at most
constexpr const char* kCursor = "manager";

std::chrono::milliseconds ms(int64_t n) { return std::chrono::milliseconds(n); }

// TLS 1.2 or newer; the certificate is checked by its pin (check_pin), not by a CA.
Result<std::unique_ptr<ssl::context>> make_tls_context() {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1)
    return fail_msg("tls", "", "cannot require TLS 1.2");
  ctx->set_verify_mode(ssl::verify_none);
  return ctx;
}

// The peer certificate's SHA-256 (of its DER) against the pinned fingerprint, before
// anything secret is sent over the connection.
Status check_pin(SSL* ssl, const std::string& fp) {
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl), &X509_free);
  if (!cert) return fail_msg("tls", "", "the manager sent no certificate");
  const std::string presented = MAMORI_TRY(tls::fingerprint(cert.get()));
  if (!hash::equal_constant_time(fp, presented))
    return fail_msg("tls", "",
                    "the manager's certificate does not match the pinned fingerprint (sha256 " +
                        presented + ")");
  return ok();
}

bool is_ip_literal(const std::string& host) {
  ErrorCode ec;
  (void)asio::ip::make_address(host, ec);
  return !ec;
}

std::string host_header(const Endpoint& ep) {
  const bool v6 = ep.host.find(':') != std::string::npos;
  return (v6 ? "[" + ep.host + "]" : ep.host) + ":" + ep.port;
}

std::string machine_id() {
  auto text = fs::read_small_file("/etc/machine-id", 256);
  if (!text) return "";
  std::string s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<ch::RootInfo> root_infos(const std::vector<proto::RootStatus>& roots) {
  std::vector<ch::RootInfo> out;
  for (const auto& r : roots) out.push_back({r.path, std::string(config::mode_name(r.mode))});
  return out;
}

// The error message of a manager's refusal ({"error":{"code","message"}}), or the status.
std::string refusal(unsigned status, const std::string& body) {
  if (auto e = ch::decode_enroll_error(body))
    return fmt::format("the manager refused ({}): {}: {}", status, e->code, e->message);
  return fmt::format("the manager answered HTTP {}", status);
}

// Connects a TLS stream to `ep` and checks the pin; `done` gets the outcome. Every step
// is bounded by the tcp_stream's expiry (`timeout`).
template <class Done>
void connect_tls(tcp::resolver& resolver, TlsStream& stream, const Endpoint& ep,
                 const std::string& fp, std::chrono::seconds timeout, Done done) {
  resolver.async_resolve(
      ep.host, ep.port,
      [&stream, &ep, fp, timeout, done = std::move(done)](
          ErrorCode ec, tcp::resolver::results_type results) mutable {
        if (ec) return done(fail_msg("resolve", ep.host, ec.message()));
        beast::get_lowest_layer(stream).expires_after(timeout);
        beast::get_lowest_layer(stream).async_connect(
            results, [&stream, &ep, fp, done = std::move(done)](ErrorCode ec2,
                                                                const tcp::endpoint&) mutable {
              if (ec2) return done(fail_msg("connect", host_header(ep), ec2.message()));
              if (!is_ip_literal(ep.host))
                SSL_set_tlsext_host_name(stream.native_handle(), ep.host.c_str());
              stream.async_handshake(
                  ssl::stream_base::client,
                  [&stream, &ep, fp, done = std::move(done)](ErrorCode ec3) mutable {
                    if (ec3) return done(fail_msg("tls handshake", host_header(ep), ec3.message()));
                    done(check_pin(stream.native_handle(), fp));
                  });
            });
      });
}

}  // namespace

// ---- enrollment ----------------------------------------------------------------------

// One POST /api/v1/enroll. Owned by a shared_ptr that its handlers hold.
class Enroller : public std::enable_shared_from_this<Enroller> {
 public:
  using Done = std::function<void(Result<Credentials>)>;
  Enroller(asio::io_context& ioc, ssl::context& ctx, Endpoint ep, std::string url, Token token,
           std::string body, int timeout_s, Done done)
      : resolver_(ioc),
        stream_(ioc, ctx),
        ep_(std::move(ep)),
        url_(std::move(url)),
        token_(std::move(token)),
        timeout_(timeout_s),
        done_(std::move(done)) {
    req_ = {http::verb::post, "/api/v1/enroll", 11};
    req_.set(http::field::host, host_header(ep_));
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::user_agent, "mamori-agent");
    req_.body() = std::move(body);
    req_.prepare_payload();
    parser_.body_limit(kMaxEnrollAnswer);
  }

  void run() {
    auto self = shared_from_this();
    connect_tls(resolver_, stream_, ep_, token_.fp, timeout_, [self](Status st) {
      if (!st) return self->finish(tl::unexpected(std::move(st).error()));
      beast::get_lowest_layer(self->stream_).expires_after(self->timeout_);
      http::async_write(self->stream_, self->req_, [self](ErrorCode ec, size_t) {
        if (ec) return self->finish(fail_msg("enroll", self->url_, ec.message()));
        http::async_read(self->stream_, self->buf_, self->parser_,
                         [self](ErrorCode ec2, size_t) { self->on_answer(ec2); });
      });
    });
  }
  void abort() {
    ErrorCode ec;
    beast::get_lowest_layer(stream_).socket().close(ec);
  }

 private:
  void on_answer(ErrorCode ec) {
    if (ec) return finish(fail_msg("enroll", url_, ec.message()));
    const auto& res = parser_.get();
    if (res.result() != http::status::ok)
      return finish(fail_msg("enroll", url_, refusal(res.result_int(), res.body())));
    auto a = ch::decode_enroll_answer(res.body());
    if (!a) return finish(fail_msg("enroll", url_, "the manager's answer: " + a.error().message));
    Credentials c;
    c.url = url_;
    c.fp = token_.fp;
    c.agent_key = std::move(a->agent_key);
    c.credential = std::move(a->credential);
    if (c.agent_key.empty() || c.agent_key.size() > 128 ||
        c.agent_key.find(':') != std::string::npos || c.credential.empty() ||
        c.credential.size() > 256)
      return finish(
          fail_msg("enroll", url_, "the manager's answer has no valid agent_key/credential"));
    finish(std::move(c));
  }
  void finish(Result<Credentials> r) {
    if (!done_) return;
    ErrorCode ec;
    beast::get_lowest_layer(stream_).socket().close(ec);
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(r));
  }

  tcp::resolver resolver_;
  TlsStream stream_;
  Endpoint ep_;
  std::string url_;
  Token token_;
  std::chrono::seconds timeout_;
  Done done_;
  http::request<http::string_body> req_;
  beast::flat_buffer buf_;
  http::response_parser<http::string_body> parser_;
};

// ---- the channel -----------------------------------------------------------------------

class Link::Impl {
 public:
  Impl(Env& env, LinkOptions o, std::unique_ptr<CommandQueue> commands,
       std::unique_ptr<ssl::context> tls)
      : env_(env),
        o_(std::move(o)),
        outflow_(env, {o_.outbox_dir, kCursor, o_.start_sequence, o_.batch_events, o_.batch_bytes,
                       o_.max_in_flight}),
        commands_(std::move(commands)),
        tls_(std::move(tls)),
        backoff_timer_(ioc_),
        rng_(std::random_device{}()) {}

  Status open() { return outflow_.open(); }

  void start() {
    {
      MutexLock lock(mu_);
      status_.state = proto::LinkState::kConnecting;
      status_.url = o_.url;
      status_.cursor = outflow_.cursor();
    }
    thread_ = std::thread([this] {
      asio::post(ioc_, [this] { attempt(); });
      ioc_.run();
      // Whatever was acknowledged is kept for the next start.
      if (auto st = outflow_.save(/*force=*/true); !st) log(st.error().message());
    });
  }

  void stop();

  void notify();
  void set_healthy(bool h) { healthy_.store(h, std::memory_order_relaxed); }
  int command_fd() const { return commands_->fd(); }

  void serve_commands(const std::function<nlohmann::json(const nlohmann::json&)>& serve) {
    auto cmds = commands_->take();
    if (cmds.empty()) return;
    for (auto& c : cmds) post_result(c.id, serve(c.request));
  }

  proto::ManagerLinkStatus status() const {
    MutexLock lock(mu_);
    return status_;
  }

 private:
  class Connection;

  void log(const std::string& line) {
    if (o_.log) o_.log(line);
  }

  void set_state(proto::LinkState s, const std::string& url = {}) {
    MutexLock lock(mu_);
    if (status_.state != s && o_.log)
      o_.log(fmt::format("manager link: {}", proto::link_state_name(s)));
    status_.state = s;
    if (!url.empty()) status_.url = url;
  }
  void set_error(const std::string& e) {
    bool changed;
    {
      MutexLock lock(mu_);
      changed = status_.last_error != e;
      status_.last_error = e;
    }
    if (changed && !e.empty()) log("manager link: " + e);
  }
  void update_counts() {
    MutexLock lock(mu_);
    status_.events_sent = outflow_.events_sent();
    status_.events_acked = outflow_.events_acked();
    status_.cursor = outflow_.cursor();
  }

  void post_result(const std::string& id, nlohmann::json answer) {
    {
      MutexLock lock(mu_);
      if (results_.size() >= kMaxPendingResults) results_.pop_front();
      results_.push_back(ch::encode(ch::CommandResult{id, std::move(answer)}));
    }
    notify();
  }
  std::optional<std::string> take_result() {
    MutexLock lock(mu_);
    if (results_.empty()) return std::nullopt;
    auto r = std::move(results_.front());
    results_.pop_front();
    return r;
  }

  // One attempt: enroll when there is no credential, else connect.
  void attempt();

  void enroll() {
    set_state(proto::LinkState::kEnrolling);
    if (o_.token_file.empty())
      return retry("not enrolled (no " + credentials_path(o_.state_dir) +
                   ") and no [manager] token_file to enroll with");
    std::string warning;
    auto token = read_token_file(o_.token_file, warning);
    if (!token) return retry(token.error().message());
    if (!warning.empty() && !warned_token_) {
      warned_token_ = true;
      log(warning);
    }
    const std::string url = o_.url.empty() ? token->url : o_.url;
    auto ep = parse_url(url);
    if (!ep) return retry(ep.error().message());
    {
      MutexLock lock(mu_);
      status_.url = url;
    }
    const ch::EnrollRequest body{token->secret,
                                 {o_.hostname, machine_id()},
                                 {o_.agent_id, o_.agent_name, o_.agent_version},
                                 root_infos(o_.roots),
                                 o_.baseline_root_hash};
    enroller_ = std::make_shared<Enroller>(
        ioc_, *tls_, std::move(*ep), url, std::move(*token), ch::encode(body), o_.connect_timeout_s,
        [this](Result<Credentials> r) {
          enroller_.reset();
          if (!r) return retry(r.error().message());
          if (auto st = save_credentials(env_, credentials_path(o_.state_dir), *r); !st)
            return retry(st.error().message());
          log(fmt::format("manager link: enrolled with {} as agent {}", r->url, r->agent_key));
          set_error("");
          attempt();
        });
    enroller_->run();
  }

  // The connection ended (or never was): try again after the back-off.
  void retry(const std::string& error) {
    if (!error.empty()) set_error(error);
    if (stopping_) return maybe_finish();
    backoff_ms_ = backoff_ms_ ? std::min(backoff_ms_ * 2, o_.max_backoff_ms) : o_.first_backoff_ms;
    // Jitter: a fleet that lost its manager together must not come back in lock-step.
    std::uniform_int_distribution<int64_t> jitter(backoff_ms_ * 3 / 4, backoff_ms_ * 5 / 4);
    backoff_timer_.expires_after(ms(std::min(jitter(rng_), o_.max_backoff_ms)));
    backoff_timer_.async_wait([this](ErrorCode) { attempt(); });
  }

  void connection_ended(bool welcomed, bool duplicate, const std::string& error) {
    conn_.reset();
    update_counts();
    if (auto st = outflow_.save(/*force=*/true); !st) log(st.error().message());
    if (welcomed) backoff_ms_ = 0;
    if (stopping_) return maybe_finish();
    if (duplicate) {
      // Another agent presents this identity (a clone of this disk): this one becomes an
      // agent of its own, with the token, rather than fight over the identity.
      log("manager link: the manager says another agent uses this identity: enrolling "
          "again");
      if (auto st = fs::remove_file(credentials_path(o_.state_dir)); !st)
        return retry(st.error().message());
      set_error(error);
      return attempt();
    }
    set_state(proto::LinkState::kConnecting);
    retry(error);
  }

  // After stop(): once the connection and the enrollment are over, nothing keeps run().
  void maybe_finish() {
    if (!stopping_ || conn_ || enroller_) return;
    backoff_timer_.cancel();
    if (deadline_) deadline_->cancel();
  }

  Env& env_;
  LinkOptions o_;
  Outflow outflow_;  // the link thread's, once started
  std::unique_ptr<CommandQueue> commands_;
  std::unique_ptr<ssl::context> tls_;
  asio::io_context ioc_;
  asio::steady_timer backoff_timer_;
  std::shared_ptr<asio::steady_timer> deadline_;
  std::thread thread_;
  std::atomic<bool> healthy_{true};
  // The link thread's:
  bool stopping_ = false;
  bool warned_token_ = false;
  int64_t backoff_ms_ = 0;
  std::mt19937_64 rng_;
  std::shared_ptr<Enroller> enroller_;
  std::shared_ptr<Connection> conn_;

  mutable Mutex mu_;
  proto::ManagerLinkStatus status_ MAMORI_GUARDED_BY(mu_);
  std::deque<std::string> results_ MAMORI_GUARDED_BY(mu_);  // answers to send, encoded
};

// One WebSocket connection: handshake, hello/welcome, then a reader (acks, commands,
// errors) and a writer (results, events, heartbeats, bye) that never overlap their own
// kind. Everything runs on the link thread.
class Link::Impl::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Impl& link, Endpoint ep, Credentials c)
      : link_(link),
        resolver_(link.ioc_),
        ws_(link.ioc_, *link.tls_),
        heartbeat_(link.ioc_),
        ep_(std::move(ep)),
        c_(std::move(c)) {}

  void run() {
    auto self = shared_from_this();
    connect_tls(resolver_, ws_.next_layer(), ep_, c_.fp,
                std::chrono::seconds(link_.o_.connect_timeout_s), [self](Status st) {
                  if (!st) return self->end(st.error().message());
                  self->handshake();
                });
  }

  // The orderly stop: bye, then close; run() ends the connection if that takes too long.
  void stop() {
    stopping_ = true;
    if (!welcomed_) return end("");
    pump();
  }

  // Writes what is due, one message at a time.
  void pump() {
    if (!welcomed_ || writing_ || ended_ || closing_) return;
    std::string msg;
    if (auto r = link_.take_result()) {
      msg = std::move(*r);
    } else if (stopping_) {
      closing_ = true;
      msg = ch::encode(ch::Bye{"stopping"});
    } else if (auto b = link_.outflow_.next_batch(); !b) {
      return end(b.error().message());
    } else if (*b) {
      msg = events_frame(**b, std::exchange(resent_next_, false));
      link_.update_counts();
    } else if (heartbeat_due_) {
      heartbeat_due_ = false;
      msg = ch::encode(ch::Heartbeat{link_.env_.clock().now_ns(),
                                     link_.healthy_.load(std::memory_order_relaxed)});
    } else {
      if (auto st = link_.outflow_.save(false); !st) link_.log(st.error().message());
      return;
    }
    write(std::move(msg));
  }

 private:
  void handshake() {
    ws_.set_option(websocket::stream_base::decorator(
        [auth = "Bearer " + c_.agent_key + ":" + c_.credential,
         ua = "mamori-agent/" + link_.o_.agent_version](websocket::request_type& req) {
          req.set(http::field::authorization, auth);
          req.set(http::field::user_agent, ua);
        }));
    ws_.read_message_max(ch::kMaxMessageBytes);
    auto self = shared_from_this();
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(link_.o_.connect_timeout_s));
    ws_.async_handshake(res_, host_header(ep_), "/api/v1/channel", [self](ErrorCode ec) {
      if (ec) {
        if (self->res_.result_int() == 401)
          return self->end(
              "the manager refused this agent's credential (HTTP 401): revoked? "
              "delete " +
              credentials_path(self->link_.o_.state_dir) + " to enroll again");
        if (self->res_.result_int() != 0 && self->res_.result_int() != 101)
          return self->end(refusal(self->res_.result_int(), self->res_.body()));
        return self->end(
            fmt::format("websocket handshake with {}: {}", self->c_.url, ec.message()));
      }
      self->ws_.text(true);
      self->hello();
    });
  }

  void hello() {
    const auto& o = link_.o_;
    const ch::Hello h{{o.agent_id, o.agent_name, o.agent_version},
                      {o.hostname, ""},
                      root_infos(o.roots),
                      o.baseline_root_hash,
                      link_.outflow_.cursor()};
    auto self = shared_from_this();
    out_ = ch::encode(h);
    ws_.async_write(asio::buffer(out_), [self](ErrorCode ec, size_t) {
      if (ec) return self->end("hello: " + ec.message());
      self->ws_.async_read(self->in_, [self](ErrorCode ec2, size_t) { self->on_welcome(ec2); });
    });
  }

  void on_welcome(ErrorCode ec) {
    if (ec) return end("waiting for welcome: " + ec.message());
    auto m = ch::decode_manager_message(beast::buffers_to_string(in_.data()));
    in_.consume(in_.size());
    if (m)
      if (const auto* e = std::get_if<ch::Error>(&*m)) return on_error(*e);
    const auto* w = m ? std::get_if<ch::Welcome>(&*m) : nullptr;
    if (!w) return end("the manager's first message is not a welcome");
    const int64_t hb = std::clamp<int64_t>(w->heartbeat_s, 1, 3600);
    const int64_t lost = std::clamp<int64_t>(w->lost_after_s, hb + 1, 86400);
    heartbeat_ms_ = hb * 1000;
    // From here the websocket's own timeouts: a manager silent (not even a pong to our
    // pings) for kManagerSilenceFactor * lost_after_s is gone.
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(link_.o_.connect_timeout_s);
    t.idle_timeout = std::chrono::seconds(ch::kManagerSilenceFactor * lost);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    welcomed_ = true;
    link_.backoff_ms_ = 0;
    link_.set_state(proto::LinkState::kConnected, c_.url);
    link_.set_error("");
    read();
    arm_heartbeat();
    pump();
  }

  void arm_heartbeat() {
    auto self = shared_from_this();
    heartbeat_.expires_after(ms(heartbeat_ms_));
    heartbeat_.async_wait([self](ErrorCode ec) {
      if (ec || self->ended_) return;
      self->heartbeat_due_ = true;
      self->pump();
      self->arm_heartbeat();
    });
  }

  void read() {
    auto self = shared_from_this();
    ws_.async_read(in_, [self](ErrorCode ec, size_t) {
      if (ec) {
        if (ec == websocket::error::closed)
          return self->end(self->closing_ ? "" : "the manager closed the connection");
        return self->end(self->closing_ ? "" : "reading from the manager: " + ec.message());
      }
      const std::string text = beast::buffers_to_string(self->in_.data());
      self->in_.consume(self->in_.size());
      self->on_message(text);
      if (!self->ended_) self->read();
    });
  }

  void on_message(const std::string& text) {
    // A type this agent does not know (a newer manager's) is ignored, as the protocol
    // says; a known one that does not decode is a broken manager.
    const auto j = json_depth_within(text) ? nlohmann::json::parse(text, nullptr, false)
                                           : nlohmann::json(nlohmann::json::value_t::discarded);
    if (j.is_object() && j.contains("type") && j["type"].is_string()) {
      const auto& type = j["type"].get_ref<const std::string&>();
      if (type != "ack" && type != "command" && type != "error" && type != "welcome" &&
          type != "resend")
        return;
    }
    auto m = ch::decode_manager_json(j);
    if (!m) return end("the manager sent a bad message: " + m.error().message);
    std::visit(
        [&](auto& msg) {
          using T = std::decay_t<decltype(msg)>;
          if constexpr (std::is_same_v<T, ch::Ack>) {
            if (!link_.outflow_.ack(msg.through_sequence))
              return end("the manager acknowledged events it was never sent: closing");
            link_.update_counts();
            pump();
          } else if constexpr (std::is_same_v<T, ch::Command>) {
            on_command(msg);
          } else if constexpr (std::is_same_v<T, ch::Error>) {
            on_error(msg);
          } else if constexpr (std::is_same_v<T, ch::Resend>) {
            // The manager dropped what it got since its last ack (which came before this).
            link_.outflow_.rewind();
            resent_next_ = true;
            link_.update_counts();
            pump();
          }
        },
        *m);
  }

  void on_command(ch::Command& c) {
    {
      MutexLock lock(link_.mu_);
      ++link_.status_.commands;
    }
    if (c.command_id.empty() || c.command_id.size() > kMaxCommandId) return;  // no one to answer
    if (!c.request.is_object()) {
      link_.post_result(
          c.command_id,
          proto::to_json(proto::Answer{proto::ErrorAnswer{
              proto::ErrorCode::kBadRequest, "the command has no request object", {}, {}}}));
      return;
    }
    const std::string id = c.command_id;
    if (!link_.commands_->push({id, std::move(c.request)}))
      link_.post_result(id, proto::to_json(proto::Answer{proto::ErrorAnswer{
                                proto::ErrorCode::kFailed,
                                "the agent has too many commands waiting: try again",
                                {},
                                {}}}));
  }

  void on_error(const ch::Error& e) {
    duplicate_ = e.code == ch::kDuplicateIdentity;
    end(fmt::format("the manager refused: {}: {}", e.code, e.message));
  }

  void write(std::string msg) {
    writing_ = true;
    out_ = std::move(msg);
    auto self = shared_from_this();
    ws_.async_write(asio::buffer(out_), [self](ErrorCode ec, size_t) {
      self->writing_ = false;
      if (ec) return self->end(self->closing_ ? "" : "writing to the manager: " + ec.message());
      if (self->closing_) {
        self->ws_.async_close(websocket::close_code::normal, [self](ErrorCode) { self->end(""); });
        return;
      }
      self->pump();
    });
  }

  void end(const std::string& error) {
    if (ended_) return;
    ended_ = true;
    heartbeat_.cancel();
    ErrorCode ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
    // After the handlers that hold this connection have seen ended_.
    asio::post(link_.ioc_, [&link = link_, welcomed = welcomed_, duplicate = duplicate_, error] {
      link.connection_ended(welcomed, duplicate, error);
    });
  }

  Impl& link_;
  tcp::resolver resolver_;
  WsStream ws_;
  asio::steady_timer heartbeat_;
  Endpoint ep_;
  Credentials c_;
  websocket::response_type res_;
  beast::flat_buffer in_;
  std::string out_;
  int64_t heartbeat_ms_ = 2000;
  bool welcomed_ = false, writing_ = false, heartbeat_due_ = false;
  bool stopping_ = false, closing_ = false, ended_ = false, duplicate_ = false;
  bool resent_next_ = false;  // the next events batch answers a resend
};

void Link::Impl::stop() {
  if (!thread_.joinable()) return;
  asio::post(ioc_, [this] {
    stopping_ = true;
    backoff_timer_.cancel();
    if (enroller_) enroller_->abort();
    if (conn_) conn_->stop();
    // Past the grace, whatever is still open is cut.
    auto deadline = std::make_shared<asio::steady_timer>(ioc_, ms(kStopGraceMs));
    deadline->async_wait([this, deadline](ErrorCode ec) {
      if (!ec) ioc_.stop();
    });
    deadline_ = deadline;
    maybe_finish();
  });
  thread_.join();
}

void Link::Impl::notify() {
  asio::post(ioc_, [this] {
    if (conn_) conn_->pump();
  });
}
void Link::Impl::attempt() {
  if (stopping_) return maybe_finish();
  const std::string cpath = credentials_path(o_.state_dir);
  auto creds = load_credentials(cpath);
  if (!creds) {
    // A damaged file is worth nothing: enrolling again (with the token) replaces it.
    set_error(creds.error().message() + ": enrolling again");
    creds = std::optional<Credentials>{};
  }
  if (!*creds) return enroll();
  Credentials c = std::move(**creds);
  if (!o_.url.empty()) c.url = o_.url;  // the config wins: the manager may have moved
  {
    MutexLock lock(mu_);
    status_.agent_key = c.agent_key;
  }
  auto ep = parse_url(c.url);
  if (!ep) return retry(ep.error().message());
  set_state(proto::LinkState::kConnecting, c.url);
  outflow_.rewind();
  conn_ = std::make_shared<Connection>(*this, std::move(*ep), std::move(c));
  conn_->run();
}

Result<std::unique_ptr<Link>> Link::create(Env& env, LinkOptions options) {
  if (!options.url.empty()) MAMORI_TRY(parse_url(options.url));
  auto commands = MAMORI_TRY(CommandQueue::create());
  auto tls = MAMORI_TRY(make_tls_context());
  auto impl = std::make_unique<Impl>(env, std::move(options), std::move(commands), std::move(tls));
  MAMORI_TRY(impl->open());
  return std::unique_ptr<Link>(new Link(std::move(impl)));
}

Link::Link(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Link::~Link() { stop(); }
void Link::start() { impl_->start(); }
void Link::stop() { impl_->stop(); }
void Link::notify() { impl_->notify(); }
void Link::set_healthy(bool healthy) { impl_->set_healthy(healthy); }
int Link::command_fd() const { return impl_->command_fd(); }
void Link::serve_commands(const std::function<nlohmann::json(const nlohmann::json&)>& serve) {
  impl_->serve_commands(serve);
}
proto::ManagerLinkStatus Link::status() const { return impl_->status(); }

}  // namespace mamori::link
