#pragma once
// The agent's control socket: a unix stream socket (default /run/mamori/agent.sock,
// mode 0600 in a 0700 directory) that only root may use, checked again per connection
// with SO_PEERCRED. One request per connection: a JSON object on one line, answered by
// one JSON object on one line:
//   {"cmd":"status"}                                   roots, modes, counters
//   {"cmd":"mode","root":"/var/www/html","mode":"alert"}   ("root":"*" for every root)
//   {"cmd":"pause","roots":["/var/www/html"],"pid":N} a deploy starts: process N's tree
//                                                      may write; others' changes are
//                                                      tampers ("attribution" in the
//                                                      answer: "pid" or "none")
//   {"cmd":"deploy-paths"}                             what the deploy and others wrote
//   {"cmd":"resume","roots":[...]}                      it ended: verify, then guard
//   {"cmd":"verify"}                                   verify every root now
// Answers carry "ok": true, or "ok": false and "error": text.
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

// Parses one request line: a JSON object with a "cmd" string, at most 64 KiB.
Result<nlohmann::json> parse_request(std::string_view line);

// The client side, for the CLI: sends `request`, returns the answer. ENOENT/ECONNREFUSED
// when no agent is running.
Result<nlohmann::json> call(const std::string& path, const nlohmann::json& request,
                            int timeout_ms = 30000);

}  // namespace mamori::control
