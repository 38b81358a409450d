#pragma once
// Web access-log lines into fields. A LogFormat is compiled once from the format an
// operator names (combined, common, vhost_combined, json, an nginx log_format string or an
// Apache LogFormat string; docs/formats/access-logs.md) and is then read-only: one
// LogFormat may parse on many threads at once, each with its own Entry.
//
// Lines are the attacker's bytes. parse() never reads outside the line, never allocates in
// steady state, and refuses rather than guesses: a client address is only taken when it is
// an exact IPv4/IPv6 literal, so no line can make a wrong address come out.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/logparse/ip.h"

namespace mamori::logparse {

// Why a line was refused, for counters (mamori status, logs test).
enum class ParseStatus : uint8_t {
  kOk,
  kTooLong,     // longer than FormatOptions::max_line; not scanned
  kBadAddress,  // the client field is not an IP literal ("-", a hostname, garbage)
  kBadTime,     // the time field does not parse
  kBadRequest,  // no request to judge (other sources: logparse/eventlog.h); LogFormat::parse
                // reads a malformed request line as kOk with Entry::malformed_request
  kTruncated,   // the line ends before the format does (a cut write, a missing quote)
  kNoMatch,     // the line does not fit the format
};
inline constexpr size_t kParseStatusCount = 7;
// "ok", "too-long", "bad-address", "bad-time", "bad-request", "truncated", "no-match".
std::string_view parse_status_name(ParseStatus status);

// One parsed line. The views point into the line given to parse() or into the entry's own
// buffer (for fields that had to be unescaped); they stay valid until the next parse()
// into this entry or until the line's storage goes away. Not copyable, since copies would
// point into the original. After a refused line the fields hold unspecified values.
struct Entry {
  Entry() = default;
  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  std::string_view client;  // the address as logged
  IpAddress client_ip;
  int64_t time = 0;  // UTC seconds since the epoch; 0 when the format has no time
  // Text fields are unescaped (nginx \x22, Apache \", JSON \u0022); "-" reads as empty.
  std::string_view request;  // the request line as logged: "GET /a?b=1 HTTP/1.1"
  std::string_view method;
  std::string_view target;  // raw, not percent-decoded: see normalise.h
  std::string_view protocol;
  uint16_t status = 0;  // 0 when not logged
  uint64_t bytes = 0;   // response body bytes; 0 for "-"
  std::string_view user;
  std::string_view referer;
  std::string_view user_agent;
  std::string_view host;
  std::string_view forwarded_for;  // X-Forwarded-For as logged; never trusted as the client
  // The format logs the request line ($request, %r, a JSON "request") and what it holds is
  // not "METHOD target [protocol]": bytes of another protocol (a TLS handshake or an RDP
  // cookie sent to port 80), text that is no request ("HELP"), or nothing ("-", a client
  // that sent no request). The line still parses (its address and time were read: the
  // format fits); `request` keeps what was logged, unescaped, and method, target and
  // protocol stay empty unless fields of their own fill them. Rules count these per
  // address (docs/formats/rules.md, malformed).
  bool malformed_request = false;

 private:
  friend class LogFormat;
  void reset();
  std::string scratch_;  // unescaped fields; capacity kept between lines
};

struct FormatOptions {
  size_t max_line = 16 * 1024;  // longer lines are kTooLong (without their line ending)
};

class LogFormat {
 public:
  // spec: "combined", "common", "vhost_combined", "json" or "json:FIELD=KEY,...", an nginx
  // log_format string ($variables) or an Apache LogFormat string (%directives). Errors name
  // the column: unknown directive, unbalanced quote, two fields with nothing between them,
  // no client address field.
  static Result<LogFormat> compile(std::string_view spec, FormatOptions options = {});

  // One line, with or without its "\n" or "\r\n". Fills `out` on kOk.
  [[nodiscard]] ParseStatus parse(std::string_view line, Entry& out) const;

  // The first max_line bytes of a line that was longer (or cut short by whoever read it):
  // the fields up to the cut are filled, the field the cut falls in holds what is left of
  // it, and the fields after it are empty. Never kTooLong or kTruncated. The client
  // address and the request come first in every common format, so a padded header (a
  // user agent of 4 KiB of escaped bytes) cannot hide the request from the rules.
  [[nodiscard]] ParseStatus parse_cut(std::string_view line, Entry& out) const;

  static constexpr size_t kMaxFields = 64;  // in a template format

  const std::string& spec() const { return spec_; }
  const FormatOptions& options() const { return options_; }

  // What a field of the format holds. Public for the implementation's tables only.
  enum class Field : uint8_t {
    kOpaque,  // logged but not needed: skipped
    kClient,
    kUser,
    kTimeClf,           // 10/Oct/2000:13:55:36 -0700
    kTimeClfBracketed,  // [10/Oct/2000:13:55:36 -0700] (Apache %t)
    kTimeIso,           // 2000-10-10T13:55:36-07:00
    kTimeEpoch,         // 971211336.123
    kTimeAny,           // JSON: whichever of the above
    kRequest,
    kMethod,
    kTarget,  // path and query
    kPath,
    kQuery,
    kProtocol,
    kStatus,
    kBytes,
    kReferer,
    kUserAgent,
    kHost,
    kForwardedFor,
  };
  // A field and the literal text that follows it in the line.
  struct Step {
    Field field;
    bool quoted;  // inside "...": a missing closing quote is a truncated line
    std::string after;
  };
  // A JSON key that fills a field; among keys for one field, the lowest rank wins.
  struct JsonKey {
    std::string name;
    Field field;
    uint8_t rank;
  };

 private:
  LogFormat() = default;
  ParseStatus parse_line(std::string_view line, Entry& out, bool cut) const;
  ParseStatus parse_template(std::string_view line, Entry& out, bool cut) const;
  ParseStatus parse_json(std::string_view line, Entry& out, bool cut) const;
  ParseStatus parse_json_fields(std::string_view line, Entry& out, bool cut) const;

  std::string spec_;
  FormatOptions options_;
  bool json_ = false;
  std::string head_;         // literal text before the first field
  std::vector<Step> steps_;  // template formats
  std::vector<JsonKey> json_keys_;
};

}  // namespace mamori::logparse
