#include "agent/sinks/syslog/syslog_sink.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/base/env.h"
#include "core/base/unique_fd.h"
#include "testing/refused_port.h"
#include "testing/temp_dir.h"

namespace mamori::sinks {
namespace {

using nlohmann::json;

json full_event() {
  return json::parse(R"({
    "@timestamp": "2026-11-27T17:00:00.123456Z",
    "ecs": {"version": "8.11.0"},
    "event": {"id": "0123456789abcdef0123456789abcdef", "action": "file-restored",
              "kind": "alert", "severity": 5, "module": "mamori", "outcome": "success"},
    "host": {"hostname": "web1"},
    "message": "restored 'wp-config.php'",
    "file": {"path": "/var/www/html/wp-config.php", "hash": {"sha256": "ab12"}},
    "mamori": {"root": "/var/www/html", "path": "wp-config.php", "mode": "restore",
               "evidence": {"id": "ev1"}},
    "process": {"pid": 123, "executable": "/usr/sbin/php-fpm8.2"},
    "user": {"name": "www-data", "id": 33},
    "source": {"ip": "203.0.113.5"}
  })");
}

std::string format(const json& event, size_t max_bytes = kMaxMessageBytes) {
  return format_rfc5424(event, 10, "mamori", "fallback", 42, max_bytes);
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

TEST(FormatRfc5424, FullEvent) {
  EXPECT_EQ(format(full_event()),
            "<84>1 2026-11-27T17:00:00.123456Z web1 mamori 42 file-restored [mamori@32473 "
            "id=\"0123456789abcdef0123456789abcdef\" action=\"file-restored\" outcome=\"success\" "
            "root=\"/var/www/html\" path=\"/var/www/html/wp-config.php\" sha256=\"ab12\" "
            "pid=\"123\" exe=\"/usr/sbin/php-fpm8.2\" user=\"www-data\" ip=\"203.0.113.5\" "
            "evidence=\"ev1\" mode=\"restore\"] restored 'wp-config.php'");
}

TEST(FormatRfc5424, EmptyEventHasNilFieldsAndNoMessage) {
  EXPECT_EQ(format(json::object()), "<86>1 - fallback mamori 42 - -");
  EXPECT_EQ(format(json::array()), "<86>1 - fallback mamori 42 - -");
  EXPECT_EQ(format_rfc5424(json::object(), 0, "", "", 0), "<6>1 - - - - - -");
}

TEST(FormatRfc5424, SeverityMapsToSyslogSeverity) {
  const std::pair<json, int> cases[] = {{7, 2}, {9, 2}, {6, 4}, {5, 4},  {4, 5},   {3, 5},
                                        {2, 6}, {1, 6}, {0, 6}, {-3, 6}, {"7", 6}, {6.5, 4}};
  for (const auto& [severity, expected] : cases) {
    json e;
    e["event"]["severity"] = severity;
    EXPECT_EQ(format_rfc5424(e, 23, "a", "h", 1).substr(0, 7),
              fmt::format("<{}>1 ", 23 * 8 + expected))
        << severity.dump();
  }
}

TEST(FormatRfc5424, EscapesParamValues) {
  json e;
  e["file"]["path"] = R"(/a"b]c\d)";
  e["user"]["name"] = "ユーザー";
  EXPECT_EQ(format(e), R"(<86>1 - fallback mamori 42 - [mamori@32473 path="/a\"b\]c\\d" )"
                       R"(user="ユーザー"])");
}

TEST(FormatRfc5424, OddValuesKeepTheHeaderValid) {
  json e;
  e["@timestamp"] = "yesterday at noon";
  e["host"]["hostname"] = "web 1\n";
  e["event"]["action"] = "a very long action name with spaces and ü in it";
  e["event"]["id"] = 17;
  e["event"]["outcome"] = json::array({"a", "b"});
  e["source"]["ip"] = "";  // empty counts as absent
  e["message"] = 3.5;
  EXPECT_EQ(format(e),
            "<86>1 - web_1_ mamori 42 a_very_long_action_name_with_spa [mamori@32473 id=\"17\" "
            "action=\"a very long action name with spaces and ü in it\" outcome=\"a, b\"] 3.5");

  for (const char* bad : {"2026-11-27 17:00:00Z", "2026-11-27T17:00:00.1234567Z",
                          "2026-11-27T17:00:00", "2026-11-27T17:00:00+0100", "2026-11-27T17:00Z"}) {
    json t;
    t["@timestamp"] = bad;
    EXPECT_EQ(format(t).substr(0, 8), "<86>1 - ") << bad;
  }
  for (const char* good : {"2026-11-27T17:00:00Z", "2026-11-27T17:00:00.1+09:00",
                           "2026-11-27T17:00:00.123456-05:30"}) {
    json t;
    t["@timestamp"] = good;
    EXPECT_EQ(format(t), fmt::format("<86>1 {} fallback mamori 42 - -", good));
  }
}

TEST(FormatRfc5424, NewlinesAndControlsBecomeSpaces) {
  json e;
  e["message"] = "line1\nline2\r\n\x1b[31mred\x7f";
  e["file"]["path"] = "/x\ny";
  EXPECT_EQ(format(e),
            "<86>1 - fallback mamori 42 - [mamori@32473 path=\"/x y\"] "
            "line1 line2   [31mred ");
}

TEST(FormatRfc5424, LongMessageIsCutNeverTheStructuredData) {
  json e = full_event();
  e["message"] = std::string(20000, 'x');
  const std::string out = format(e);
  EXPECT_EQ(out.size(), kMaxMessageBytes);
  const std::string head = format(full_event());
  const std::string prefix = head.substr(0, head.find("] ") + 2);
  EXPECT_EQ(out.substr(0, prefix.size()), prefix);

  std::string accents;
  for (int i = 0; i < 3000; ++i) accents += "é€";
  e["message"] = accents;
  for (const size_t max : {kMaxMessageBytes, kMaxDatagramBytes, size_t{1000}}) {
    const std::string cut = format(e, max);
    EXPECT_LE(cut.size(), max);
    EXPECT_GT(cut.size(), max - 3);
    EXPECT_TRUE(valid_utf8(cut));
    EXPECT_EQ(cut.substr(0, prefix.size()), prefix);
  }
  // No room for MSG at all: the header and structured data stay whole.
  EXPECT_EQ(format(e, 10).substr(0, prefix.size() - 1), prefix.substr(0, prefix.size() - 1));
}

TEST(FormatRfc5424, ParamValuesAreCapped) {
  json e;
  e["file"]["path"] = "/" + std::string(5000, 'p');
  e["user"]["name"] = std::string(1000, ']');  // escaped: never a lone backslash at the cut
  e["source"]["ip"] = std::string(1000, "\xC3\xA9"[0]);
  const std::string out = format(e);
  EXPECT_NE(out.find(" path=\"/" + std::string(1023, 'p') + "\" "), std::string::npos) << out;
  std::string users;
  for (int i = 0; i < 128; ++i) users += "\\]";
  EXPECT_NE(out.find(" user=\"" + users + "\""), std::string::npos);
  EXPECT_LT(out.size(), 3000u);
}

// --- make_syslog_sink -------------------------------------------------------------------

config::SinkConfig sink_config(std::string address, uint32_t timeout_s = 5) {
  config::SinkConfig c;
  c.name = "siem";
  c.address = std::move(address);
  c.timeout_s = timeout_s;
  return c;
}

TEST(MakeSyslogSink, RejectsBadAddressesNamingSinkAndAddress) {
  for (const char* bad :
       {"", "syslog.example", "unix:", "unix:relative/log", "tcp://", "tcp://:514", "tcp://h:0",
        "tcp://h:65536", "tcp://h:5x", "tcp://h:", "tcp://::1:514", "udp://[::1", "udp://[::1]x",
        "tls://host name:6514", "http://h:80", "tcp://user@h:514"}) {
    const auto sink = make_syslog_sink(sink_config(bad));
    ASSERT_FALSE(sink) << bad;
    const std::string quoted = *bad == '\0' ? "" : fmt::format(" '{}'", bad);
    EXPECT_TRUE(sink.error().message().starts_with("syslog sink 'siem': address" + quoted + ": "))
        << sink.error().message();
  }
  auto c = sink_config("udp://127.0.0.1:514");
  c.facility = 24;
  EXPECT_FALSE(make_syslog_sink(c));
}

TEST(MakeSyslogSink, AcceptsGoodAddressesWithoutConnecting) {
  for (const char* good :
       {"unix:/dev/log", "unix:/nonexistent/log.sock", "udp://127.0.0.1:514", "udp://[::1]:514",
        "tcp://localhost", "tcp://syslog.example.org:10514", "tls://[fe80::1%eth0]:6514"}) {
    EXPECT_TRUE(make_syslog_sink(sink_config(good))) << good;
  }
}

TEST(MakeSyslogSink, TlsNeedsAReadableCaFile) {
  auto c = sink_config("tls://127.0.0.1:6514");
  c.ca_file = "/nonexistent/ca.pem";
  const auto sink = make_syslog_sink(c);
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().message().find("load CA '/nonexistent/ca.pem'"), std::string::npos)
      << sink.error().message();
}

// --- delivery over real sockets ---------------------------------------------------------

// Every wait in these tests is bounded, so a bug fails the test instead of hanging it.
void bound_receives(int fd) {
  const timeval tv{10, 0};
  ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

// A socket bound to 127.0.0.1 on a free port.
UniqueFd loopback(int type, int* port) {
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_EQ(getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  *port = ntohs(addr.sin_port);
  bound_receives(fd.get());
  return fd;
}

UniqueFd accept_one(int listener) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, 10000) != 1) return UniqueFd();
  UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  bound_receives(fd.get());
  return fd;
}

std::string read_exactly(int fd, size_t size) {
  std::string out(size, '\0');
  size_t got = 0;
  while (got < size) {
    const ssize_t n = ::recv(fd, out.data() + got, size - got, 0);
    if (n <= 0) break;
    got += n;
  }
  out.resize(got);
  return out;
}

std::string receive_datagram(int fd) {
  std::string buf(65536, '\0');
  const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
  buf.resize(n < 0 ? 0 : n);
  return buf;
}

std::string expected(const json& event, size_t max_bytes = kMaxMessageBytes) {
  return format_rfc5424(event, 10, "mamori", "unused", static_cast<int>(getpid()), max_bytes);
}

std::string frame(const std::string& message) {
  return std::to_string(message.size()) + " " + message;
}

std::vector<json> two_events() {
  json second = full_event();
  second["event"]["action"] = "file-quarantined";
  second["event"]["severity"] = 7;
  second["message"] = "quarantined";
  return {full_event(), second};
}

TEST(SyslogSink, UdpSendsOneDatagramPerEvent) {
  int port = 0;
  const UniqueFd server = loopback(SOCK_DGRAM, &port);
  auto sink = make_syslog_sink(sink_config(fmt::format("udp://127.0.0.1:{}", port)));
  ASSERT_TRUE(sink);
  auto events = two_events();
  events[1]["message"] = std::string(5000, 'm');
  ASSERT_TRUE((*sink)->deliver(events)) << "";
  EXPECT_EQ(receive_datagram(server.get()), expected(events[0]));
  const std::string second = receive_datagram(server.get());
  EXPECT_EQ(second, expected(events[1], kMaxDatagramBytes));
  EXPECT_EQ(second.size(), kMaxDatagramBytes);
}

TEST(SyslogSink, TcpFramesByOctetCountingAndReconnects) {
  int port = 0;
  const UniqueFd listener = loopback(SOCK_STREAM, &port);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  auto sink = make_syslog_sink(sink_config(fmt::format("tcp://127.0.0.1:{}", port)));
  ASSERT_TRUE(sink);
  const auto events = two_events();
  ASSERT_TRUE((*sink)->deliver(events));
  UniqueFd conn = accept_one(listener.get());
  ASSERT_TRUE(conn.valid());
  const std::string want = frame(expected(events[0])) + frame(expected(events[1]));
  EXPECT_EQ(read_exactly(conn.get(), want.size()), want);

  // The same connection carries the next batch.
  ASSERT_TRUE((*sink)->deliver(std::span(events).first(1)));
  EXPECT_EQ(read_exactly(conn.get(), frame(expected(events[0])).size()),
            frame(expected(events[0])));

  // The collector goes away: the next deliver() notices and connects again.
  conn.reset();
  ASSERT_TRUE((*sink)->deliver(std::span(events).last(1)));
  conn = accept_one(listener.get());
  ASSERT_TRUE(conn.valid());
  EXPECT_EQ(read_exactly(conn.get(), frame(expected(events[1])).size()),
            frame(expected(events[1])));
}

TEST(SyslogSink, TcpToIpv6Loopback) {
  UniqueFd listener(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  socklen_t len = sizeof(addr);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    FAIL() << "no IPv6 loopback (::1) to test against";
  }
  ASSERT_EQ(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  auto sink = make_syslog_sink(sink_config(fmt::format("tcp://[::1]:{}", ntohs(addr.sin6_port))));
  ASSERT_TRUE(sink);
  const auto events = two_events();
  ASSERT_TRUE((*sink)->deliver(events));
  const UniqueFd conn = accept_one(listener.get());
  const std::string want = frame(expected(events[0])) + frame(expected(events[1]));
  EXPECT_EQ(read_exactly(conn.get(), want.size()), want);
}

UniqueFd unix_socket(int type, const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  bound_receives(fd.get());
  return fd;
}

TEST(SyslogSink, UnixDatagram) {
  const testing::TempDir dir;
  const UniqueFd server = unix_socket(SOCK_DGRAM, dir / "log.sock");
  auto sink = make_syslog_sink(sink_config("unix:" + (dir / "log.sock")));
  ASSERT_TRUE(sink);
  const auto events = two_events();
  ASSERT_TRUE((*sink)->deliver(events));
  EXPECT_EQ(receive_datagram(server.get()), expected(events[0]));
  EXPECT_EQ(receive_datagram(server.get()), expected(events[1]));
}

TEST(SyslogSink, UnixStreamEndsMessagesWithNewline) {
  const testing::TempDir dir;
  const UniqueFd listener = unix_socket(SOCK_STREAM, dir / "log.sock");
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  auto sink = make_syslog_sink(sink_config("unix:" + (dir / "log.sock")));
  ASSERT_TRUE(sink);
  const auto events = two_events();
  ASSERT_TRUE((*sink)->deliver(events));
  const UniqueFd conn = accept_one(listener.get());
  const std::string want = expected(events[0]) + "\n" + expected(events[1]) + "\n";
  EXPECT_EQ(read_exactly(conn.get(), want.size()), want);
}

TEST(SyslogSink, MissingUnixSocketFails) {
  const testing::TempDir dir;
  auto sink = make_syslog_sink(sink_config("unix:" + (dir / "none.sock")));
  ASSERT_TRUE(sink);
  const auto status = (*sink)->deliver(two_events());
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().message(),
            fmt::format("syslog sink 'siem': connect 'unix:{}': No such file or directory",
                        dir / "none.sock"));
}

TEST(SyslogSink, ConnectionRefusedFailsQuickly) {
  const testing::RefusedPort refused;
  const int port = refused.port();
  auto sink = make_syslog_sink(sink_config(fmt::format("tcp://127.0.0.1:{}", port)));
  ASSERT_TRUE(sink);
  const auto start = SystemClock().monotonic();
  const auto status = (*sink)->deliver(two_events());
  EXPECT_LT(SystemClock().monotonic() - start, std::chrono::seconds(1));
  ASSERT_FALSE(status);
  EXPECT_EQ(
      status.error().message(),
      fmt::format("syslog sink 'siem': connect 'tcp://127.0.0.1:{}': Connection refused", port));
}

TEST(SyslogSink, StalledCollectorTimesOut) {
  int port = 0;
  const UniqueFd listener = loopback(SOCK_STREAM, &port);
  ASSERT_EQ(::listen(listener.get(), 1), 0);  // never accepted, never read
  auto sink = make_syslog_sink(sink_config(fmt::format("tcp://127.0.0.1:{}", port), 1));
  ASSERT_TRUE(sink);
  json big = full_event();
  big["message"] = std::string(7000, 'x');
  const std::vector<json> batch(20000, big);  // 140 MB: far more than the socket buffers
  const auto start = SystemClock().monotonic();
  const auto status = (*sink)->deliver(batch);
  const auto took = SystemClock().monotonic() - start;
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(3));
  ASSERT_FALSE(status);
  EXPECT_EQ(
      status.error().message(),
      fmt::format("syslog sink 'siem': send 'tcp://127.0.0.1:{}': timed out after 1 s", port));
}

// --- TLS against an in-process OpenSSL server -------------------------------------------

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

// A self-signed certificate for `san` ("DNS:localhost,IP:127.0.0.1"): its own CA.
struct Identity {
  std::unique_ptr<EVP_PKEY, PkeyFree> key;
  std::unique_ptr<X509, X509Free> cert;

  explicit Identity(const char* san) : key(EVP_EC_gen("P-256")), cert(X509_new()) {
    X509* x = cert.get();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("mamori test"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_set_pubkey(x, key.get());
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(x, key.get(), EVP_sha256());
  }

  std::string pem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, cert.get());
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string out(data, size);
    BIO_free(bio);
    return out;
  }
};

// A TLS collector on 127.0.0.1 that accepts one connection and returns the first
// `want` bytes it reads (fewer when the client goes away); then, when `reset`, it
// aborts the connection (RST).
class TlsCollector {
 public:
  TlsCollector(const Identity& id, size_t want, bool reset = false)
      : listener_(loopback(SOCK_STREAM, &port_)) {
    EXPECT_EQ(::listen(listener_.get(), 4), 0);
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    EXPECT_EQ(SSL_CTX_use_certificate(ctx_.get(), id.cert.get()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx_.get(), id.key.get()), 1);
    received_ = std::async(std::launch::async, [=, this] { return serve(want, reset); });
  }
  int port() const { return port_; }
  std::string received() { return received_.get(); }

 private:
  std::string serve(size_t want, bool reset) {
    const UniqueFd conn = accept_one(listener_.get());
    if (!conn.valid()) return "(no connection)";
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx_.get()));
    SSL_set_fd(ssl.get(), conn.get());
    if (SSL_accept(ssl.get()) != 1) return "(handshake failed)";
    std::string out(want, '\0');
    size_t got = 0;
    while (got < want) {
      const int n = SSL_read(ssl.get(), out.data() + got, static_cast<int>(want - got));
      if (n <= 0) break;
      got += n;
    }
    out.resize(got);
    if (reset) {
      const linger abort{1, 0};
      setsockopt(conn.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
    }
    return out;
  }

  int port_ = 0;
  UniqueFd listener_;
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
  std::future<std::string> received_;
};

config::SinkConfig tls_config(const std::string& host, int port, std::string ca_file) {
  auto c = sink_config(fmt::format("tls://{}:{}", host, port));
  c.ca_file = std::move(ca_file);
  return c;
}

TEST(SyslogSink, TlsVerifiesTheCollectorAndKeepsItsConnection) {
  const testing::TempDir dir;
  const Identity id("DNS:localhost,IP:127.0.0.1");
  dir.write("ca.pem", id.pem());
  const auto events = two_events();
  const std::string want =
      frame(expected(events[0])) + frame(expected(events[1])) + frame(expected(events[0]));
  // By address (the IP in the certificate) and by name (SNI; localhost may resolve to
  // ::1 first, where nobody listens: the next address is tried).
  for (const char* host : {"127.0.0.1", "localhost"}) {
    TlsCollector collector(id, want.size());
    auto sink = make_syslog_sink(tls_config(host, collector.port(), dir / "ca.pem"));
    ASSERT_TRUE(sink);
    const auto first = (*sink)->deliver(events);
    ASSERT_TRUE(first) << first.error().message();
    // TLS 1.3 session tickets are readable after the handshake: not a closed connection.
    const auto second = (*sink)->deliver(std::span(events).first(1));
    ASSERT_TRUE(second) << second.error().message();
    EXPECT_EQ(collector.received(), want) << host;
  }
}

TEST(SyslogSink, TlsRejectsAnUntrustedOrMisnamedCollector) {
  const testing::TempDir dir;
  const Identity stranger("DNS:localhost,IP:127.0.0.1");
  const Identity misnamed("DNS:collector.example");
  dir.write("misnamed.pem", misnamed.pem());
  const std::pair<const Identity*, std::string> cases[] = {{&stranger, ""},  // system CAs
                                                           {&misnamed, dir / "misnamed.pem"}};
  for (const auto& [id, ca] : cases) {
    TlsCollector collector(*id, 1);
    auto sink = make_syslog_sink(tls_config("127.0.0.1", collector.port(), ca));
    ASSERT_TRUE(sink);
    const auto status = (*sink)->deliver(two_events());
    ASSERT_FALSE(status);
    EXPECT_NE(status.error().message().find(fmt::format(
                  "syslog sink 'siem': tls handshake 'tls://127.0.0.1:{}': certificate verify "
                  "failed: ",
                  collector.port())),
              std::string::npos)
        << status.error().message();
    EXPECT_EQ(collector.received(), "(handshake failed)");
  }
}

TEST(SyslogSink, TlsWithoutVerificationTrustsAnyCollector) {
  const Identity misnamed("DNS:collector.example");
  const auto events = two_events();
  const std::string want = frame(expected(events[0])) + frame(expected(events[1]));
  TlsCollector collector(misnamed, want.size());
  auto c = tls_config("127.0.0.1", collector.port(), "");
  c.tls_verify = false;
  auto sink = make_syslog_sink(c);
  ASSERT_TRUE(sink);
  const auto status = (*sink)->deliver(events);
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(collector.received(), want);
}

TEST(SyslogSink, TlsCollectorResetMidBatchIsAnError) {
  const testing::TempDir dir;
  const Identity id("DNS:localhost,IP:127.0.0.1");
  dir.write("ca.pem", id.pem());
  TlsCollector collector(id, 1000, /*reset=*/true);
  auto sink = make_syslog_sink(tls_config("127.0.0.1", collector.port(), dir / "ca.pem"));
  ASSERT_TRUE(sink);
  json big = full_event();
  big["message"] = std::string(7000, 'x');
  const std::vector<json> batch(3000, big);  // 21 MB: still writing when the reset comes
  const auto status = (*sink)->deliver(batch);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().message().find("send 'tls://127.0.0.1:"), std::string::npos)
      << status.error().message();
  EXPECT_EQ(collector.received().size(), 1000u);
}

}  // namespace
}  // namespace mamori::sinks
