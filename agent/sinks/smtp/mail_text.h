#pragma once
// The words of an alert e-mail: a readable subject and a plain-text body for one event or
// a digest of many, and the RFC 5322 message around them. Pure functions: no clock, no
// I/O, so tests compare whole texts.
//
// Event fields come from attackers (file names, command lines): every value is escaped
// (control bytes, invalid UTF-8, bidi and line-separator characters) and clipped, so no
// header gets a CR/LF and no line passes RFC 5322's 998 bytes.

#include <ctime>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mamori::sinks {

struct Mail {
  std::string subject;  // one line of UTF-8, at most kMaxSubjectBytes, not yet encoded
  std::string body;     // lines ending in "\n", none longer than 998 bytes
};

inline constexpr size_t kMaxSubjectBytes = 200;
inline constexpr size_t kMaxMailEvents = 200;  // in the body; the rest are counted

// One event: "[mamori] WARNING file-restored on web1: /var/www/html/wp-config.php".
// More: "[mamori] 37 events on web1: 1 tamper-storm, 30 file-restored, ..." (by
// action, worst severity first, then most frequent). `events` must not be empty.
Mail format_mail(std::span<const nlohmann::json> events);

// The whole message, CRLF line ends: Date (`now`), From, To, Subject (RFC 2047 when it is
// not ASCII), Message-ID made from the event ids (a retried batch gets the same one, so
// receivers can drop the copy), MIME headers for 8-bit UTF-8 text, Auto-Submitted, and
// X-Mamori-Event-Id. `from` and `to` must be addresses make_smtp_sink() validated.
std::string mail_message(std::span<const nlohmann::json> events, std::string_view from,
                         std::span<const std::string> to, time_t now);

}  // namespace mamori::sinks
