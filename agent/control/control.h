#pragma once
// The agent's control socket: a unix stream socket (default /run/mamori/agent.sock,
// mode 0600 in a 0700 directory) that only root may use, checked again per connection
// with SO_PEERCRED. One request per connection: a JSON object on one line, answered by
// one JSON object on one line. The messages are core/proto/control.h's, described in
// docs/formats/control.md and docs/formats/protocol.schema.json; the commands are served
// by agent/control/handlers.h. This file is only the transport: the peer check, the size
// and time limits, and the framing.
//
// Threads: the agent's main thread polls fd() and calls serve_one().

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::control {

using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

class Server {
 public:
  // Binds `path`, replacing a stale socket left by a killed agent; fails with EADDRINUSE
  // when another agent answers there.
  static Result<Server> listen(const std::string& path);
  Server(Server&&) = default;
  ~Server();

  int fd() const { return fd_.get(); }
  // Accepts one pending connection, reads its request (bounded in size and time) and
  // answers it with `handler`. Errors concern that client only.
  void serve_one(const Handler& handler);

 private:
  Server(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

// Parses one request line: a JSON object with a "cmd" string, at most 64 KiB. What the
// command and its fields mean is proto::decode_request's business.
Result<nlohmann::json> parse_request(std::string_view line);

// The client side, for the CLI: sends `request`, returns the answer. ENOENT/ECONNREFUSED
// when no agent is running.
Result<nlohmann::json> call(const std::string& path, const nlohmann::json& request,
                            int timeout_ms = 30000);

}  // namespace mamori::control
