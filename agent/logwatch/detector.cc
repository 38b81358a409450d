#include "agent/logwatch/detector.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/logparse/normalise.h"

namespace mamori::logwatch {
namespace {

constexpr uint32_t kNoRule = UINT32_MAX;

std::string bounded(std::string_view s) {
  return std::string(s.substr(0, Detector::kMaxRequestBytes));
}

std::string_view path_of(std::string_view normalised) {
  return normalised.substr(0, normalised.find('?'));
}

// Methods that can change files on the server (a form post, an upload, WebDAV).
bool writes(std::string_view method) {
  return !method.empty() && method != "GET" && method != "HEAD" && method != "OPTIONS";
}

}  // namespace

size_t Detector::IpHash::operator()(const logparse::IpAddress& ip) const {
  uint64_t a = 0, b = 0;
  std::memcpy(&a, ip.bytes.data(), 8);
  std::memcpy(&b, ip.bytes.data() + 8, 8);
  return std::hash<uint64_t>()(a * 0x9E3779B97F4A7C15ull ^ b);
}

Result<Detector> Detector::create(const logparse::LogFormat& format,
                                  std::shared_ptr<const rules::Matcher> matcher,
                                  std::vector<logparse::Cidr> allowlist) {
  auto scratch = MAMORI_TRY(matcher->make_scratch());
  return Detector(format, std::move(matcher), std::move(scratch), std::move(allowlist));
}

Detector::Detector(logparse::LogFormat format, std::shared_ptr<const rules::Matcher> matcher,
                   rules::Matcher::Scratch scratch, std::vector<logparse::Cidr> allowlist)
    : format_(std::move(format)),
      matcher_(std::move(matcher)),
      scratch_(std::move(scratch)),
      thresholds_(matcher_->rules()),
      allowlist_(std::move(allowlist)) {
  stats_.by_rule.resize(matcher_->rules().rules.size());
}

bool Detector::allowlisted(const logparse::IpAddress& ip) const {
  return logparse::find_network(allowlist_, ip) != nullptr;
}

bool Detector::decided(const logparse::IpAddress& ip) const { return decided_.contains(ip); }

void Detector::forget(const logparse::IpAddress& ip) { decided_.erase(ip); }

size_t Detector::held_bytes(const Seen& s) {
  return sizeof(Seen) + s.path.capacity() + s.request.capacity() + s.user_agent.capacity() +
         s.method.capacity();
}

bool Detector::is_script(std::string_view path) {
  const size_t dot = path.rfind('.');
  if (dot == std::string_view::npos || path.find('/', dot) != std::string_view::npos) return false;
  std::string ext(path.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  static constexpr std::string_view kScripts[] = {"php", "phtml", "phar", "php5", "php7",
                                                  "pht", "cgi",   "pl",   "py",   "sh",
                                                  "asp", "aspx",  "jsp",  "jspx"};
  return std::find(std::begin(kScripts), std::end(kScripts), ext) != std::end(kScripts);
}

void Detector::feed(std::string_view line, uint64_t line_no,
                    const std::function<void(const Decision&)>& on_decision, bool cut) {
  ++stats_.lines;
  logparse::Entry& e = *entry_;
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  cut = cut || line.size() > format_.options().max_line;
  if (cut) ++stats_.truncated;
  const auto st = cut ? format_.parse_cut(line, e) : format_.parse(line, e);
  if (const auto change = health_.note(st, line);
      change != logparse::ParseHealth::Change::kNone && on_health_)
    on_health_(change, health_);
  if (st != logparse::ParseStatus::kOk) {
    ++stats_.skipped[std::string(logparse::parse_status_name(st))];
    return;
  }
  ++stats_.parsed;
  stats_.malformed += e.malformed_request;
  if (on_entry_) on_entry_(e);
  logparse::normalise_target(e.target, normalised_);
  rules::Request r;
  r.method = e.method;
  r.target = normalised_;
  r.request = e.request;
  r.user_agent = e.user_agent;
  r.referer = e.referer;
  r.status = e.status;
  r.malformed = e.malformed_request;
  if (!matcher_->match(r, scratch_, matched_)) matched_.clear();

  const std::string_view path = path_of(normalised_);
  const bool script = is_script(path);
  const bool writing = writes(e.method);
  auto seen = [&] {
    return Seen{e.client_ip,           e.time,   line_no, std::string(path), bounded(e.request),
                bounded(e.user_agent), e.status, cut,     writing,           bounded(e.method)};
  };
  if (script || writing) {
    recent_.push_back(seen());
    recent_bytes_ += held_bytes(recent_.back());
    while (recent_.size() > kRecentRequests || recent_bytes_ > kRecentBytes) {
      recent_bytes_ -= held_bytes(recent_.front());
      recent_.pop_front();
    }
  }
  if (writing && !awaiting_writer_.empty()) {
    if (auto it = awaiting_writer_.find(std::string(path)); it != awaiting_writer_.end()) {
      const int64_t at = it->second.time_s;
      if (e.time == 0 ||
          (e.time >= at - correlation_window_s_ && e.time <= at + correlation_window_s_)) {
        const Seen s = seen();
        const TamperedFile file = std::move(it->second.file);
        awaiting_writer_.erase(it);
        attribute(s, /*before=*/true, file, nullptr);
        decide(e.client_ip, kNoRule, "guard-correlation", 7, s,
               fmt::format("wrote {} just before the guard restored it", quote(path)), on_decision,
               &file);
      }
    }
  }
  if (!tampered_.empty() && (script || writing)) {
    if (auto it = tampered_.find(std::string(path)); it != tampered_.end()) {
      const int64_t at = it->second.time_s;
      if (e.time == 0 ||
          (e.time >= at - correlation_window_s_ && e.time <= at + correlation_window_s_)) {
        const Seen s = seen();
        attribute(s, /*before=*/false, it->second.file, &it->second.attributed);
        decide(e.client_ip, kNoRule, "guard-correlation", 7, s,
               fmt::format("requested {} which the guard had just restored or quarantined",
                           quote(path)),
               on_decision, &it->second.file);
      }
    }
  }
  if (matched_.empty()) return;

  const auto& set = matcher_->rules().rules;
  const bool allowed = allowlisted(e.client_ip);
  // A decoy's rule names the ban when it matched too: a touched decoy is the strongest
  // evidence there is, and the console counts each decoy's hits by it.
  if (matched_.size() > 1)
    std::stable_partition(matched_.begin(), matched_.end(), [&](uint32_t i) {
      const auto& tags = set[i].tags;
      return std::find(tags.begin(), tags.end(), "decoy") != tags.end();
    });
  for (const uint32_t i : matched_) {
    const rules::Rule& rule = set[i];
    if (rule.kind == rules::Kind::kThreshold && !thresholds_.hit(i, e.client_ip.bytes, e.time))
      continue;
    ++stats_.by_rule[i];
    if (on_match_) on_match_(e.client_ip, i);
    if (allowed) {
      ++stats_.allowlisted;
      continue;
    }
    if (rule.action != rules::Action::kBan) continue;
    const std::string reason =
        rule.kind == rules::Kind::kThreshold
            ? fmt::format("{} requests matching {} within {} s", rule.count, rule.id, rule.window_s)
            : fmt::format("{}: {}", rule.id, rule.description);
    decide(e.client_ip, i, rule.id, rule.severity, seen(), reason, on_decision);
  }
}

void Detector::decide(const logparse::IpAddress& ip, uint32_t rule, std::string_view rule_id,
                      int severity, const Seen& seen, std::string reason,
                      const std::function<void(const Decision&)>& on_decision,
                      const TamperedFile* file) {
  if (allowlisted(ip) || decided_.contains(ip)) return;
  if (decided_.size() >= kMaxDecided) decided_.clear();  // the ban list still has them
  decided_.insert(ip);
  ++stats_.decisions;
  Decision d;
  d.ip = ip;
  d.rule = rule;
  d.rule_id = std::string(rule_id);
  d.severity = severity;
  d.time_s = seen.time_s;
  d.line = seen.line;
  d.request = seen.request;
  d.user_agent = seen.user_agent;
  d.status = seen.status;
  d.truncated = seen.truncated;
  d.reason = std::move(reason);
  if (file) {
    d.file_path = file->path;
    d.related_event = file->event_id;
  }
  on_decision(d);
}

void Detector::attribute(const Seen& seen, bool before, const TamperedFile& file,
                         std::vector<logparse::IpAddress>* attributed) {
  if (!on_attribution_) return;
  if (attributed) {
    if (std::find(attributed->begin(), attributed->end(), seen.ip) != attributed->end()) return;
    if (attributed->size() >= kMaxAttributionsPerFile) return;
    attributed->push_back(seen.ip);
  }
  Attribution a;
  a.ip = seen.ip;
  a.before = before;
  a.time_s = seen.time_s;
  a.method = seen.method;
  a.request = seen.request;
  a.user_agent = seen.user_agent;
  a.status = seen.status;
  a.writes = seen.writes;
  a.allowlisted = allowlisted(seen.ip);
  a.file = file;
  on_attribution_(a);
}

void Detector::note_tampered(std::string url_path, int64_t now_s, Tamper kind,
                             const std::function<void(const Decision&)>& on_decision,
                             const TamperedFile& file) {
  // Forget what is past the window, then remember this one (bounded).
  for (auto* m : {&tampered_, &awaiting_writer_})
    for (auto it = m->begin(); it != m->end();)
      it = it->second.time_s < now_s - correlation_window_s_ ? m->erase(it) : std::next(it);
  Planted* planted = nullptr;
  if (kind == Tamper::kPlanted &&
      (tampered_.size() < kMaxTampered || tampered_.contains(url_path))) {
    planted = &tampered_[url_path];
    // The same path planted again: a new file event, whose callers are attributed anew.
    *planted = Planted{now_s, file, {}};
  }
  for (auto it = recent_.rbegin(); it != recent_.rend(); ++it) {
    if (it->time_s != 0 && it->time_s < now_s - correlation_window_s_) break;
    if (it->path != url_path) continue;
    if (kind == Tamper::kRestored && !it->writes) continue;  // a reader of the site's file
    attribute(*it, /*before=*/true, file, planted ? &planted->attributed : nullptr);
    decide(it->ip, kNoRule, "guard-correlation", 7, *it,
           fmt::format("requested {} just before the guard restored or quarantined it",
                       quote(url_path)),
           on_decision, &file);
    return;
  }
  if (kind == Tamper::kRestored &&
      (awaiting_writer_.size() < kMaxTampered || awaiting_writer_.contains(url_path)))
    awaiting_writer_[std::move(url_path)] = Planted{now_s, file, {}};
}

}  // namespace mamori::logwatch
