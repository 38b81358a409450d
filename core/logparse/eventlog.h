#pragma once
// The other logs the same attackers leave, besides the access log: the nginx error log,
// the Apache 2.4 error log and sshd's messages as syslog writes them (auth.log). Each line
// is read into the client's address, the line's time and a kind of event ("auth-failed",
// "limit-req", "not-found", ...) with its subject (the user name tried, the path asked
// for). docs/formats/other-logs.md lists the formats, the kinds and the lines each is
// read from.
//
// Lines are the attacker's bytes, and so are parts of them: the user name in sshd's
// "Invalid user X from A port P", the path in nginx's open() "..." failed, the Referer
// nginx appends. The address is only ever taken from a place the attacker's text cannot
// reach or imitate:
//   sshd          anchored at the END of the message (the user name comes before the
//                 address in every message read; "Invalid user x from 9.9.9.9 port 1
//                 from 1.2.3.4 port 2" names 1.2.3.4), or right after a fixed prefix
//                 when the attacker's text follows the address ("banner exchange: ...");
//   nginx error   the first ", client: " after a message whose text is fixed (limit_req,
//                 limit_conn, access forbidden by rule); after a message that holds the
//                 attacker's text (a path, a user name, a header), every ", client: A"
//                 in the line must name the same address, or the line is refused as
//                 ambiguous (kBadRequest: the format fit, nobody is named);
//   Apache error  the "[client A:P]" field at its fixed place after the header.
// A line of the format that names no attack (a notice, another program's line in
// auth.log) is kOk with an empty kind. Pure functions of the line; thread-compatible.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/logparse/format.h"
#include "core/logparse/ip.h"

namespace mamori::logparse {

enum class EventLog : uint8_t { kNginxError, kApacheError, kSshd };

// "nginx-error", "apache-error", "sshd"; nullopt for any other format spec (an access-log
// format, core/logparse/format.h).
std::optional<EventLog> event_log_named(std::string_view spec);
std::string_view event_log_name(EventLog log);

// One line read. Views point into the line, valid while it is.
struct EventEntry {
  bool has_client = false;
  IpAddress client_ip;
  int64_t time = 0;            // UTC seconds; times logged without a zone are read as UTC
  std::string_view kind;       // a static name ("auth-failed"); empty: no attack named
  std::string_view subject;    // user name (sshd, HTTP auth) or path/target; may be empty
  std::string_view method;     // the HTTP method when an error log names the request
  std::string_view message;    // the message as logged, after the line's header
  uint16_t status = 0;         // ModSecurity's "Access denied with code N"
  bool target_is_url = false;  // subject is the request's target (normalise it), not a file
  // How many times it happened: rsyslog's "message repeated N times: [ MSG]" (its
  // $RepeatedMsgReduction) stands for N more of the line before it; at most kMaxRepeated.
  uint32_t repeated = 1;
};
inline constexpr uint32_t kMaxRepeated = 100;

struct EventLogOptions {
  size_t max_line = 16 * 1024;  // longer lines are kTooLong
};

class EventLogFormat {
 public:
  explicit EventLogFormat(EventLog log, EventLogOptions options = {})
      : log_(log), options_(options) {}

  // `reference_s`: about now, for syslog times without a year (the year that puts the
  // line at most one day after reference_s). Fills `out` on kOk.
  [[nodiscard]] ParseStatus parse(std::string_view line, int64_t reference_s,
                                  EventEntry& out) const;

  EventLog log() const { return log_; }
  const EventLogOptions& options() const { return options_; }

 private:
  EventLog log_;
  EventLogOptions options_;
};

}  // namespace mamori::logparse
