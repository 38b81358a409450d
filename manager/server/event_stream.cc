#include "manager/server/event_stream.h"

#include <nlohmann/json.hpp>

#include "manager/server/api.h"

namespace mamori::manager {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using beast::error_code;
using nlohmann::json;

}  // namespace

EventStream::EventStream(Hub& hub, WsStream ws, EventQuery query)
    : hub_(hub), ws_(std::move(ws)), query_(std::move(query)), timer_(ws_.get_executor()) {}

EventStream::~EventStream() { hub_.connection_closed(); }

void EventStream::start(beast::http::request<beast::http::string_body> req) {
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.read_message_max(kMaxLiveClientBytes);
  ws_.async_accept(req, [self = shared_from_this()](const error_code& ec) {
    if (ec) return;
    self->read();
    self->poll();
  });
}

// Only to see the client go (or answer its close); what it says is not used.
void EventStream::read() {
  ws_.async_read(in_, [self = shared_from_this()](const error_code& ec, size_t) {
    if (ec) {
      self->ended_ = true;
      self->timer_.cancel();
      return;
    }
    self->in_.consume(self->in_.size());
    self->read();
  });
}

void EventStream::poll() {
  if (ended_) return;
  if (out_.size() >= kMaxLiveQueued) return arm();  // the client is behind: it waits
  EventQuery q = query_;
  q.limit = kLivePage;
  auto rows = hub_.store().query_events(q);
  if (!rows) {
    log_line("live events: " + rows.error().message());
    return arm();
  }
  if (rows->empty()) return arm();
  query_.after_row = rows->back().row;
  send(json{{"events", events_json(*rows)}, {"next", query_.after_row}}.dump(
      -1, ' ', false, json::error_handler_t::replace));
  // A full page: more is waiting, read it at the next turn of the loop.
  if (static_cast<int64_t>(rows->size()) == kLivePage)
    return asio::post(ws_.get_executor(), [self = shared_from_this()] { self->poll(); });
  arm();
}

void EventStream::arm() {
  timer_.expires_after(kLivePoll);
  timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (!ec) self->poll();
  });
}

void EventStream::send(std::string text) {
  out_.push_back(std::move(text));
  if (out_.size() == 1) write_next();
}

void EventStream::write_next() {
  ws_.text(true);
  ws_.async_write(asio::buffer(out_.front()),
                  [self = shared_from_this()](const error_code& ec, size_t) {
                    self->out_.pop_front();
                    if (ec) {
                      self->ended_ = true;
                      self->timer_.cancel();
                      return;
                    }
                    if (!self->out_.empty()) self->write_next();
                  });
}

}  // namespace mamori::manager
