#pragma once
// A TLS connection for Beast's HTTP and WebSocket: the manager's side of every connection,
// and the simulated agents' of bench/manager. OpenSSL reads and writes the socket itself,
// so a connection holds no buffer while it is idle.
// asio::ssl::stream keeps four buffers of ~17 KiB for a connection's whole life (a BIO
// pair and its copies of it), ~68 KiB × 10,000 agents (docs/performance.md); here OpenSSL
// releases its own record buffers whenever they are empty (SSL_MODE_RELEASE_BUFFERS).
//
// Each operation calls OpenSSL at once and waits for the socket only when OpenSSL asks
// for it (SSL_ERROR_WANT_READ/WRITE). One read and one write may be pending at a time (as
// Beast does), the handshake and the shutdown alone. The socket BIO sends with
// MSG_NOSIGNAL (a peer that reset the connection gives EPIPE, not a SIGPIPE that ends the
// manager), and reads the socket's descriptor at each call: once closed, OpenSSL is never
// handed a number the kernel may have given to another connection.
//
// Threads: one (the server's io thread).

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/async_base.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>

namespace mamori::manager {

namespace tls_detail {

enum class Role { kServer, kClient };

struct State {
  State(boost::asio::ip::tcp::socket s, SSL_CTX* ctx, Role role);
  ~State();
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  boost::asio::ip::tcp::socket socket;
  SSL* ssl = nullptr;  // null only when OpenSSL had no memory: every operation fails
  boost::asio::steady_timer deadline;
};

// What one call into OpenSSL came to: done (`bytes` moved), or wait for the socket to be
// readable or writable and call again, or failed (`ec`).
struct Step {
  enum Kind { kDone, kWantRead, kWantWrite, kFailed } kind = kDone;
  size_t bytes = 0;
  boost::beast::error_code ec;
};

Step handshake(State& s);
Step read(State& s, void* data, size_t size);
Step write(State& s, const void* data, size_t size);
// Sends close_notify and waits for the peer's (a bidirectional shutdown).
Step shutdown(State& s);

// The largest plaintext of one TLS record: a write sends at most this much.
inline constexpr size_t kMaxRecord = 16 * 1024;

// A composed operation: `step(state)` until it is done or fails, waiting for the socket
// in between. `Bytes`: whether the handler takes the byte count too.
template <class Handler, class StepFn, bool Bytes>
class Op : public boost::beast::async_base<Handler, boost::asio::any_io_executor> {
 public:
  Op(Handler&& h, State& s, StepFn step)
      : boost::beast::async_base<Handler, boost::asio::any_io_executor>(std::move(h),
                                                                        s.socket.get_executor()),
        s_(s),
        step_(std::move(step)) {
    (*this)({}, false);
  }

  void operator()(boost::beast::error_code ec, bool continuation = true) {
    size_t bytes = 0;
    if (!ec) {
      const Step r = step_(s_);
      if (r.kind == Step::kWantRead || r.kind == Step::kWantWrite) {
        s_.socket.async_wait(r.kind == Step::kWantRead ? boost::asio::socket_base::wait_read
                                                       : boost::asio::socket_base::wait_write,
                             std::move(*this));
        return;
      }
      ec = r.ec;
      bytes = r.bytes;
    }
    if constexpr (Bytes)
      this->complete(continuation, ec, bytes);
    else
      this->complete(continuation, ec);
  }

 private:
  State& s_;
  StepFn step_;
};

// What a write sends: the first buffer itself when it holds a whole record's worth, else
// up to kMaxRecord bytes of the sequence gathered into one piece (Beast writes a frame's
// few header bytes and its payload as two buffers: one record, not two).
class WriteStep {
 public:
  template <class Buffers>
  explicit WriteStep(const Buffers& buffers) {
    const size_t total = boost::asio::buffer_size(buffers);
    size_ = total < kMaxRecord ? total : kMaxRecord;
    auto first = boost::asio::buffer_sequence_begin(buffers);
    while (first != boost::asio::buffer_sequence_end(buffers) &&
           boost::asio::const_buffer(*first).size() == 0)
      ++first;
    if (size_ == 0) return;
    const boost::asio::const_buffer head(*first);
    if (head.size() >= size_) {
      data_ = head.data();
      return;
    }
    gathered_ = std::make_unique<char[]>(size_);
    boost::asio::buffer_copy(boost::asio::buffer(gathered_.get(), size_), buffers);
    data_ = gathered_.get();
  }
  Step operator()(State& s) const {
    if (size_ == 0) return {};
    return write(s, data_, size_);
  }

 private:
  std::unique_ptr<char[]> gathered_;
  const void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tls_detail

class TlsStream {
 public:
  using executor_type = boost::asio::any_io_executor;

  using Role = tls_detail::Role;

  // `ctx` outlives the stream (the Hub's). A client's socket may be connected later, through
  // socket(), before the handshake.
  TlsStream(boost::asio::ip::tcp::socket socket, SSL_CTX* ctx, Role role = Role::kServer);
  TlsStream(TlsStream&&) noexcept = default;
  TlsStream& operator=(TlsStream&&) noexcept = default;
  ~TlsStream() = default;

  executor_type get_executor() { return state_->socket.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return state_->socket; }
  // For checks of the peer's certificate after the handshake (a pin).
  SSL* native_handle() { return state_->ssl; }

  // When it fires, the socket is closed: pending operations end with operation_aborted.
  void expires_after(boost::asio::steady_timer::duration d);
  void expires_never();

  template <class Handler>
  auto async_handshake(Handler&& handler) {
    return run<void(boost::beast::error_code), false>(
        std::forward<Handler>(handler),
        [](tls_detail::State& s) { return tls_detail::handshake(s); });
  }
  template <class Handler>
  auto async_shutdown(Handler&& handler) {
    return run<void(boost::beast::error_code), false>(
        std::forward<Handler>(handler),
        [](tls_detail::State& s) { return tls_detail::shutdown(s); });
  }
  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    boost::asio::mutable_buffer into;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && into.size() == 0; ++it)
      into = boost::asio::mutable_buffer(*it);
    return run<void(boost::beast::error_code, size_t), true>(
        std::forward<Handler>(handler), [into](tls_detail::State& s) -> tls_detail::Step {
          if (into.size() == 0) return {};
          return tls_detail::read(s, into.data(), into.size());
        });
  }
  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return run<void(boost::beast::error_code, size_t), true>(std::forward<Handler>(handler),
                                                             tls_detail::WriteStep(buffers));
  }

  // For Beast (found by argument-dependent lookup): the WebSocket's timeouts close the
  // socket, its close handshake ends with TLS's.
  friend void beast_close_socket(TlsStream& s) {
    boost::beast::error_code ignored;
    s.socket().close(ignored);
  }
  friend void teardown(boost::beast::role_type, TlsStream& s, boost::beast::error_code& ec);
  template <class Handler>
  friend void async_teardown(boost::beast::role_type, TlsStream& s, Handler&& handler) {
    s.run<void(boost::beast::error_code), false>(
        std::forward<Handler>(handler), [](tls_detail::State& st) {
          tls_detail::Step r = tls_detail::shutdown(st);
          if (r.kind == tls_detail::Step::kDone || r.kind == tls_detail::Step::kFailed) {
            boost::beast::error_code ignored;
            st.socket.close(ignored);
          }
          return r;
        });
  }

 private:
  template <class Signature, bool Bytes, class Handler, class StepFn>
  auto run(Handler&& handler, StepFn step) {
    return boost::asio::async_initiate<Handler, Signature>(
        [this](auto&& h, StepFn&& fn) {
          tls_detail::Op<std::decay_t<decltype(h)>, StepFn, Bytes>(std::move(h), *state_,
                                                                   std::move(fn));
        },
        handler, std::move(step));
  }

  // On the heap: Beast moves the stream (HTTP connection → WebSocket) while the state
  // keeps its address, which OpenSSL's socket BIO and the deadline refer to.
  std::shared_ptr<tls_detail::State> state_;
};

}  // namespace mamori::manager
