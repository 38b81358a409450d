#include "core/logparse/eventlog.h"

#include <algorithm>
#include <array>

namespace mamori::logparse {
namespace {

using std::string_view;

// The kinds (docs/formats/other-logs.md). Static storage: EventEntry::kind points here.
constexpr string_view kAuthFailed = "auth-failed";
constexpr string_view kAccepted = "accepted";
constexpr string_view kInvalidUser = "invalid-user";
constexpr string_view kAuthAbandoned = "auth-abandoned";
constexpr string_view kMaxAuthTries = "max-auth-tries";
constexpr string_view kPreauthClosed = "preauth-closed";
constexpr string_view kNoIdentification = "no-identification";
constexpr string_view kBadBanner = "bad-banner";
constexpr string_view kNoKex = "no-kex";
constexpr string_view kLimitReq = "limit-req";
constexpr string_view kLimitReqDelayed = "limit-req-delayed";
constexpr string_view kLimitReqDryRun = "limit-req-dry-run";
constexpr string_view kLimitConn = "limit-conn";
constexpr string_view kLimitConnDryRun = "limit-conn-dry-run";
constexpr string_view kInvalidRequest = "invalid-request";
constexpr string_view kForbidden = "forbidden";
constexpr string_view kForbiddenIndex = "forbidden-index";
constexpr string_view kNotFound = "not-found";
constexpr string_view kWafDenied = "waf-denied";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at s[pos...]; false when they are not all digits.
bool digits(string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!is_digit(s[pos + i])) return false;
    out = out * 10 + (s[pos + i] - '0');
  }
  return true;
}

// A run of 1-9 digits at the start of `s`; its length, 0 when none.
size_t digit_run(string_view s) {
  size_t n = 0;
  while (n < s.size() && n < 9 && is_digit(s[n])) ++n;
  return n;
}

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool civil(int y, int mo, int d, int h, int mi, int s, int64_t& out) {
  if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
    return false;
  out = days_from_civil(y, unsigned(mo), unsigned(d)) * 86400 + h * 3600 + mi * 60 + s;
  return true;
}

int month_number(string_view m) {
  static constexpr std::array<string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (size_t i = 0; i < kMonths.size(); ++i)
    if (m == kMonths[i]) return int(i) + 1;
  return 0;
}

int64_t year_of(int64_t epoch_s) {
  // civil_from_days, year only.
  const int64_t z = (epoch_s >= 0 ? epoch_s : epoch_s - 86399) / 86400 + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
}

// "HH:MM:SS" at s[pos...].
bool clock_time(string_view s, size_t pos, int& h, int& mi, int& sec) {
  return pos + 8 <= s.size() && digits(s, pos, 2, h) && s[pos + 2] == ':' &&
         digits(s, pos + 3, 2, mi) && s[pos + 5] == ':' && digits(s, pos + 6, 2, sec);
}

bool consume(string_view& s, string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

bool strip_suffix(string_view& s, string_view suffix) {
  if (!s.ends_with(suffix)) return false;
  s.remove_suffix(suffix.size());
  return true;
}

// " port N" at the end of `s` (removed); false when absent.
bool strip_port(string_view& s) {
  size_t n = 0;
  while (n < s.size() && n < 6 && is_digit(s[s.size() - 1 - n])) ++n;
  if (n == 0) return false;
  string_view rest = s.substr(0, s.size() - n);
  if (!strip_suffix(rest, " port ")) return false;
  s = rest;
  return true;
}

// The address at the end of `s` after its last space (removed with the space).
std::optional<IpAddress> strip_trailing_ip(string_view& s) {
  const size_t sp = s.rfind(' ');
  const string_view token = sp == string_view::npos ? s : s.substr(sp + 1);
  auto ip = IpAddress::parse(token);
  if (ip) s = sp == string_view::npos ? string_view() : s.substr(0, sp);
  return ip;
}

// ---------------------------------------------------------------------------------------
// sshd, as rsyslog writes it: "Dec  7 11:33:29 HOST TAG: MSG" (RSYSLOG_TraditionalFile
// Format, Debian 12's default) or "2026-12-07T11:33:29.123456+00:00 HOST TAG: MSG"
// (RSYSLOG_FileFormat; journalctl -o short-iso writes +0000).

bool syslog_time(string_view& s, int64_t reference_s, int64_t& out) {
  int h = 0, mi = 0, sec = 0;
  if (s.size() >= 16 && month_number(s.substr(0, 3)) != 0 && s[3] == ' ') {
    const int mo = month_number(s.substr(0, 3));
    int d = 0;
    if (s[4] == ' ' && is_digit(s[5]))
      d = s[5] - '0';
    else if (!digits(s, 4, 2, d))
      return false;
    if (s[6] != ' ' || !clock_time(s, 7, h, mi, sec)) return false;
    s.remove_prefix(15);
    // No year: the one that puts the line at most a day after the reference (a log read
    // in January still holds December's lines).
    const int64_t ref_year = year_of(reference_s);
    for (int64_t y = ref_year + 1; y >= ref_year - 1; --y) {
      if (!civil(int(y), mo, d, h, mi, sec, out)) return false;
      if (out <= reference_s + 86400) return true;
    }
    return true;
  }
  int y = 0, mo = 0, d = 0;
  if (!(s.size() >= 20 && digits(s, 0, 4, y) && s[4] == '-' && digits(s, 5, 2, mo) && s[7] == '-' &&
        digits(s, 8, 2, d) && s[10] == 'T' && clock_time(s, 11, h, mi, sec)))
    return false;
  if (!civil(y, mo, d, h, mi, sec, out)) return false;
  size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t n = 0;
    while (pos < s.size() && is_digit(s[pos]) && n < 9) ++pos, ++n;
    if (n == 0) return false;
  }
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '+' ? 1 : -1;
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, oh)) return false;
    size_t at = pos + 3;
    if (at < s.size() && s[at] == ':') ++at;
    if (!digits(s, at, 2, om) || oh > 23 || om > 59) return false;
    out -= sign * (oh * 3600 + om * 60);
    pos = at + 2;
  } else {
    return false;
  }
  s.remove_prefix(pos);
  return true;
}

// The Failed/Accepted tail: " from A port P ssh2" and an optional ": KEYTYPE FINGERPRINT"
// (publickey, written by sshd itself), anchored at the end. Sets ip; `rest` keeps what
// comes before " from ".
bool ssh2_tail(string_view msg, string_view& rest, IpAddress& ip) {
  const size_t from = msg.rfind(" from ");
  if (from == string_view::npos) return false;
  string_view tail = msg.substr(from + 6);
  rest = msg.substr(0, from);
  const size_t ssh2 = tail.find(" ssh2");
  if (ssh2 == string_view::npos) return false;
  string_view after = tail.substr(ssh2 + 5);
  if (!after.empty()) {
    // ": RSA SHA256:xxx" - two tokens without spaces, nothing else.
    if (!consume(after, ": ")) return false;
    const size_t sp = after.find(' ');
    if (sp == 0 || sp == string_view::npos || after.substr(sp + 1).empty() ||
        after.substr(sp + 1).find(' ') != string_view::npos)
      return false;
  }
  string_view addr_port = tail.substr(0, ssh2);
  if (!strip_port(addr_port)) return false;
  auto parsed = IpAddress::parse(addr_port);
  if (!parsed) return false;
  ip = *parsed;
  return true;
}

// " for [invalid user ]USER" -> USER (`rest` is "Failed password for ...").
string_view user_after_for(string_view rest) {
  const size_t f = rest.find(" for ");
  if (f == string_view::npos) return {};
  string_view user = rest.substr(f + 5);
  consume(user, "invalid user ");
  return user;
}

void parse_sshd_message(string_view msg, EventEntry& out) {
  const bool preauth = strip_suffix(msg, " [preauth]");
  string_view m = msg;
  consume(m, "error: ");
  IpAddress ip;
  string_view rest;
  auto set = [&](string_view kind, const IpAddress& a, string_view subject) {
    out.kind = kind;
    out.client_ip = a;
    out.has_client = true;
    out.subject = subject;
  };
  if (m.starts_with("Failed ") || m.starts_with("Accepted ")) {
    if (ssh2_tail(m, rest, ip))
      set(m[0] == 'F' ? kAuthFailed : kAccepted, ip, user_after_for(rest));
    return;
  }
  if (m.starts_with("maximum authentication attempts exceeded for ")) {
    if (ssh2_tail(m, rest, ip)) set(kMaxAuthTries, ip, user_after_for(rest));
    return;
  }
  if (m.starts_with("Invalid user ")) {
    // "Invalid user USER from A port P": anchored at the end.
    string_view s = m;
    if (!strip_port(s)) return;
    const size_t from = s.rfind(" from ");
    if (from == string_view::npos) return;
    auto a = IpAddress::parse(s.substr(from + 6));
    if (!a) return;
    string_view user = s.substr(0, from);
    user.remove_prefix(std::string_view("Invalid user").size());
    if (!user.empty()) user.remove_prefix(1);
    set(kInvalidUser, *a, user);
    return;
  }
  if (m.starts_with("Connection closed by ") || m.starts_with("Connection reset by ") ||
      m.starts_with("Disconnected from ")) {
    // "... by [authenticating|invalid user USER ]A port P": the address before " port P"
    // at the end. Without a user, only before authentication ([preauth]) is it a probe;
    // "Disconnected from user U A port P" is the end of a session.
    string_view s = m.substr(m.find(m[0] == 'D' ? " from " : " by ") + (m[0] == 'D' ? 6 : 4));
    if (!strip_port(s)) return;
    const auto a = strip_trailing_ip(s);
    if (!a) return;
    if (s.starts_with("authenticating user ") || s.starts_with("invalid user "))
      set(kAuthAbandoned, *a, s.substr(s.find("user ") + 5));
    else if (s.empty() && preauth)
      set(kPreauthClosed, *a, {});
    return;
  }
  if (consume(m, "Did not receive identification string from ")) {
    string_view s = m;
    strip_port(s);
    if (auto a = IpAddress::parse(s)) set(kNoIdentification, *a, {});
    return;
  }
  // The address follows a fixed prefix; sshd's own error text comes after it.
  for (auto [prefix, kind] :
       {std::pair{string_view("banner exchange: Connection from "), kBadBanner},
        std::pair{string_view("Unable to negotiate with "), kNoKex}}) {
    if (!consume(m, prefix)) continue;
    const size_t sp = m.find(" port ");
    if (sp == string_view::npos) return;
    if (auto a = IpAddress::parse(m.substr(0, sp))) set(kind, *a, {});
    return;
  }
}

bool sshd_tag(string_view tag) {
  const size_t b = tag.find('[');
  string_view name = tag.substr(0, b);
  if (b != string_view::npos) {
    string_view pid = tag.substr(b + 1);
    if (!strip_suffix(pid, "]") || pid.empty() || digit_run(pid) != pid.size()) return false;
  }
  return name == "sshd" || name == "sshd-session" || name == "sshd-auth";
}

// rsyslog's "message repeated N times: [ MSG]": MSG, with N in `repeated` (capped);
// any other message as it is.
string_view unrepeated(string_view msg, uint32_t& repeated) {
  string_view s = msg;
  if (!consume(s, "message repeated ")) return msg;
  uint64_t n = 0;
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9')
    n = std::min<uint64_t>(n * 10 + static_cast<uint64_t>(s[digits++] - '0'), kMaxRepeated);
  s.remove_prefix(digits);
  if (digits == 0 || n == 0 || !consume(s, " times: [") || !s.ends_with(']')) return msg;
  s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  repeated = static_cast<uint32_t>(n);
  return s;
}

ParseStatus parse_sshd(string_view line, int64_t reference_s, EventEntry& out) {
  string_view s = line;
  if (!syslog_time(s, reference_s, out.time)) return ParseStatus::kBadTime;
  if (!consume(s, " ")) return ParseStatus::kNoMatch;
  const size_t host_end = s.find(' ');
  if (host_end == 0 || host_end == string_view::npos) return ParseStatus::kNoMatch;
  s.remove_prefix(host_end + 1);
  const size_t colon = s.find(": ");
  const size_t space = s.find(' ');
  if (colon == string_view::npos || space < colon) {
    // A tag without a message ("host kernel:" and nothing): not sshd's, fits the format.
    return s.find(':') != string_view::npos ? ParseStatus::kOk : ParseStatus::kNoMatch;
  }
  out.message = s.substr(colon + 2);
  if (!sshd_tag(s.substr(0, colon))) return ParseStatus::kOk;  // another program's line
  parse_sshd_message(unrepeated(out.message, out.repeated), out);
  return ParseStatus::kOk;
}

// ---------------------------------------------------------------------------------------
// nginx: "2026/12/07 11:33:29 [error] 1234#1234: *5 MESSAGE, client: A, server: S,
// request: "R", host: "H", referrer: "F"" (ngx_log_error_core, ngx_http_log_error).

// The next ", client: A" from `from` on; `ip` empty when A is no address ("unix:", a
// forgery's junk). The first one after a fixed message is nginx's, whatever it holds: a
// later one that parses must never stand in for one that does not.
struct ClientAt {
  size_t pos = string_view::npos;  // of ", client: "
  size_t end = 0;                  // after A
  std::optional<IpAddress> ip;
};
ClientAt next_client(string_view s, size_t from) {
  constexpr string_view kClient = ", client: ";
  const size_t p = s.find(kClient, from);
  if (p == string_view::npos) return {};
  const size_t a = p + kClient.size();
  size_t e = s.find(',', a);
  if (e == string_view::npos) e = s.size();
  return {p, e, IpAddress::parse(s.substr(a, e - a))};
}

// `msg` ends where the real ", client: " begins. Fixed messages: nothing in them comes
// from the client. Returns the kind; `fixed` says whether the text was fixed.
string_view nginx_kind(string_view msg, bool& fixed, string_view& subject) {
  fixed = true;
  // limit_req: "limiting requests[, dry run], excess: 0.960 by zone "one"";
  // "delaying request[, dry run], excess: 0.500, by zone "one"".
  auto zone_tail = [](string_view s) {
    const size_t z = s.find(" by zone \"");
    return z != string_view::npos && s.ends_with("\"") &&
           s.substr(z + 10, s.size() - z - 11).find('"') == string_view::npos;
  };
  if (msg.starts_with("limiting requests, ") && zone_tail(msg))
    return msg.starts_with("limiting requests, dry run") ? kLimitReqDryRun : kLimitReq;
  if (msg.starts_with("delaying request, ") && zone_tail(msg)) return kLimitReqDelayed;
  if (msg.starts_with("limiting connections") && zone_tail(msg))
    return msg.starts_with("limiting connections, dry run") ? kLimitConnDryRun : kLimitConn;
  if (msg == "access forbidden by rule") return kForbidden;
  fixed = false;
  string_view m = msg;
  if (consume(m, "client sent ")) return kInvalidRequest;
  if (m.starts_with("directory index of \"") && m.ends_with("\" is forbidden")) {
    subject = m.substr(20, m.size() - 20 - 14);
    return kForbiddenIndex;
  }
  // open() "PATH" failed (2: No such file or directory); "PATH" is not found (2: ...).
  for (string_view tail : {string_view("\" failed (2: No such file or directory)"),
                           string_view("\" failed (20: Not a directory)"),
                           string_view("\" is not found (2: No such file or directory)")}) {
    if (!m.ends_with(tail)) continue;
    string_view path = m.substr(0, m.size() - tail.size());
    if (consume(path, "open() \"") || consume(path, "\"")) {
      subject = path;
      return kNotFound;
    }
  }
  if (m.starts_with("user \"") && (m.ends_with("\": password mismatch") ||
                                   m.find("\" was not found in \"") != string_view::npos)) {
    const size_t q = m.find('"', 6);
    subject = m.substr(6, q == string_view::npos ? 0 : q - 6);
    return kAuthFailed;
  }
  if (m.starts_with("FastCGI sent in stderr: \"Primary script unknown\"")) return kNotFound;
  return {};
}

// "Access denied with code 403" at the start of `m`: the code.
uint16_t modsecurity_denied(string_view m) {
  if (!consume(m, "ModSecurity: Access denied with code ")) return 0;
  int code = 0;
  if (!digits(m, 0, 3, code)) return 0;
  return static_cast<uint16_t>(code);
}

// ", server: S, request: "METHOD TARGET ..."" right after the client: the request's
// method and target (nginx refuses spaces in a request line since 1.21.1, so the target
// ends at the next space or quote).
void nginx_request(string_view after, EventEntry& out) {
  if (!consume(after, ", server: ")) return;
  const size_t r = after.find(", request: \"");
  if (r == string_view::npos) return;
  string_view req = after.substr(r + 12);
  const size_t sp = req.find(' ');
  if (sp == string_view::npos || sp == 0 || sp > 16) return;
  string_view method = req.substr(0, sp);
  for (char c : method)
    if (c < 'A' || c > 'Z') return;
  string_view target = req.substr(sp + 1);
  const size_t end = target.find_first_of(" \"");
  if (end == string_view::npos || end == 0) return;
  out.method = method;
  out.subject = target.substr(0, end);
  out.target_is_url = true;
}

ParseStatus parse_nginx(string_view line, EventEntry& out) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!(line.size() >= 20 && digits(line, 0, 4, y) && line[4] == '/' && digits(line, 5, 2, mo) &&
        line[7] == '/' && digits(line, 8, 2, d) && line[10] == ' ' &&
        clock_time(line, 11, h, mi, sec)))
    return ParseStatus::kNoMatch;
  if (!civil(y, mo, d, h, mi, sec, out.time)) return ParseStatus::kBadTime;
  string_view s = line.substr(19);
  if (!consume(s, " [")) return ParseStatus::kNoMatch;
  const size_t lvl = s.find("] ");
  if (lvl > 6) return ParseStatus::kNoMatch;  // npos too
  s.remove_prefix(lvl + 2);
  // PID#TID: [*CID ]
  const size_t pid = digit_run(s);
  if (pid == 0 || pid >= s.size() || s[pid] != '#') return ParseStatus::kNoMatch;
  s.remove_prefix(pid + 1);
  const size_t tid = s.find(": ");
  if (tid == string_view::npos || tid == 0 || tid > 20) return ParseStatus::kNoMatch;
  for (char c : s.substr(0, tid))
    if (!is_digit(c)) return ParseStatus::kNoMatch;
  s.remove_prefix(tid + 2);
  if (s.starts_with('*')) {
    const size_t cid = digit_run(s.substr(1));
    if (cid == 0 || 1 + cid >= s.size() || s[1 + cid] != ' ') return ParseStatus::kNoMatch;
    s.remove_prefix(cid + 2);
  }
  out.message = s;
  // ModSecurity's "[client A] ModSecurity: ..." (libmodsecurity): the address in a place
  // of its own, before anything of the client's.
  if (string_view m = s; consume(m, "[client ")) {
    const size_t e = m.find("] ");
    if (e != string_view::npos) {
      auto ip = IpAddress::parse(m.substr(0, e));
      if (const uint16_t code = modsecurity_denied(m.substr(e + 2)); ip && code) {
        out.has_client = true;
        out.client_ip = *ip;
        out.kind = kWafDenied;
        out.status = code;
        return ParseStatus::kOk;
      }
    }
  }
  const ClientAt first = next_client(s, 0);
  if (first.pos == string_view::npos) return ParseStatus::kOk;  // no client: a notice
  bool fixed = true;
  string_view subject;
  string_view kind = nginx_kind(s.substr(0, first.pos), fixed, subject);
  if (const uint16_t code = modsecurity_denied(s); code) {
    kind = kWafDenied;
    fixed = false;
    out.status = code;
  }
  if (kind.empty()) return ParseStatus::kOk;
  if (!first.ip) return ParseStatus::kOk;  // a client that is no address names nobody
  if (!fixed) {
    // The message holds the client's text: every ", client: A" must name the same.
    for (ClientAt c = next_client(s, first.end); c.pos != string_view::npos;
         c = next_client(s, c.end))
      if (!c.ip || !(*c.ip == *first.ip)) return ParseStatus::kBadRequest;
  }
  out.has_client = true;
  out.client_ip = *first.ip;
  out.kind = kind;
  out.subject = subject;
  out.message = s.substr(0, first.pos);
  nginx_request(s.substr(first.end), out);
  return ParseStatus::kOk;
}

// ---------------------------------------------------------------------------------------
// Apache 2.4: "[Sun Dec 06 11:33:29.123456 2026] [core:error] [pid 12:tid 34] (13)Permission
// denied: [client 1.2.3.4:5678] AH00126: MESSAGE[, referer: R]" (the default
// ErrorLogFormat).

ParseStatus parse_apache(string_view line, EventEntry& out) {
  string_view s = line;
  // "[Www Mmm dd HH:MM:SS[.uuuuuu] YYYY] "
  if (!consume(s, "[") || s.size() < 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ')
    return ParseStatus::kNoMatch;
  const int mo = month_number(s.substr(4, 3));
  int d = 0, h = 0, mi = 0, sec = 0, y = 0;
  if (mo == 0 || !(digits(s, 8, 2, d) || (s[8] == ' ' && digits(s, 9, 1, d))) ||
      !clock_time(s, 11, h, mi, sec))
    return ParseStatus::kBadTime;
  size_t pos = 19;
  if (s[pos] == '.') {
    const size_t n = digit_run(s.substr(pos + 1));
    if (n == 0) return ParseStatus::kBadTime;
    pos += 1 + n;
  }
  if (pos >= s.size() || s[pos] != ' ' || !digits(s, pos + 1, 4, y) || pos + 5 >= s.size() ||
      s[pos + 5] != ']')
    return ParseStatus::kBadTime;
  if (!civil(y, mo, d, h, mi, sec, out.time)) return ParseStatus::kBadTime;
  s.remove_prefix(pos + 6);
  // " [module:level] [pid N[:tid N]] "
  if (!consume(s, " [")) return ParseStatus::kNoMatch;
  const size_t ml = s.find("] ");
  if (ml == string_view::npos || s.substr(0, ml).find(':') == string_view::npos ||
      s.substr(0, ml).find(' ') != string_view::npos)
    return ParseStatus::kNoMatch;
  s.remove_prefix(ml + 2);
  if (!consume(s, "[pid ")) return ParseStatus::kNoMatch;
  const size_t pe = s.find("] ");
  if (pe > 48) return ParseStatus::kNoMatch;  // npos too
  s.remove_prefix(pe + 2);
  out.message = s;
  // An OS error "(13)Permission denied: " may come first; its text is strerror's.
  if (s.starts_with('(')) {
    const size_t close = s.find(')');
    const size_t colon = s.find(": ");
    if (close != string_view::npos && colon != string_view::npos && close < colon &&
        s.substr(0, colon).find('[') == string_view::npos)
      s.remove_prefix(colon + 2);
  }
  if (!consume(s, "[client ")) return ParseStatus::kOk;  // not about a client
  const size_t ce = s.find("] ");
  if (ce == string_view::npos) return ParseStatus::kOk;
  string_view addr = s.substr(0, ce);
  // A:PORT; IPv6 without brackets ("::1:56789").
  if (const size_t colon = addr.rfind(':');
      colon != string_view::npos && colon + 1 < addr.size() &&
      digit_run(addr.substr(colon + 1)) == addr.size() - colon - 1)
    addr = addr.substr(0, colon);
  const auto ip = IpAddress::parse(addr);
  if (!ip) return ParseStatus::kOk;
  s.remove_prefix(ce + 2);
  // mod_security2 repeats "[client A] " in its message.
  if (string_view m = s; consume(m, "[client ")) {
    const size_t e = m.find("] ");
    if (e != string_view::npos) s = m.substr(e + 2);
  }
  out.message = s;
  const auto path_after = [&](string_view prefix) {
    string_view p = s.substr(prefix.size());
    if (const size_t r = p.find(", referer: "); r != string_view::npos) p = p.substr(0, r);
    return p;
  };
  struct Known {
    string_view prefix;
    string_view kind;
    bool subject;
  };
  static constexpr Known kKnown[] = {
      {"AH00126: Invalid URI in request ", kInvalidRequest, false},
      {"AH10244: invalid URI path (", kInvalidRequest, true},
      {"AH00127: Cannot map ", kInvalidRequest, false},
      {"AH01630: client denied by server configuration: ", kForbidden, true},
      {"AH01797: client denied by server configuration: ", kForbidden, true},
      {"AH01276: Cannot serve directory ", kForbiddenIndex, false},
      {"AH00128: File does not exist: ", kNotFound, true},
      {"AH02811: script not found or unable to stat: ", kNotFound, true},
      {"AH01264: script not found or unable to stat: ", kNotFound, true},
      {"AH01071: Got error 'Primary script unknown", kNotFound, false},
      {"AH01617: user ", kAuthFailed, false},
      {"AH01618: user ", kAuthFailed, false},
  };
  for (const auto& k : kKnown) {
    if (!s.starts_with(k.prefix)) continue;
    out.kind = k.kind;
    if (k.subject) {
      string_view p = path_after(k.prefix);
      if (k.prefix.ends_with('(')) strip_suffix(p, ")");
      out.subject = p;
    } else if (k.kind == kAuthFailed) {
      // "user NAME: authentication failure for ..." / "user NAME not found: ..."
      string_view u = s.substr(k.prefix.size());
      const size_t e = k.prefix.starts_with("AH01617") ? u.find(": authentication failure")
                                                       : u.find(" not found");
      out.subject = e == string_view::npos ? string_view() : u.substr(0, e);
    } else if (k.kind == kForbiddenIndex) {
      string_view p = s.substr(k.prefix.size());
      out.subject = p.substr(0, p.find(": No matching DirectoryIndex"));
    }
    break;
  }
  if (out.kind.empty()) {
    if (string_view m = s; const uint16_t code = modsecurity_denied(m)) {
      out.kind = kWafDenied;
      out.status = code;
    }
  }
  out.has_client = true;
  out.client_ip = *ip;
  return ParseStatus::kOk;
}

}  // namespace

std::optional<EventLog> event_log_named(std::string_view spec) {
  if (spec == "nginx-error") return EventLog::kNginxError;
  if (spec == "apache-error") return EventLog::kApacheError;
  if (spec == "sshd") return EventLog::kSshd;
  return std::nullopt;
}

std::string_view event_log_name(EventLog log) {
  switch (log) {
    case EventLog::kNginxError:
      return "nginx-error";
    case EventLog::kApacheError:
      return "apache-error";
    case EventLog::kSshd:
      return "sshd";
  }
  return "?";
}

ParseStatus EventLogFormat::parse(std::string_view line, int64_t reference_s,
                                  EventEntry& out) const {
  out = EventEntry{};
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (line.size() > options_.max_line) return ParseStatus::kTooLong;
  switch (log_) {
    case EventLog::kSshd:
      return parse_sshd(line, reference_s, out);
    case EventLog::kNginxError:
      return parse_nginx(line, out);
    case EventLog::kApacheError:
      return parse_apache(line, out);
  }
  return ParseStatus::kNoMatch;
}

}  // namespace mamori::logparse
