#include "core/logparse/format.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <initializer_list>
#include <optional>

#include <fmt/format.h>

namespace mamori::logparse {
namespace {

using Field = LogFormat::Field;
constexpr size_t kMaxJsonDepth = 32;

constexpr std::string_view kCombined = R"(%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i")";
constexpr std::string_view kCommon = R"(%h %l %u %t "%r" %>s %b)";
constexpr std::string_view kVhostCombined =
    R"(%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i")";

// ---- values -------------------------------------------------------------------------------

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool one_of(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// n decimal digits at s[at..at+n).
bool fixed_digits(std::string_view s, size_t at, size_t n, int& value) {
  if (at + n > s.size()) return false;
  value = 0;
  for (size_t k = at; k < at + n; ++k) {
    if (!is_digit(s[k])) return false;
    value = value * 10 + (s[k] - '0');
  }
  return true;
}

// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = unsigned(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + int64_t(doe) - 719468;
}

bool civil_seconds(int y, int mo, int d, int h, int mi, int s, int64_t& out) {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  out = days_from_civil(y, unsigned(mo), unsigned(d)) * 86400 + h * 3600 + mi * 60 + s;
  return true;
}

// "Jan" -> 1 ... "Dec" -> 12; 0 for anything else.
int month_number(std::string_view m) {
  static constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int k = 0; k < 12; ++k)
    if (m[0] == kMonths[k][0] && m[1] == kMonths[k][1] && m[2] == kMonths[k][2]) return k + 1;
  return 0;
}

// "10/Oct/2000:13:55:36 -0700", exactly as nginx and Apache write it.
bool parse_clf_time(std::string_view s, int64_t& out) {
  if (s.size() != 26 || s[2] != '/' || s[6] != '/' || s[11] != ':' || s[14] != ':' ||
      s[17] != ':' || s[20] != ' ' || (s[21] != '+' && s[21] != '-'))
    return false;
  bool digits = true;
  const auto num = [&](size_t at, size_t n) {
    int v = 0;
    for (size_t k = at; k < at + n; ++k) {
      const unsigned d = unsigned(s[k] - '0');
      digits &= d <= 9;
      v = v * 10 + int(d);
    }
    return v;
  };
  const int day = num(0, 2), year = num(7, 4), hour = num(12, 2), minute = num(15, 2),
            second = num(18, 2), oh = num(22, 2), om = num(24, 2);
  const int month = month_number(s.substr(3, 3));
  if (!digits || month == 0 || oh > 23 || om > 59 ||
      !civil_seconds(year, month, day, hour, minute, second, out))
    return false;
  const int offset = oh * 3600 + om * 60;
  out -= s[21] == '+' ? offset : -offset;
  return true;
}

// "2000-10-10T13:55:36-07:00" ($time_iso8601), also with a space for the T, fractional
// seconds, "Z", "+0700" or no zone (UTC).
bool parse_iso_time(std::string_view s, int64_t& out) {
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return false;
  int y, mo, d, h, mi, sec;
  if (!fixed_digits(s, 0, 4, y) || !fixed_digits(s, 5, 2, mo) || !fixed_digits(s, 8, 2, d) ||
      !fixed_digits(s, 11, 2, h) || !fixed_digits(s, 14, 2, mi) || !fixed_digits(s, 17, 2, sec) ||
      !civil_seconds(y, mo, d, h, mi, sec, out))
    return false;
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    do ++i;
    while (i < s.size() && is_digit(s[i]));
  }
  const std::string_view zone = s.substr(i);
  if (zone.empty() || zone == "Z" || zone == "z") return true;
  int oh, om;
  if ((zone[0] != '+' && zone[0] != '-') || !fixed_digits(zone, 1, 2, oh) || oh > 23) return false;
  const size_t mm = zone.size() == 6 && zone[3] == ':' ? 4 : 3;
  if (zone.size() != mm + 2 || !fixed_digits(zone, mm, 2, om) || om > 59) return false;
  const int offset = oh * 3600 + om * 60;
  out -= zone[0] == '+' ? offset : -offset;
  return true;
}

// "1710028800.123" ($msec, Apache %{sec}t, JSON numbers): seconds, the fraction dropped.
bool parse_epoch_time(std::string_view s, int64_t& out) {
  size_t i = 0;
  out = 0;
  while (i < s.size() && is_digit(s[i]) && i < 12) out = out * 10 + (s[i++] - '0');
  if (i == 0) return false;
  if (i < s.size() && s[i] == '.') {
    do ++i;
    while (i < s.size() && is_digit(s[i]));
  }
  return i == s.size();
}

bool parse_time(Field kind, std::string_view s, int64_t& out) {
  switch (kind) {
    case Field::kTimeClf:
      return parse_clf_time(s, out);
    case Field::kTimeClfBracketed:
      return s.size() > 2 && s.front() == '[' && s.back() == ']' &&
             parse_clf_time(s.substr(1, s.size() - 2), out);
    case Field::kTimeIso:
      return parse_iso_time(s, out);
    case Field::kTimeEpoch:
      return parse_epoch_time(s, out);
    default:
      if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
      return parse_clf_time(s, out) || parse_iso_time(s, out) || parse_epoch_time(s, out);
  }
}

// Status and byte counts. Anything but digits reads as 0: a template line was checked
// while being delimited (plausible()), and in a JSON line a count is not worth refusing
// the line for, since the request and address in it still are.
template <class T>
T parse_count(std::string_view s, size_t max_digits) {
  T value = 0;
  if (s.size() > max_digits) return 0;
  for (char c : s) {
    if (!is_digit(c)) return 0;
    value = T(value * 10 + T(c - '0'));
  }
  return value;
}

// ---- escapes ------------------------------------------------------------------------------

void put_utf8(uint32_t cp, char*& d) {
  if (cp < 0x80) {
    *d++ = char(cp);
  } else if (cp < 0x800) {
    *d++ = char(0xc0 | cp >> 6);
    *d++ = char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    *d++ = char(0xe0 | cp >> 12);
    *d++ = char(0x80 | (cp >> 6 & 0x3f));
    *d++ = char(0x80 | (cp & 0x3f));
  } else {
    *d++ = char(0xf0 | cp >> 18);
    *d++ = char(0x80 | (cp >> 12 & 0x3f));
    *d++ = char(0x80 | (cp >> 6 & 0x3f));
    *d++ = char(0x80 | (cp & 0x3f));
  }
}

bool hex4(std::string_view s, size_t at, uint32_t& out) {
  if (at + 4 > s.size()) return false;
  out = 0;
  for (size_t k = at; k < at + 4; ++k) {
    const int h = hex_value(s[k]);
    if (h < 0) return false;
    out = out << 4 | uint32_t(h);
  }
  return true;
}

// Undoes every escape a web server or JSON encoder writes: nginx \xHH, Apache \" \\ \n,
// JSON \uXXXX (surrogate pairs; a lone one becomes U+FFFD). Unknown escapes stay as they
// are. Writes at most raw.size() bytes to dst and returns how many.
size_t unescape_to(std::string_view raw, char* dst) {
  char* d = dst;
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c != '\\' || i + 1 == raw.size()) {
      *d++ = c;
      continue;
    }
    const char e = raw[i + 1];
    char simple = 0;
    switch (e) {
      case '"':
      case '\\':
      case '/':
      case '\'':
        simple = e;
        break;
      case 'n':
        simple = '\n';
        break;
      case 'r':
        simple = '\r';
        break;
      case 't':
        simple = '\t';
        break;
      case 'b':
        simple = '\b';
        break;
      case 'f':
        simple = '\f';
        break;
      case 'v':
        simple = '\v';
        break;
      default:
        break;
    }
    if (simple) {
      *d++ = simple;
      ++i;
    } else if (e == 'x' && i + 3 < raw.size() && hex_value(raw[i + 2]) >= 0 &&
               hex_value(raw[i + 3]) >= 0) {
      *d++ = char(hex_value(raw[i + 2]) << 4 | hex_value(raw[i + 3]));
      i += 3;
    } else if (uint32_t cp; e == 'u' && hex4(raw, i + 2, cp)) {
      i += 5;
      if (cp >= 0xd800 && cp < 0xdc00) {
        uint32_t low;
        if (i + 6 < raw.size() && raw[i + 1] == '\\' && raw[i + 2] == 'u' &&
            hex4(raw, i + 3, low) && low >= 0xdc00 && low < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          i += 6;
        } else {
          cp = 0xfffd;
        }
      } else if (cp >= 0xdc00 && cp < 0xe000) {
        cp = 0xfffd;
      }
      put_utf8(cp, d);
    } else {
      *d++ = c;
    }
  }
  return size_t(d - dst);
}

// ---- one line -----------------------------------------------------------------------------

// The first c in base[i..n), or npos. Most fields are short ("-", a status, an address),
// so the first 16 bytes are tested a word at a time before paying for a memchr call.
size_t find_byte(const char* base, size_t i, size_t n, char c) {
  if constexpr (std::endian::native == std::endian::little) {
    constexpr uint64_t kOnes = 0x0101010101010101u, kHighs = 0x8080808080808080u;
    const uint64_t pattern = kOnes * uint8_t(c);
    for (int w = 0; w < 2 && i + 8 <= n; ++w, i += 8) {
      uint64_t word;
      std::memcpy(&word, base + i, 8);
      const uint64_t x = word ^ pattern;
      // The lowest flagged byte is exactly the first match (higher ones may be false).
      if (const uint64_t hit = (x - kOnes) & ~x & kHighs) return i + (std::countr_zero(hit) >> 3);
    }
  }
  const void* hit = std::memchr(base + i, c, n - i);
  return hit ? size_t(static_cast<const char*>(hit) - base) : std::string_view::npos;
}

// Where a field's literal terminator starts: the first occurrence at or after `from` not
// preceded by an odd number of backslashes (an escaped quote is part of the value; the
// count stops at the field's start; `escaped` says the line has backslashes at all).
// npos when absent.
size_t find_terminator(std::string_view line, size_t field, size_t from, std::string_view lit,
                       bool escaped) {
  const char* base = line.data();
  const size_t n = line.size();
  for (size_t i = from; i < n;) {
    const size_t k = find_byte(base, i, n, lit[0]);
    if (k == std::string_view::npos || n - k < lit.size()) return std::string_view::npos;
    size_t m = 1;
    while (m < lit.size() && base[k + m] == lit[m]) ++m;
    if (m == lit.size()) {
      size_t slashes = 0;
      while (escaped && k - slashes > field && base[k - slashes - 1] == '\\') ++slashes;
      if (slashes % 2 == 0) return k;
    }
    i = k + 1;
  }
  return std::string_view::npos;
}

// Fields waiting for the end of the line: the client and time are checked last so a
// better-ranked JSON key later in the object still counts.
struct Pending {
  bool has_client = false;
  bool has_request = false;
  std::string_view client;
  Field time_kind = Field::kOpaque;
  std::string_view time;
  std::string_view path;
  std::string_view query;
};

std::string_view dash_empty(std::string_view v) { return v == "-" ? std::string_view{} : v; }

// RFC 9110 tchar: what an HTTP method may be made of.
constexpr std::array<bool, 256> kTokenChar = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 256; ++c)
    t[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) t[uint8_t(c)] = true;
  return t;
}();

// Stores one field's (already unescaped) value.
void assign(Field field, std::string_view v, Entry& out, Pending& p) {
  switch (field) {
    case Field::kOpaque:
      break;
    case Field::kClient:
      p.has_client = true, p.client = v;
      break;
    case Field::kTimeClf:
    case Field::kTimeClfBracketed:
    case Field::kTimeIso:
    case Field::kTimeEpoch:
    case Field::kTimeAny:
      p.time_kind = field, p.time = v;
      break;
    case Field::kStatus:
      out.status = parse_count<uint16_t>(v, 3);
      break;
    case Field::kBytes:
      out.bytes = parse_count<uint64_t>(v, 19);
      break;
    case Field::kUser:
      out.user = dash_empty(v);
      break;
    case Field::kRequest:
      p.has_request = true;
      out.request = dash_empty(v);
      break;
    case Field::kMethod:
      out.method = dash_empty(v);
      break;
    case Field::kTarget:
      out.target = dash_empty(v);
      break;
    case Field::kPath:
      p.path = dash_empty(v);
      break;
    case Field::kQuery:
      p.query = dash_empty(v);
      break;
    case Field::kProtocol:
      out.protocol = dash_empty(v);
      break;
    case Field::kReferer:
      out.referer = dash_empty(v);
      break;
    case Field::kUserAgent:
      out.user_agent = dash_empty(v);
      break;
    case Field::kHost:
      out.host = dash_empty(v);
      break;
    case Field::kForwardedFor:
      out.forwarded_for = dash_empty(v);
      break;
  }
}

// Room in the entry's buffer was reserved for the whole line up front (unescaping never
// grows text), so appending never reallocates and views handed out earlier stay valid.
bool stash(std::string& buf, std::string_view raw, std::string_view& view) {
  if (buf.capacity() - buf.size() < raw.size()) return false;
  const size_t at = buf.size();
  buf.resize(at + raw.size());
  buf.resize(at + unescape_to(raw, buf.data() + at));
  view = std::string_view(buf).substr(at);
  return true;
}

// "METHOD target [HTTP/x]": a token, one space, and a target in one of HTTP's forms
// (RFC 9112 3.2): "/path", "*", "scheme://..." or CONNECT's "host:port". False for
// anything else, the empty request included: "HELP", TLS bytes, WebLogic's "t3 12.2.1".
bool split_request(std::string_view r, std::string_view& method, std::string_view& target,
                   std::string_view& protocol) {
  const size_t sp = r.find(' ');
  if (sp == 0 || sp == std::string_view::npos) return false;
  method = r.substr(0, sp);
  for (char c : method)
    if (!kTokenChar[uint8_t(c)]) return false;
  target = r.substr(sp + 1);
  if (const size_t last = target.rfind(' ');
      last != std::string_view::npos && target.substr(last + 1).starts_with("HTTP/")) {
    protocol = target.substr(last + 1);
    target = target.substr(0, last);
  }
  return !target.empty() &&
         (target[0] == '/' || target == "*" || target.find(':') != std::string_view::npos);
}

// Checks what was deferred and derives method/target/protocol from the request line.
ParseStatus finish(Entry& out, const Pending& p, std::string& scratch) {
  if (!p.has_client) return ParseStatus::kBadAddress;
  out.client = p.client;
  const auto ip = IpAddress::parse(p.client);
  if (!ip) return ParseStatus::kBadAddress;
  out.client_ip = *ip;
  if (p.time_kind != Field::kOpaque && !parse_time(p.time_kind, p.time, out.time))
    return ParseStatus::kBadTime;

  if (p.has_request) {
    std::string_view method, target, protocol;
    if (split_request(out.request, method, target, protocol)) {
      if (out.method.empty()) out.method = method;
      if (out.target.empty()) out.target = target;
      if (out.protocol.empty()) out.protocol = protocol;
    } else {
      out.malformed_request = true;  // still a line of the format: its address is judged
    }
  }
  if (out.target.empty() && !p.path.empty()) {
    out.target = p.path;
    if (!p.query.empty()) {
      // $uri + $args (nginx) or %U + %q (Apache's %q brings its own "?").
      const bool mark = p.query[0] != '?';
      if (scratch.capacity() - scratch.size() < p.path.size() + p.query.size() + mark)
        return ParseStatus::kNoMatch;
      const size_t at = scratch.size();
      scratch.append(p.path);
      if (mark) scratch.push_back('?');
      scratch.append(p.query);
      out.target = std::string_view(scratch).substr(at);
    }
  }
  return ParseStatus::kOk;
}

// Status and byte counts are checked while fields are delimited, since a count that is
// not a number is what shows a quoted field was ended too early.
bool plausible(Field field, std::string_view v) {
  const auto digits = [](std::string_view d) {
    for (const char c : d)
      if (!is_digit(c)) return false;
    return true;
  };
  if (field == Field::kStatus) return v.size() <= 3 && digits(v);
  if (field == Field::kBytes) return v == "-" || (v.size() <= 19 && digits(v));
  return true;
}

// The width of a time field that has one and holds a space: "10/Oct/2000:13:55:36 -0700"
// ($time_local) and its bracketed form (Apache's %t); 0 for any other field.
size_t time_width(Field field) {
  if (field == Field::kTimeClf) return 26;
  if (field == Field::kTimeClfBracketed) return 28;
  return 0;
}

// Where each field of a template line starts and ends. A quoted field ends at the first
// terminator that lets the rest of the line match: servers that do not escape quotes log
// a probe such as GET /?id=1" as is, and those lines are the ones that matter. Retries
// are bounded per line, so a line full of quotes costs at most kMaxRetries extra passes.
// The status returned on failure is that of the first, natural reading.
ParseStatus delimit(const std::vector<LogFormat::Step>& steps, std::string_view line, size_t pos,
                    bool escaped, bool cut, size_t* starts, size_t* ends) {
  constexpr int kMaxRetries = 16;
  int retries = kMaxRetries;
  ParseStatus first = ParseStatus::kOk;
  size_t i = 0;
  size_t from = pos;  // where to look for step i's terminator
  while (true) {
    ParseStatus failure = ParseStatus::kOk;
    if (i == steps.size()) {
      // Fields appended after the format's last literal (a combined log with extras)
      // are tolerated: they cannot move any field the format names.
      if (pos == line.size() || (!steps.back().after.empty() && line[pos] == ' '))
        return ParseStatus::kOk;
      failure = ParseStatus::kNoMatch;
    } else {
      const LogFormat::Step& step = steps[i];
      size_t end = line.size();
      if (!step.after.empty()) {
        // A CLF time holds a space: "%t %v" or "$time_local $host" would cut it at the
        // zone. Its width is fixed, so a terminator right after it is the one.
        const size_t width = time_width(step.field);
        if (width && from <= pos + width && line.size() - pos >= width &&
            line.substr(pos + width).starts_with(step.after))
          end = pos + width;
        else
          end = find_terminator(line, pos, from, step.after, escaped);
      }
      if (end == std::string_view::npos && cut) {
        // The line was cut here (LogFormat::parse_cut): this field runs to the cut, the
        // ones after it were not kept.
        starts[i] = pos;
        ends[i] = line.size();
        if (!plausible(step.field, line.substr(pos))) starts[i] = line.size();
        for (size_t k = i + 1; k < steps.size(); ++k) starts[k] = ends[k] = line.size();
        return ParseStatus::kOk;
      }
      if (end == std::string_view::npos) {
        failure = step.quoted ? ParseStatus::kTruncated : ParseStatus::kNoMatch;
      } else if (!plausible(step.field, line.substr(pos, end - pos))) {
        failure = ParseStatus::kNoMatch;
      } else {
        starts[i] = pos;
        ends[i] = end;
        pos = from = end + step.after.size();
        ++i;
        continue;
      }
    }
    if (first == ParseStatus::kOk) first = failure;
    // Try the next terminator of the closest quoted field before this one.
    size_t j = i;
    while (j > 0 && (!steps[j - 1].quoted || steps[j - 1].after.empty())) --j;
    if (j == 0 || --retries < 0) return first;
    i = j - 1;
    pos = starts[i];
    from = ends[i] + 1;
  }
}

// ---- JSON lines ---------------------------------------------------------------------------
// A lenient reader for one flat object per line, not a validator: nginx's escape=json
// passes bytes >= 0x80 through unchecked, so a strict parser (nlohmann, simdjson) would
// drop every line whose user agent carries one invalid UTF-8 byte, and an attacker could
// hide from the rules that way. Nested values are skipped; only top-level keys count.

void skip_ws(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
}

// s[i] is the opening quote; leaves i after the closing one.
ParseStatus scan_string(std::string_view s, size_t& i, std::string_view& text, bool& escaped) {
  const size_t start = ++i;
  escaped = false;
  while (i < s.size()) {
    if (s[i] == '"') {
      text = s.substr(start, i - start);
      ++i;
      return ParseStatus::kOk;
    }
    if (s[i] == '\\') escaped = true, ++i;
    ++i;
  }
  return ParseStatus::kTruncated;
}

// s[i] is '{' or '['; leaves i after its match. Bracket kinds are not paired up: the
// value is thrown away, only its end matters.
ParseStatus skip_nested(std::string_view s, size_t& i) {
  size_t depth = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"') {
      std::string_view unused;
      bool escaped;
      if (const auto st = scan_string(s, i, unused, escaped); st != ParseStatus::kOk) return st;
      continue;
    }
    if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return ParseStatus::kNoMatch;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) {
        ++i;
        return ParseStatus::kOk;
      }
    }
    ++i;
  }
  return ParseStatus::kTruncated;
}

// ---- compiling ----------------------------------------------------------------------------

tl::unexpected<Error> spec_error(std::string_view spec, size_t column, std::string_view what) {
  return fail_msg("compile log format", std::string(spec),
                  fmt::format("column {}: {}", column, what));
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if ((a[k] | 0x20) != (b[k] | 0x20)) return false;
  return true;
}

Field nginx_field(std::string_view name) {
  struct Var {
    std::string_view name;
    Field field;
  };
  static constexpr Var kVars[] = {
      {"remote_addr", Field::kClient},
      {"remote_user", Field::kUser},
      {"time_local", Field::kTimeClf},
      {"time_iso8601", Field::kTimeIso},
      {"msec", Field::kTimeEpoch},
      {"request", Field::kRequest},
      {"request_method", Field::kMethod},
      {"request_uri", Field::kTarget},
      {"uri", Field::kPath},
      {"document_uri", Field::kPath},
      {"args", Field::kQuery},
      {"query_string", Field::kQuery},
      {"server_protocol", Field::kProtocol},
      {"status", Field::kStatus},
      {"body_bytes_sent", Field::kBytes},
      {"bytes_sent", Field::kBytes},
      {"http_referer", Field::kReferer},
      {"http_user_agent", Field::kUserAgent},
      {"host", Field::kHost},
      {"http_host", Field::kHost},
      {"http_x_forwarded_for", Field::kForwardedFor},
  };
  for (const auto& v : kVars)
    if (v.name == name) return v.field;
  return Field::kOpaque;
}

// nullopt for a directive Apache does not have.
std::optional<Field> apache_field(char letter, std::string_view arg) {
  switch (letter) {
    case 'h':
      return Field::kClient;
    case 'a':
      return arg.empty() ? Field::kClient : Field::kOpaque;  // %{c}a: the proxy
    case 'u':
      return Field::kUser;
    case 't':
      if (arg.empty()) return Field::kTimeClfBracketed;
      return arg == "sec" ? Field::kTimeEpoch : Field::kOpaque;
    case 'r':
      return Field::kRequest;
    case 'm':
      return Field::kMethod;
    case 'U':
      return Field::kPath;
    case 'q':
      return Field::kQuery;
    case 'H':
      return Field::kProtocol;
    case 's':
      return Field::kStatus;
    case 'b':
    case 'B':
    case 'O':
      return Field::kBytes;
    case 'v':
    case 'V':
      return Field::kHost;
    case 'i':
      if (iequals(arg, "Referer")) return Field::kReferer;
      if (iequals(arg, "User-Agent")) return Field::kUserAgent;
      if (iequals(arg, "Host")) return Field::kHost;
      if (iequals(arg, "X-Forwarded-For")) return Field::kForwardedFor;
      return Field::kOpaque;
    case 'A':
    case 'C':
    case 'D':
    case 'e':
    case 'f':
    case 'I':
    case 'k':
    case 'l':
    case 'L':
    case 'n':
    case 'o':
    case 'p':
    case 'P':
    case 'R':
    case 'S':
    case 'T':
    case 'X':
      return Field::kOpaque;
    default:
      return std::nullopt;
  }
}

// Collects literals and fields in order, checking what makes a format unreadable.
class TemplateBuilder {
 public:
  explicit TemplateBuilder(std::string_view spec) : spec_(spec) {}

  void literal(char c, size_t column) {
    if (c == '"' && quotes_++ % 2 == 0) open_quote_column_ = column;
    text_ += c;
  }
  Status field(Field f, size_t column) {
    if (steps_.empty()) {
      head_ = std::move(text_);
    } else {
      if (text_.empty())
        return spec_error(spec_, column, "two fields with nothing between them cannot be split");
      steps_.back().after = std::move(text_);
    }
    text_.clear();
    if (steps_.size() == LogFormat::kMaxFields)
      return spec_error(spec_, column, fmt::format("more than {} fields", LogFormat::kMaxFields));
    has_client_ |= f == Field::kClient;
    steps_.push_back({f, quotes_ % 2 == 1, {}});
    return ok();
  }
  Status finish(std::string& head, std::vector<LogFormat::Step>& steps) {
    if (quotes_ % 2) return spec_error(spec_, open_quote_column_, "unbalanced quote");
    if (!has_client_)
      return spec_error(spec_, 1, "no client address field ($remote_addr, %h or %a)");
    steps_.back().after = std::move(text_);
    head = std::move(head_);
    steps = std::move(steps_);
    return ok();
  }

 private:
  std::string_view spec_;
  std::string text_;
  std::string head_;
  std::vector<LogFormat::Step> steps_;
  size_t quotes_ = 0;
  size_t open_quote_column_ = 0;
  bool has_client_ = false;
};

// Config-file escapes that come along when a format is pasted from nginx.conf or
// apache2.conf: \" \' \\ \t \n \r. Returns the character and advances i past it.
char spec_char(std::string_view s, size_t& i) {
  if (s[i] == '\\' && i + 1 < s.size()) {
    switch (s[i + 1]) {
      case '"':
      case '\'':
      case '\\':
        i += 2;
        return s[i - 1];
      case 't':
        i += 2;
        return '\t';
      case 'n':
        i += 2;
        return '\n';
      case 'r':
        i += 2;
        return '\r';
      default:
        break;
    }
  }
  return s[i++];
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

Status build_nginx(std::string_view s, TemplateBuilder& b) {
  for (size_t i = 0; i < s.size();) {
    const size_t column = i + 1;
    if (s[i] != '$') {
      const char c = spec_char(s, i);
      b.literal(c, column);
      continue;
    }
    std::string_view name;
    if (i + 1 < s.size() && s[i + 1] == '{') {
      const size_t close = s.find('}', i + 2);
      if (close == std::string_view::npos) return spec_error(s, column, "unterminated ${");
      name = s.substr(i + 2, close - i - 2);
      i = close + 1;
    } else {
      size_t end = i + 1;
      while (end < s.size() && is_name_char(s[end])) ++end;
      name = s.substr(i + 1, end - i - 1);
      i = end;
    }
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_name_char))
      return spec_error(s, column, "'$' without a variable name");
    MAMORI_TRY(b.field(nginx_field(name), column));
  }
  return ok();
}

Status build_apache(std::string_view s, TemplateBuilder& b) {
  for (size_t i = 0; i < s.size();) {
    const size_t column = i + 1;
    if (s[i] != '%') {
      const char c = spec_char(s, i);
      b.literal(c, column);
      continue;
    }
    ++i;
    if (i < s.size() && s[i] == '%') {
      b.literal('%', column);
      ++i;
      continue;
    }
    // Conditions and modifiers (%!200,304r, %>s, %<s) change nothing we read.
    while (i < s.size() && one_of(s[i], "!<>,0123456789")) ++i;
    std::string_view arg;
    if (i < s.size() && s[i] == '{') {
      const size_t close = s.find('}', i + 1);
      if (close == std::string_view::npos) return spec_error(s, column, "unterminated %{");
      arg = s.substr(i + 1, close - i - 1);
      i = close + 1;
    }
    if (i >= s.size()) return spec_error(s, column, "'%' without a directive");
    std::optional<Field> field;
    if (s[i] == '^' && i + 2 < s.size() && s[i + 1] == 't' &&
        (s[i + 2] == 'i' || s[i + 2] == 'o')) {
      field = Field::kOpaque;  // %{X}^ti, %{X}^to: trailers
      i += 3;
    } else {
      field = apache_field(s[i], arg);
      if (!field) return spec_error(s, column, fmt::format("unknown directive %{}", s[i]));
      ++i;
    }
    MAMORI_TRY(b.field(*field, column));
  }
  return ok();
}

struct JsonFieldName {
  std::string_view name;
  Field field;
  std::initializer_list<std::string_view> default_keys;
};
const JsonFieldName kJsonFields[] = {
    {"client", Field::kClient, {"remote_addr", "client_ip", "client", "ip"}},
    {"time",
     Field::kTimeAny,
     {"time", "timestamp", "@timestamp", "time_local", "time_iso8601", "msec"}},
    {"request", Field::kRequest, {"request"}},
    {"method", Field::kMethod, {"request_method", "method"}},
    {"target", Field::kTarget, {"request_uri"}},
    {"path", Field::kPath, {"uri", "path"}},
    {"query", Field::kQuery, {"args", "query_string", "query"}},
    {"protocol", Field::kProtocol, {"server_protocol", "protocol"}},
    {"status", Field::kStatus, {"status"}},
    {"bytes", Field::kBytes, {"body_bytes_sent", "bytes", "bytes_sent"}},
    {"user", Field::kUser, {"remote_user", "user"}},
    {"referer", Field::kReferer, {"http_referer", "referer", "referrer"}},
    {"user_agent", Field::kUserAgent, {"http_user_agent", "user_agent"}},
    {"host", Field::kHost, {"host", "http_host"}},
    {"forwarded_for", Field::kForwardedFor, {"http_x_forwarded_for", "x_forwarded_for"}},
};

// "json" or "json:FIELD=KEY,FIELD=KEY": a field named here reads only the given key.
Status build_json(std::string_view spec, std::vector<LogFormat::JsonKey>& keys) {
  std::vector<std::pair<std::string, Field>> overrides;
  if (spec.size() > 4) {
    size_t i = 5;  // after "json:"
    while (i <= spec.size()) {
      const size_t comma = std::min(spec.find(',', i), spec.size());
      const std::string_view pair = spec.substr(i, comma - i);
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == pair.size())
        return spec_error(spec, i + 1, "expected FIELD=KEY");
      const std::string_view field = pair.substr(0, eq);
      const auto* known = std::find_if(std::begin(kJsonFields), std::end(kJsonFields),
                                       [&](const auto& f) { return f.name == field; });
      if (known == std::end(kJsonFields))
        return spec_error(spec, i + 1, fmt::format("unknown field '{}'", field));
      overrides.emplace_back(std::string(pair.substr(eq + 1)), known->field);
      i = comma + 1;
    }
  }
  for (const auto& f : kJsonFields) {
    const bool overridden = std::any_of(overrides.begin(), overrides.end(),
                                        [&](const auto& o) { return o.second == f.field; });
    uint8_t rank = 0;
    if (overridden) {
      for (const auto& [key, field] : overrides)
        if (field == f.field) keys.push_back({key, field, rank++});
    } else {
      for (const auto key : f.default_keys) keys.push_back({std::string(key), f.field, rank++});
    }
  }
  return ok();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool has_nginx_variable(std::string_view s) {
  for (size_t i = s.find('$'); i != std::string_view::npos; i = s.find('$', i + 1))
    if (i + 1 < s.size() && (is_name_char(s[i + 1]) || s[i + 1] == '{')) return true;
  return false;
}

}  // namespace

std::string_view parse_status_name(ParseStatus status) {
  switch (status) {
    case ParseStatus::kOk:
      return "ok";
    case ParseStatus::kTooLong:
      return "too-long";
    case ParseStatus::kBadAddress:
      return "bad-address";
    case ParseStatus::kBadTime:
      return "bad-time";
    case ParseStatus::kBadRequest:
      return "bad-request";
    case ParseStatus::kTruncated:
      return "truncated";
    case ParseStatus::kNoMatch:
      return "no-match";
  }
  return "unknown";
}

void Entry::reset() {
  client = {};
  client_ip = {};
  time = 0;
  request = method = target = protocol = {};
  malformed_request = false;
  status = 0;
  bytes = 0;
  user = referer = user_agent = host = forwarded_for = {};
}

Result<LogFormat> LogFormat::compile(std::string_view spec, FormatOptions options) {
  LogFormat f;
  spec = trim(spec);
  f.spec_ = std::string(spec);
  f.options_ = options;
  if (spec == "json" || spec.starts_with("json:")) {
    f.json_ = true;
    MAMORI_TRY(build_json(spec, f.json_keys_));
    return f;
  }
  std::string_view text = spec;
  if (spec == "combined") text = kCombined;
  if (spec == "common") text = kCommon;
  if (spec == "vhost_combined") text = kVhostCombined;
  if (text.empty()) return spec_error(spec, 1, "empty format");
  TemplateBuilder builder(text);
  MAMORI_TRY(has_nginx_variable(text) ? build_nginx(text, builder) : build_apache(text, builder));
  MAMORI_TRY(builder.finish(f.head_, f.steps_));
  return f;
}

ParseStatus LogFormat::parse(std::string_view line, Entry& out) const {
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (line.size() > options_.max_line) return ParseStatus::kTooLong;
  return parse_line(line, out, false);
}

ParseStatus LogFormat::parse_cut(std::string_view line, Entry& out) const {
  return parse_line(line.substr(0, options_.max_line), out, true);
}

ParseStatus LogFormat::parse_line(std::string_view line, Entry& out, bool cut) const {
  out.reset();
  out.scratch_.clear();
  // Unescaped fields never outgrow their raw text; $uri + $args is copied once more.
  if (out.scratch_.capacity() < 2 * line.size() + 1) out.scratch_.reserve(2 * line.size() + 1);
  return json_ ? parse_json(line, out, cut) : parse_template(line, out, cut);
}

ParseStatus LogFormat::parse_template(std::string_view line, Entry& out, bool cut) const {
  if (!line.starts_with(head_)) return ParseStatus::kNoMatch;
  const bool escaped = std::memchr(line.data(), '\\', line.size()) != nullptr;
  size_t starts[kMaxFields], ends[kMaxFields];
  if (const auto st = delimit(steps_, line, head_.size(), escaped, cut, starts, ends);
      st != ParseStatus::kOk)
    return st;
  Pending pending;
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Field field = steps_[i].field;
    std::string_view value = line.substr(starts[i], ends[i] - starts[i]);
    if (escaped && field != Field::kOpaque && field != Field::kClient &&
        std::memchr(value.data(), '\\', value.size()) && !stash(out.scratch_, value, value))
      return ParseStatus::kNoMatch;
    assign(field, value, out, pending);
  }
  return finish(out, pending, out.scratch_);
}

ParseStatus LogFormat::parse_json(std::string_view s, Entry& out, bool cut) const {
  const ParseStatus st = parse_json_fields(s, out, cut);
  return st == ParseStatus::kTruncated && cut ? ParseStatus::kOk : st;
}

// Fills `out` key by key; with `cut`, a line that ends early keeps the keys before the cut
// (finish() is applied to them).
ParseStatus LogFormat::parse_json_fields(std::string_view s, Entry& out, bool cut) const {
  size_t i = 0;
  skip_ws(s, i);
  if (i == s.size() || s[i] != '{') return ParseStatus::kNoMatch;
  ++i;
  Pending pending;
  // Where the line was cut: what was read so far is the entry.
  const auto truncated = [&](ParseStatus st) {
    if (st != ParseStatus::kTruncated || !cut) return st;
    const ParseStatus fin = finish(out, pending, out.scratch_);
    return fin == ParseStatus::kOk ? ParseStatus::kTruncated : fin;
  };
  uint8_t best_rank[32];
  std::fill(std::begin(best_rank), std::end(best_rank), uint8_t(255));
  skip_ws(s, i);
  if (i < s.size() && s[i] == '}') return finish(out, pending, out.scratch_);
  while (true) {
    skip_ws(s, i);
    if (i == s.size()) return truncated(ParseStatus::kTruncated);
    if (s[i] != '"') return ParseStatus::kNoMatch;
    std::string_view key;
    bool key_escaped;
    if (const auto st = scan_string(s, i, key, key_escaped); st != ParseStatus::kOk)
      return truncated(st);
    skip_ws(s, i);
    if (i == s.size()) return truncated(ParseStatus::kTruncated);
    if (s[i] != ':') return ParseStatus::kNoMatch;
    ++i;
    skip_ws(s, i);
    if (i == s.size()) return truncated(ParseStatus::kTruncated);

    std::string_view value;
    bool value_escaped = false;
    bool used = true;  // nested objects and arrays fill no field
    if (s[i] == '"') {
      if (const auto st = scan_string(s, i, value, value_escaped); st != ParseStatus::kOk)
        return truncated(st);
    } else if (s[i] == '{' || s[i] == '[') {
      if (const auto st = skip_nested(s, i); st != ParseStatus::kOk) return truncated(st);
      used = false;
    } else {
      const size_t start = i;
      while (i < s.size() && !one_of(s[i], ",}] \t\r\n")) ++i;
      value = s.substr(start, i - start);
      if (value.empty() || !one_of(value[0], "-0123456789tfn")) return ParseStatus::kNoMatch;
      if (value == "null") value = {};
    }

    char key_buf[64];
    if (key_escaped && key.size() <= sizeof key_buf)
      key = std::string_view(key_buf, unescape_to(key, key_buf));
    for (const JsonKey& k : json_keys_) {
      if (!used || k.name != key || k.rank >= best_rank[size_t(k.field)]) continue;
      best_rank[size_t(k.field)] = k.rank;
      if (value_escaped && !stash(out.scratch_, value, value)) return ParseStatus::kNoMatch;
      assign(k.field, value, out, pending);
      break;
    }

    skip_ws(s, i);
    if (i == s.size()) return truncated(ParseStatus::kTruncated);
    if (s[i] == '}') break;
    if (s[i] != ',') return ParseStatus::kNoMatch;
    ++i;
  }
  ++i;
  skip_ws(s, i);
  if (i != s.size()) return ParseStatus::kNoMatch;
  return finish(out, pending, out.scratch_);
}

}  // namespace mamori::logparse
