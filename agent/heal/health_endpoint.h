#pragma once
// The node's health check over HTTP, for a load balancer that probes a port: any method
// and path gets "200 ok" while the node is healthy and "503 unhealthy: REASON" otherwise
// (HEAD: the same status and headers, no body), with Connection: close.
//
// A tiny HTTP/1.x server on a thread of its own with one poll() loop: the listener and
// at most kMaxClients connections. A request is read up to its blank line or kMaxRequest
// bytes, whichever comes first, then answered and closed; a connection is closed after
// kClientTimeout whatever its state. Past kMaxClients the oldest connection is dropped for
// the new one, so clients that connect and say nothing cannot starve the load balancer.
//
// Threads: set() may be called from any thread; the destructor stops and joins the
// server thread (woken through an eventfd) and closes every connection.

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "core/base/env.h"
#include "core/base/mutex.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"

namespace mamori::heal {

// A parsed "HOST:PORT": an IPv4 literal, "[IPv6]" or "localhost" (127.0.0.1).
struct ListenAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
};
Result<ListenAddress> parse_listen_address(std::string_view text);

class HealthEndpoint {
 public:
  static constexpr size_t kMaxClients = 64;
  static constexpr size_t kMaxRequest = 4096;
  static constexpr std::chrono::seconds kClientTimeout{2};

  // Binds and listens on `listen` (port 0 picks a free one, see port()) and starts
  // answering with the given state. Fails with the address in the error when it is
  // malformed, in use (EADDRINUSE) or not on this host (EADDRNOTAVAIL).
  static Result<std::unique_ptr<HealthEndpoint>> start(std::string_view listen, bool healthy,
                                                       std::string reason);
  ~HealthEndpoint();
  HealthEndpoint(const HealthEndpoint&) = delete;
  HealthEndpoint& operator=(const HealthEndpoint&) = delete;

  // What the next answers say. `reason` is sent to whoever asks: keep paths out of it.
  void set(bool healthy, std::string reason) MAMORI_EXCLUDES(mu_);
  uint16_t port() const { return port_; }
  // "HOST:PORT" as configured, with the port actually bound.
  const std::string& address() const { return address_; }

 private:
  HealthEndpoint(UniqueFd listener, UniqueFd wake, uint16_t port, std::string address, bool healthy,
                 std::string reason);
  void serve();
  std::string response(bool head) const MAMORI_EXCLUDES(mu_);

  // Load balancers probe in real time: client deadlines are on the system's clock.
  const SystemClock clock_;
  UniqueFd listener_;
  UniqueFd wake_;  // eventfd: the destructor's "stop"
  const uint16_t port_;
  const std::string address_;
  mutable Mutex mu_;
  bool healthy_ MAMORI_GUARDED_BY(mu_);
  std::string reason_ MAMORI_GUARDED_BY(mu_);
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace mamori::heal
