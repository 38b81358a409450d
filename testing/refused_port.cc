#include "testing/refused_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

namespace mamori::testing {

RefusedPort::RefusedPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  if (fd_.get() < 0) {
    ADD_FAILURE() << "socket: " << std::strerror(errno);
    return;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "bind 127.0.0.1:0: " << std::strerror(errno);
    return;
  }
  port_ = ntohs(addr.sin_port);
}

}  // namespace mamori::testing
