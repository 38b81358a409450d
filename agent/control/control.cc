#include "agent/control/control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/base/json_depth.h"
#include "core/fs/admin_files.h"
#include "core/proto/control.h"

namespace mamori::control {
namespace {

constexpr size_t kMaxRequest = 64 * 1024;
constexpr size_t kMaxAnswer = 64 * 1024 * 1024;
constexpr int kClientTimeoutMs = 2000;

Result<sockaddr_un> address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return fail("control socket", path, ENAMETOOLONG, "the path is too long for a unix socket");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Reads until '\n', EOF, `limit` bytes or the deadline.
Result<std::string> read_line(int fd, size_t limit, int timeout_ms) {
  std::string out;
  char buf[4096];
  while (out.find('\n') == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r == 0) return fail("control socket", "", ETIMEDOUT);
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail_errno("poll", "control socket");
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return fail_errno("recv", "control socket");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) return fail("control socket", "", EMSGSIZE);
  }
  if (auto nl = out.find('\n'); nl != std::string::npos) out.resize(nl);
  return out;
}

Status send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("send", "control socket");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

}  // namespace

Result<Server> Server::listen(const std::string& path) {
  const auto addr = MAMORI_TRY(address(path));  // before anything is created for it
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0)
    MAMORI_TRY(fs::make_private_dirs(path.substr(0, slash)));
  // A socket file left by a killed agent refuses connections: replace it. One that
  // accepts belongs to a running agent, even one still starting (its requests wait in
  // the backlog, so the probe times out): refuse to start a second.
  if (auto probe = call(path, {{"v", proto::kVersion}, {"cmd", "ping"}}, 1000);
      probe || (probe.error().errnum != ECONNREFUSED && probe.error().errnum != ENOENT)) {
    return fail("control socket", path, EADDRINUSE, "another mamori agent is running");
  }
  ::unlinkat(AT_FDCWD, path.c_str(), 0);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail_errno("socket", path);
  UniqueFd sock(fd);
  const mode_t old = ::umask(0177);
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (bound != 0) return fail_errno("bind", path);
  if (::listen(fd, 16) != 0) return fail_errno("listen", path);
  return Server(path, std::move(sock));
}

Server::~Server() {
  if (fd_.valid()) ::unlinkat(AT_FDCWD, path_.c_str(), 0);
}

void Server::serve_one(const Handler& handler) {
  const int raw = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (raw < 0) return;
  UniqueFd client(raw);
  ucred cred{};
  socklen_t len = sizeof cred;
  nlohmann::json answer;
  // Until the request is read its version is unknown: such errors are answered in
  // version 1's form, which every client parses (docs/formats/control.md).
  auto refuse = [](proto::ErrorCode code, std::string message) {
    return proto::to_json(proto::Answer{proto::ErrorAnswer{code, std::move(message), {}, {}}},
                          proto::kOldestVersion);
  };
  if (::getsockopt(raw, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
    answer = refuse(proto::ErrorCode::kForbidden, "only root may control the agent");
  } else if (auto line = read_line(raw, kMaxRequest, kClientTimeoutMs); !line) {
    answer = refuse(proto::ErrorCode::kBadRequest, line.error().message());
  } else if (auto request = parse_request(*line); !request) {
    answer = refuse(proto::ErrorCode::kBadRequest, request.error().message());
  } else {
    answer = handler(*request);
  }
  // A client gone before its answer has nothing left to be told.
  (void)send_all(raw, answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

Result<nlohmann::json> parse_request(std::string_view line) {
  if (line.size() > kMaxRequest) return fail("control request", "", EMSGSIZE);
  if (!json_depth_within(line))
    return fail_msg("control request", "",
                    "a request nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  auto request = nlohmann::json::parse(line, nullptr, false);
  if (request.is_discarded() || !request.is_object() || !request.contains("cmd") ||
      !request["cmd"].is_string())
    return fail_msg("control request", "", "a request is one JSON object with a \"cmd\" string");
  return request;
}

Result<nlohmann::json> call(const std::string& path, const nlohmann::json& request,
                            int timeout_ms) {
  const auto addr = MAMORI_TRY(address(path));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno("socket", path);
  UniqueFd sock(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    return fail_errno("connect", path);
  MAMORI_TRY(send_all(fd, request.dump() + "\n"));
  auto line = MAMORI_TRY(read_line(fd, kMaxAnswer, timeout_ms));
  auto answer = nlohmann::json::parse(line, nullptr, false);
  if (answer.is_discarded() || !answer.is_object())
    return fail("control socket", path, EPROTO, "the agent's answer is not a JSON object");
  return answer;
}

}  // namespace mamori::control
