// TlsStream against Asio's own TLS client on loopback, in one thread: what the manager's
// HTTP and WebSocket code relies on (messages of every size both ways, one read and one
// write pending at once, the close handshake), and what a hostile or dead peer does to it
// (a reset during a write, silence past the deadline, bytes that are not TLS).

#include "manager/server/tls_stream.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "core/base/env.h"
#include "manager/server/identity.h"
#include "testing/temp_dir.h"

namespace mamori::manager {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using beast::error_code;
using tcp = asio::ip::tcp;
using ServerWs = websocket::stream<TlsStream>;
using ClientWs = websocket::stream<beast::ssl_stream<tcp::socket>>;

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RealEnv env;
    auto id = load_or_create_identity(env, dir_.path(), "localhost");
    ASSERT_TRUE(id) << id.error().message();
    server_ctx_.use_certificate_chain(asio::buffer(id->cert_pem));
    server_ctx_.use_private_key(asio::buffer(id->key_pem), ssl::context::pem);
    client_ctx_.set_verify_mode(ssl::verify_none);  // the pin is the link's business
    acceptor_.open(tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
  }

  // A connected pair of TCP sockets: (server side, client side).
  std::pair<tcp::socket, tcp::socket> connect() {
    tcp::socket client(io_);
    client.connect(acceptor_.local_endpoint());
    tcp::socket server = acceptor_.accept();
    return {std::move(server), std::move(client)};
  }

  // Runs the loop until `done` or 10 s.
  template <class Pred>
  bool run_until(Pred done) {
    io_.restart();
    const auto until = clock_.monotonic() + std::chrono::seconds(10);
    while (!done() && clock_.monotonic() < until) {
      io_.run_for(std::chrono::milliseconds(10));
      io_.restart();
    }
    return done();
  }

  // Both ends of an accepted WebSocket over TLS.
  void open_websockets(std::optional<ServerWs>& server, std::optional<ClientWs>& client) {
    auto [s, c] = connect();
    server.emplace(TlsStream(std::move(s), server_ctx_.native_handle()));
    client.emplace(std::move(c), client_ctx_);
    std::optional<error_code> accepted, handshaken;
    server->next_layer().async_handshake([&](error_code ec) {
      if (ec) {
        accepted = ec;
        return;
      }
      server->async_accept([&](error_code ec2) { accepted = ec2; });
    });
    client->next_layer().async_handshake(ssl::stream_base::client, [&](error_code ec) {
      if (ec) {
        handshaken = ec;
        return;
      }
      client->async_handshake("localhost", "/", [&](error_code ec2) { handshaken = ec2; });
    });
    ASSERT_TRUE(run_until([&] { return accepted && handshaken; }));
    ASSERT_FALSE(*accepted) << accepted->message();
    ASSERT_FALSE(*handshaken) << handshaken->message();
  }

  SystemClock clock_;
  testing::TempDir dir_;
  asio::io_context io_;
  ssl::context server_ctx_{ssl::context::tls_server};
  ssl::context client_ctx_{ssl::context::tls_client};
  tcp::acceptor acceptor_{io_};
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
  return s;
}

TEST_F(TlsStreamTest, MessagesOfEverySizeBothWaysWhileBothSidesReadAndWrite) {
  std::optional<ServerWs> server;
  std::optional<ClientWs> client;
  ASSERT_NO_FATAL_FAILURE(open_websockets(server, client));
  server->read_message_max(8 << 20);
  client->read_message_max(8 << 20);
  for (size_t n : {size_t{1}, size_t{125}, size_t{126}, size_t{16383}, size_t{16384}, size_t{16385},
                   size_t{70000}, size_t{3} << 20}) {
    SCOPED_TRACE(n);
    const std::string up = pattern(n), down = pattern(n + 5);
    beast::flat_buffer server_in, client_in;
    int done = 0;
    // The server reads and writes at once, as an agent's channel does.
    server->async_read(server_in, [&](error_code ec, size_t) {
      EXPECT_FALSE(ec) << ec.message();
      ++done;
    });
    server->async_write(asio::buffer(down), [&](error_code ec, size_t) {
      EXPECT_FALSE(ec) << ec.message();
      ++done;
    });
    client->async_write(asio::buffer(up), [&](error_code ec, size_t) {
      EXPECT_FALSE(ec) << ec.message();
      ++done;
    });
    client->async_read(client_in, [&](error_code ec, size_t) {
      EXPECT_FALSE(ec) << ec.message();
      ++done;
    });
    ASSERT_TRUE(run_until([&] { return done == 4; }));
    EXPECT_EQ(beast::buffers_to_string(server_in.data()), up);
    EXPECT_EQ(beast::buffers_to_string(client_in.data()), down);
  }

  // The close handshake, initiated by the client: the server's read ends with `closed`
  // once its teardown (TLS close_notify both ways) is done, and the socket is closed.
  beast::flat_buffer in;
  std::optional<error_code> server_end, client_end;
  server->async_read(in, [&](error_code ec, size_t) {
    if (!ec)
      server->async_read(in, [&](error_code ec2, size_t) { server_end = ec2; });
    else
      server_end = ec;
  });
  client->async_close(websocket::close_code::normal, [&](error_code ec) { client_end = ec; });
  ASSERT_TRUE(run_until([&] { return server_end && client_end; }));
  EXPECT_EQ(*server_end, websocket::error::closed) << server_end->message();
  EXPECT_FALSE(*client_end) << client_end->message();
  EXPECT_FALSE(server->next_layer().socket().is_open());
}

TEST_F(TlsStreamTest, ItsClientRoleTalksToItsServerRole) {
  // bench/manager's simulated agents: the client connects its socket after construction.
  tcp::socket client_socket(io_);
  std::optional<ServerWs> server;
  websocket::stream<TlsStream> client(
      TlsStream(std::move(client_socket), client_ctx_.native_handle(), TlsStream::Role::kClient));
  std::optional<error_code> accepted, handshaken;
  acceptor_.async_accept([&](error_code ec, tcp::socket s) {
    ASSERT_FALSE(ec) << ec.message();
    server.emplace(TlsStream(std::move(s), server_ctx_.native_handle()));
    server->next_layer().async_handshake([&](error_code ec2) {
      if (ec2) {
        accepted = ec2;
        return;
      }
      server->async_accept([&](error_code ec3) { accepted = ec3; });
    });
  });
  client.next_layer().socket().async_connect(acceptor_.local_endpoint(), [&](error_code ec) {
    if (ec) {
      handshaken = ec;
      return;
    }
    client.next_layer().async_handshake([&](error_code ec2) {
      if (ec2) {
        handshaken = ec2;
        return;
      }
      client.async_handshake("localhost", "/", [&](error_code ec3) { handshaken = ec3; });
    });
  });
  ASSERT_TRUE(run_until([&] { return accepted && handshaken; }));
  ASSERT_FALSE(*accepted) << accepted->message();
  ASSERT_FALSE(*handshaken) << handshaken->message();
  EXPECT_NE(SSL_get0_peer_certificate(client.next_layer().native_handle()), nullptr);
  const std::string up = pattern(100'000);
  beast::flat_buffer in;
  bool read = false;
  server->async_read(in, [&](error_code ec, size_t) {
    EXPECT_FALSE(ec) << ec.message();
    read = true;
  });
  client.async_write(asio::buffer(up), [](error_code ec, size_t) { EXPECT_FALSE(ec); });
  ASSERT_TRUE(run_until([&] { return read; }));
  EXPECT_EQ(beast::buffers_to_string(in.data()), up);
}

TEST_F(TlsStreamTest, APeerThatResetTheConnectionFailsReadsAndWritesWithoutSigpipe) {
  std::optional<ServerWs> server;
  std::optional<ClientWs> client;
  ASSERT_NO_FATAL_FAILURE(open_websockets(server, client));
  // The client goes away with a reset and never reads: the server's writes must fail
  // (EPIPE or ECONNRESET), not raise SIGPIPE, which would end this process.
  auto& raw = beast::get_lowest_layer(*client);
  raw.set_option(asio::socket_base::linger(true, 0));
  raw.close();
  // A read meets the reset first (ECONNRESET), as the channel's pending read does; the
  // write after it meets EPIPE.
  TlsStream& tls = server->next_layer();
  std::optional<error_code> read_failed, write_failed;
  char byte = 0;
  tls.async_read_some(asio::buffer(&byte, 1), [&](error_code ec, size_t) { read_failed = ec; });
  ASSERT_TRUE(run_until([&] { return read_failed.has_value(); }));
  EXPECT_TRUE(*read_failed);
  const std::string big = pattern(1 << 20);
  asio::async_write(tls, asio::buffer(big), [&](error_code ec, size_t) { write_failed = ec; });
  ASSERT_TRUE(run_until([&] { return write_failed.has_value(); }));
  EXPECT_TRUE(*write_failed);
}

TEST_F(TlsStreamTest, ASilentPeerIsCutOffAtTheDeadline) {
  auto [s, c] = connect();
  TlsStream server(std::move(s), server_ctx_.native_handle());
  server.expires_after(std::chrono::milliseconds(200));
  std::optional<error_code> result;
  const auto start = clock_.monotonic();
  server.async_handshake([&](error_code ec) { result = ec; });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  const auto took = clock_.monotonic() - start;
  EXPECT_EQ(*result, asio::error::operation_aborted) << result->message();
  EXPECT_GE(took, std::chrono::milliseconds(190));
  EXPECT_LT(took, std::chrono::seconds(2));
  EXPECT_FALSE(server.socket().is_open());
  // Once closed, nothing reaches OpenSSL (the descriptor's number may be another's now).
  std::optional<error_code> after;
  char byte = 0;
  server.async_read_some(asio::buffer(&byte, 1), [&](error_code ec, size_t) { after = ec; });
  ASSERT_TRUE(run_until([&] { return after.has_value(); }));
  EXPECT_EQ(*after, asio::error::bad_descriptor);
}

TEST_F(TlsStreamTest, BytesThatAreNotTlsFailTheHandshake) {
  auto [s, c] = connect();
  TlsStream server(std::move(s), server_ctx_.native_handle());
  asio::write(c, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::optional<error_code> result;
  server.async_handshake([&](error_code ec) { result = ec; });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  EXPECT_TRUE(*result);
  EXPECT_EQ(result->category(), asio::error::get_ssl_category()) << result->message();
}

TEST_F(TlsStreamTest, TheStreamMovesWhileItsDeadlineIsArmed) {
  auto [s, c] = connect();
  TlsStream first(std::move(s), server_ctx_.native_handle());
  first.expires_after(std::chrono::milliseconds(100));
  TlsStream moved(std::move(first));
  std::optional<error_code> result;
  moved.async_handshake([&](error_code ec) { result = ec; });
  ASSERT_TRUE(run_until([&] { return result.has_value(); }));
  EXPECT_EQ(*result, asio::error::operation_aborted);
}

}  // namespace
}  // namespace mamori::manager
