#pragma once
// Turns access-log lines into ban decisions: parse (core/logparse), normalise the
// request, match every rule once (core/rules Matcher), count threshold rules per address
// (core/rules Thresholds), and decide. Used live by the agent and offline by
// `mamori logs test`, so a replay shows exactly what the agent would have done.
//
// An address decided once is not decided again until forget()ten (the ban list owns
// what happens next: TTLs, escalation). Allowlisted addresses are matched and counted,
// never decided. Time is the log's own (each line's timestamp), so a replay behaves as
// the live run did.
//
// Threads: one owner. Memory: bounded by the thresholds' cap (rules::kDefaultMaxTracked
// pairs of rule and address), kMaxDecided addresses and the correlation ring
// (kRecentRequests, kRecentBytes); docs/formats/access-logs.md, Memory, has the figures.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/base/result.h"
#include "core/logparse/format.h"
#include "core/logparse/health.h"
#include "core/logparse/ip.h"
#include "core/rules/matcher.h"
#include "core/rules/threshold.h"

namespace mamori::logwatch {

// A request that made a ban rule fire.
struct Decision {
  logparse::IpAddress ip;
  uint32_t rule = 0;  // index into the rule set
  std::string rule_id;
  int severity = 5;
  int64_t time_s = 0;      // the line's time (0 when the format has none)
  uint64_t line = 0;       // 1-based line number within the source, when known
  std::string request;     // the request line as logged, at most kMaxRequestBytes
  std::string user_agent;  // at most kMaxRequestBytes
  int status = 0;
  std::string reason;      // one line for people
  bool truncated = false;  // judged from the first max_line bytes of a longer line
  // guard-correlation: the file the guard acted on and the id of that event (its
  // file-restored / file-quarantined / ...), so the ban links to the incident.
  std::string file_path;
  std::string related_event;
};

// What the guard acted on, as note_tampered() is told it.
struct TamperedFile {
  std::string path;      // the file's absolute path
  std::string event_id;  // the guard's event for it ("" when unknown)
};

// A request the correlation tied to a file the guard acted on: `before` the guard acted
// (with a writing method: the address that wrote it) or after (it called what was
// planted). Reported whether or not the
// address is banned (already banned, allowlisted): it is what happened to that file.
struct Attribution {
  logparse::IpAddress ip;
  bool before = true;
  int64_t time_s = 0;  // the line's time (0 when the format has none)
  std::string method;
  std::string request;  // at most kMaxRequestBytes
  std::string user_agent;
  int status = 0;
  bool writes = false;  // a method that can change files (POST, PUT, ...)
  bool allowlisted = false;
  TamperedFile file;
};

struct DetectorStats {
  uint64_t lines = 0;
  uint64_t parsed = 0;
  uint64_t truncated = 0;                   // over-long lines judged by their first max_line bytes
  uint64_t malformed = 0;                   // parsed, with a request line that is none
  std::map<std::string, uint64_t> skipped;  // by logparse::parse_status_name()
  std::vector<uint64_t> by_rule;            // matches per rule index (log and ban rules)
  uint64_t allowlisted = 0;                 // matches from allowlisted addresses
  uint64_t decisions = 0;
};

class Detector {
 public:
  static constexpr size_t kMaxRequestBytes = 512;
  static constexpr size_t kMaxDecided = 1'000'000;
  static constexpr size_t kRecentRequests = 65536;
  // ... and at most this many bytes of them (a path may be 8 KiB: 65536 such requests
  // would be half a gigabyte); the oldest go first.
  static constexpr size_t kRecentBytes = 16 << 20;

  static constexpr size_t kMaxTampered = 10000;
  // Attributions per tampered file: the first addresses are what an analyst needs; a
  // shell called by a botnet must not write one event per caller (the rest are still
  // decided and banned, only not attributed again).
  static constexpr size_t kMaxAttributionsPerFile = 8;
  // The matcher is shared (compiled once); the format is copied.
  static Result<Detector> create(const logparse::LogFormat& format,
                                 std::shared_ptr<const rules::Matcher> matcher,
                                 std::vector<logparse::Cidr> allowlist);

  // Feeds one line (without its '\n'). Calls `on_decision` for a ban rule that fired for
  // an address not decided before. A line longer than the format's max_line, or one the
  // reader cut there (`cut`: the tailer keeps only the first max_line bytes of a longer
  // line), is judged by its first max_line bytes (LogFormat::parse_cut), never skipped:
  // padding a header must not hide the request. Counted in stats().truncated.
  void feed(std::string_view line, uint64_t line_no,
            const std::function<void(const Decision&)>& on_decision, bool cut = false);

  // The address may be decided again (its ban expired or was lifted).
  void forget(const logparse::IpAddress& ip);
  void forget_all() { decided_.clear(); }
  bool decided(const logparse::IpAddress& ip) const;
  bool allowlisted(const logparse::IpAddress& ip) const;

  // Correlation with the guard: the file served at `url_path` ("/uploads/x.php") was
  // changed at `now_s`. Only a request that can have caused the change, or that uses
  // what was planted, is decided; visitors of the site's own files never are:
  //   kRestored (a baselined file put back): the last request for it within the window
  //     before that can write (any method but GET/HEAD/OPTIONS: a POST to a script, a
  //     PUT); when none was read yet, the first such request whose line comes later
  //     within the window (a server logs a request when it ends: the guard puts the file
  //     back while the writing request still runs, so its line usually comes after, and
  //     an attacker's script that sleeps after writing must not escape); never a request
  //     that cannot write (everyone fetches jquery.js or index.php: a GET of a file the
  //     guard put back is a visitor, not its writer).
  //   kPlanted (a new file quarantined or reported): the last request for it within the
  //     window before, and every request for it within the window after, when it is a
  //     script (a web shell is called by its name) or the request can write. A GET of a
  //     planted static file (a .js, a favicon.ico) is its victim, not the attacker.
  // Remembered requests: scripts and writing methods only (kRecentRequests).
  enum class Tamper : uint8_t { kRestored, kPlanted };
  void note_tampered(std::string url_path, int64_t now_s, Tamper kind,
                     const std::function<void(const Decision&)>& on_decision,
                     const TamperedFile& file = {});
  // Called (before the decision it may lead to) for every request a correlation ties to
  // a tampered file, at most kMaxAttributionsPerFile addresses per file.
  void set_on_attribution(std::function<void(const Attribution&)> f) {
    on_attribution_ = std::move(f);
  }
  void set_correlation_window(int64_t seconds) { correlation_window_s_ = seconds; }

  // Called for every rule that fires for a parsed line (a threshold rule once its count
  // is reached), allowlisted addresses and log-only rules included: `mamori logs test`
  // reports per address which rules fired. Unset by default (the agent needs none).
  using MatchObserver = std::function<void(const logparse::IpAddress& ip, uint32_t rule)>;
  void set_match_observer(MatchObserver observer) { on_match_ = std::move(observer); }

  // Whether the log reads in its format (logparse/health.h: more than 10 % of the last
  // 1,000 lines refused, or its first lines all). Called on the line that changes it,
  // once each way per episode. Unset by default.
  using HealthObserver =
      std::function<void(logparse::ParseHealth::Change, const logparse::ParseHealth&)>;
  void set_health_observer(HealthObserver observer) { on_health_ = std::move(observer); }
  const logparse::ParseHealth& health() const { return health_; }

  // Called with every line that parsed, before it is judged (the page monitor's
  // discovery counts requests with it: agent/pages/discovery.h). Unset by default.
  using EntryObserver = std::function<void(const logparse::Entry&)>;
  void set_entry_observer(EntryObserver observer) { on_entry_ = std::move(observer); }

  const DetectorStats& stats() const { return stats_; }
  size_t max_line() const { return format_.options().max_line; }
  const rules::RuleSet& rules() const { return matcher_->rules(); }

 private:
  Detector(logparse::LogFormat format, std::shared_ptr<const rules::Matcher> matcher,
           rules::Matcher::Scratch scratch, std::vector<logparse::Cidr> allowlist);
  struct IpHash {
    size_t operator()(const logparse::IpAddress& ip) const;
  };
  struct Seen {
    logparse::IpAddress ip;
    int64_t time_s = 0;
    uint64_t line = 0;
    std::string path;
    std::string request;
    std::string user_agent;
    int status = 0;
    bool truncated = false;
    bool writes = false;  // a method that can change the server's files
    std::string method;
  };
  struct Planted {
    int64_t time_s = 0;
    TamperedFile file;
    std::vector<logparse::IpAddress> attributed;  // at most kMaxAttributionsPerFile
  };
  void decide(const logparse::IpAddress& ip, uint32_t rule, std::string_view rule_id, int severity,
              const Seen& seen, std::string reason,
              const std::function<void(const Decision&)>& on_decision,
              const TamperedFile* file = nullptr);
  void attribute(const Seen& seen, bool before, const TamperedFile& file,
                 std::vector<logparse::IpAddress>* attributed);
  static bool is_script(std::string_view path);
  static size_t held_bytes(const Seen& s);

  logparse::LogFormat format_;
  std::shared_ptr<const rules::Matcher> matcher_;
  rules::Matcher::Scratch scratch_;
  rules::Thresholds thresholds_;
  std::vector<logparse::Cidr> allowlist_;
  std::unordered_set<logparse::IpAddress, IpHash> decided_;
  std::deque<Seen> recent_;                  // script and writing requests, oldest first
  size_t recent_bytes_ = 0;                  // held_bytes() of recent_
  std::map<std::string, Planted> tampered_;  // planted url path -> when the guard acted
  // Restored url path -> when, while no writing request for it was read: its line's due.
  std::map<std::string, Planted> awaiting_writer_;
  std::function<void(const Attribution&)> on_attribution_;
  int64_t correlation_window_s_ = 60;
  DetectorStats stats_;
  MatchObserver on_match_;
  logparse::ParseHealth health_;
  HealthObserver on_health_;
  EntryObserver on_entry_;
  // Reused per line, so steady state allocates nothing.
  std::unique_ptr<logparse::Entry> entry_ = std::make_unique<logparse::Entry>();
  std::string normalised_;
  std::vector<uint32_t> matched_;
};

}  // namespace mamori::logwatch
