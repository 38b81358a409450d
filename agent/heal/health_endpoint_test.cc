#include "agent/heal/health_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/unique_fd.h"

namespace mamori::heal {

// Connects to 127.0.0.1:port (or [::1]), optionally sends `request`, and returns the fd.
UniqueFd connect_for_test(uint16_t port, bool ipv6 = false) {
  UniqueFd fd(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  // Never hang a test run on a server that does not answer.
  const timeval limit{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  }
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len), 0) << std::strerror(errno);
  return fd;
}

// Sends `request` and reads the answer up to the server's close.
std::string http_for_test(uint16_t port, const std::string& request = "GET / HTTP/1.0\r\n\r\n",
                          bool ipv6 = false) {
  UniqueFd fd = connect_for_test(port, ipv6);
  EXPECT_EQ(::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[1024];
  ssize_t n;
  while ((n = ::recv(fd.get(), buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(n, 0) << "the server should close the connection";
  return out;
}

namespace {

std::string body_of(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

TEST(ParseListenAddress, AcceptsLiteralsAndLocalhost) {
  EXPECT_TRUE(parse_listen_address("127.0.0.1:8080"));
  EXPECT_TRUE(parse_listen_address("0.0.0.0:0"));
  EXPECT_TRUE(parse_listen_address("[::1]:65535"));
  EXPECT_TRUE(parse_listen_address("[::]:80"));
  auto local = parse_listen_address("localhost:9");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->addr.ss_family, AF_INET);
}

TEST(ParseListenAddress, RefusesTheRest) {
  for (const char* bad : {"", "8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:80x",
                          "example.com:80", "::1:80", "[::1:80", "1.2.3:80", "127.0.0.1:-1"}) {
    auto r = parse_listen_address(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message().find("HOST:PORT"), std::string::npos) << r.error().message();
  }
}

TEST(HealthEndpoint, AnswersByState) {
  auto ep = HealthEndpoint::start("127.0.0.1:0", true, "");
  ASSERT_TRUE(ep) << ep.error().message();
  const uint16_t port = (*ep)->port();
  ASSERT_NE(port, 0);
  EXPECT_EQ((*ep)->address(), "127.0.0.1:" + std::to_string(port));

  std::string r = http_for_test(port);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(r.find("Content-Length: 3\r\n"), std::string::npos);
  EXPECT_NE(r.find("Content-Type: text/plain"), std::string::npos);
  EXPECT_EQ(body_of(r), "ok\n");

  (*ep)->set(false, "tamper-storm");
  r = http_for_test(port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n")) << r;
  EXPECT_EQ(body_of(r), "unhealthy: tamper-storm\n");

  r = http_for_test(port, "HEAD / HTTP/1.0\n\n");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 503")) << r;
  EXPECT_NE(r.find("Content-Length: 24\r\n"), std::string::npos) << r;
  EXPECT_EQ(body_of(r), "");

  (*ep)->set(true, "");
  EXPECT_EQ(body_of(http_for_test(port, "OPTIONS * HTTP/1.1\r\n\r\n")), "ok\n");
}

TEST(HealthEndpoint, AnswersAnOversizedRequestAfterTheLimit) {
  auto ep = HealthEndpoint::start("127.0.0.1:0", true, "");
  ASSERT_TRUE(ep);
  // No blank line ever: the server stops reading at kMaxRequest and answers.
  const std::string r = http_for_test((*ep)->port(), std::string(HealthEndpoint::kMaxRequest, 'a'));
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200")) << r;
}

TEST(HealthEndpoint, ListensOnIpv6) {
  auto ep = HealthEndpoint::start("[::1]:0", false, "state-failed");

  ASSERT_TRUE(ep) << ep.error().message();
  EXPECT_EQ((*ep)->address(), "[::1]:" + std::to_string((*ep)->port()));
  EXPECT_EQ(body_of(http_for_test((*ep)->port(), "GET / HTTP/1.0\r\n\r\n", true)),
            "unhealthy: state-failed\n");
}

TEST(HealthEndpoint, PortInUseIsAClearError) {
  auto first = HealthEndpoint::start("127.0.0.1:0", true, "");
  ASSERT_TRUE(first);
  const std::string addr = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = HealthEndpoint::start(addr, true, "");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().errnum, EADDRINUSE);
  EXPECT_EQ(second.error().op, "bind");
  EXPECT_NE(second.error().message().find(addr), std::string::npos) << second.error().message();
}

TEST(HealthEndpoint, NotOnThisHostIsAClearError) {
  auto ep = HealthEndpoint::start("192.0.2.1:80", true, "");  // TEST-NET-1
  ASSERT_FALSE(ep);
  EXPECT_EQ(ep.error().errnum, EADDRNOTAVAIL);
}

TEST(HealthEndpoint, ASilentClientDoesNotBlockOthers) {
  auto ep = HealthEndpoint::start("127.0.0.1:0", true, "");
  ASSERT_TRUE(ep);
  UniqueFd silent = connect_for_test((*ep)->port());
  UniqueFd half = connect_for_test((*ep)->port());
  ASSERT_EQ(::send(half.get(), "GET / HT", 8, MSG_NOSIGNAL), 8);
  EXPECT_EQ(body_of(http_for_test((*ep)->port())), "ok\n");
  // The silent one is closed after kClientTimeout, unanswered.
  char c;
  EXPECT_EQ(::recv(silent.get(), &c, 1, 0), 0);
}

TEST(HealthEndpoint, MoreIdleClientsThanTheLimitDropTheOldest) {
  auto ep = HealthEndpoint::start("127.0.0.1:0", true, "");
  ASSERT_TRUE(ep);
  std::vector<UniqueFd> idle;
  for (size_t i = 0; i < HealthEndpoint::kMaxClients + 8; ++i)
    idle.push_back(connect_for_test((*ep)->port()));
  EXPECT_EQ(body_of(http_for_test((*ep)->port())), "ok\n");
  // The first ones were dropped to make room: closed without an answer.
  char c;
  EXPECT_EQ(::recv(idle.front().get(), &c, 1, 0), 0);
}

TEST(HealthEndpoint, StopsWithClientsConnected) {
  auto ep = HealthEndpoint::start("127.0.0.1:0", true, "");
  ASSERT_TRUE(ep);
  UniqueFd idle = connect_for_test((*ep)->port());
  ep->reset();
  // Closed (FIN once accepted, RST if still in the backlog): never left hanging.
  char c;
  EXPECT_LE(::recv(idle.get(), &c, 1, 0), 0);
}

}  // namespace
}  // namespace mamori::heal
