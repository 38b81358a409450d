#include "agent/sinks/syslog/syslog_sink.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>
#include <span>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/base/env.h"
#include "core/base/unique_fd.h"

namespace mamori::sinks {
namespace {

// --- formatting -----------------------------------------------------------------------

// 32473 is the enterprise number IANA reserves for documentation (RFC 5612): a
// placeholder until mamori has a Private Enterprise Number of its own.
constexpr std::string_view kSdId = "mamori@32473";

// Caps on one parameter value (after escaping), so the structured data of the largest
// event stays well below kMaxMessageBytes: 3 * 1024 + 9 * 256 plus names is under 6 KiB.
constexpr size_t kMaxValueBytes = 256;
constexpr size_t kMaxPathValueBytes = 1024;

struct Param {
  std::string_view name;
  std::string_view field;
  size_t cap;
};
constexpr Param kParams[] = {
    {"id", "event.id", kMaxValueBytes},
    {"action", "event.action", kMaxValueBytes},
    {"outcome", "event.outcome", kMaxValueBytes},
    {"root", "mamori.root", kMaxPathValueBytes},
    {"path", "file.path", kMaxPathValueBytes},
    {"sha256", "file.hash.sha256", kMaxValueBytes},
    {"pid", "process.pid", kMaxValueBytes},
    {"exe", "process.executable", kMaxPathValueBytes},
    {"user", "user.name", kMaxValueBytes},
    {"ip", "source.ip", kMaxValueBytes},
    {"evidence", "mamori.evidence.id", kMaxValueBytes},
    {"mode", "mamori.mode", kMaxValueBytes},
};

// mamori's severities are 1 (info), 3, 5 and 7 (critical); numbers in between round down.
int syslog_severity(const nlohmann::json& event) {
  const auto& severity = field(event, "event.severity");
  if (!severity.is_number()) return 6;
  const double v = severity.get<double>();
  if (v >= 7) return 2;  // critical
  if (v >= 5) return 4;  // warning
  if (v >= 3) return 5;  // notice
  return 6;              // informational
}

// RFC 5424 header fields are PRINTUSASCII (33..126), "-" when empty.
std::string header_field(std::string_view s, size_t max) {
  std::string out;
  for (const char c : s.substr(0, max)) out += (c > 32 && c < 127) ? c : '_';
  return out.empty() ? "-" : out;
}

// RFC 5424 6.2.3: YYYY-MM-DDThh:mm:ss[.1 to 6 digits](Z|+hh:mm|-hh:mm).
bool is_syslog_timestamp(std::string_view t) {
  const auto shaped = [](std::string_view s, std::string_view shape) {
    if (s.size() != shape.size()) return false;
    for (size_t i = 0; i < s.size(); ++i) {
      const bool digit = s[i] >= '0' && s[i] <= '9';
      if (shape[i] == 'd' ? !digit : s[i] != shape[i]) return false;
    }
    return true;
  };
  constexpr std::string_view kDateTime = "dddd-dd-ddTdd:dd:dd";
  if (t.size() < kDateTime.size() || !shaped(t.substr(0, kDateTime.size()), kDateTime)) {
    return false;
  }
  t.remove_prefix(kDateTime.size());
  if (t.starts_with('.')) {
    size_t n = 1;
    while (n < t.size() && t[n] >= '0' && t[n] <= '9') ++n;
    if (n == 1 || n > 7) return false;
    t.remove_prefix(n);
  }
  return t == "Z" ||
         (t.size() == 6 && (t[0] == '+' || t[0] == '-') && shaped(t.substr(1), "dd:dd"));
}

// Appends `in` to `out`, at most `cap` bytes, never splitting a UTF-8 sequence or an
// escape. Control characters become spaces: one event is one line for line-based
// receivers, and no terminal escape reaches whoever reads the log. `escape` quotes what
// RFC 5424 6.3.3 requires in a PARAM-VALUE.
void append_clean(std::string& out, std::string_view in, size_t cap, bool escape) {
  size_t used = 0;
  for (size_t i = 0; i < in.size();) {
    const auto lead = static_cast<unsigned char>(in[i]);
    const size_t width = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    const size_t len = std::min(in.size() - i, width);
    const bool quoted = escape && len == 1 && (lead == '"' || lead == '\\' || lead == ']');
    if (used + len + quoted > cap) return;
    if (quoted) out += '\\';
    if (lead < 0x20 || lead == 0x7F) {
      out += ' ';
    } else {
      out.append(in.substr(i, len));
    }
    used += len + quoted;
    i += len;
  }
}

}  // namespace

// No BOM before MSG. RFC 5424 6.4 asks for one when MSG is UTF-8, but MSG-ANY (no BOM)
// is valid too, and the receivers people use pass the BOM on as three invisible bytes
// at the start of the message (rsyslog writes it into %msg% and the file, the journal
// and most SIEMs keep it), which breaks exact matches and grep '^restored'. rsyslog
// reads either form. The structured data, where the machine-readable fields are, is
// UTF-8 by definition (6.3.3).
std::string format_rfc5424(const nlohmann::json& event, int facility, std::string_view app_name,
                           std::string_view hostname, int pid, size_t max_bytes) {
  assert(facility >= 0 && facility <= 23);
  const std::string timestamp = text(event, "@timestamp");
  const std::string event_host = text(event, "host.hostname");
  std::string out = fmt::format("<{}>1 {} {} {} {} {} ", facility * 8 + syslog_severity(event),
                                is_syslog_timestamp(timestamp) ? timestamp : "-",
                                header_field(event_host.empty() ? hostname : event_host, 255),
                                header_field(app_name, 48), pid > 0 ? std::to_string(pid) : "-",
                                header_field(text(event, "event.action"), 32));

  std::string params;
  for (const Param& p : kParams) {
    const std::string value = text(event, p.field);
    if (value.empty()) continue;
    params += fmt::format(" {}=\"", p.name);
    append_clean(params, value, p.cap, /*escape=*/true);
    params += '"';
  }
  out += params.empty() ? "-" : fmt::format("[{}{}]", kSdId, params);

  const std::string message = text(event, "message");
  if (!message.empty() && out.size() + 1 < max_bytes) {
    out += ' ';
    append_clean(out, message, max_bytes - out.size(), /*escape=*/false);
  }
  return out;
}

namespace {

// --- transport ------------------------------------------------------------------------

// Deadlines are monotonic and in real time: a peer does not wait for a simulated clock.
using Deadline = std::chrono::nanoseconds;  // on SystemClock::monotonic()
Deadline monotonic_now() { return SystemClock().monotonic(); }

enum class Transport { kUnix, kUdp, kTcp, kTls };

struct Address {
  Transport transport = Transport::kUnix;
  std::string path;  // unix
  std::string host;  // without the brackets of [IPv6]
  std::string port;
};

std::optional<Address> parse_address(std::string_view text) {
  Address a;
  if (text.starts_with("unix:")) {
    a.path = text.substr(5);
    if (!a.path.starts_with('/') || a.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return std::nullopt;
    }
    return a;
  }
  static constexpr struct {
    std::string_view scheme;
    Transport transport;
    std::string_view default_port;
  } kSchemes[] = {{"udp://", Transport::kUdp, "514"},
                  {"tcp://", Transport::kTcp, "514"},
                  {"tls://", Transport::kTls, "6514"}};
  const auto scheme = std::find_if(std::begin(kSchemes), std::end(kSchemes),
                                   [&](const auto& s) { return text.starts_with(s.scheme); });
  if (scheme == std::end(kSchemes)) return std::nullopt;
  a.transport = scheme->transport;
  std::string_view rest = text.substr(scheme->scheme.size());
  std::string_view host;
  std::string_view host_chars = "-._";
  if (rest.starts_with('[')) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = rest.substr(1, close - 1);
    host_chars = ":.%";
    rest.remove_prefix(close + 1);
  } else {
    host = rest.substr(0, rest.find(':'));
    rest.remove_prefix(host.size());
  }
  const bool host_ok = !host.empty() && std::all_of(host.begin(), host.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || host_chars.find(c) != host_chars.npos;
  });
  if (!host_ok) return std::nullopt;
  a.host = host;
  if (rest.empty()) {
    a.port = scheme->default_port;
    return a;
  }
  if (!rest.starts_with(':')) return std::nullopt;
  rest.remove_prefix(1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), port);
  if (ec != std::errc() || end != rest.data() + rest.size() || port == 0 || port > 65535) {
    return std::nullopt;
  }
  a.port = rest;
  return a;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Waits until `fd` is ready for `events`: 0, ETIMEDOUT at the deadline, or poll's errno.
int wait_ready(int fd, short events, Deadline deadline) {
  while (true) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - monotonic_now());
    if (left.count() <= 0) return ETIMEDOUT;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return 0;
    if (n < 0 && errno != EINTR) return errno;
  }
}

struct AddrInfoFree {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoFree>;

// A name lookup through glibc's asynchronous getaddrinfo_a(): the blocking call cannot
// be bounded (the resolver's own timeouts and retries outlast a sink's), this can. A
// lookup still running at the deadline that cannot be cancelled keeps writing into its
// request, so that request is left allocated (one small leak per such timeout, which
// the follower's back-off keeps rare).
struct Lookup {
  std::string host, port;
  addrinfo hints{};
  gaicb request{};
};

// The addresses of `a`, or an EAI_ code (EAI_AGAIN at the deadline) with its text.
Result<AddrInfoPtr> resolve(const Address& a, int socktype, Deadline deadline) {
  addrinfo hints{};
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (is_ip_literal(a.host)) {
    const int rc = getaddrinfo(a.host.c_str(), a.port.c_str(), &hints, &found);
    if (rc != 0) return fail_msg("resolve", "", gai_strerror(rc));
    return AddrInfoPtr(found);
  }
  auto lookup = std::make_unique<Lookup>();
  lookup->host = a.host;
  lookup->port = a.port;
  lookup->hints.ai_socktype = socktype;
  lookup->hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
  lookup->request.ar_name = lookup->host.c_str();
  lookup->request.ar_service = lookup->port.c_str();
  lookup->request.ar_request = &lookup->hints;
  gaicb* list[] = {&lookup->request};
  if (const int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, nullptr); rc != 0) {
    return fail_msg("resolve", "", gai_strerror(rc));
  }
  int rc = EAI_INPROGRESS;
  while ((rc = gai_error(&lookup->request)) == EAI_INPROGRESS) {
    const auto left = deadline - monotonic_now();
    if (left <= Deadline::zero()) break;
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(left);
    const timespec wait{s.count(), std::chrono::nanoseconds(left - s).count()};
    gai_suspend(list, 1, &wait);
  }
  if (rc == EAI_INPROGRESS) {
    if (gai_cancel(&lookup->request) == EAI_NOTCANCELED) static_cast<void>(lookup.release());
    return fail_msg("resolve", "", "timed out");
  }
  AddrInfoPtr result(lookup->request.ar_result);
  if (rc != 0) return fail_msg("resolve", "", gai_strerror(rc));
  return result;
}

// Connects a non-blocking socket; 0 or the errno of the failure (ETIMEDOUT at the deadline).
int connect_within(int fd, const sockaddr* addr, socklen_t len, Deadline deadline) {
  if (::connect(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  if (const int rc = wait_ready(fd, POLLOUT, deadline); rc != 0) return rc;
  int error = 0;
  socklen_t size = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) return errno;
  return error;
}

std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += out.empty() ? "" : "; ";
    out += buf;
  }
  return out;
}

// OpenSSL writes with write(2), which raises SIGPIPE on a connection the collector reset,
// and the default action would end the agent. While a guard lives, SIGPIPE is blocked on
// this thread; one that became pending meanwhile is taken before unblocking (the failed
// write reports EPIPE anyway).
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    sigset_t pending;
    if (!sigismember(&old_, SIGPIPE) && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE)) {
      const timespec now{};
      sigtimedwait(&pipe_, nullptr, &now);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
};

// What OpenSSL says went wrong; an EOF leaves its error queue empty.
std::string tls_failure() {
  const std::string why = openssl_errors();
  return why.empty() ? "connection closed by the collector" : why;
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

class SyslogSink final : public Sink {
 public:
  SyslogSink(config::SinkConfig config, Address address, std::unique_ptr<SSL_CTX, SslCtxFree> ctx)
      : config_(std::move(config)), address_(std::move(address)), ctx_(std::move(ctx)) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0) hostname_ = host;
  }
  ~SyslogSink() override {
    if (!ssl_) return;
    // A clean close: one non-blocking close_notify, best effort.
    const SigpipeGuard guard;
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }

  const std::string& name() const override { return config_.name; }

  Status deliver(std::span<const nlohmann::json> events) override {
    if (events.empty()) return ok();
    std::optional<SigpipeGuard> guard;
    if (address_.transport == Transport::kTls) guard.emplace();
    const Deadline deadline =
        monotonic_now() + std::chrono::seconds(std::max<uint32_t>(config_.timeout_s, 1));
    if (fd_.valid() && stream_ && peer_closed()) disconnect();
    if (!fd_.valid()) {
      if (Status s = connect(deadline); !s) {
        disconnect();
        return s;
      }
    }
    Status s = send_all(events, deadline);
    if (!s) disconnect();
    return s;
  }

 private:
  // An error naming this sink and its address.
  tl::unexpected<Error> error(std::string_view step, int errnum, std::string detail = {}) const {
    return fail(fmt::format("syslog sink '{}': {}", config_.name, step), config_.address, errnum,
                std::move(detail));
  }
  tl::unexpected<Error> error_from(std::string_view step, int rc) const {
    if (rc == ETIMEDOUT) {
      return error(step, 0,
                   fmt::format("timed out after {} s", std::max<uint32_t>(config_.timeout_s, 1)));
    }
    return error(step, rc);
  }

  Status connect(Deadline deadline) {
    if (address_.transport == Transport::kUnix) return connect_unix();
    const bool udp = address_.transport == Transport::kUdp;
    auto found = resolve(address_, udp ? SOCK_DGRAM : SOCK_STREAM, deadline);
    if (!found) return error("resolve", 0, found.error().detail);
    int rc = EADDRNOTAVAIL;
    for (const addrinfo* ai = found->get(); ai != nullptr; ai = ai->ai_next) {
      fd_.reset(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!fd_.valid()) {
        rc = errno;
        continue;
      }
      rc = connect_within(fd_.get(), ai->ai_addr, ai->ai_addrlen, deadline);
      if (rc == 0) break;
      fd_.reset();
      if (rc == ETIMEDOUT) break;
    }
    if (rc != 0) return error_from("connect", rc);
    stream_ = !udp;
    if (address_.transport == Transport::kTls) return handshake(deadline);
    return ok();
  }

  // /dev/log is a datagram socket under rsyslog and journald; syslog-ng may make it a
  // stream (EPROTOTYPE), where messages end in LF.
  Status connect_unix() {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, address_.path.data(), address_.path.size());
    int rc = 0;
    for (const int type : {SOCK_DGRAM, SOCK_STREAM}) {
      fd_.reset(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!fd_.valid()) return error("socket", errno);
      if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
        stream_ = type == SOCK_STREAM;
        return ok();
      }
      rc = errno;
      fd_.reset();
      if (rc != EPROTOTYPE) break;
    }
    return error("connect", rc);
  }

  Status handshake(Deadline deadline) {
    ssl_.reset(SSL_new(ctx_.get()));
    if (!ssl_ || SSL_set_fd(ssl_.get(), fd_.get()) != 1) {
      return error("tls setup", 0, openssl_errors());
    }
    const char* host = address_.host.c_str();
    const bool ip = is_ip_literal(address_.host);
    // SNI carries names only (RFC 6066 3).
    if (!ip) SSL_set_tlsext_host_name(ssl_.get(), host);
    if (config_.tls_verify) {
      const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), host)
                         : SSL_set1_host(ssl_.get(), host);
      if (set != 1) return error("tls setup", 0, openssl_errors());
      SSL_set_hostflags(ssl_.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    SSL_set_mode(ssl_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    while (true) {
      ERR_clear_error();
      errno = 0;
      const int ret = SSL_connect(ssl_.get());
      if (ret == 1) return ok();
      const int rc = wait_tls(ret, deadline);
      if (rc == 0) continue;
      if (rc != EPROTO) return error_from("tls handshake", rc);
      const long verify = SSL_get_verify_result(ssl_.get());
      if (verify != X509_V_OK) {
        return error(
            "tls handshake", 0,
            fmt::format("certificate verify failed: {}", X509_verify_cert_error_string(verify)));
      }
      return error("tls handshake", 0, tls_failure());
    }
  }

  // After an OpenSSL call on the non-blocking socket returned `ret`: waits for what it
  // wants and returns 0 to retry, or the errno (EPROTO for a TLS failure, the OpenSSL
  // error queue says what).
  int wait_tls(int ret, Deadline deadline) {
    switch (SSL_get_error(ssl_.get(), ret)) {
      case SSL_ERROR_WANT_READ:
        return wait_ready(fd_.get(), POLLIN, deadline);
      case SSL_ERROR_WANT_WRITE:
        return wait_ready(fd_.get(), POLLOUT, deadline);
      case SSL_ERROR_SYSCALL:
        return errno != 0 && ERR_peek_error() == 0 ? errno : EPROTO;
      default:
        return EPROTO;
    }
  }

  // A collector that closed the connection (restart, idle timeout) would silently drop
  // the next batch: TCP accepts the bytes and only the RST after them tells. Collectors
  // never send, so anything readable is either the close or TLS housekeeping (TLS 1.3
  // session tickets), which OpenSSL consumes here.
  bool peer_closed() {
    pollfd p{fd_.get(), POLLIN, 0};
    while (::poll(&p, 1, 0) > 0) {
      char buf[4096];
      if (ssl_) {
        ERR_clear_error();
        const int n = SSL_read(ssl_.get(), buf, sizeof(buf));
        if (n <= 0) return SSL_get_error(ssl_.get(), n) != SSL_ERROR_WANT_READ;
      } else {
        const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0) return true;
        if (n < 0) return errno != EAGAIN && errno != EINTR;
      }
    }
    return false;
  }

  Status send_all(std::span<const nlohmann::json> events, Deadline deadline) {
    const int pid = static_cast<int>(getpid());
    const size_t max_bytes =
        address_.transport == Transport::kUdp ? kMaxDatagramBytes : kMaxMessageBytes;
    std::string buffer;
    for (const auto& event : events) {
      const std::string message =
          format_rfc5424(event, config_.facility, config_.app_name, hostname_, pid, max_bytes);
      if (!stream_) {
        MAMORI_TRY(send_datagram(message, deadline));
        continue;
      }
      if (address_.transport == Transport::kUnix) {
        buffer += message;
        buffer += '\n';
      } else {
        buffer += fmt::format("{} {}", message.size(), message);  // RFC 6587 3.4.1
      }
      if (buffer.size() >= 64 * 1024) {
        MAMORI_TRY(write_stream(buffer, deadline));
        buffer.clear();
      }
    }
    if (!buffer.empty()) MAMORI_TRY(write_stream(buffer, deadline));
    return ok();
  }

  Status send_datagram(std::string_view message, Deadline deadline) {
    while (true) {
      if (::send(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL) >= 0) return ok();
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return error("send", errno);
      // A local collector's queue is full: wait for room, not longer than the deadline.
      if (const int rc = wait_ready(fd_.get(), POLLOUT, deadline); rc != 0) {
        return error_from("send", rc);
      }
    }
  }

  Status write_stream(std::string_view data, Deadline deadline) {
    while (!data.empty()) {
      int rc = 0;
      if (ssl_) {
        ERR_clear_error();
        errno = 0;
        const int n = SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size()));
        if (n > 0) {
          data.remove_prefix(n);
          continue;
        }
        rc = wait_tls(n, deadline);
        if (rc == EPROTO) return error("tls send", 0, tls_failure());
      } else {
        const ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (n >= 0) {
          data.remove_prefix(n);
          continue;
        }
        if (errno == EINTR) continue;
        rc = errno == EAGAIN ? wait_ready(fd_.get(), POLLOUT, deadline) : errno;
      }
      if (rc != 0) return error_from("send", rc);
    }
    return ok();
  }

  // After an error or the collector's close: nothing more is sent on the connection.
  void disconnect() {
    ssl_.reset();
    fd_.reset();
  }

  const config::SinkConfig config_;
  const Address address_;
  const std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;  // TLS only
  std::string hostname_;
  UniqueFd fd_;
  std::unique_ptr<SSL, SslFree> ssl_;
  bool stream_ = false;
};

}  // namespace

Result<std::unique_ptr<Sink>> make_syslog_sink(const config::SinkConfig& config) {
  const std::string op = fmt::format("syslog sink '{}'", config.name);
  auto address = parse_address(config.address);
  if (!address) {
    return fail_msg(op + ": address", config.address,
                    "expected unix:/PATH, udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT "
                    "(HOST a name, an IPv4 address or [IPv6])");
  }
  if (config.facility < 0 || config.facility > 23) {
    return fail_msg(op, "", fmt::format("facility {} is not 0..23", config.facility));
  }
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx;
  if (address->transport == Transport::kTls) {
    ERR_clear_error();
    ctx.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
      return fail_msg(op + ": tls setup", "", openssl_errors());
    }
    if (config.tls_verify) {
      SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
      const int loaded = config.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                                                : SSL_CTX_load_verify_locations(
                                                      ctx.get(), config.ca_file.c_str(), nullptr);
      if (loaded != 1) return fail_msg(op + ": load CA", config.ca_file, openssl_errors());
    }
  }
  return std::make_unique<SyslogSink>(config, std::move(*address), std::move(ctx));
}

}  // namespace mamori::sinks
