// The link against a scripted manager in the same process: a real TLS server (a fresh
// self-signed certificate) speaking HTTP and WebSocket with Boost.Beast, played step by
// step by the test, so each promise of link.h is checked on the wire: the pin, the
// enrollment, hello, events, the cursor moving only on ack, a command's hand-off and
// result, bye, and duplicate-identity.

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>

#include "agent/link/credentials.h"
#include "agent/link/link.h"
#include "core/event/event.h"
#include "core/outbox/cursor.h"
#include "core/outbox/outbox.h"
#include "core/proto/channel.h"
#include "testing/temp_dir.h"

namespace mamori::link {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

// A self-signed EC certificate, PEM, and the SHA-256 of its DER.
struct Identity {
  std::string cert_pem, key_pem, fp;
};
Identity make_identity() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, key, EVP_sha256());
  Identity id;
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  id.cert_pem.assign(p, static_cast<size_t>(n));
  BIO_free(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  n = BIO_get_mem_data(b, &p);
  id.key_pem.assign(p, static_cast<size_t>(n));
  BIO_free(b);
  unsigned char md[32];
  unsigned int len = 0;
  X509_digest(x, EVP_sha256(), md, &len);
  for (unsigned i = 0; i < len; ++i) id.fp += fmt::format("{:02x}", md[i]);
  X509_free(x);
  EVP_PKEY_free(key);
  return id;
}

using TlsSocket = beast::ssl_stream<tcp::socket>;

// The manager's side, driven by the test on its own thread with blocking calls.
class ScriptedManager {
 public:
  ScriptedManager() : id_(make_identity()), ctx_(asio::ssl::context::tls_server), acc_(ioc_) {
    ctx_.use_certificate_chain(asio::buffer(id_.cert_pem));
    ctx_.use_private_key(asio::buffer(id_.key_pem), asio::ssl::context::pem);
    acc_.open(tcp::v4());
    acc_.set_option(tcp::acceptor::reuse_address(true));
    acc_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acc_.listen();
  }
  std::string url() const {
    return fmt::format("https://127.0.0.1:{}", acc_.local_endpoint().port());
  }
  const std::string& fp() const { return id_.fp; }

  // Accepts one connection and reads its HTTP request (after TLS).
  std::unique_ptr<TlsSocket> accept(http::request<http::string_body>& req) {
    auto s = std::make_unique<TlsSocket>(acc_.accept(), ctx_);
    s->handshake(asio::ssl::stream_base::server);
    beast::flat_buffer buf;
    http::read(*s, buf, req);
    return s;
  }
  // Answers an enrollment.
  void enroll_ok(TlsSocket& s, const std::string& key, const std::string& credential) {
    http::response<http::string_body> res{http::status::ok, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = proto::channel::encode(proto::channel::EnrollAnswer{key, credential, 1, 10});
    res.prepare_payload();
    http::write(s, res);
  }
  std::unique_ptr<websocket::stream<TlsSocket>> upgrade(
      std::unique_ptr<TlsSocket> s, const http::request<http::string_body>& req) {
    auto ws = std::make_unique<websocket::stream<TlsSocket>>(std::move(*s));
    ws->accept(req);
    ws->text(true);
    return ws;
  }
  // The next message that is not a heartbeat.
  static json read(websocket::stream<TlsSocket>& ws, int* heartbeats = nullptr) {
    while (true) {
      beast::flat_buffer buf;
      ws.read(buf);
      json j = json::parse(beast::buffers_to_string(buf.data()));
      if (j["type"] == "heartbeat") {
        if (heartbeats) ++*heartbeats;
        continue;
      }
      return j;
    }
  }
  static void send(websocket::stream<TlsSocket>& ws, const json& j) {
    ws.write(asio::buffer(j.dump()));
  }

 private:
  Identity id_;
  asio::io_context ioc_;
  asio::ssl::context ctx_;
  tcp::acceptor acc_;
};

const std::string kSecret = proto::channel::base64url(std::string(32, '\x21'));

class LinkChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto box = outbox::Outbox::open(env_, {dir_ / "outbox", "", {}, nullptr});
    ASSERT_TRUE(box);
    box_.emplace(std::move(*box));
    write(3);  // before the link: never sent
  }
  void write(int n) {
    for (int i = 0; i < n; ++i)
      box_->append(event::Event("file-restored", event::Severity::kWarning, 1));
    ASSERT_TRUE(box_->flush());
  }
  void write_token(const std::string& fp) {
    dir_.write("token", proto::channel::encode_token({manager_.url(), fp, kSecret}) + "\n", 0600);
  }
  std::unique_ptr<Link> make_link() {
    LinkOptions o;
    o.token_file = dir_ / "token";
    o.state_dir = dir_.path();
    o.outbox_dir = dir_ / "outbox";
    o.start_sequence = box_->next_sequence();
    o.agent_id = "00000000-0000-4000-8000-000000000001";
    o.agent_name = "web1";
    o.agent_version = "test";
    o.hostname = "web1";
    o.roots = {{"/srv/www", config::Mode::kRestore, false}};
    o.first_backoff_ms = 50;
    o.max_backoff_ms = 200;
    auto link = Link::create(env_, std::move(o));
    EXPECT_TRUE(link) << link.error().message();
    return link ? std::move(*link) : nullptr;
  }
  uint64_t cursor() {
    auto c = outbox::load_cursor(dir_ / "outbox", "manager");
    return c && *c ? **c : 0;
  }
  // Waits (at most 10 s) for `pred`, checking every few ms.
  template <class Pred>
  bool eventually(Pred pred) {
    for (int i = 0; i < 2000; ++i) {
      if (pred()) return true;
      env_.clock().wait(std::chrono::milliseconds(5));
    }
    return pred();
  }

  testing::TempDir dir_;
  RealEnv env_;
  std::optional<outbox::Outbox> box_;
  ScriptedManager manager_;
};

TEST_F(LinkChannelTest, EnrollsStreamsEventsMovesTheCursorOnAckRunsACommandAndSaysBye) {
  write_token(manager_.fp());
  auto link = make_link();
  ASSERT_TRUE(link);
  EXPECT_EQ(cursor(), 4u);  // registered at the head
  link->start();

  // Enrollment: the token's secret, this agent's identity.
  http::request<http::string_body> req;
  auto s = manager_.accept(req);
  EXPECT_EQ(req.target(), "/api/v1/enroll");
  auto enroll = proto::channel::decode_enroll_request(req.body());
  ASSERT_TRUE(enroll) << enroll.error().message;
  EXPECT_EQ(enroll->token_secret, kSecret);
  EXPECT_EQ(enroll->agent.id, "00000000-0000-4000-8000-000000000001");
  ASSERT_EQ(enroll->roots.size(), 1u);
  EXPECT_EQ(enroll->roots[0].mode, "restore");
  const std::string credential = proto::channel::base64url(std::string(32, '\x42'));
  manager_.enroll_ok(*s, "key-1", credential);
  s.reset();

  // The channel: the credential, hello, welcome.
  http::request<http::string_body> up;
  auto c = manager_.accept(up);
  EXPECT_EQ(up.target(), "/api/v1/channel");
  EXPECT_EQ(up[http::field::authorization], "Bearer key-1:" + credential);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "manager.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto ws = manager_.upgrade(std::move(c), up);
  json hello = ScriptedManager::read(*ws);
  EXPECT_EQ(hello["type"], "hello");
  EXPECT_EQ(hello["next_sequence"], 4);
  ScriptedManager::send(*ws, proto::channel::to_json(proto::channel::Welcome{1, 10}));

  write(5);  // 4..8
  link->notify();
  std::vector<uint64_t> seqs;
  while (seqs.size() < 5) {
    json m = ScriptedManager::read(*ws);
    ASSERT_EQ(m["type"], "events");
    for (const auto& e : m["events"]) seqs.push_back(e["event"]["sequence"]);
  }
  EXPECT_EQ(seqs, (std::vector<uint64_t>{4, 5, 6, 7, 8}));
  EXPECT_EQ(cursor(), 4u);  // sent, not acknowledged: the cursor stays
  EXPECT_EQ(link->status().state, proto::LinkState::kConnected);

  ScriptedManager::send(*ws, proto::channel::to_json(proto::channel::Ack{6}));
  ASSERT_TRUE(eventually([&] { return link->status().cursor == 7; }));

  // The manager dropped what it got after that ack (it was behind): everything not
  // acknowledged comes again, the first batch marked as the answer.
  ScriptedManager::send(*ws, proto::channel::to_json(proto::channel::Resend{}));
  json again = ScriptedManager::read(*ws);
  ASSERT_EQ(again["type"], "events");
  EXPECT_EQ(again.value("resent", false), true);
  seqs.clear();
  for (const auto& e : again["events"]) seqs.push_back(e["event"]["sequence"]);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{7, 8}));

  // A command: handed to the polling thread, answered by its handler, result back.
  ScriptedManager::send(*ws, proto::channel::to_json(proto::channel::Command{
                                 "cmd-1", json{{"v", 2}, {"cmd", "ping"}}}));
  pollfd p{link->command_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  json seen;
  link->serve_commands([&](const json& r) {
    seen = r;
    return json{{"v", 2}, {"ok", true}};
  });
  EXPECT_EQ(seen["cmd"], "ping");
  json result = ScriptedManager::read(*ws);
  EXPECT_EQ(result["type"], "result");
  EXPECT_EQ(result["command_id"], "cmd-1");
  EXPECT_EQ(result["answer"]["ok"], true);

  // A heartbeat comes every heartbeat_s (1 s here) while nothing else is sent.
  int heartbeats = 0;
  std::thread stopper;
  ScriptedManager::send(*ws, proto::channel::to_json(proto::channel::Ack{8}));
  // Orderly stop: bye, and the cursor (acked through 8) is saved.
  stopper = std::thread([&] {
    eventually([&] { return link->status().cursor == 9; });
    link->stop();
  });
  json bye = ScriptedManager::read(*ws, &heartbeats);
  EXPECT_EQ(bye["type"], "bye");
  beast::error_code ec;
  ws->close(websocket::close_code::normal, ec);
  stopper.join();
  EXPECT_EQ(cursor(), 9u);
  EXPECT_EQ(link->status().events_acked, 5u);
}

TEST_F(LinkChannelTest, AManagerWhoseCertificateDoesNotMatchThePinGetsNothing) {
  write_token(std::string(64, 'b'));
  auto link = make_link();
  ASSERT_TRUE(link);
  link->start();
  std::thread server([&] {
    // The TLS handshake completes (the client checks the pin after it); no request follows.
    http::request<http::string_body> req;
    try {
      manager_.accept(req);
      ADD_FAILURE() << "the link sent a request to an unpinned manager: " << req.target();
    } catch (const std::exception&) {
    }
  });
  ASSERT_TRUE(eventually([&] {
    return link->status().last_error.find("pinned fingerprint") != std::string::npos;
  })) << link->status().last_error;
  EXPECT_EQ(link->status().state, proto::LinkState::kEnrolling);
  link->stop();
  server.join();
  EXPECT_FALSE(load_credentials(dir_ / "manager.json").value());
}

TEST_F(LinkChannelTest, DuplicateIdentityDeletesTheCredentialAndEnrollsAgain) {
  write_token(manager_.fp());
  RealEnv env;
  ASSERT_TRUE(save_credentials(env, dir_ / "manager.json",
                               {manager_.url(), manager_.fp(), "cloned-key", "cred"}));
  auto link = make_link();
  ASSERT_TRUE(link);
  link->start();
  {
    http::request<http::string_body> up;
    auto c = manager_.accept(up);
    EXPECT_EQ(up[http::field::authorization], "Bearer cloned-key:cred");
    auto ws = manager_.upgrade(std::move(c), up);
    ScriptedManager::read(*ws);  // hello
    ScriptedManager::send(*ws, proto::channel::to_json(proto::channel::Error{
                                   std::string(proto::channel::kDuplicateIdentity), "in use"}));
    beast::error_code ec;
    ws->close(websocket::close_code::policy_error, ec);
  }
  http::request<http::string_body> req;
  auto s = manager_.accept(req);
  EXPECT_EQ(req.target(), "/api/v1/enroll");  // a new identity, with the token
  manager_.enroll_ok(*s, "key-2", proto::channel::base64url(std::string(32, '\x43')));
  s.reset();
  http::request<http::string_body> up;
  auto c = manager_.accept(up);
  EXPECT_NE(std::string(up[http::field::authorization]).find("Bearer key-2:"), std::string::npos);
  link->stop();
}

}  // namespace
}  // namespace mamori::link
