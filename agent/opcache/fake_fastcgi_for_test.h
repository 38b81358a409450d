#pragma once
// Test support: a fake PHP-FPM pool on a unix socket. It decodes each request (one per
// connection) and answers with the bytes its handler returns; a null handler reads the
// request and never answers (a pool whose workers are all busy). Header-only, tests only.

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

#include "agent/opcache/fastcgi.h"
#include "core/base/unique_fd.h"

namespace mamori::opcache::testing_fcgi {

struct Request {
  uint16_t id = 0;
  std::map<std::string, std::string> params;
  std::string body;
  bool complete = false;  // both streams ended
};

inline size_t read_length(std::string_view s, size_t& at) {
  if (at >= s.size()) return 0;
  const auto b = static_cast<uint8_t>(s[at]);
  if (b < 128) {
    ++at;
    return b;
  }
  if (at + 4 > s.size()) return 0;
  const size_t n = (size_t{b & 0x7fu} << 24) | (size_t{static_cast<uint8_t>(s[at + 1])} << 16) |
                   (size_t{static_cast<uint8_t>(s[at + 2])} << 8) | static_cast<uint8_t>(s[at + 3]);
  at += 4;
  return n;
}

// Decodes what a client sent (as far as it is complete).
inline Request decode_request(std::string_view s) {
  Request r;
  std::string params;
  bool params_done = false, stdin_done = false;
  size_t at = 0;
  while (at + 8 <= s.size()) {
    const auto* h = reinterpret_cast<const uint8_t*>(s.data() + at);
    const size_t len = (size_t{h[4]} << 8) | h[5];
    if (at + 8 + len + h[6] > s.size()) break;
    const std::string_view content = s.substr(at + 8, len);
    r.id = static_cast<uint16_t>((h[2] << 8) | h[3]);
    if (h[1] == static_cast<uint8_t>(RecordType::kParams)) {
      if (len == 0) params_done = true;
      params.append(content);
    } else if (h[1] == static_cast<uint8_t>(RecordType::kStdin)) {
      if (len == 0) stdin_done = true;
      r.body.append(content);
    }
    at += 8 + len + h[6];
  }
  for (size_t p = 0; p < params.size();) {
    const size_t nl = read_length(params, p);
    const size_t vl = read_length(params, p);
    if (p + nl + vl > params.size()) break;
    r.params[params.substr(p, nl)] = params.substr(p + nl, vl);
    p += nl + vl;
  }
  r.complete = params_done && stdin_done;
  return r;
}

// STDOUT (in records of at most 65,535 bytes), STDERR, END_REQUEST for request `id`.
inline std::string reply(uint16_t id, std::string_view out, std::string_view err) {
  std::string r;
  auto put = [&](RecordType type, std::string_view c) {
    const char h[8] = {1,
                       static_cast<char>(type),
                       static_cast<char>(id >> 8),
                       static_cast<char>(id & 0xff),
                       static_cast<char>(c.size() >> 8),
                       static_cast<char>(c.size() & 0xff),
                       0,
                       0};
    r.append(h, 8);
    r.append(c);
  };
  for (size_t at = 0; at < out.size(); at += 65535) put(RecordType::kStdout, out.substr(at, 65535));
  if (!err.empty()) put(RecordType::kStderr, err);
  put(RecordType::kStdout, {});
  put(RecordType::kEndRequest, std::string_view("\0\0\0\0\0\0\0\0", 8));
  return r;
}

class FakeServer {
 public:
  using Handler = std::function<std::string(const Request&)>;
  FakeServer(const std::string& path, Handler handler) : handler_(std::move(handler)) {
    listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
        << std::strerror(errno);
    EXPECT_EQ(::listen(listen_.get(), 16), 0);
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    stop_r_.reset(p[0]);
    stop_w_.reset(p[1]);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeServer() {
    (void)!::write(stop_w_.get(), "x", 1);
    thread_.join();
  }
  int requests() const { return requests_.load(); }

 private:
  void serve() {
    while (true) {
      pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {stop_r_.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) return;
      if (fds[1].revents) return;
      UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) continue;
      std::string in;
      Request req;
      char buf[65536];
      while (!req.complete) {
        pollfd cf[2] = {{c.get(), POLLIN, 0}, {stop_r_.get(), POLLIN, 0}};
        if (::poll(cf, 2, -1) < 0 || cf[1].revents) return;
        const ssize_t n = ::read(c.get(), buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
        req = decode_request(in);
      }
      ++requests_;
      if (!handler_) {
        // A busy pool: holds the connection until the test ends.
        pollfd sf{stop_r_.get(), POLLIN, 0};
        (void)::poll(&sf, 1, -1);
        return;
      }
      const std::string out = handler_(req);
      // A client that gave up (another uid, a timeout) must not SIGPIPE the test.
      for (size_t at = 0; at < out.size();) {
        const ssize_t n = ::send(c.get(), out.data() + at, out.size() - at, MSG_NOSIGNAL);
        if (n <= 0) break;
        at += static_cast<size_t>(n);
      }
    }
  }

  Handler handler_;
  UniqueFd listen_, stop_r_, stop_w_;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace mamori::opcache::testing_fcgi
