#include "agent/logwatch/event_detector.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "agent/logwatch/default_rules.h"
#include "core/base/quote.h"
#include "core/logparse/normalise.h"

namespace mamori::logwatch {

config::LoadResult<rules::Matcher> load_event_matcher(logparse::EventLog log,
                                                      const std::vector<std::string>& files,
                                                      bool with_defaults) {
  return load_matcher_with(
      default_event_rules_text(log),
      log == logparse::EventLog::kSshd ? "sshd.rules (built in)" : "web-errors.rules (built in)",
      files, with_defaults);
}

size_t EventDetector::IpHash::operator()(const logparse::IpAddress& ip) const {
  uint64_t a = 0, b = 0;
  std::memcpy(&a, ip.bytes.data(), 8);
  std::memcpy(&b, ip.bytes.data() + 8, 8);
  return std::hash<uint64_t>()(a * 0x9E3779B97F4A7C15ull ^ b);
}

Result<EventDetector> EventDetector::create(logparse::EventLogFormat format,
                                            std::shared_ptr<const rules::Matcher> matcher,
                                            std::vector<logparse::Cidr> allowlist) {
  auto scratch = MAMORI_TRY(matcher->make_scratch());
  return EventDetector(format, std::move(matcher), std::move(scratch), std::move(allowlist));
}

EventDetector::EventDetector(logparse::EventLogFormat format,
                             std::shared_ptr<const rules::Matcher> matcher,
                             rules::Matcher::Scratch scratch, std::vector<logparse::Cidr> allowlist)
    : format_(format),
      matcher_(std::move(matcher)),
      scratch_(std::move(scratch)),
      thresholds_(matcher_->rules()),
      allowlist_(std::move(allowlist)) {
  stats_.by_rule.resize(matcher_->rules().rules.size());
}

bool EventDetector::allowlisted(const logparse::IpAddress& ip) const {
  return logparse::find_network(allowlist_, ip) != nullptr;
}

void EventDetector::feed(std::string_view line, uint64_t line_no,
                         const std::function<void(const Decision&)>& on_decision, bool cut) {
  ++stats_.lines;
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  logparse::EventEntry e;
  logparse::ParseStatus st = logparse::ParseStatus::kTooLong;
  if (cut || line.size() > format_.options().max_line)
    ++stats_.truncated;
  else
    st = format_.parse(line, reference_s_, e);
  // nginx writes an upstream's stderr as it came (FastCGI: "PHP message: ... Stack
  // trace:\n#0 ..."), newlines included, and caps an entry at NGX_MAX_ERROR_STR bytes.
  // The lines after an entry's first, within those bytes, are the rest of that entry:
  // counted as read (not a wrong format) and never read for an address. After an entry
  // that carries stderr they are skipped even when they look like entries of their own:
  // PHP writes the client's text there, and a "\n2026/12/07 ... client: 9.9.9.9 ..." of
  // it must not ban anyone. (A real entry in that window is missed: never a wrong ban.)
  if (format_.log() == logparse::EventLog::kNginxError) {
    const size_t bytes = line.size() + 1;
    // Any line that may start such an entry (a real one always says so) opens a window
    // over the bytes that entry can span, inside a window too: a forged line sits in a
    // real entry, whose first line is at most kNginxMaxEntry bytes before its end.
    const bool stderr_start = line.find(" sent in stderr: \"") != std::string_view::npos;
    const size_t from_here = kNginxMaxEntry > bytes ? kNginxMaxEntry - bytes : 0;
    if (bytes <= entry_budget_ &&
        (entry_carries_stderr_ || st == logparse::ParseStatus::kNoMatch)) {
      entry_budget_ -= bytes;
      if (stderr_start) {
        entry_budget_ = std::max(entry_budget_, from_here);
        entry_carries_stderr_ = true;
      }
      st = logparse::ParseStatus::kOk;
      e = logparse::EventEntry{};  // no kind, no address
    } else if (st == logparse::ParseStatus::kOk || st == logparse::ParseStatus::kBadRequest) {
      entry_budget_ = from_here;
      entry_carries_stderr_ = stderr_start;
    } else {
      entry_budget_ = 0;
    }
  }
  if (const auto change = health_.note(st, line);
      change != logparse::ParseHealth::Change::kNone && on_health_)
    on_health_(change, health_);
  if (st != logparse::ParseStatus::kOk) {
    ++stats_.skipped[std::string(logparse::parse_status_name(st))];
    return;
  }
  ++stats_.parsed;
  if (e.kind.empty() || !e.has_client) return;

  target_.assign(e.kind);
  if (!e.subject.empty()) {
    target_ += ' ';
    if (e.target_is_url) {
      logparse::normalise_target(e.subject, normalised_);
      target_ += normalised_;
    } else {
      target_.append(e.subject.substr(0, logparse::kMaxNormalisedTarget));
    }
  }
  rules::Request r;
  r.method = e.method;
  r.target = target_;
  r.request = e.message;
  r.status = e.status;
  if (auto ok = matcher_->match(r, scratch_, matched_); !ok) matched_.clear();
  if (matched_.empty()) return;

  const auto& set = matcher_->rules().rules;
  const bool allowed = allowlisted(e.client_ip);
  for (const uint32_t i : matched_) {
    const rules::Rule& rule = set[i];
    if (rule.kind == rules::Kind::kThreshold) {
      bool reached = false;  // a repeated message counts as often as it happened
      for (uint32_t k = 0; k < e.repeated && !reached; ++k)
        reached = thresholds_.hit(i, e.client_ip.bytes, e.time);
      if (!reached) continue;
    }
    ++stats_.by_rule[i];
    if (on_match_) on_match_(e.client_ip, i);
    if (allowed) {
      ++stats_.allowlisted;
      continue;
    }
    if (rule.action != rules::Action::kBan || decided_.contains(e.client_ip)) continue;
    if (decided_.size() >= Detector::kMaxDecided) decided_.clear();  // the ban list has them
    decided_.insert(e.client_ip);
    ++stats_.decisions;
    Decision d;
    d.ip = e.client_ip;
    d.rule = i;
    d.rule_id = rule.id;
    d.severity = rule.severity;
    d.time_s = e.time;
    d.line = line_no;
    d.request = std::string(e.message.substr(0, Detector::kMaxRequestBytes));
    d.status = e.status;
    const std::string what = escape(std::string_view(target_).substr(0, 200));
    d.reason = rule.kind == rules::Kind::kThreshold
                   ? fmt::format("{} lines matching {} within {} s (the last: {})", rule.count,
                                 rule.id, rule.window_s, what)
                   : fmt::format("{}: {} ({})", rule.id, rule.description, what);
    on_decision(d);
  }
}

}  // namespace mamori::logwatch
