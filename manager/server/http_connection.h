#pragma once
// One accepted connection until it is closed or upgraded: the TLS handshake, then HTTP
// requests, each within kHandshakeTimeout and kMaxHeaderBytes (hub.h) and a body of at
// most proto::channel::kMaxMessageBytes. A client that asks for keep-alive (the console)
// may send up to kMaxRequestsPerConnection on one connection, each within
// kKeepAliveIdle of the last answer (a refused WebSocket upgrade closes it). Requests are routed to
//   POST /api/v1/enroll   enrollment with a token (docs/formats/manager-channel.md);
//   GET  /api/v1/channel  the agent's WebSocket, handed to an AgentChannel once the
//                         Authorization (Bearer agent_key:credential) is checked;
//   GET  /api/v1/events/live  the stored events as they come, a WebSocket
//                         (event_stream.h);
//   /api/v1/*             everything else: the REST API (api.h);
//   GET  anything else    the web console's files (console_files.h), never under /api/.
//
// Threads: the server's io thread (hub.h).

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "manager/db/store.h"
#include "manager/server/hub.h"
#include "manager/server/tls_stream.h"

namespace mamori::manager {

inline constexpr int kMaxRequestsPerConnection = 1000;
inline constexpr auto kKeepAliveIdle = std::chrono::seconds(30);

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(Hub& hub, boost::asio::ip::tcp::socket socket);
  ~HttpConnection();

  void start();

 private:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  void read_request();
  void route();
  void enroll(const std::string& body);
  void channel(Request req);
  // GET /api/v1/events/live, handed to an EventStream once authenticated.
  void live_events(Request req);
  // The agent the request's credential belongs to.
  std::optional<AgentRow> authenticate(const Request& req);
  void respond(boost::beast::http::status status, const nlohmann::json& body,
               const std::vector<std::pair<std::string, std::string>>& headers = {});
  // A console file, or 304 when the browser's copy (If-None-Match) is current.
  void serve(const ConsoleFile& file, const Request& req);
  // Writes `res` (keep-alive as asked, within kMaxRequestsPerConnection), then reads the
  // next request or closes.
  template <class Body>
  void send(std::shared_ptr<boost::beast::http::response<Body>> res);

  Hub& hub_;
  TlsStream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::string address_;
  bool handed_over_ = false;  // the AgentChannel counts the connection now
  bool keep_alive_ = false;   // the request being answered asked for it
  int served_ = 0;            // requests answered on this connection
};

}  // namespace mamori::manager
