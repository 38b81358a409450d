#pragma once
// GET /api/v1/events/live, a WebSocket: the stored events as they arrive, for the
// console and for scripts (docs/manager.md "Live events").
//
// The upgrade is authenticated as the API is (a session cookie, which a browser sends
// with it, or a bearer token; role viewer). A browser's upgrade must come from the
// manager's own origin (its Origin header equal to public_url's): otherwise any page the
// user visits could open the stream with the user's cookie (cross-site WebSocket
// hijacking). The query string takes GET /api/v1/events' filters and `after` (a row id:
// resume where a page or an earlier stream ended; absent: from now).
//
// Each message is {"events": [{"row", "agent_key", "event"}...], "next": ROW}, the
// shape of GET /api/v1/events, in row order, each event once. The stream reads the store
// every kLivePoll while its client keeps up; a client that reads nothing holds at most
// kMaxLiveQueued messages, then the stream waits for it, its cursor kept: it lags, it
// never skips. What the client sends is read and dropped (at most kMaxLiveClientBytes a
// message).
//
// Threads: the server's io thread (hub.h).

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

#include "manager/db/store.h"
#include "manager/server/agent_channel.h"

namespace mamori::manager {

class Hub;

inline constexpr auto kLivePoll = std::chrono::milliseconds(250);
inline constexpr size_t kMaxLiveQueued = 16;
inline constexpr int64_t kLivePage = 500;
inline constexpr size_t kMaxLiveClientBytes = 4096;

class EventStream : public std::enable_shared_from_this<EventStream> {
 public:
  // `query`: the filters; its after_row is where the stream starts.
  EventStream(Hub& hub, WsStream ws, EventQuery query);
  ~EventStream();

  void start(boost::beast::http::request<boost::beast::http::string_body> req);

 private:
  void read();
  void poll();
  void arm();
  void send(std::string text);
  void write_next();

  Hub& hub_;
  WsStream ws_;
  EventQuery query_;
  boost::asio::steady_timer timer_;
  boost::beast::flat_buffer in_;
  std::deque<std::string> out_;
  bool ended_ = false;
};

}  // namespace mamori::manager
