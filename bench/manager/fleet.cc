#include "bench/manager/fleet.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>

#include "core/event/event.h"
#include "core/fs/admin_files.h"
#include "core/proto/channel.h"
#include "core/proto/control.h"
#include "manager/server/tls_stream.h"

namespace mamori::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
namespace ch = proto::channel;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using EnrollStream = beast::ssl_stream<beast::tcp_stream>;
// The channels' TLS is the manager's own stream in its client role: OpenSSL on the socket,
// no BIO pair to copy through, so the tool leaves the shared cores to the manager.
using WsStream = websocket::stream<manager::TlsStream>;
using nlohmann::json;

constexpr const char* kVersion = "0.12.0";
constexpr const char* kRoot = "/var/www/html";
constexpr int64_t kFirstBackoffMs = 1000;
constexpr int64_t kMaxBackoffMs = 30'000;
constexpr char kProbePrefix[] = "bench-probe ";
constexpr size_t kProbePrefixLen = sizeof(kProbePrefix) - 1;

// Paths a WordPress site's tampering touches: each event names one (file.path varies, as
// the store's path index sees it in real life).
constexpr const char* kPaths[] = {
    "index.php",
    "wp-login.php",
    "wp-config.php",
    "xmlrpc.php",
    "wp-includes/version.php",
    "wp-includes/functions.php",
    "wp-includes/js/jquery/jquery.min.js",
    "wp-admin/admin-ajax.php",
    "wp-admin/includes/file.php",
    "wp-content/plugins/akismet/akismet.php",
    "wp-content/plugins/contact-form-7/wp-contact-form-7.php",
    "wp-content/themes/twentytwentyfour/functions.php",
    "wp-content/themes/twentytwentyfour/style.css",
    "wp-content/uploads/2024/05/shell.php",
    ".htaccess",
};

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

std::string random_hex(std::mt19937_64& rng, size_t bytes) {
  std::string raw(bytes, '\0');
  for (auto& c : raw) c = static_cast<char>(rng());
  return hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string uuid(std::mt19937_64& rng) {
  std::string h = random_hex(rng, 16);
  h[12] = '4';
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

// The server certificate against the pinned fingerprint (SHA-256 of its DER).
bool pin_matches(SSL* s, const std::string& fp) {
  X509* cert = SSL_get1_peer_certificate(s);
  if (!cert) return false;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const bool digested = X509_digest(cert, EVP_sha256(), md, &len) == 1;
  X509_free(cert);
  const std::string got = digested ? hex(md, len) : std::string();
  return got.size() == fp.size() && CRYPTO_memcmp(got.data(), fp.data(), fp.size()) == 0;
}

std::string host_header(const FleetOptions& o) {
  return (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) + ":" + o.port;
}

// The control protocol's answer a simulated agent gives: pong to ping, a status
// document to the commands that answer with one, "failed" to the rest.
json answer_to(const json& request, const AgentCredentials& c, int64_t started_ns) {
  auto r = proto::decode_request(request);
  if (!r) return proto::to_json(proto::Answer{r.error()});
  switch (r->command()) {
    case proto::Command::kPing:
      return proto::to_json(proto::Answer{proto::PingAnswer{}}, r->v);
    case proto::Command::kStatus:
    case proto::Command::kVerify:
    case proto::Command::kMode:
    case proto::Command::kResume: {
      proto::StatusAnswer a;
      a.status.pid = 1;
      a.status.backend = "fanotify";
      a.status.started_at_ns = started_ns;
      a.status.event_log = "/var/log/mamori/events.jsonl";
      a.status.manager.state = proto::LinkState::kConnected;
      a.status.manager.agent_key = c.agent_key;
      return proto::to_json(proto::Answer{a}, r->v);
    }
    default:
      return proto::to_json(
          proto::Answer{proto::ErrorAnswer{proto::ErrorCode::kFailed,
                                           "a simulated agent (bench_manager) does not do this",
                                           std::string(proto::command_name(r->command())),
                                           {}}},
          r->v);
  }
}

// What a command asks, without its id: the key its arrivals are grouped by.
std::string what_of(const json& request) {
  if (!request.is_object()) return request.dump();
  json j = request;
  j.erase("id");
  return j.dump();
}

}  // namespace

// ---- the credentials file --------------------------------------------------------------

Result<std::vector<AgentCredentials>> load_credentials(const std::string& path,
                                                       const std::string& fp) {
  const std::string text = MAMORI_TRY(fs::read_small_file(path, 64u << 20));
  std::istringstream in(text);
  std::string line;
  std::vector<AgentCredentials> out;
  if (!std::getline(in, line)) return out;
  const json head = json::parse(line, nullptr, false);
  if (!head.is_object() || head.value("fp", "") != fp) return out;  // another manager's
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object()) return fail("read the credentials file", path, EBADMSG, "a bad line");
    AgentCredentials c;
    c.agent_key = j.value("agent_key", "");
    c.credential = j.value("credential", "");
    c.agent_id = j.value("agent_id", "");
    c.hostname = j.value("hostname", "");
    c.next_sequence = j.value("next_sequence", uint64_t{1});
    out.push_back(std::move(c));
  }
  return out;
}

Status save_credentials(Env& env, const std::string& path, const std::string& url,
                        const std::string& fp, const std::vector<AgentCredentials>& agents) {
  std::string text = json{{"url", url}, {"fp", fp}}.dump() + "\n";
  for (const auto& c : agents)
    text += json{{"agent_key", c.agent_key},
                 {"credential", c.credential},
                 {"agent_id", c.agent_id},
                 {"hostname", c.hostname},
                 {"next_sequence", c.next_sequence}}
                .dump() +
            "\n";
  return fs::write_file_atomic(env, path, text, 0600);
}

// ---- the fleet ---------------------------------------------------------------------------

class Conn;

enum class State { kIdle, kConnecting, kOnline, kBackoff, kCut, kFrozen, kStopping, kStopped };

struct Batch {
  uint64_t through = 0;
  uint32_t events = 0;
  int64_t sent_mono_ns = 0;
  int64_t oldest_mono_ns = 0;
};

struct SimAgent {
  uint32_t index = 0;
  AgentCredentials c;
  State state = State::kIdle;
  std::deque<int64_t> pending;  // offered events (monotonic ns), oldest first
  std::deque<Batch> in_flight;
  std::deque<std::string> results;  // encoded, to send
  std::shared_ptr<Conn> conn;
  std::unique_ptr<asio::steady_timer> backoff_timer;
  int64_t backoff_ms = 0;
  int64_t last_sent_ns = 0;  // wall clock
  int64_t started_ns = 0;
  bool resent_next = false;  // the next batch answers the manager's resend
};

class Fleet::Impl {
 public:
  Impl(asio::io_context& io, const Clock& clock, FleetOptions o)
      : io_(io), clock_(clock), o_(std::move(o)), rng_(std::random_device{}()) {
    SSL_CTX_set_min_proto_version(tls_.native_handle(), TLS1_2_VERSION);
    tls_.set_verify_mode(ssl::verify_none);  // the pin is checked instead (pin_matches)
    check_frames();
  }

  asio::io_context& io_;
  const Clock& clock_;
  FleetOptions o_;
  ssl::context tls_{ssl::context::tls_client};
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<SimAgent>> agents_;
  std::vector<uint32_t> online_;  // indexes of online agents, for offer()
  bool online_dirty_ = true;
  std::deque<uint32_t> to_connect_;
  size_t connecting_ = 0;
  size_t backing_off_ = 0;
  FleetCounters counters_;
  std::vector<AckSample> acks_;
  bool record_acks_ = false;
  std::vector<CommandArrival> commands_;
  std::vector<Fleet::Probe> probes_;
  size_t probe_next_ = 0;
  size_t open_ = 0;  // channels whose socket is open
  size_t online_count_ = 0;

  // Every change of an agent's state goes through here (the online count follows).
  void set_state(SimAgent& a, State s) {
    if (a.state == State::kOnline && s != State::kOnline) {
      --online_count_;
      online_dirty_ = true;
    }
    if (a.state != State::kOnline && s == State::kOnline) {
      ++online_count_;
      online_dirty_ = true;
    }
    a.state = s;
  }

  int64_t mono() const { return clock_.monotonic_ns(); }
  int64_t wall() const { return clock_.now_ns(); }

  void connect_next();
  void start(SimAgent& a);
  // What was sent and not acknowledged is sent again (the outbox's cursor did not move).
  void requeue(SimAgent& a) {
    for (auto it = a.in_flight.rbegin(); it != a.in_flight.rend(); ++it)
      for (uint32_t i = 0; i < it->events; ++i) a.pending.push_front(it->oldest_mono_ns);
    a.in_flight.clear();
  }
  void ended(SimAgent& a, bool unexpected, const std::string& why);
  void welcomed(SimAgent& a) {
    set_state(a, State::kOnline);
    a.backoff_ms = 0;
  }

  // One event as the agent's outbox holds it (ECS, ~1 KB), as JSON text: made with fmt,
  // not nlohmann::json, whose allocations would cost the tool the CPU the manager needs on
  // a shared machine. Every string in it is plain ASCII without quotes or backslashes.
  // check_frames() proves at start-up that the codec reads such a frame as the events.
  std::string event_text(SimAgent& a, uint64_t seq, const std::string& action,
                         const std::string& source_ip) {
    const std::string t = event::iso_time(wall());
    // As the agent makes them (event.cc): the time in ms, then 80 random bits.
    const std::string id =
        fmt::format("{:012x}", static_cast<uint64_t>(wall() / 1'000'000)) + random_hex(rng_, 10);
    if (action == "ip-banned")
      return fmt::format(
          R"({{"@timestamp":"{t}","agent":{{"id":"{aid}","name":"{h}","type":"mamori","version":"{ver}"}},)"
          R"("ecs":{{"version":"8.11.0"}},"event":{{"action":"ip-banned","category":["network","intrusion_detection"],)"
          R"("created":"{t}","dataset":"mamori.logwatch","id":"{id}","kind":"alert","module":"mamori",)"
          R"("outcome":"success","reason":"decoy path requested","sequence":{seq},"severity":7,)"
          R"("type":["denied"]}},)"
          R"("host":{{"hostname":"{h}","name":"{h}"}},"message":"ip-banned {ip}","rule":{{"name":"decoy-url"}},)"
          R"("source":{{"ip":"{ip}"}},"url":{{"original":"/wp-admin/backup.zip"}}}})",
          fmt::arg("t", t), fmt::arg("aid", a.c.agent_id), fmt::arg("h", a.c.hostname),
          fmt::arg("ver", kVersion), fmt::arg("id", id), fmt::arg("seq", seq),
          fmt::arg("ip", source_ip));
    const std::string rel = kPaths[rng_() % std::size(kPaths)];
    const size_t slash = rel.rfind('/');
    const std::string name = slash == std::string::npos ? rel : rel.substr(slash + 1);
    const size_t dot = name.rfind('.');
    return fmt::format(
        R"({{"@timestamp":"{t}","agent":{{"id":"{aid}","name":"{h}","type":"mamori","version":"{ver}"}},)"
        R"("ecs":{{"version":"8.11.0"}},"event":{{"action":"{action}","category":["file","intrusion_detection"],)"
        R"("created":"{t}","dataset":"mamori.file","id":"{id}","kind":"alert","module":"mamori",)"
        R"("outcome":"success","sequence":{seq},"severity":5,"type":["change"]}},)"
        R"("file":{{"extension":"{ext}","hash":{{"sha256":"{sha}"}},"name":"{name}","path":"{root}/{rel}"}},)"
        R"("host":{{"hostname":"{h}","name":"{h}"}},)"
        R"("mamori":{{"baseline":{{"sha256":"{base}"}},"change":"modified","mode":"restore","path":"{rel}",)"
        R"("root":"{root}","trigger":"realtime"}},"message":"{action} '{root}/{rel}'",)"
        R"("process":{{"command_line":"php-fpm: pool www","executable":"/usr/sbin/php-fpm8.2",)"
        R"("parent":{{"executable":"/usr/sbin/php-fpm8.2","pid":812}},"pid":{pid}}},)"
        R"("user":{{"id":"33","name":"www-data"}}}})",
        fmt::arg("t", t), fmt::arg("aid", a.c.agent_id), fmt::arg("h", a.c.hostname),
        fmt::arg("ver", kVersion), fmt::arg("action", action), fmt::arg("id", id),
        fmt::arg("seq", seq), fmt::arg("ext", dot == std::string::npos ? "" : name.substr(dot + 1)),
        fmt::arg("sha", random_hex(rng_, 32)), fmt::arg("name", name), fmt::arg("root", kRoot),
        fmt::arg("rel", rel), fmt::arg("base", random_hex(rng_, 32)),
        fmt::arg("pid", 1000 + rng_() % 30000));
  }

  // An `events` message around events' JSON texts, the keys in the order ch::encode
  // writes them.
  static std::string events_frame(const std::vector<std::string>& events, bool resent = false) {
    return fmt::format(R"({{"events":[{}],{}"type":"events","v":{}}})", fmt::join(events, ","),
                       resent ? R"("resent":true,)" : "", ch::kVersion);
  }

  // The codec (ch::decode_agent_message, what the manager runs) reads a frame of
  // event_text()s as those events: checked once, before anything is sent.
  void check_frames() {
    SimAgent probe;
    probe.c.agent_id = "00000000-0000-4000-8000-000000000000";
    probe.c.hostname = "bench-check";
    const std::vector<std::string> texts = {event_text(probe, 7, "file-restored", ""),
                                            event_text(probe, 8, "ip-banned", "203.0.113.7")};
    auto m = ch::decode_agent_message(events_frame(texts));
    const auto* ev = m ? std::get_if<ch::Events>(&*m) : nullptr;
    if (!ev || ev->events.size() != 2 || ev->highest_sequence() != 8 ||
        !ev->events[0]["file"]["path"].get<std::string>().starts_with(kRoot) ||
        ev->events[1]["source"]["ip"] != "203.0.113.7") {
      std::fprintf(stderr, "bench_manager: the events frame does not decode: %s\n",
                   m ? "wrong content" : m.error().message.c_str());
      std::abort();
    }
  }

  // The next events batch of `a` (at most batch_events, when the window has room).
  std::optional<std::string> next_batch(SimAgent& a) {
    if (a.pending.empty() || a.in_flight.size() >= o_.max_in_flight) return std::nullopt;
    const size_t n = std::min(a.pending.size(), o_.batch_events);
    std::vector<std::string> texts;
    texts.reserve(n);
    Batch b;
    b.oldest_mono_ns = a.pending.front();
    for (size_t i = 0; i < n; ++i) {
      texts.push_back(event_text(a, a.c.next_sequence++, "file-restored", ""));
      a.pending.pop_front();
    }
    b.through = a.c.next_sequence - 1;
    b.events = static_cast<uint32_t>(n);
    b.sent_mono_ns = mono();
    a.in_flight.push_back(b);
    ++counters_.batches;
    counters_.events_sent += n;
    return events_frame(texts, std::exchange(a.resent_next, false));
  }

  void on_ack(SimAgent& a, uint64_t through) {
    const int64_t now = mono();
    while (!a.in_flight.empty() && a.in_flight.front().through <= through) {
      const Batch& b = a.in_flight.front();
      counters_.events_acked += b.events;
      if (record_acks_)
        acks_.push_back({now, now - b.sent_mono_ns, now - b.oldest_mono_ns, b.events});
      a.in_flight.pop_front();
    }
  }

  void on_command(SimAgent& a, const ch::Command& c) {
    commands_.push_back({a.index, wall(), c.command_id, what_of(c.request)});
    a.results.push_back(
        ch::encode(ch::CommandResult{c.command_id, answer_to(c.request, a.c, a.started_ns)}));
    ++counters_.results;
  }
};

// One channel attempt of one agent: TCP, TLS (pinned), the upgrade, hello/welcome, then a
// reader (acks, commands, errors) and one writer at a time (results, events, heartbeats).
class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(Fleet::Impl& f, SimAgent& a)
      : f_(f),
        a_(a),
        ws_(manager::TlsStream(tcp::socket(f.io_), f.tls_.native_handle(),
                               manager::TlsStream::Role::kClient)),
        hb_(f.io_) {}

  void start() {
    auto self = shared_from_this();
    const auto addr = asio::ip::make_address(f_.o_.host);
    const tcp::endpoint ep(addr, static_cast<uint16_t>(std::stoul(f_.o_.port)));
    auto& tls = ws_.next_layer();
    tls.expires_after(std::chrono::seconds(f_.o_.connect_timeout_s));
    tls.socket().async_connect(ep, [self](ErrorCode ec) {
      if (ec) return self->fail("connect: " + ec.message());
      ++self->f_.open_;
      self->socket_open_ = true;
      self->ws_.next_layer().async_handshake([self](ErrorCode ec2) {
        if (ec2) return self->fail("tls: " + ec2.message());
        if (!pin_matches(self->ws_.next_layer().native_handle(), self->f_.o_.fp))
          return self->fail("the manager's certificate does not match the fingerprint");
        self->upgrade();
      });
    });
  }

  // kill -9: the kernel closes the socket (FIN), no bye.
  void cut() {
    frozen_ = true;  // nothing more from this side
    hb_.cancel();
    close_socket();
  }

  // SIGSTOP: nothing read, nothing written, no heartbeat, no ping; the socket stays open.
  void freeze() {
    frozen_ = true;
    hb_.cancel();
    ws_.set_option(websocket::stream_base::timeout{websocket::stream_base::none(),
                                                   websocket::stream_base::none(), false});
  }

  void bye() {
    stopping_ = true;
    pump();
  }

  void pump() {
    if (!welcomed_ || writing_ || ended_ || frozen_ || closing_) return;
    std::string msg;
    if (!a_.results.empty()) {
      msg = std::move(a_.results.front());
      a_.results.pop_front();
    } else if (stopping_) {
      closing_ = true;
      msg = ch::encode(ch::Bye{"stopping"});
    } else if (auto b = f_.next_batch(a_)) {
      msg = std::move(*b);
    } else if (hb_due_) {
      hb_due_ = false;
      ++f_.counters_.heartbeats;
      msg = ch::encode(ch::Heartbeat{f_.wall(), true});
    } else {
      return;
    }
    write(std::move(msg));
  }

  void probe() {
    if (!welcomed_ || ended_ || frozen_ || closing_ || probing_) return;
    probing_ = true;
    probe_payload_ = fmt::format("{}{}", kProbePrefix, f_.mono());
    ws_.async_ping(websocket::ping_data(probe_payload_.c_str()),
                   [self = shared_from_this()](ErrorCode) { self->probing_ = false; });
  }

  // Sends `msg` now if nothing is being written, else ahead of the next pump.
  void send_now(std::string msg) {
    a_.results.push_front(std::move(msg));
    pump();
  }

 private:
  void upgrade() {
    auto self = shared_from_this();
    ws_.set_option(websocket::stream_base::decorator(
        [auth = "Bearer " + a_.c.agent_key + ":" + a_.c.credential](websocket::request_type& r) {
          r.set(http::field::authorization, auth);
          r.set(http::field::user_agent, std::string("mamori-agent/") + kVersion);
        }));
    ws_.read_message_max(ch::kMaxMessageBytes);
    ws_.async_handshake(res_, host_header(f_.o_), "/api/v1/channel", [self](ErrorCode ec) {
      if (ec)
        return self->fail(
            fmt::format("upgrade (HTTP {}): {}", self->res_.result_int(), ec.message()));
      self->ws_.text(true);
      self->hello();
    });
  }

  void hello() {
    const ch::Hello h{{a_.c.agent_id, a_.c.hostname, kVersion},
                      {a_.c.hostname, ""},
                      {{kRoot, "restore"}, {"/etc/nginx", "alert"}},
                      std::string(64, 'a'),
                      a_.c.next_sequence};
    out_ = ch::encode(h);
    auto self = shared_from_this();
    ws_.async_write(asio::buffer(out_), [self](ErrorCode ec, size_t) {
      if (ec) return self->fail("hello: " + ec.message());
      self->ws_.async_read(self->in_, [self](ErrorCode ec2, size_t) { self->on_welcome(ec2); });
    });
  }

  void on_welcome(ErrorCode ec) {
    if (ec) return fail("waiting for welcome: " + ec.message());
    auto m = ch::decode_manager_message(beast::buffers_to_string(in_.data()));
    in_.consume(in_.size());
    const auto* w = m ? std::get_if<ch::Welcome>(&*m) : nullptr;
    if (!w) return fail("the manager's first message is not a welcome");
    hb_ms_ = std::clamp<int64_t>(w->heartbeat_s, 1, 3600) * 1000;
    // The link's settings: the WebSocket pings a manager it has not heard from for half of
    // its idle timeout, and gives up after kManagerSilenceFactor * lost_after. No close timeout:
    // this side never starts a close (after bye the manager closes), and Beast 1.74 asserts when a
    // close times out while a read is pending (boostorg/beast#1760, #2264).
    ws_.next_layer().expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = websocket::stream_base::none();
    t.idle_timeout =
        std::chrono::seconds(ch::kManagerSilenceFactor * std::max<int64_t>(w->lost_after_s, 2));
    t.keep_alive_pings = true;
    ws_.set_option(t);
    // A pong whose payload is a probe's (probe()) gives the manager's round trip.
    ws_.control_callback([&f = f_](websocket::frame_type kind, beast::string_view payload) {
      if (kind != websocket::frame_type::pong || !payload.starts_with(kProbePrefix)) return;
      const std::string text(payload.data() + kProbePrefixLen, payload.size() - kProbePrefixLen);
      const int64_t sent = std::strtoll(text.c_str(), nullptr, 10);
      f.probes_.push_back({f.mono(), f.mono() - sent});
    });
    welcomed_ = true;
    f_.welcomed(a_);
    ++f_.counters_.connects;
    --f_.connecting_;
    f_.connect_next();
    read();
    // The first heartbeat at a random point of the period, so the fleet's are spread.
    arm_heartbeat(static_cast<int64_t>(f_.rng_() % static_cast<uint64_t>(hb_ms_)) + 1);
    pump();
  }

  void arm_heartbeat(int64_t ms) {
    auto self = shared_from_this();
    hb_.expires_after(std::chrono::milliseconds(ms));
    hb_.async_wait([self](ErrorCode ec) {
      if (ec || self->ended_ || self->frozen_) return;
      self->hb_due_ = true;
      self->pump();
      // Each period drawn in +-10 %: no two agents stay in step.
      const int64_t spread = self->hb_ms_ / 5;
      self->arm_heartbeat(self->hb_ms_ - spread / 2 +
                          static_cast<int64_t>(self->f_.rng_() % static_cast<uint64_t>(spread)));
    });
  }

  void read() {
    auto self = shared_from_this();
    ws_.async_read(in_, [self](ErrorCode ec, size_t) {
      if (ec) return self->end(!self->closing_, "reading: " + ec.message());
      if (self->frozen_) return;  // a stopped process reads nothing more
      const std::string text = beast::buffers_to_string(self->in_.data());
      self->in_.consume(self->in_.size());
      self->on_message(text);
      if (!self->ended_) self->read();
    });
  }

  void on_message(const std::string& text) {
    auto m = ch::decode_manager_message(text);
    if (!m) return end(true, "the manager sent a bad message: " + m.error().message);
    if (const auto* ack = std::get_if<ch::Ack>(&*m)) {
      f_.on_ack(a_, ack->through_sequence);
      pump();
    } else if (const auto* c = std::get_if<ch::Command>(&*m)) {
      f_.on_command(a_, *c);
      pump();
    } else if (const auto* e = std::get_if<ch::Error>(&*m)) {
      ++f_.counters_.manager_errors;
      end(true, fmt::format("the manager said {}: {}", e->code, e->message));
    } else if (std::holds_alternative<ch::Resend>(*m)) {
      ++f_.counters_.resends;
      f_.requeue(a_);
      a_.resent_next = true;
      pump();
    }
  }

  void write(std::string msg) {
    writing_ = true;
    out_ = std::move(msg);
    a_.last_sent_ns = f_.wall();
    auto self = shared_from_this();
    ws_.async_write(asio::buffer(out_), [self](ErrorCode ec, size_t) {
      self->writing_ = false;
      if (ec) return self->end(!self->closing_, "writing: " + ec.message());
      // After bye the manager closes the channel; the read sees it and ends this one.
      if (self->closing_) return;
      self->pump();
    });
  }

  // Before the welcome: the attempt failed (counted apart from channels that ended).
  void fail(const std::string& why) {
    --f_.connecting_;
    ++f_.counters_.connect_failures;
    f_.counters_.last_error = why;
    end(false, why);
    f_.connect_next();
  }

  void end(bool unexpected, const std::string& why) {
    if (ended_) return;
    ended_ = true;
    hb_.cancel();
    close_socket();
    asio::post(f_.io_, [&f = f_, &a = a_, unexpected, why, self = shared_from_this()] {
      if (a.conn == self) f.ended(a, unexpected, why);
    });
  }

  void close_socket() {
    ErrorCode ignored;
    ws_.next_layer().socket().close(ignored);
    if (socket_open_) --f_.open_;
    socket_open_ = false;
  }

  Fleet::Impl& f_;
  SimAgent& a_;
  WsStream ws_;
  asio::steady_timer hb_;
  websocket::response_type res_;
  beast::flat_buffer in_;
  std::string out_;
  int64_t hb_ms_ = 2000;
  bool welcomed_ = false, writing_ = false, hb_due_ = false, frozen_ = false;
  bool stopping_ = false, closing_ = false, ended_ = false, socket_open_ = false;
  bool probing_ = false;
  std::string probe_payload_;
};

void Fleet::Impl::connect_next() {
  while (connecting_ < o_.connect_concurrency && !to_connect_.empty()) {
    SimAgent& a = *agents_[to_connect_.front()];
    to_connect_.pop_front();
    if (a.state != State::kIdle) continue;
    start(a);
  }
}

void Fleet::Impl::start(SimAgent& a) {
  ++connecting_;
  set_state(a, State::kConnecting);
  if (!a.started_ns) a.started_ns = wall();
  a.conn = std::make_shared<Conn>(*this, a);
  a.conn->start();
}

void Fleet::Impl::ended(SimAgent& a, bool unexpected, const std::string& why) {
  requeue(a);
  if (a.state == State::kCut || a.state == State::kFrozen) return;
  if (a.state == State::kStopping) {
    set_state(a, State::kStopped);
    return;
  }
  if (unexpected) {
    ++counters_.ended_unexpectedly;
    counters_.last_error = why;
    ++counters_.end_reasons[why];
  }
  // Back-off with jitter, as the agent's link does.
  set_state(a, State::kBackoff);
  a.backoff_ms = a.backoff_ms ? std::min(a.backoff_ms * 2, kMaxBackoffMs) : kFirstBackoffMs;
  std::uniform_int_distribution<int64_t> jitter(a.backoff_ms * 3 / 4, a.backoff_ms * 5 / 4);
  if (!a.backoff_timer) a.backoff_timer = std::make_unique<asio::steady_timer>(io_);
  a.backoff_timer->expires_after(std::chrono::milliseconds(jitter(rng_)));
  ++backing_off_;
  a.backoff_timer->async_wait([this, &a](ErrorCode) {
    --backing_off_;
    if (a.state != State::kBackoff) return;
    set_state(a, State::kIdle);
    ++counters_.reconnects;
    to_connect_.push_back(a.index);
    connect_next();
  });
}

// ---- Fleet -------------------------------------------------------------------------------

Fleet::Fleet(asio::io_context& io, const Clock& clock, FleetOptions o)
    : impl_(std::make_unique<Impl>(io, clock, std::move(o))) {}
Fleet::~Fleet() = default;

void Fleet::add(std::vector<AgentCredentials> agents) {
  for (auto& c : agents) {
    auto a = std::make_unique<SimAgent>();
    a->index = static_cast<uint32_t>(impl_->agents_.size());
    a->c = std::move(c);
    impl_->agents_.push_back(std::move(a));
  }
}

std::vector<AgentCredentials> Fleet::credentials() const {
  std::vector<AgentCredentials> out;
  for (const auto& a : impl_->agents_) out.push_back(a->c);
  return out;
}

size_t Fleet::size() const { return impl_->agents_.size(); }

// One POST /api/v1/enroll.
class Enroller : public std::enable_shared_from_this<Enroller> {
 public:
  using Done = std::function<void(std::optional<AgentCredentials>, const std::string&)>;
  Enroller(Fleet::Impl& f, std::string body, AgentCredentials c, Done done)
      : f_(f), stream_(f.io_, f.tls_), c_(std::move(c)), done_(std::move(done)) {
    req_ = {http::verb::post, "/api/v1/enroll", 11};
    req_.set(http::field::host, host_header(f.o_));
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::user_agent, std::string("mamori-agent/") + kVersion);
    req_.body() = std::move(body);
    req_.prepare_payload();
  }

  void run() {
    auto self = shared_from_this();
    const tcp::endpoint ep(asio::ip::make_address(f_.o_.host),
                           static_cast<uint16_t>(std::stoul(f_.o_.port)));
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(stream_).async_connect(ep, [self](ErrorCode ec) {
      if (ec) return self->finish("connect: " + ec.message());
      self->stream_.async_handshake(ssl::stream_base::client, [self](ErrorCode ec2) {
        if (ec2) return self->finish("tls: " + ec2.message());
        if (!pin_matches(self->stream_.native_handle(), self->f_.o_.fp))
          return self->finish("the manager's certificate does not match the fingerprint");
        http::async_write(self->stream_, self->req_, [self](ErrorCode ec3, size_t) {
          if (ec3) return self->finish("enroll: " + ec3.message());
          http::async_read(self->stream_, self->buf_, self->res_, [self](ErrorCode ec4, size_t) {
            if (ec4) return self->finish("enroll: " + ec4.message());
            if (self->res_.result() != http::status::ok)
              return self->finish(fmt::format("enroll: HTTP {}: {}", self->res_.result_int(),
                                              self->res_.body().substr(0, 200)));
            auto a = ch::decode_enroll_answer(self->res_.body());
            if (!a) return self->finish("enroll: " + a.error().message);
            self->c_.agent_key = a->agent_key;
            self->c_.credential = a->credential;
            self->finish("");
          });
        });
      });
    });
  }

 private:
  void finish(const std::string& error) {
    ErrorCode ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
    if (error.empty())
      done_(std::move(c_), error);
    else
      done_(std::nullopt, error);
  }

  Fleet::Impl& f_;
  EnrollStream stream_;
  AgentCredentials c_;
  Done done_;
  http::request<http::string_body> req_;
  beast::flat_buffer buf_;
  http::response<http::string_body> res_;
};

void Fleet::enroll(size_t count, const std::string& token_secret, const std::string& name_prefix,
                   std::function<void()> done) {
  struct Job {
    size_t next = 0, answered = 0, count = 0;
    std::string secret, prefix;
    std::function<void()> done;
    std::function<void()> launch;
  };
  auto job = std::make_shared<Job>();
  job->count = count;
  job->secret = token_secret;
  job->prefix = name_prefix;
  job->done = std::move(done);
  Impl& f = *impl_;
  const size_t base = impl_->agents_.size();
  job->launch = [&f, job, base, this] {
    const size_t i = job->next++;
    AgentCredentials c;
    c.agent_id = uuid(f.rng_);
    c.hostname = fmt::format("{}{:05}", job->prefix, base + i);
    const ch::EnrollRequest req{job->secret,
                                {c.hostname, random_hex(f.rng_, 16)},
                                {c.agent_id, c.hostname, kVersion},
                                {{kRoot, "restore"}, {"/etc/nginx", "alert"}},
                                std::string(64, 'a')};
    std::make_shared<Enroller>(
        f, ch::encode(req), std::move(c),
        [&f, job, this](std::optional<AgentCredentials> got, const std::string& error) {
          ++job->answered;
          if (got) {
            ++f.counters_.enrolled;
            add({std::move(*got)});
          } else {
            ++f.counters_.enroll_failures;
            f.counters_.last_error = error;
          }
          if (job->next < job->count) job->launch();
          if (job->answered == job->count) {
            auto d = std::move(job->done);
            job->launch = nullptr;  // the cycle job -> launch -> job
            d();
          }
        })
        ->run();
  };
  if (count == 0) return job->done();
  for (size_t i = 0; i < std::min(count, impl_->o_.enroll_concurrency); ++i) job->launch();
}

void Fleet::connect_all() {
  for (const auto& a : impl_->agents_)
    if (a->state == State::kIdle) impl_->to_connect_.push_back(a->index);
  impl_->connect_next();
}

size_t Fleet::online() const { return impl_->online_count_; }

size_t Fleet::connecting() const {
  return impl_->connecting_ + impl_->backing_off_ + impl_->to_connect_.size();
}

void Fleet::offer(size_t n) {
  Impl& f = *impl_;
  if (f.online_dirty_) {
    f.online_.clear();
    for (const auto& a : f.agents_)
      if (a->state == State::kOnline) f.online_.push_back(a->index);
    f.online_dirty_ = false;
  }
  if (f.online_.empty()) return;
  const int64_t now = f.mono();
  std::vector<uint32_t> touched;
  touched.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    SimAgent& a = *f.agents_[f.online_[f.rng_() % f.online_.size()]];
    a.pending.push_back(now);
    touched.push_back(a.index);
  }
  for (uint32_t i : touched)
    if (auto& c = f.agents_[i]->conn) c->pump();
}

size_t Fleet::backlog() const {
  size_t n = 0;
  for (const auto& a : impl_->agents_) {
    n += a->pending.size();
    for (const auto& b : a->in_flight) n += b.events;
  }
  return n;
}

namespace {

template <typename F>
std::vector<std::pair<std::string, int64_t>> each_online(Fleet::Impl& f, size_t first, size_t count,
                                                         F&& act) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t i = first; i < f.agents_.size() && out.size() < count; ++i) {
    SimAgent& a = *f.agents_[i];
    if (a.state != State::kOnline || !a.conn) continue;
    out.emplace_back(a.c.agent_key, act(a));
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, int64_t>> Fleet::cut(size_t first, size_t count) {
  return each_online(*impl_, first, count, [this](SimAgent& a) {
    impl_->set_state(a, State::kCut);
    const int64_t at = impl_->wall();
    a.conn->cut();
    return at;
  });
}

std::vector<std::pair<std::string, int64_t>> Fleet::freeze(size_t first, size_t count) {
  return each_online(*impl_, first, count, [this](SimAgent& a) {
    impl_->set_state(a, State::kFrozen);
    const int64_t at = impl_->wall();
    a.conn->freeze();
    return at;
  });
}

std::vector<std::pair<std::string, int64_t>> Fleet::last_sent(size_t first, size_t count) const {
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t i = first; i < impl_->agents_.size() && out.size() < count; ++i)
    if (impl_->agents_[i]->state == State::kFrozen)
      out.emplace_back(impl_->agents_[i]->c.agent_key, impl_->agents_[i]->last_sent_ns);
  return out;
}

void Fleet::revive() {
  for (auto& a : impl_->agents_) {
    if (a->state != State::kCut && a->state != State::kFrozen) continue;
    if (a->conn) a->conn->cut();
    a->conn.reset();
    impl_->requeue(*a);
    impl_->set_state(*a, State::kIdle);
    impl_->to_connect_.push_back(a->index);
  }
  impl_->connect_next();
}

int64_t Fleet::send_event_now(size_t index, const std::string& action,
                              const std::string& source_ip) {
  if (index >= impl_->agents_.size()) return 0;
  SimAgent& a = *impl_->agents_[index];
  if (a.state != State::kOnline || !a.conn) return 0;
  const std::string frame =
      impl_->events_frame({impl_->event_text(a, a.c.next_sequence++, action, source_ip)});
  a.in_flight.push_back({a.c.next_sequence - 1, 1, impl_->mono(), impl_->mono()});
  const int64_t at = impl_->wall();
  a.conn->send_now(frame);
  return at;
}

void Fleet::stop() {
  for (auto& a : impl_->agents_) {
    if (a->backoff_timer) a->backoff_timer->cancel();
    if (a->state == State::kFrozen && a->conn) a->conn->cut();
    if (a->state != State::kOnline || !a->conn) continue;
    impl_->set_state(*a, State::kStopping);
    a->conn->bye();
  }
  impl_->to_connect_.clear();
}

void Fleet::probe(size_t count) {
  Impl& f = *impl_;
  if (f.agents_.empty()) return;
  for (size_t tried = 0; count > 0 && tried < f.agents_.size(); ++tried) {
    SimAgent& a = *f.agents_[f.probe_next_++ % f.agents_.size()];
    if (a.state != State::kOnline || !a.conn) continue;
    a.conn->probe();
    --count;
  }
}

std::vector<Fleet::Probe>& Fleet::probes() { return impl_->probes_; }

size_t Fleet::open_channels() const { return impl_->open_; }
FleetCounters& Fleet::counters() { return impl_->counters_; }
std::vector<AckSample>& Fleet::acks() { return impl_->acks_; }
std::vector<CommandArrival>& Fleet::commands() { return impl_->commands_; }
void Fleet::record_acks(bool on) { impl_->record_acks_ = on; }

}  // namespace mamori::bench
