// mamori logs test: replays an access log through the detector the agent uses and shows
// what it would have banned, and why. Needs no config and changes nothing.

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include "agent/logwatch/default_rules.h"
#include "agent/logwatch/detector.h"
#include "agent/logwatch/event_detector.h"

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "cli/progress.h"
#include "core/base/env.h"
#include "core/base/quote.h"
#include "core/fs/admin_files.h"

namespace mamori::cli {
namespace {

constexpr size_t kChunk = 4 << 20;
// The addresses --json reports rule by rule: a log of a botnet names millions, and this
// report is for reading. Past the cap, further addresses are counted
// ("addresses_not_listed"), never listed; their matches still count in by_rule.
constexpr size_t kMaxListedAddresses = 100'000;

// Which rules fired for one address, and how often (rule index -> count).
struct AddressMatches {
  std::map<uint32_t, uint64_t> rules;
  bool allowlisted = false;
};

std::string iso_time(int64_t s) {
  if (s == 0) return "-";
  const time_t t = s;
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

int usage_error(const GlobalOptions& g, const std::string& message) {
  if (g.json)
    print_json({{"error", {{"message", message}}}});
  else
    std::fprintf(stderr, "mamori: %s\n", message.c_str());
  return kExitUsage;
}

// Feeds every line of `fd` to the detector; a last line without '\n' is fed too (the
// parser judges whether it is whole).
template <class D>
Status replay(int fd, const std::string& path, D& detector, baseline::Progress& progress,
              const std::function<void(const logwatch::Decision&)>& on_decision) {
  std::string buf(kChunk, '\0');
  std::string carry;
  uint64_t line_no = 0;
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read", path);
    }
    if (n == 0) break;
    progress.bytes_done += static_cast<uint64_t>(n);
    std::string_view data(buf.data(), static_cast<size_t>(n));
    if (!carry.empty()) {
      const size_t nl = data.find('\n');
      if (nl == std::string_view::npos) {
        if (carry.size() < kChunk) carry.append(data);  // a huge line: keep its start only
        continue;
      }
      carry.append(data.substr(0, nl));
      detector.feed(carry, ++line_no, on_decision);
      carry.clear();
      data.remove_prefix(nl + 1);
    }
    for (size_t nl; (nl = data.find('\n')) != std::string_view::npos;) {
      detector.feed(data.substr(0, nl), ++line_no, on_decision);
      data.remove_prefix(nl + 1);
    }
    carry.assign(data);
  }
  if (!carry.empty()) detector.feed(carry, ++line_no, on_decision);
  return ok();
}

// Whether the file fits its format (logparse/health.h): more than 10 % of at least 100
// lines refused as not fitting, every line refused, or a stretch of it that the agent
// would have called unparseable (a format that changed half-way).
struct Readability {
  bool unparseable = false;
  uint64_t failures = 0;
  std::string reasons;  // "bad-time 500, no-match 2"
  std::string sample;   // escaped, at most ParseHealth::kMaxSample bytes of the line
  std::string sample_reason;
};

template <class D>
Readability readability(const D& detector) {
  Readability r;
  const auto& s = detector.stats();
  for (size_t k = 0; k < logparse::kParseStatusCount; ++k) {
    const auto status = static_cast<logparse::ParseStatus>(k);
    if (!logparse::is_format_failure(status)) continue;
    const auto it = s.skipped.find(std::string(logparse::parse_status_name(status)));
    if (it == s.skipped.end() || it->second == 0) continue;
    r.failures += it->second;
    r.reasons += fmt::format("{}{} {}", r.reasons.empty() ? "" : ", ", it->first, it->second);
  }
  const auto& health = detector.health();
  r.unparseable = (s.lines >= 100 && r.failures * 10 > s.lines) ||
                  (s.lines > 0 && r.failures == s.lines) || health.episodes() > 0;
  if (health.episodes() > 0) {
    r.sample = escape(health.sample());
    r.sample_reason = std::string(logparse::parse_status_name(health.sample_status()));
  }
  return r;
}

// Replays `path` through `detector` (an access log's Detector or the other logs'
// EventDetector) and reports.
template <class D>
int replay_and_report(const GlobalOptions& g, const LogsOptions& o, const std::string& path,
                      std::optional<D>& detector) {
  auto fd = fs::open_admin_read(path);
  if (!fd) {
    std::fprintf(stderr, "mamori: %s\n", fd.error().message().c_str());
    return kExitIncomplete;
  }
  struct stat st {};
  baseline::Progress progress;
  if (::fstat(fd->get(), &st) == 0 && S_ISREG(st.st_mode))
    progress.bytes_total = static_cast<uint64_t>(st.st_size);
  if constexpr (std::is_same_v<D, logwatch::EventDetector>) {
    // syslog times have no year: the file's last change dates its last line.
    const int64_t now = SystemClock().now_ns() / 1'000'000'000;
    detector->set_reference_time(
        S_ISREG(st.st_mode) && st.st_mtime > 0 && st.st_mtime < now ? int64_t(st.st_mtime) : now);
  }

  nlohmann::json bans = nlohmann::json::array();
  std::map<std::string, AddressMatches> addresses;
  uint64_t addresses_not_listed = 0;
  if (g.json)
    detector->set_match_observer([&](const logparse::IpAddress& ip, uint32_t rule) {
      auto key = ip.to_string();
      auto it = addresses.find(key);
      if (it == addresses.end()) {
        if (addresses.size() >= kMaxListedAddresses) {
          ++addresses_not_listed;
          return;
        }
        it = addresses.emplace(std::move(key), AddressMatches{{}, detector->allowlisted(ip)}).first;
      }
      ++it->second.rules[rule];
    });
  const auto start = SystemClock().monotonic();
  Status replayed;
  {
    ProgressBar bar(progress, "replaying", !g.quiet && !g.json && ::isatty(STDERR_FILENO));
    replayed = replay(fd->get(), path, *detector, progress, [&](const logwatch::Decision& d) {
      bans.push_back({{"ip", d.ip.to_string()},
                      {"rule", d.rule_id},
                      {"severity", d.severity},
                      {"line", d.line},
                      {"time", iso_time(d.time_s)},
                      {"request", d.request},
                      {"user_agent", d.user_agent},
                      {"status", d.status},
                      {"reason", d.reason}});
    });
  }
  const double seconds = std::chrono::duration<double>(SystemClock().monotonic() - start).count();
  if (!replayed) {
    std::fprintf(stderr, "mamori: %s\n", replayed.error().message().c_str());
    return kExitIncomplete;
  }

  const auto& s = detector->stats();
  const Readability readable = readability(*detector);
  nlohmann::json by_rule = nlohmann::json::object();
  const auto& rules = detector->rules().rules;
  for (size_t i = 0; i < s.by_rule.size(); ++i)
    if (s.by_rule[i]) by_rule[rules[i].id] = s.by_rule[i];
  const double rate = seconds > 0 ? static_cast<double>(s.lines) / seconds : 0;
  if (g.json) {
    // Per address, every rule that fired (log-only and allowlisted ones too), and what
    // was decided: the verdict for each address, not only for the banned.
    std::set<std::string> banned;
    for (const auto& b : bans) banned.insert(b["ip"].get<std::string>());
    nlohmann::json listed = nlohmann::json::array();
    for (const auto& [ip, m] : addresses) {
      nlohmann::json fired = nlohmann::json::object();
      for (const auto& [rule, n] : m.rules) fired[rules[rule].id] = n;
      listed.push_back({{"ip", ip},
                        {"rules", fired},
                        {"banned", banned.contains(ip)},
                        {"allowlisted", m.allowlisted}});
    }
    // A ban by correlation has no rule match: the banned are listed all the same.
    for (const auto& ip : banned)
      if (!addresses.contains(ip))
        listed.push_back({{"ip", ip},
                          {"rules", nlohmann::json::object()},
                          {"banned", true},
                          {"allowlisted", false}});
    print_json(
        {{"file", path},
         {"lines", s.lines},
         {"parsed", s.parsed},
         {"truncated", s.truncated},
         {"malformed_requests", s.malformed},
         {"skipped", s.skipped},
         {"seconds", seconds},
         {"lines_per_second", rate},
         {"allowlisted_matches", s.allowlisted},
         {"unparsed", readable.failures},
         {"unparseable", readable.unparseable},
         {"sample", readable.sample.empty() ? nlohmann::json(nullptr)
                                            : nlohmann::json{{"line", readable.sample},
                                                             {"reason", readable.sample_reason}}},
         {"bans", bans},
         {"by_rule", by_rule},
         {"addresses", listed},
         {"addresses_not_listed", addresses_not_listed}});
  } else {
    for (const auto& b : bans) {
      std::printf("BAN %-39s %-28s line %s  %s\n    %s\n    %s\n",
                  b["ip"].get<std::string>().c_str(), b["rule"].get<std::string>().c_str(),
                  fmt::format("{}", b["line"].get<uint64_t>()).c_str(),
                  b["time"].get<std::string>().c_str(),
                  escape(b["request"].get<std::string>()).c_str(),
                  escape(b["reason"].get<std::string>()).c_str());
    }
    if (!g.quiet) {
      std::string skipped;
      for (const auto& [why, n] : s.skipped) skipped += fmt::format(", {} {}", n, why);
      if (s.malformed) skipped += fmt::format(", {} with a request line that is none", s.malformed);
      if (s.truncated)
        skipped += fmt::format(", {} too long (judged by their first {} bytes)", s.truncated,
                               detector->max_line());
      std::printf(
          "%s lines (%s parsed%s) in %.2f s, %.0f lines/s; %zu address(es) would be "
          "banned\n",
          fmt::format("{}", s.lines).c_str(), fmt::format("{}", s.parsed).c_str(), skipped.c_str(),
          seconds, rate, bans.size());
    }
  }
  if (readable.unparseable) {
    // A wrong format must never look like a quiet log: said even with --quiet and --json.
    std::fprintf(
        stderr,
        "mamori: %s does not fit --format %s: %s of %s lines refused (%s); they can "
        "ban nobody. Check the format (docs/formats/access-logs.md)%s\n",
        quote(path).c_str(), quote(o.format).c_str(), fmt::format("{}", readable.failures).c_str(),
        fmt::format("{}", s.lines).c_str(), readable.reasons.c_str(),
        readable.sample.empty() ? ""
                                : fmt::format(". A refused line ({}): {}", readable.sample_reason,
                                              quote(readable.sample))
                                      .c_str());
    return kExitIncomplete;
  }
  return bans.empty() ? kExitOk : kExitChanges;
}

}  // namespace

int run_logs_test(const GlobalOptions& g, const LogsOptions& o, const std::string& path) {
  std::vector<logparse::Cidr> allow;
  for (const auto& a : o.allow) {
    auto c = logparse::Cidr::parse(a);
    if (!c) return usage_error(g, "--allow " + quote(a) + ": " + c.error().message());
    allow.push_back(*c);
  }
  if (const auto kind = logparse::event_log_named(o.format)) {
    // An error log or sshd's messages (docs/formats/other-logs.md): their own rules.
    auto matcher = logwatch::load_event_matcher(*kind, o.rules, !o.no_default_rules);
    if (!matcher) return usage_error(g, matcher.error().text());
    auto created = logwatch::EventDetector::create(
        logparse::EventLogFormat(*kind),
        std::make_shared<const rules::Matcher>(std::move(*matcher)), std::move(allow));
    if (!created) return usage_error(g, created.error().message());
    std::optional<logwatch::EventDetector> detector(std::move(*created));
    return replay_and_report(g, o, path, detector);
  }
  auto format = logparse::LogFormat::compile(o.format);
  if (!format)
    return usage_error(g, "--format " + quote(o.format) + ": " + format.error().message());
  auto matcher = logwatch::load_matcher(o.rules, !o.no_default_rules);
  if (!matcher) return usage_error(g, matcher.error().text());
  auto shared = std::make_shared<const rules::Matcher>(std::move(*matcher));
  auto created = logwatch::Detector::create(*format, shared, std::move(allow));
  if (!created) return usage_error(g, created.error().message());
  std::optional<logwatch::Detector> detector(std::move(*created));
  return replay_and_report(g, o, path, detector);
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori logs test - replay an access log and show what would be banned, and why

SYNOPSIS
    mamori logs test [--format SPEC] [--rules FILE]... [--no-default-rules]
                     [--allow CIDR]... [--json] FILE

DESCRIPTION
    Reads FILE as fast as it can through the detector the agent uses: each line is
    parsed, its request normalised (percent-decoding, double encoding, case, '//',
    '/./', '/../'), matched against the rules, and counted per address for the
    threshold rules, in the log's own time. Prints each address that would be banned
    with the rule, the line and the request, then a summary. Changes nothing, needs
    no config and no root.

    --format SPEC       combined (default), common, vhost_combined, json, an nginx
                        log_format string ('$remote_addr - ... "$request" ...') or an
                        Apache LogFormat string ('%h %l %u %t "%r" %>s %b');
                        or one of the other logs, with rules of their own
                        (docs/formats/other-logs.md): nginx-error, apache-error,
                        sshd (auth.log as rsyslog writes it)
    --rules FILE        rules applied after the built-in defaults, in order (format:
                        docs/formats/rules.md; [[override]] turns defaults off). The
                        other logs' defaults are their own (etc/rules/sshd.rules,
                        etc/rules/web-errors.rules)
    --no-default-rules  only the --rules files
    --allow CIDR        never ban these addresses (matches are still counted)

    Lines that cannot be parsed (binary garbage, a bad address) are counted by reason
    and skipped; they never ban anyone. A line whose request is none (TLS bytes sent
    to port 80, "HELP", an empty request) is parsed: its address is judged by the
    rules with malformed = true (malformed_requests in --json). A line past 16 KiB
    is judged by its first 16 KiB. When the log does not fit the format, a message
    on stderr says so, with the reasons and a refused line, and the exit status is
    3 (a wrong format must never look like a quiet log): more than 10 % of the
    file's lines (at least 100) or all of them refused as not fitting (no-match,
    truncated, bad-address, bad-time), or a stretch of it the agent would report as
    log-unparseable (more than 10 % of 1,000 lines in a row; docs/bans.md). A
    malformed request line does not count: the format fit that line.

OUTPUT
    With --json: {"lines", "parsed", "truncated", "malformed_requests",
    "skipped": {REASON: N},
    "unparsed" (lines refused as not fitting the format), "unparseable" (see
    above), "sample": {"line", "reason"} or null,
    "bans": [{"ip", "rule", "severity", "line", "time", "request", "user_agent",
    "status", "reason"}...], "by_rule": {RULE: N}, "addresses": [{"ip", "rules":
    {RULE: N}, "banned", "allowlisted"}...], "addresses_not_listed": N, ...}.
    "addresses" names every address some rule fired for (log-only rules and
    allowlisted addresses too), at most 100000; the rest are only counted.
    tests/cases/ holds detection cases checked against this output.

EXAMPLES
    mamori logs test /var/log/nginx/access.log
    mamori logs test --json --allow 10.0.0.0/8 access.log | jq '.bans[].ip'
    mamori logs test --rules /etc/mamori/rules.d/site.rules access.log.1
    mamori logs test --format sshd /var/log/auth.log
    mamori logs test --format nginx-error /var/log/nginx/error.log

EXIT STATUS
    0 nobody would be banned; 1 some address would be; 2 bad format, rules or CIDR
    (rules errors give file:line:col); 3 FILE could not be read, or it does not fit
    the format (see above; whatever would be banned).
)TXT";

// `logs test` is the only action today; a CLI11 subcommand, like bans' and evidence's.
Run setup(CLI::App& cmd) {
  struct Parsed {
    std::vector<std::string> files;
    LogsOptions options;
  };
  auto p = std::make_shared<Parsed>();
  cmd.require_subcommand(0, 1);
  auto* test = cmd.add_subcommand("test");
  test->add_option("file", p->files);
  test->add_option("--format", p->options.format);
  test->add_option("--rules", p->options.rules)->allow_extra_args(false);  // one per --rules
  test->add_flag("--no-default-rules", p->options.no_default_rules);
  test->add_option("--allow", p->options.allow)->allow_extra_args(false);
  return [p, test](App& app) {
    if (!test->parsed() || p->files.size() != 1)
      return cli::usage_error("logs", "logs takes 'test FILE'");
    return run_logs_test(app.options(), p->options, p->files.front());
  };
}

}  // namespace

Command logs_command() {
  return {
      "logs", "logs test FILE", "replay an access log: what would be banned, and why", kHelp, false,
      setup};
}

}  // namespace mamori::cli
