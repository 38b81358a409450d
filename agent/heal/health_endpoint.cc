#include "agent/heal/health_endpoint.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <functional>
#include <vector>

#include <fmt/format.h>

namespace mamori::heal {
namespace {

constexpr std::string_view kListenSyntax =
    "expected HOST:PORT with an IPv4 address, [IPv6 address] or localhost, and a port 0-65535";

struct Client {
  UniqueFd fd;
  std::chrono::nanoseconds deadline{};  // SystemClock::monotonic()
  std::string request;
  std::string answer;  // non-empty once the request is complete
  size_t sent = 0;
};

bool request_complete(const std::string& r) {
  return r.size() >= HealthEndpoint::kMaxRequest || r.find("\r\n\r\n") != std::string::npos ||
         r.find("\n\n") != std::string::npos;
}

// Reads what the client sent, then answers as much as the socket takes. False once the
// connection is finished (answered, gone, or broken).
bool advance(Client& c, const std::function<std::string(bool head)>& respond) {
  while (c.answer.empty()) {
    char buf[HealthEndpoint::kMaxRequest];
    const ssize_t n = ::recv(c.fd.get(), buf, HealthEndpoint::kMaxRequest - c.request.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN;
    if (n == 0) return false;  // closed before asking: a TCP-only check, or gone
    c.request.append(buf, static_cast<size_t>(n));
    if (request_complete(c.request)) c.answer = respond(c.request.starts_with("HEAD "));
  }
  while (c.sent < c.answer.size()) {
    const ssize_t n = ::send(c.fd.get(), c.answer.data() + c.sent, c.answer.size() - c.sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN;
    c.sent += static_cast<size_t>(n);
  }
  ::shutdown(c.fd.get(), SHUT_WR);
  return false;
}

}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return fail_msg("health_listen", std::string(text), std::string(kListenSyntax));
  std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535)
    return fail_msg("health_listen", std::string(text), std::string(kListenSyntax));
  ListenAddress out;
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6->sin6_addr) == 1) {
      out.len = sizeof(sockaddr_in6);
      return out;
    }
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&out.addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
      out.len = sizeof(sockaddr_in);
      return out;
    }
  }
  return fail_msg("health_listen", std::string(text), std::string(kListenSyntax));
}

Result<std::unique_ptr<HealthEndpoint>> HealthEndpoint::start(std::string_view listen, bool healthy,
                                                              std::string reason) {
  const ListenAddress la = MAMORI_TRY(parse_listen_address(listen));
  const std::string where(listen);
  UniqueFd fd(::socket(la.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return fail_errno("socket", where);
  // An agent restarted while old connections linger in TIME_WAIT must get its port back.
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    return fail_errno("setsockopt SO_REUSEADDR", where);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&la.addr), la.len) != 0)
    return fail_errno("bind", where);
  if (::listen(fd.get(), 128) != 0) return fail_errno("listen", where);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0)
    return fail_errno("getsockname", where);
  const uint16_t port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return fail_errno("eventfd", where);
  const std::string address = fmt::format("{}:{}", listen.substr(0, listen.rfind(':')), port);
  return std::unique_ptr<HealthEndpoint>(new HealthEndpoint(std::move(fd), std::move(wake), port,
                                                            address, healthy, std::move(reason)));
}

HealthEndpoint::HealthEndpoint(UniqueFd listener, UniqueFd wake, uint16_t port, std::string address,
                               bool healthy, std::string reason)
    : listener_(std::move(listener)),
      wake_(std::move(wake)),
      port_(port),
      address_(std::move(address)),
      healthy_(healthy),
      reason_(std::move(reason)),
      thread_([this] { serve(); }) {}

HealthEndpoint::~HealthEndpoint() {
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  thread_.join();
}

void HealthEndpoint::set(bool healthy, std::string reason) {
  MutexLock lock(mu_);
  healthy_ = healthy;
  reason_ = std::move(reason);
}

std::string HealthEndpoint::response(bool head) const {
  bool ok = false;
  std::string body;
  {
    MutexLock lock(mu_);
    ok = healthy_;
    body = healthy_ ? "ok\n" : "unhealthy: " + reason_ + "\n";
  }
  return fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n"
      "Cache-Control: no-store\r\nConnection: close\r\n\r\n{}",
      ok ? "200 OK" : "503 Service Unavailable", body.size(), head ? "" : body);
}

void HealthEndpoint::serve() {
  std::deque<Client> clients;  // oldest first
  const auto respond = [this](bool head) { return response(head); };
  std::vector<pollfd> fds;
  while (true) {
    fds.assign({{wake_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}});
    auto next = std::chrono::nanoseconds::max();
    for (const auto& c : clients) {
      fds.push_back({c.fd.get(), static_cast<short>(c.answer.empty() ? POLLIN : POLLOUT), 0});
      next = std::min(next, c.deadline);
    }
    int timeout_ms = -1;
    if (!clients.empty())
      timeout_ms = static_cast<int>(std::max<int64_t>(
          0, std::chrono::ceil<std::chrono::milliseconds>(next - clock_.monotonic()).count()));
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) return;
    if (fds[0].revents) return;

    const auto now = clock_.monotonic();
    std::deque<Client> still;
    for (size_t i = 0; i < clients.size(); ++i) {
      Client& c = clients[i];
      const bool alive = fds[2 + i].revents ? advance(c, respond) : true;
      if (alive && now < c.deadline) still.push_back(std::move(c));
    }
    clients = std::move(still);

    if (fds[1].revents) {
      while (true) {
        UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!fd.valid()) {
          // Out of descriptors: give up the oldest connection rather than spin on a
          // listener that stays readable.
          if ((errno == EMFILE || errno == ENFILE) && !clients.empty()) {
            clients.pop_front();
            continue;
          }
          break;  // EAGAIN, or a connection that died in the backlog
        }
        if (clients.size() >= kMaxClients) clients.pop_front();
        clients.push_back({std::move(fd), now + kClientTimeout, {}, {}, 0});
      }
    }
  }
}

}  // namespace mamori::heal
