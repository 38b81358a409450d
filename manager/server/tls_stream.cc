#include "manager/server/tls_stream.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>

#include <boost/asio/ssl/error.hpp>

namespace mamori::manager {
namespace {

namespace asio = boost::asio;
using boost::beast::error_code;
using tcp = asio::ip::tcp;
using tls_detail::State;
using tls_detail::Step;

// ---- a socket BIO of our own (see tls_stream.h for why) ----

tcp::socket& socket_of(BIO* b) { return *static_cast<tcp::socket*>(BIO_get_data(b)); }

int bio_write(BIO* b, const char* data, int size) {
  BIO_clear_retry_flags(b);
  tcp::socket& s = socket_of(b);
  if (!s.is_open()) {
    errno = EBADF;
    return -1;
  }
  const ssize_t n = ::send(s.native_handle(), data, static_cast<size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
  return static_cast<int>(n);
}

int bio_read(BIO* b, char* data, int size) {
  BIO_clear_retry_flags(b);
  tcp::socket& s = socket_of(b);
  if (!s.is_open()) {
    errno = EBADF;
    return -1;
  }
  const ssize_t n = ::recv(s.native_handle(), data, static_cast<size_t>(size), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(b);
  return static_cast<int>(n);
}

long bio_ctrl(BIO*, int cmd, long, void*) {  // NOLINT(google-runtime-int): OpenSSL's type
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;      // nothing is buffered here
}

const BIO_METHOD* socket_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "mamori tcp socket");
    if (!m) return m;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    return m;
  }();
  return method;
}

// ---- what a call into OpenSSL came to ----

Step failed(error_code ec) { return {Step::kFailed, 0, ec}; }

// `ok`: the call's success; `saved_errno`: errno right after it.
Step outcome(State& s, int rc, bool ok, size_t bytes, int saved_errno) {
  if (ok) return {Step::kDone, bytes, {}};
  switch (SSL_get_error(s.ssl, rc)) {
    case SSL_ERROR_WANT_READ:
      return {Step::kWantRead, 0, {}};
    case SSL_ERROR_WANT_WRITE:
      return {Step::kWantWrite, 0, {}};
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      return failed(asio::error::eof);
    case SSL_ERROR_SYSCALL:
      if (const unsigned long e = ERR_get_error(); e != 0)  // NOLINT(google-runtime-int)
        return failed(error_code(static_cast<int>(e), asio::error::get_ssl_category()));
      if (saved_errno != 0)
        return failed(error_code(saved_errno, asio::error::get_system_category()));
      return failed(asio::ssl::error::stream_truncated);  // the socket ended, no close_notify
    default: {
      const unsigned long e = ERR_get_error();  // NOLINT(google-runtime-int)
      if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return failed(asio::ssl::error::stream_truncated);
      return failed(error_code(static_cast<int>(e), asio::error::get_ssl_category()));
    }
  }
}

// Whether OpenSSL may be called: the socket is open and the SSL object exists.
bool usable(State& s) { return s.ssl && s.socket.is_open(); }

}  // namespace

namespace tls_detail {

State::State(tcp::socket s, SSL_CTX* ctx, Role role)
    : socket(std::move(s)), deadline(socket.get_executor()) {
  const BIO_METHOD* method = socket_method();
  ssl = method ? SSL_new(ctx) : nullptr;
  if (!ssl) return;
  BIO* bio = BIO_new(method);
  if (!bio) {
    SSL_free(ssl);
    ssl = nullptr;
    return;
  }
  BIO_set_data(bio, &socket);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);
  SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
  SSL_set_read_ahead(ssl, 1);  // a record's header and body in one recv
  if (role == Role::kServer)
    SSL_set_accept_state(ssl);
  else
    SSL_set_connect_state(ssl);
}

State::~State() { SSL_free(ssl); }

Step handshake(State& s) {
  if (!usable(s)) return failed(asio::error::bad_descriptor);
  // Here, not at construction: a client's socket is opened by its connect.
  if (!s.socket.native_non_blocking()) {
    error_code ec;
    s.socket.native_non_blocking(true, ec);
    if (ec) return failed(ec);
  }
  ERR_clear_error();
  const int rc = SSL_do_handshake(s.ssl);
  return outcome(s, rc, rc == 1, 0, errno);
}

Step read(State& s, void* data, size_t size) {
  if (!usable(s)) return failed(asio::error::bad_descriptor);
  ERR_clear_error();
  size_t n = 0;
  const int rc = SSL_read_ex(s.ssl, data, size < INT_MAX ? size : INT_MAX, &n);
  return outcome(s, rc, rc == 1, n, errno);
}

Step write(State& s, const void* data, size_t size) {
  if (!usable(s)) return failed(asio::error::bad_descriptor);
  ERR_clear_error();
  size_t n = 0;
  const int rc = SSL_write_ex(s.ssl, data, size, &n);
  return outcome(s, rc, rc == 1, n, errno);
}

Step shutdown(State& s) {
  if (!usable(s)) return failed(asio::error::bad_descriptor);
  ERR_clear_error();
  int rc = SSL_shutdown(s.ssl);
  if (rc == 0) {  // ours is sent; now the peer's
    ERR_clear_error();
    rc = SSL_shutdown(s.ssl);
  }
  return outcome(s, rc, rc == 1, 0, errno);
}

}  // namespace tls_detail

TlsStream::TlsStream(tcp::socket socket, SSL_CTX* ctx, Role role)
    : state_(std::make_shared<State>(std::move(socket), ctx, role)) {}

void TlsStream::expires_after(boost::asio::steady_timer::duration d) {
  state_->deadline.expires_after(d);
  state_->deadline.async_wait([w = std::weak_ptr<State>(state_)](const error_code& ec) {
    if (ec) return;  // cancelled, or the stream is gone
    if (auto s = w.lock()) {
      error_code ignored;
      s->socket.close(ignored);
    }
  });
}

void TlsStream::expires_never() { state_->deadline.cancel(); }

void teardown(boost::beast::role_type, TlsStream& s, error_code& ec) {
  const Step r = tls_detail::shutdown(*s.state_);
  ec = r.ec;
  error_code ignored;
  s.socket().close(ignored);
}

}  // namespace mamori::manager
