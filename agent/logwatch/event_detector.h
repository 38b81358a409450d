#pragma once
// The detector for the other logs (core/logparse/eventlog.h): the nginx and Apache error
// logs and sshd's messages. Each line is parsed into an address, a time and a kind of
// event with its subject; rules in the access-log rule language (docs/formats/rules.md)
// match it, with the fields read as docs/formats/other-logs.md says:
//   target   "KIND SUBJECT": "auth-failed root", "not-found /.env", "limit-req /login"
//            (a request's target normalised as in access logs; a user name as logged)
//   request  the message as logged
//   method   the HTTP method when the error log names the request
//   status   ModSecurity's code ("Access denied with code 403")
// and thresholds count per address in the log's own time, like fail2ban's jails. A line
// decides what Detector would (logwatch::Decision): the agent bans it, `mamori logs test`
// reports it. Each log kind has its own built-in rule set (etc/rules/sshd.rules,
// etc/rules/web-errors.rules), which a [[log]]'s own rule files may override.
//
// Threads: one owner. Memory: the thresholds' cap and Detector::kMaxDecided addresses.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "agent/logwatch/detector.h"
#include "core/logparse/eventlog.h"
#include "core/logparse/health.h"
#include "core/rules/matcher.h"
#include "core/rules/threshold.h"

namespace mamori::logwatch {

// The built-in rules for one kind of log, then `files` in order, compiled.
config::LoadResult<rules::Matcher> load_event_matcher(logparse::EventLog log,
                                                      const std::vector<std::string>& files,
                                                      bool with_defaults = true);
std::string_view default_event_rules_text(logparse::EventLog log);

class EventDetector {
 public:
  static Result<EventDetector> create(logparse::EventLogFormat format,
                                      std::shared_ptr<const rules::Matcher> matcher,
                                      std::vector<logparse::Cidr> allowlist);

  // One line (without its '\n'). In an nginx error log, the lines within 2048 bytes
  // after an entry's first that do not fit (or, after an upstream's stderr, all of them)
  // are the rest of that entry: counted as read, never read for an address.
  // A cut or over-long line is skipped (too-long): these
  // logs cap their own lines far below 16 KiB, and a message read from its end cannot be
  // read from a part. Decision::request holds the message, Decision::reason the kind
  // and subject.
  void feed(std::string_view line, uint64_t line_no,
            const std::function<void(const Decision&)>& on_decision, bool cut = false);

  // About now, for syslog lines without a year (EventLogFormat::parse).
  void set_reference_time(int64_t seconds) { reference_s_ = seconds; }

  void forget(const logparse::IpAddress& ip) { decided_.erase(ip); }
  void forget_all() { decided_.clear(); }
  bool decided(const logparse::IpAddress& ip) const { return decided_.contains(ip); }
  bool allowlisted(const logparse::IpAddress& ip) const;

  void set_match_observer(Detector::MatchObserver observer) { on_match_ = std::move(observer); }
  void set_health_observer(Detector::HealthObserver observer) { on_health_ = std::move(observer); }
  const logparse::ParseHealth& health() const { return health_; }
  const DetectorStats& stats() const { return stats_; }
  size_t max_line() const { return format_.options().max_line; }
  const rules::RuleSet& rules() const { return matcher_->rules(); }

 private:
  EventDetector(logparse::EventLogFormat format, std::shared_ptr<const rules::Matcher> matcher,
                rules::Matcher::Scratch scratch, std::vector<logparse::Cidr> allowlist);
  struct IpHash {
    size_t operator()(const logparse::IpAddress& ip) const;
  };

  logparse::EventLogFormat format_;
  std::shared_ptr<const rules::Matcher> matcher_;
  rules::Matcher::Scratch scratch_;
  rules::Thresholds thresholds_;
  std::vector<logparse::Cidr> allowlist_;
  std::unordered_set<logparse::IpAddress, IpHash> decided_;
  int64_t reference_s_ = 0;
  DetectorStats stats_;
  Detector::MatchObserver on_match_;
  logparse::ParseHealth health_;
  Detector::HealthObserver on_health_;
  // nginx-error: bytes the current entry may still span over more lines (nginx's
  // NGX_MAX_ERROR_STR), and whether it carries an upstream's stderr.
  static constexpr size_t kNginxMaxEntry = 2048;
  size_t entry_budget_ = 0;
  bool entry_carries_stderr_ = false;
  std::string target_;  // "KIND SUBJECT", reused
  std::string normalised_;
  std::vector<uint32_t> matched_;
};

}  // namespace mamori::logwatch
