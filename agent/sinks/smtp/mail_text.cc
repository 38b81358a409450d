#include "agent/sinks/smtp/mail_text.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include <fmt/format.h>

#include "agent/sinks/sink.h"
#include "core/base/quote.h"

namespace mamori::sinks {
namespace {

// A body line is a label of 14 bytes and a value: this keeps it under RFC 5322's 998.
constexpr size_t kMaxValueBytes = 960;

// Cuts `s` (valid UTF-8) to at most `max` bytes on a character boundary, marking the cut.
std::string clip(std::string s, size_t max) {
  if (s.size() <= max) return s;
  static constexpr std::string_view kMark = "…";
  size_t end = max - kMark.size();
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  s.resize(end);
  return s + std::string(kMark);
}

// Escapes what quote.h's escape() lets through but a mail reader would act on: C1
// controls, bidi overrides (which can make "gpj.php" read as "php.jpg") and the Unicode
// line and paragraph separators.
std::string escape_unicode_controls(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = [&](size_t k) { return i + k < s.size() ? static_cast<uint8_t>(s[i + k]) : 0; };
    uint32_t cp = 0;
    size_t len = 0;
    if (b(0) == 0xC2 && b(1) >= 0x80 && b(1) <= 0x9F) {
      cp = b(1), len = 2;
    } else if (b(0) == 0xE2 && (b(1) == 0x80 || b(1) == 0x81)) {
      cp = 0x2000 | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F), len = 3;
      const bool bad = (cp >= 0x200E && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) ||
                       (cp >= 0x2066 && cp <= 0x2069);
      if (!bad) len = 0;
    }
    if (len == 0) {
      out += s[i];
      continue;
    }
    out += fmt::format("\\u{:04x}", cp);
    i += len - 1;
  }
  return out;
}

// escape() without its quoting of single quotes, which a line of text does not need.
std::string escape_keeping_quotes(std::string_view s) {
  std::string out;
  for (size_t quote = s.find('\''); quote != std::string_view::npos; quote = s.find('\'')) {
    out += escape(s.substr(0, quote)) + "'";
    s.remove_prefix(quote + 1);
  }
  return out + escape(s);
}

// Event text made safe to show in a header or on a line of its own.
std::string safe(std::string_view s, size_t max = kMaxValueBytes) {
  return clip(escape_unicode_controls(escape_keeping_quotes(s)), max);
}

std::string field_text(const nlohmann::json& event, std::string_view dotted) {
  return safe(text(event, dotted));
}

int severity(const nlohmann::json& event) {
  const auto& v = field(event, "event.severity");
  return v.is_number_integer() ? v.get<int>() : 0;
}

std::string_view severity_name(int s) {
  if (s >= 7) return "CRITICAL";
  if (s >= 5) return "WARNING";
  if (s >= 3) return "NOTICE";
  return "INFO";
}

std::string action(const nlohmann::json& event) {
  std::string a = field_text(event, "event.action");
  return a.empty() ? "event" : a;
}

std::string host(const nlohmann::json& event) {
  std::string h = field_text(event, "host.hostname");
  return h.empty() ? "unknown host" : h;
}

std::string hosts_text(std::span<const nlohmann::json> events) {
  std::set<std::string> hosts;
  for (const auto& e : events) hosts.insert(host(e));
  return hosts.size() == 1 ? *hosts.begin() : fmt::format("{} hosts", hosts.size());
}

std::string single_subject(const nlohmann::json& event) {
  std::string what = text(event, "file.path");
  if (what.empty()) what = text(event, "message");
  std::string subject = fmt::format("[mamori] {} {} on {}", severity_name(severity(event)),
                                    action(event), host(event));
  if (!what.empty()) subject += ": " + safe(what);
  return clip(std::move(subject), kMaxSubjectBytes);
}

std::string digest_subject(std::span<const nlohmann::json> events) {
  struct Group {
    std::string action;
    int worst = 0;
    size_t count = 0;
  };
  std::map<std::string, Group> by_action;
  for (const auto& e : events) {
    Group& g = by_action[action(e)];
    g.action = action(e);
    g.worst = std::max(g.worst, severity(e));
    ++g.count;
  }
  std::vector<Group> groups;
  for (auto& [name, g] : by_action) groups.push_back(std::move(g));
  std::stable_sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) {
    return a.worst != b.worst ? a.worst > b.worst : a.count > b.count;
  });
  std::string subject =
      fmt::format("[mamori] {} events on {}: ", events.size(), hosts_text(events));
  for (size_t i = 0; i < groups.size(); ++i) {
    const std::string item =
        fmt::format("{}{} {}", i == 0 ? "" : ", ", groups[i].count, groups[i].action);
    if (subject.size() + item.size() + 5 > kMaxSubjectBytes) {
      subject += ", ...";
      break;
    }
    subject += item;
  }
  return clip(std::move(subject), kMaxSubjectBytes);
}

void line(std::string& out, std::string_view label, const std::string& value) {
  if (!value.empty()) out += fmt::format("  {:<12}{}\n", fmt::format("{}:", label), value);
}

std::string joined(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += ", ";
    out += p;
  }
  return out;
}

std::string process_text(const nlohmann::json& event, std::string_view prefix) {
  const std::string pid = text(event, fmt::format("{}.pid", prefix));
  return joined({pid.empty() ? "" : "pid " + safe(pid),
                 field_text(event, fmt::format("{}.executable", prefix))});
}

void describe(std::string& out, const nlohmann::json& event) {
  out += fmt::format("{} {} on {}\n", severity_name(severity(event)), action(event), host(event));
  line(out, "Time", field_text(event, "@timestamp"));
  line(out, "What", field_text(event, "message"));
  line(out, "Root", field_text(event, "mamori.root"));
  line(out, "Path", field_text(event, "file.path"));
  line(out, "Process", process_text(event, "process"));
  line(out, "Command", field_text(event, "process.command_line"));
  line(out, "Parent", process_text(event, "process.parent"));
  const std::string uid = field_text(event, "user.id");
  line(out, "User", joined({field_text(event, "user.name"), uid.empty() ? "" : "id " + uid}));
  line(out, "Source IP", field_text(event, "source.ip"));
  const std::string mode = field_text(event, "mamori.mode");
  line(out, "Outcome",
       joined({field_text(event, "event.outcome"), mode.empty() ? "" : "mode " + mode}));
  line(out, "Error", field_text(event, "error.message"));
  if (const std::string id = field_text(event, "mamori.evidence.id"); !id.empty())
    line(out, "Evidence", fmt::format("{} (mamori evidence show {})", id, id));
  line(out, "Event id", field_text(event, "event.id"));
}

// The part of an id that may stand in a Message-ID: letters, digits, '-'.
std::string id_atom(const nlohmann::json& event) {
  std::string id = text(event, "event.id");
  std::erase_if(id,
                [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '-'; });
  return id.substr(0, 64);
}

std::string message_id(std::span<const nlohmann::json> events) {
  std::string domain = text(events.front(), "host.hostname");
  std::erase_if(domain, [](char c) {
    return !std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.';
  });
  while (!domain.empty() && (domain.front() == '.' || domain.back() == '.')) {
    if (domain.front() == '.') domain.erase(0, 1);
    if (!domain.empty() && domain.back() == '.') domain.pop_back();
  }
  if (domain.empty() || domain.find("..") != std::string::npos) domain = "mamori.invalid";
  const std::string left = events.size() == 1
                               ? id_atom(events.front())
                               : fmt::format("digest.{}.{}.{}", events.size(),
                                             id_atom(events.front()), id_atom(events.back()));
  return fmt::format("<{}.mamori@{}>", left.empty() ? "event" : left, domain.substr(0, 128));
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// RFC 2047 encoded words for non-ASCII text: each at most 64 characters (39 bytes of
// text), cut between characters, folded onto continuation lines.
std::string encode_header(std::string_view s) {
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return std::string(s);
  std::string out;
  while (!s.empty()) {
    size_t n = std::min<size_t>(39, s.size());
    while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(s.substr(0, n)) + "?=";
    s.remove_prefix(n);
  }
  return out;
}

std::string rfc5322_date(time_t now) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct tm tm {};
  ::gmtime_r(&now, &tm);
  return fmt::format("{}, {:02d} {} {} {:02d}:{:02d}:{:02d} +0000", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace

Mail format_mail(std::span<const nlohmann::json> events) {
  Mail mail;
  if (events.size() == 1) {
    mail.subject = single_subject(events.front());
    describe(mail.body, events.front());
    return mail;
  }
  mail.subject = digest_subject(events);
  mail.body = fmt::format("{} events on {}, oldest first.\n", events.size(), hosts_text(events));
  const size_t shown = std::min(events.size(), kMaxMailEvents);
  for (size_t i = 0; i < shown; ++i) {
    mail.body += fmt::format("\n#{} ", i + 1);
    describe(mail.body, events[i]);
  }
  if (shown < events.size())
    mail.body += fmt::format("\n... and {} more; see the event log.\n", events.size() - shown);
  return mail;
}

std::string mail_message(std::span<const nlohmann::json> events, std::string_view from,
                         std::span<const std::string> to, time_t now) {
  const Mail mail = format_mail(events);
  std::string out;
  const auto header = [&](std::string_view name, std::string_view value) {
    out += fmt::format("{}: {}\r\n", name, value);
  };
  header("Date", rfc5322_date(now));
  header("From", fmt::format("mamori <{}>", from));
  std::string rcpts;
  for (const auto& r : to) rcpts += (rcpts.empty() ? "" : ",\r\n ") + r;
  header("To", rcpts);
  header("Subject", encode_header(mail.subject));
  header("Message-ID", message_id(events));
  header("MIME-Version", "1.0");
  header("Content-Type", "text/plain; charset=utf-8");
  header("Content-Transfer-Encoding", "8bit");
  header("Auto-Submitted", "auto-generated");
  if (const std::string id = id_atom(events.front()); !id.empty()) header("X-Mamori-Event-Id", id);
  header("X-Mamori-Event-Count", std::to_string(events.size()));
  out += "\r\n";
  for (size_t start = 0; start < mail.body.size();) {
    const size_t end = mail.body.find('\n', start);
    out.append(mail.body, start, end - start);
    out += "\r\n";
    start = end == std::string::npos ? mail.body.size() : end + 1;
  }
  return out;
}

}  // namespace mamori::sinks
