#pragma once
// A small FastCGI client (the FastCGI 1.0 specification, responder role only): enough to
// run one script of mamori's own in a PHP-FPM pool (agent/opcache/opcache.h) and read
// its answer. One request per connection, no multiplexing, no keep-alive.
//
// Everything the pool sends is untrusted: the socket's directory is often the web user's
// (Debian's /run/php is www-data's), so an attacker who owns www-data can put a listener
// of their own in its place. Hence every quantity is bounded (kMax*: a record past them is
// an error, never a larger buffer), every wait has a deadline, and call() can refuse a
// unix socket whose listener is not the expected user (SO_PEERCRED: php-fpm's master
// listens as root, before its workers drop to the pool's user).
//
// Threads: no state beyond the call; any thread.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"

namespace mamori::opcache {

// Record types (FastCGI 1.0, section 8).
enum class RecordType : uint8_t {
  kBeginRequest = 1,
  kAbortRequest = 2,
  kEndRequest = 3,
  kParams = 4,
  kStdin = 5,
  kStdout = 6,
  kStderr = 7,
  kData = 8,
  kGetValues = 9,
  kGetValuesResult = 10,
  kUnknownType = 11,
};

struct FcgiRequest {
  std::vector<std::pair<std::string, std::string>> params;  // CGI/1.1 variables
  std::string body;                                         // FCGI_STDIN
};

// The request as bytes: BEGIN_REQUEST (responder, close the connection afterwards),
// PARAMS records and the empty one that ends them, STDIN records and the empty one.
// Fails (EINVAL) for a name or value past kMaxParamBytes.
Result<std::string> encode_request(uint16_t request_id, const FcgiRequest& request);

struct FcgiResponse {
  std::string out;  // FCGI_STDOUT: the CGI response (headers, blank line, body)
  std::string err;  // FCGI_STDERR: what PHP logged for this request
  uint32_t app_status = 0;
  uint8_t protocol_status = 0;  // 0 FCGI_REQUEST_COMPLETE
  bool out_truncated = false;   // more than the limit came; the rest was dropped
  bool err_truncated = false;
};

// Reads records for one request id from a byte stream fed in pieces of any size. Bounded:
// a record's content is at most 65,535 bytes by its header; stdout and stderr beyond
// their limits are counted as truncated, not kept; records for other ids, management
// records and unknown types are skipped (bounded by max_records).
class ResponseParser {
 public:
  struct Limits {
    size_t max_out = 256 << 10;
    size_t max_err = 8 << 10;
    size_t max_records = 65'536;
  };
  ResponseParser(uint16_t request_id, Limits limits) : id_(request_id), limits_(limits) {}

  // Consumes `bytes`. True once END_REQUEST for our id was read (later bytes are ignored);
  // an error for a malformed stream (a version other than 1, too many records, an
  // END_REQUEST of the wrong size).
  Result<bool> feed(std::string_view bytes);
  bool done() const { return done_; }
  const FcgiResponse& response() const { return response_; }
  FcgiResponse take() { return std::move(response_); }

 private:
  Status record(uint8_t type, uint16_t id, std::string_view content);

  uint16_t id_;
  Limits limits_;
  std::string pending_;  // an incomplete record (header + content + padding < 65,799 bytes)
  size_t records_ = 0;
  bool done_ = false;
  FcgiResponse response_;
};

// The CGI response PHP-FPM writes on stdout: header lines, an empty line, the body.
// status is the "Status:" header's code, 200 when there is none (CGI/1.1 6.3.3).
struct CgiReply {
  int status = 200;
  std::string content_type;
  std::string body;
};
// Fails (EPROTO) when there is no blank line ending the headers, a header line without
// a colon, or a Status that is not a 3-digit code.
Result<CgiReply> parse_cgi_reply(std::string_view out);

// Where the pool listens: a unix socket ("/run/php/php8.2-fpm.sock") or a numeric
// IPv4/IPv6 address and port ("127.0.0.1:9000", "[::1]:9000"). No name is resolved.
struct Endpoint {
  std::string unix_path;  // set for a unix socket
  std::string host;       // else a numeric address
  uint16_t port = 0;
  std::string text;  // as configured, for messages
};
Result<Endpoint> parse_endpoint(std::string_view text);

struct CallOptions {
  std::chrono::milliseconds timeout{5000};  // connect, send and the whole answer
  // The uid the listener of a unix socket must have (SO_PEERCRED); nullopt: any.
  std::optional<uid_t> peer_uid = 0;
  ResponseParser::Limits limits;
};

// Connects, sends `request`, reads the answer until END_REQUEST. ETIMEDOUT when the
// deadline passes first (a pool whose workers are all busy queues the request),
// EPERM for a listener of another user, EPROTO for a malformed answer or the connection
// closed before END_REQUEST. The deadline is read from env's clock.
Result<FcgiResponse> call(const Env& env, const Endpoint& endpoint, const FcgiRequest& request,
                          const CallOptions& options);

}  // namespace mamori::opcache
