#include "manager/server/http_connection.h"

#include <fmt/format.h>
#include <boost/beast/websocket.hpp>

#include "core/hash/sha256.h"
#include "core/proto/actions.h"
#include "core/proto/channel.h"
#include "manager/server/agent_channel.h"
#include "manager/server/api.h"
#include "manager/server/event_stream.h"

namespace mamori::manager {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ch = proto::channel;
using beast::error_code;
using nlohmann::json;

// Boost 1.74's Beast takes its own string_view.
beast::string_view bsv(std::string_view s) { return {s.data(), s.size()}; }

json error_body(std::string_view code, const std::string& message) {
  return ch::to_json(ch::EnrollError{std::string(code), message});
}

}  // namespace

HttpConnection::HttpConnection(Hub& hub, asio::ip::tcp::socket socket)
    : hub_(hub), stream_(std::move(socket), hub.ssl().native_handle()) {
  error_code ec;
  const auto ep = stream_.socket().remote_endpoint(ec);
  if (!ec) address_ = ep.address().to_string();
}

HttpConnection::~HttpConnection() {
  if (!handed_over_) hub_.connection_closed();
}

void HttpConnection::start() {
  stream_.expires_after(kHandshakeTimeout);
  stream_.async_handshake([self = shared_from_this()](const error_code& ec) {
    if (!ec) self->read_request();
  });
}

void HttpConnection::read_request() {
  // The first request shares the handshake's deadline; the next ones have kKeepAliveIdle.
  if (served_ > 0) stream_.expires_after(kKeepAliveIdle);
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  parser_->body_limit(ch::kMaxMessageBytes);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](const error_code& ec, size_t) {
                     if (!ec) self->route();
                   });
}

void HttpConnection::route() {
  auto& req = parser_->get();
  keep_alive_ = req.keep_alive();
  const std::string_view target(req.target().data(), req.target().size());
  if (target == "/api/v1/enroll") {
    if (req.method() != http::verb::post) return respond(http::status::method_not_allowed, {});
    return enroll(req.body());
  }
  if (target == "/api/v1/channel") {
    if (req.method() != http::verb::get || !websocket::is_upgrade(req))
      return respond(http::status::upgrade_required,
                     error_body(ch::kBadMessage, "a WebSocket upgrade is expected"));
    return channel(parser_->release());
  }
  if (target.substr(0, target.find('?')) == "/api/v1/events/live")
    return live_events(parser_->release());
  if (target.starts_with("/api/v1/")) {
    auto r = hub_.api().handle(req, address_, [self = shared_from_this()](ApiResponse later) {
      self->respond(later.status, later.body, later.headers);
    });
    if (!r.later) respond(r.status, r.body, r.headers);
    return;
  }
  const ConsoleFiles* console = hub_.console();
  if (console && !target.starts_with("/api/") &&
      (req.method() == http::verb::get || req.method() == http::verb::head))
    if (const ConsoleFile* f = console->find(target.substr(0, target.find('?'))))
      return serve(*f, req);
  respond(http::status::not_found, error_body(ch::kBadMessage, "no such endpoint"));
}

void HttpConnection::enroll(const std::string& body) {
  auto r = ch::decode_enroll_request(body);
  if (!r) return respond(http::status::bad_request, error_body(r.error().code, r.error().message));
  const int64_t now = hub_.now_ns();
  auto secret = random_bytes(32);
  if (!secret)
    return respond(http::status::internal_server_error, error_body(ch::kInternal, "no randomness"));
  const std::string credential = ch::base64url(*secret);
  NewAgent a;
  a.agent_key = new_uuid();
  a.credential_hash = sha256_hex(credential);
  a.info.hostname = r->host.hostname;
  a.info.machine_id = r->host.machine_id;
  a.info.agent_id = r->agent.id;
  a.info.name = r->agent.name;
  a.info.version = r->agent.version;
  a.info.roots_json = ch::to_json(*r)["roots"].dump();
  a.info.baseline_root_hash = r->baseline_root_hash;
  a.enrolled_at_ns = now;
  auto verdict = hub_.store().enroll(sha256_hex(r->token_secret), a, now);
  if (!verdict) {
    log_line("enroll: " + verdict.error().message());
    return respond(http::status::internal_server_error, error_body(ch::kInternal, "store failed"));
  }
  if (!verdict->accepted()) {
    const std::string why(to_string(verdict->refusal));
    log_line(fmt::format("enroll refused from {}: token {}", address_, why));
    return respond(http::status::unauthorized, error_body(ch::kBadToken, "token " + why));
  }
  a.group = verdict->group;
  a.token_id = verdict->token_id;
  if (!a.info.baseline_root_hash.empty())
    if (auto s = hub_.store().record_baseline({a.agent_key, a.info.baseline_root_hash, now, true});
        !s)
      log_line(s.error().message());
  AgentRow row;
  row.agent_key = a.agent_key;
  row.group = a.group;
  row.info = a.info;
  hub_.report(
      proto::action::kAgentEnrolled, event::Severity::kNotice,
      fmt::format("agent {} ({}) enrolled in group \"{}\"", a.info.name, a.info.hostname, a.group),
      &row, address_);
  respond(http::status::ok,
          ch::to_json(ch::EnrollAnswer{a.agent_key, credential, hub_.m().heartbeat_s,
                                       hub_.m().lost_after_s}));
}

void HttpConnection::channel(Request req) {
  keep_alive_ = false;  // an upgrade refused ends the connection
  auto who = authenticate(req);
  if (!who)
    return respond(http::status::unauthorized,
                   error_body(ch::kUnauthorized,
                              "Authorization: Bearer agent_key:credential is missing or wrong"));
  stream_.expires_never();
  handed_over_ = true;
  auto c =
      std::make_shared<AgentChannel>(hub_, WsStream(std::move(stream_)), std::move(*who), address_);
  c->start(std::move(req));
}

void HttpConnection::live_events(Request req) {
  keep_alive_ = false;
  auto refuse = [&](http::status st, std::string_view code, std::string message) {
    respond(st, json{{"error", {{"code", code}, {"message", std::move(message)}}}});
  };
  bool csrf_ok = false;
  auto caller = hub_.api().authenticate(req, csrf_ok);
  if (!caller)
    return refuse(http::status::unauthorized, "unauthorized",
                  "log in (POST /api/v1/login) or send Authorization: Bearer TOKEN");
  // A browser names the page that opens a WebSocket, and sends the user's cookie with it:
  // only the manager's own pages may.
  const std::string public_url = hub_.public_url();
  const std::string own_origin =
      public_url.substr(0, public_url.find('/', public_url.find("//") + 2));
  if (auto origin = req.find(http::field::origin);
      origin != req.end() &&
      std::string_view(origin->value().data(), origin->value().size()) != own_origin)
    return refuse(http::status::forbidden, "origin", "a WebSocket from another site's page");
  if (!websocket::is_upgrade(req))
    return refuse(http::status::upgrade_required, "upgrade", "a WebSocket upgrade is expected");
  const std::string_view target(req.target().data(), req.target().size());
  const size_t qm = target.find('?');
  const QueryParams params =
      query_params(qm == std::string_view::npos ? std::string_view() : target.substr(qm + 1));
  EventQuery q = event_query(params);
  if (!params.contains("after")) {
    auto last = hub_.store().last_event_row();
    if (!last) {
      log_line("live events: " + last.error().message());
      return refuse(http::status::internal_server_error, "internal", "the store failed");
    }
    q.after_row = *last;
  }
  stream_.expires_never();
  handed_over_ = true;
  auto s = std::make_shared<EventStream>(hub_, WsStream(std::move(stream_)), std::move(q));
  s->start(std::move(req));
}

std::optional<AgentRow> HttpConnection::authenticate(const Request& req) {
  const auto it = req.find(http::field::authorization);
  if (it == req.end()) return std::nullopt;
  std::string_view v(it->value().data(), it->value().size());
  if (!v.starts_with("Bearer ")) return std::nullopt;
  v.remove_prefix(7);
  const size_t colon = v.find(':');
  if (colon == std::string_view::npos || colon > 64) return std::nullopt;
  const std::string presented = sha256_hex(v.substr(colon + 1));
  auto a = hub_.store().find_agent(v.substr(0, colon));
  if (!a) {
    log_line("channel: " + a.error().message());
    return std::nullopt;
  }
  // Compared in constant time; an unknown key costs the same hash as a known one.
  if (!*a || !hash::equal_constant_time(presented, (*a)->credential_hash) ||
      (*a)->status == AgentStatus::kRevoked)
    return std::nullopt;
  return std::move(**a);
}

template <class Body>
void HttpConnection::send(std::shared_ptr<http::response<Body>> res) {
  const bool keep = keep_alive_ && ++served_ < kMaxRequestsPerConnection;
  res->keep_alive(keep);
  http::async_write(stream_, *res,
                    [self = shared_from_this(), res, keep](const error_code& ec, size_t) {
                      if (ec) return;
                      if (keep) return self->read_request();
                      self->stream_.async_shutdown([self](const error_code&) {});
                    });
}

void HttpConnection::respond(http::status status, const json& body,
                             const std::vector<std::pair<std::string, std::string>>& headers) {
  auto res = std::make_shared<http::response<http::string_body>>(status, 11);
  for (const auto& [name, value] : headers) res->insert(name, value);
  res->set(http::field::cache_control, "no-store");
  res->set(http::field::content_type, "application/json");
  res->set(http::field::server, "mamori-manager");
  // replace: text from the store is checked UTF-8, but a throw here would end the manager.
  res->body() =
      body.is_null() ? std::string() : body.dump(-1, ' ', false, json::error_handler_t::replace);
  res->prepare_payload();
  send(std::move(res));
}

void HttpConnection::serve(const ConsoleFile& file, const Request& req) {
  const auto tag = req.find(http::field::if_none_match);
  const bool current = tag != req.end() && tag->value() == file.etag;
  auto res = std::make_shared<http::response<http::span_body<const char>>>(
      current ? http::status::not_modified : http::status::ok, 11);
  for (const auto& [name, value] : console_security_headers()) res->set(bsv(name), bsv(value));
  res->set(http::field::server, "mamori-manager");
  res->set(http::field::etag, file.etag);
  // index.html names the current assets: asked again each time (a 304 when unchanged).
  res->set(http::field::cache_control,
           file.immutable ? "public, max-age=31536000, immutable" : "no-cache");
  if (!current) {
    res->set(http::field::content_type, bsv(file.content_type));
    // The hub keeps the files for as long as any connection lives.
    if (req.method() == http::verb::get) res->body() = {file.body.data(), file.body.size()};
    res->content_length(file.body.size());
  }
  send(std::move(res));
}

}  // namespace mamori::manager
