#include "agent/opcache/fastcgi.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include <fmt/format.h>

#include "core/base/unique_fd.h"

namespace mamori::opcache {
namespace {

constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 8;
constexpr size_t kMaxContent = 65535;
constexpr uint16_t kRoleResponder = 1;
// A CGI variable's name or value; PHP-FPM's own limit on a whole PARAMS stream is
// larger, but nothing mamori sends comes near this.
constexpr size_t kMaxParamBytes = 64 << 10;

void put_header(std::string& out, RecordType type, uint16_t id, size_t content_len) {
  const auto padding = static_cast<uint8_t>((8 - content_len % 8) % 8);
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(id >> 8));
  out.push_back(static_cast<char>(id & 0xff));
  out.push_back(static_cast<char>(content_len >> 8));
  out.push_back(static_cast<char>(content_len & 0xff));
  out.push_back(static_cast<char>(padding));
  out.push_back(0);
}

void put_record(std::string& out, RecordType type, uint16_t id, std::string_view content) {
  put_header(out, type, id, content.size());
  out.append(content);
  out.append((8 - content.size() % 8) % 8, '\0');
}

// A stream (PARAMS, STDIN) cut into records, then the empty record that ends it.
void put_stream(std::string& out, RecordType type, uint16_t id, std::string_view data) {
  // A multiple of 8: only the last record is padded.
  constexpr size_t kChunk = kMaxContent - kMaxContent % 8;
  for (size_t at = 0; at < data.size(); at += kChunk)
    put_record(out, type, id, data.substr(at, kChunk));
  put_record(out, type, id, {});
}

void put_length(std::string& out, size_t n) {
  if (n < 128) {
    out.push_back(static_cast<char>(n));
    return;
  }
  out.push_back(static_cast<char>(0x80 | ((n >> 24) & 0x7f)));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
}

void keep_bounded(std::string& to, std::string_view from, size_t limit, bool& truncated) {
  const size_t room = to.size() < limit ? limit - to.size() : 0;
  if (from.size() > room) truncated = true;
  to.append(from.substr(0, room));
}

int remaining_ms(const Env& env, std::chrono::nanoseconds deadline) {
  const auto left = deadline - env.clock().monotonic();
  if (left <= std::chrono::nanoseconds::zero()) return 0;
  return static_cast<int>(
      std::max<int64_t>(1, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
}

// Waits for `events` on fd until the deadline; ETIMEDOUT when it passes.
Status wait_for(const Env& env, int fd, short events, std::chrono::nanoseconds deadline,
                const std::string& what) {
  while (true) {
    const int ms = remaining_ms(env, deadline);
    if (ms == 0) return fail("fastcgi", what, ETIMEDOUT);
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("poll", what);
    if (n > 0) return ok();
  }
}

Result<UniqueFd> connect_to(const Env& env, const Endpoint& ep, const CallOptions& options,
                            std::chrono::nanoseconds deadline) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_UNIX;
  if (!ep.unix_path.empty()) {
    auto* un = reinterpret_cast<sockaddr_un*>(&addr);
    un->sun_family = AF_UNIX;
    if (ep.unix_path.size() >= sizeof un->sun_path) return fail("connect", ep.text, ENAMETOOLONG);
    std::memcpy(un->sun_path, ep.unix_path.data(), ep.unix_path.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + ep.unix_path.size() + 1);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&addr);
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (::inet_pton(AF_INET, ep.host.c_str(), &in4->sin_addr) == 1) {
      family = in4->sin_family = AF_INET;
      in4->sin_port = htons(ep.port);
      len = sizeof *in4;
    } else if (::inet_pton(AF_INET6, ep.host.c_str(), &in6->sin6_addr) == 1) {
      family = in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(ep.port);
      len = sizeof *in6;
    } else {
      return fail("connect", ep.text, EINVAL, "not a numeric address");
    }
  }
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail_errno("socket", ep.text);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    // A unix socket whose backlog is full says EAGAIN: the pool is swamped (its
    // listen.backlog of requests wait already). A TCP connect completes later.
    if (errno == EAGAIN) return fail("connect", ep.text, EAGAIN, "the pool's backlog is full");
    if (errno != EINPROGRESS) return fail_errno("connect", ep.text);
    MAMORI_TRY(wait_for(env, fd.get(), POLLOUT, deadline, ep.text));
    int err = 0;
    socklen_t elen = sizeof err;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
      return fail_errno("getsockopt", ep.text);
    if (err != 0) return fail("connect", ep.text, err);
  }
  if (!ep.unix_path.empty() && options.peer_uid) {
    ucred cred{};
    socklen_t clen = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0)
      return fail_errno("getsockopt SO_PEERCRED", ep.text);
    if (cred.uid != *options.peer_uid)
      return fail("connect", ep.text, EPERM,
                  fmt::format("the socket's listener runs as uid {}, not {} (php-fpm's master "
                              "listens as root): someone else's socket in its place?",
                              cred.uid, *options.peer_uid));
  }
  return fd;
}

}  // namespace

Result<std::string> encode_request(uint16_t request_id, const FcgiRequest& request) {
  std::string out;
  std::string begin(8, '\0');
  begin[0] = static_cast<char>(kRoleResponder >> 8);
  begin[1] = static_cast<char>(kRoleResponder & 0xff);
  // flags 0: the application closes the connection after the response.
  put_record(out, RecordType::kBeginRequest, request_id, begin);
  std::string params;
  for (const auto& [name, value] : request.params) {
    if (name.size() > kMaxParamBytes || value.size() > kMaxParamBytes)
      return fail("fastcgi", name, EINVAL, "a parameter larger than 64 KiB");
    put_length(params, name.size());
    put_length(params, value.size());
    params += name;
    params += value;
  }
  put_stream(out, RecordType::kParams, request_id, params);
  put_stream(out, RecordType::kStdin, request_id, request.body);
  return out;
}

Result<bool> ResponseParser::feed(std::string_view bytes) {
  if (done_) return true;
  pending_.append(bytes);
  size_t at = 0;
  while (!done_ && pending_.size() - at >= kHeaderBytes) {
    const auto* h = reinterpret_cast<const uint8_t*>(pending_.data() + at);
    if (h[0] != kVersion)
      return fail("fastcgi", "", EPROTO, fmt::format("a record of version {}, not 1", h[0]));
    const uint16_t id = static_cast<uint16_t>((h[2] << 8) | h[3]);
    const size_t len = (static_cast<size_t>(h[4]) << 8) | h[5];
    const size_t total = kHeaderBytes + len + h[6];
    if (pending_.size() - at < total) break;
    if (++records_ > limits_.max_records)
      return fail("fastcgi", "", EPROTO, "more records than one answer needs");
    MAMORI_TRY(record(h[1], id, std::string_view(pending_).substr(at + kHeaderBytes, len)));
    at += total;
  }
  pending_.erase(0, at);
  return done_;
}

Status ResponseParser::record(uint8_t type, uint16_t id, std::string_view content) {
  // Management records (id 0) and other requests' records are not ours.
  if (id != id_) return ok();
  switch (static_cast<RecordType>(type)) {
    case RecordType::kStdout:
      keep_bounded(response_.out, content, limits_.max_out, response_.out_truncated);
      return ok();
    case RecordType::kStderr:
      keep_bounded(response_.err, content, limits_.max_err, response_.err_truncated);
      return ok();
    case RecordType::kEndRequest: {
      if (content.size() != 8)
        return fail("fastcgi", "", EPROTO,
                    fmt::format("an END_REQUEST of {} bytes, not 8", content.size()));
      const auto* b = reinterpret_cast<const uint8_t*>(content.data());
      response_.app_status =
          (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
      response_.protocol_status = b[4];
      done_ = true;
      return ok();
    }
    default:
      return ok();  // nothing else is for a client; skipped
  }
}

Result<CgiReply> parse_cgi_reply(std::string_view out) {
  // PHP ends header lines with \r\n; CGI allows \n alone.
  CgiReply reply;
  size_t at = 0;
  while (true) {
    const size_t nl = out.find('\n', at);
    if (nl == std::string_view::npos)
      return fail("fastcgi", "", EPROTO, "the answer's headers never end");
    std::string_view line = out.substr(at, nl - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    at = nl + 1;
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return fail("fastcgi", "", EPROTO, "a header line without a name");
    std::string name(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    if (name == "status") {
      if (value.size() < 3 || !std::all_of(value.begin(), value.begin() + 3,
                                           [](char c) { return c >= '0' && c <= '9'; }))
        return fail("fastcgi", "", EPROTO, "a Status header without a 3-digit code");
      reply.status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    } else if (name == "content-type") {
      reply.content_type = std::string(value.substr(0, 256));
    }
  }
  reply.body = std::string(out.substr(at));
  return reply;
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint ep;
  ep.text = std::string(text);
  if (text.starts_with("/")) {
    if (text.size() >= sizeof(sockaddr_un{}.sun_path))
      return fail("endpoint", ep.text, ENAMETOOLONG);
    ep.unix_path = std::string(text);
    return ep;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size())
    return fail("endpoint", ep.text, EINVAL,
                "must be a unix socket's absolute path or ADDRESS:PORT (numeric)");
  std::string_view host = text.substr(0, colon);
  if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
  const std::string_view port = text.substr(colon + 1);
  unsigned long p = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || p > 65535) return fail("endpoint", ep.text, EINVAL, "a bad port");
    p = p * 10 + static_cast<unsigned long>(c - '0');
  }
  if (p == 0 || p > 65535) return fail("endpoint", ep.text, EINVAL, "a bad port");
  ep.host = std::string(host);
  ep.port = static_cast<uint16_t>(p);
  in6_addr a6{};
  in_addr a4{};
  if (::inet_pton(AF_INET, ep.host.c_str(), &a4) != 1 &&
      ::inet_pton(AF_INET6, ep.host.c_str(), &a6) != 1)
    return fail("endpoint", ep.text, EINVAL, "the address must be numeric (no name is resolved)");
  return ep;
}

Result<FcgiResponse> call(const Env& env, const Endpoint& endpoint, const FcgiRequest& request,
                          const CallOptions& options) {
  constexpr uint16_t kRequestId = 1;
  const auto deadline = env.clock().monotonic() + options.timeout;
  const std::string bytes = MAMORI_TRY(encode_request(kRequestId, request));
  UniqueFd fd = MAMORI_TRY(connect_to(env, endpoint, options, deadline));
  for (size_t sent = 0; sent < bytes.size();) {
    const ssize_t n = ::send(fd.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return fail_errno("send", endpoint.text);
    MAMORI_TRY(wait_for(env, fd.get(), POLLOUT, deadline, endpoint.text));
  }
  ResponseParser parser(kRequestId, options.limits);
  char buf[16384];
  while (true) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      if (MAMORI_TRY(parser.feed(std::string_view(buf, static_cast<size_t>(n)))))
        return parser.take();
      continue;
    }
    if (n == 0) return fail("fastcgi", endpoint.text, EPROTO, "closed before END_REQUEST");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return fail_errno("recv", endpoint.text);
    MAMORI_TRY(wait_for(env, fd.get(), POLLIN, deadline, endpoint.text));
  }
}

}  // namespace mamori::opcache
