// mamori scan: YARA triage of files and trees on demand (core/scan), with mamori's own
// rule set and the administrator's. Needs no config and changes nothing, except with
// --lookup: then the config's [lookup] says how to ask VirusTotal about each file's
// SHA-256 (core/scan/lookup.h), and STATE_DIR/lookup.json keeps the queue and the limits.

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "core/base/parallel.h"
#include "core/base/quote.h"
#include "core/config/config.h"
#include "core/fs/admin_files.h"
#include "core/fs/beneath.h"
#include "core/fs/walk.h"
#include "core/scan/lookup.h"
#include "core/scan/scanner.h"

namespace mamori::cli {
namespace {

// Errors --json lists one by one; past this they are only counted (a tree of unreadable
// files must not make a report of millions of lines).
constexpr size_t kMaxListedErrors = 1000;
// Files --lookup asks about in one run (the look-up queue holds as many); past it they
// are counted as not looked up.
constexpr size_t kMaxLookupFiles = 10'000;

struct ScanOptions {
  std::vector<std::string> paths;
  std::vector<std::string> rules;  // directories or files
  bool no_builtin = false;
  uint64_t max_bytes = scan::Limits{}.max_scan_bytes;
  unsigned timeout_s = static_cast<unsigned>(scan::Limits{}.timeout.count());
  bool lookup = false;
};

// A file to ask VirusTotal about, in report order.
struct LookupFile {
  std::string path;
  hash::Digest sha256;
  bool truncated = false;  // only part hashed: not the file VirusTotal would know
};

struct Report {
  const GlobalOptions& g;
  uint64_t files = 0;
  uint64_t cached = 0;
  uint64_t matched = 0;
  uint64_t truncated = 0;
  uint64_t timeouts = 0;
  uint64_t skipped = 0;  // symlinks, FIFOs, sockets, devices: never opened
  uint64_t errors = 0;
  nlohmann::json listed = nlohmann::json::array();
  nlohmann::json error_list = nlohmann::json::array();
  bool collect = false;  // --lookup: every file's hash kept in `hashed`
  std::vector<LookupFile> hashed;
  uint64_t not_hashed = 0;  // past kMaxLookupFiles

  void error(const Error& e) {
    ++errors;
    if (g.json) {
      if (error_list.size() < kMaxListedErrors) error_list.push_back(error_json(e));
    } else {
      std::fprintf(stderr, "mamori: %s\n", e.message().c_str());
    }
  }

  void verdict(const std::string& path, const scan::Verdict& v) {
    ++files;
    if (v.cached) ++cached;
    if (v.truncated) ++truncated;
    if (v.timed_out) ++timeouts;
    if (v.matched()) ++matched;
    if (collect) {
      if (hashed.size() < kMaxLookupFiles)
        hashed.push_back({path, v.sha256, v.truncated});
      else
        ++not_hashed;
    }
    if (!v.matched() && !v.timed_out) return;
    if (g.json) {
      nlohmann::json matches = nlohmann::json::array();
      for (const auto& m : *v.matches)
        matches.push_back({{"rule", m.rule},
                           {"namespace", m.ns},
                           {"tags", m.tags},
                           {"description", m.description},
                           {"severity", m.severity}});
      listed.push_back({{"path", is_valid_utf8(path) ? path : escape(path)},
                        {"sha256", v.sha256.hex()},
                        {"size", v.size},
                        {"scanned", v.scanned},
                        {"truncated", v.truncated},
                        {"timed_out", v.timed_out},
                        {"matches", matches}});
      return;
    }
    std::string line = escape(path) + ":";
    if (v.timed_out) line += " no verdict: the scan timed out";
    for (size_t i = 0; i < v.matches->size(); ++i) {
      const auto& m = (*v.matches)[i];
      line += (i ? ", " : " ") + m.rule;
      if (m.ns != "mamori") line += " [" + escape(m.ns) + "]";
      if (!m.severity.empty()) line += " (" + m.severity + ")";
    }
    if (v.truncated) line += fmt::format(" (first {} bytes scanned)", v.scanned);
    std::printf("%s\n", line.c_str());
  }
};

void scan_one(scan::Scanner& scanner, Report& report, int fd, const std::string& display) {
  auto v = scanner.scan_fd(fd, display);
  if (!v)
    report.error(v.error());
  else
    report.verdict(display, *v);
}

// Files are scanned in batches spread over the executor's threads (the Scanner is shared,
// core/scan/scanner.h) and reported in walk order, so the output does not depend on
// timing; a batch bounds the memory a tree of millions of files takes.
constexpr size_t kBatch = 512;

Result<scan::Verdict> scan_beneath(scan::Scanner& scanner, int root_fd, const std::string& rel,
                                   const std::string& display) {
  auto fd = fs::open_beneath(root_fd, rel, O_RDONLY | O_NONBLOCK);
  if (!fd) {
    Error err = fd.error();
    err.path = display;
    return tl::unexpected(std::move(err));
  }
  return scanner.scan_fd(fd->get(), display);
}

// A directory: walked fd-first, symlinks never followed (core/fs/walk.h); every regular
// file is opened beneath it, so a symlink swapped in mid-walk fails instead of leading out.
void scan_tree(scan::Scanner& scanner, Executor& executor, Report& report, const std::string& top) {
  auto root = fs::open_root(top);
  if (!root) return report.error(root.error());
  const std::string prefix = top.ends_with('/') ? top : top + "/";
  std::vector<std::string> batch;
  std::vector<Result<scan::Verdict>> results;
  const auto flush = [&] {
    results.assign(batch.size(), Result<scan::Verdict>{});
    executor.run(batch.size(), [&](size_t i) {
      results[i] = scan_beneath(scanner, root->get(), batch[i], prefix + batch[i]);
    });
    for (size_t i = 0; i < batch.size(); ++i) {
      if (results[i])
        report.verdict(prefix + batch[i], *results[i]);
      else
        report.error(results[i].error());
    }
    batch.clear();
  };
  auto walked = fs::walk(
      root->get(), "", {},
      [&](fs::WalkEntry&& e) {
        if (e.path.empty() || S_ISDIR(e.st.st_mode)) return;
        if (!S_ISREG(e.st.st_mode)) {
          ++report.skipped;
          return;
        }
        batch.push_back(std::move(e.path));
        if (batch.size() >= kBatch) flush();
      },
      [&](Error&& e) {
        e.path = prefix + e.path;
        report.error(e);
      });
  flush();
  if (!walked) report.error(walked.error());
}

int usage(const GlobalOptions& g, const std::string& message) {
  if (g.json)
    print_json({{"error", {{"message", message}}}});
  else
    std::fprintf(stderr, "mamori: %s\n", message.c_str());
  return kExitUsage;
}

std::string vt_text(const scan::VtVerdict& v) {
  if (!v.known) return "unknown to VirusTotal";
  std::string t =
      fmt::format("{} malicious, {} suspicious, {} undetected, {} harmless", v.stats.malicious,
                  v.stats.suspicious, v.stats.undetected, v.stats.harmless);
  if (!v.label.empty()) t += " (" + escape(v.label) + ")";
  return t;
}

std::string printable(const std::string& s) { return is_valid_utf8(s) ? s : escape(s); }

// --lookup: each scanned file's SHA-256 asked of VirusTotal within the configured limits,
// from the cache when known; what cannot be asked now waits in the queue (the next run,
// or the next --lookup, asks it). Returns the exit code to use when it fails, and counts
// files VirusTotal's engines call malicious in `flagged`.
std::optional<int> run_lookups(const GlobalOptions& g, Report& report, nlohmann::json& out,
                               uint64_t& flagged) {
  auto c = config::load_config(g.config_path);
  if (!c) return usage(g, c.error().text());
  const config::LookupConfig& lc = c->lookup;
  if (lc.api_key_file.empty())
    return usage(g, "--lookup needs [lookup] api_key_file in " + quote(g.config_path) +
                        " (docs/scan.md, \"Hash look-ups\")");
  auto key = scan::read_api_key_file(lc.api_key_file);
  if (!key) return usage(g, key.error().message());
  auto client = scan::VtClient::make({.base_url = lc.base_url, .api_key = *key});
  if (!client) return usage(g, client.error().message());
  if (auto made = fs::make_private_dir(c->state_dir); !made)
    return usage(g, made.error().message());
  RealEnv env;
  scan::LookupLimits limits;
  limits.per_minute = lc.per_minute;
  limits.per_day = lc.per_day;
  auto queue = scan::LookupQueue::open(env, c->state_dir + "/lookup.json", limits);
  if (!queue) return usage(g, queue.error().message());

  for (const auto& f : report.hashed)
    if (!f.truncated && !queue->cached(f.sha256)) (void)queue->enqueue(f.sha256);  // dedup
  auto drained = queue->drain(**client);
  if (!drained) report.error(drained.error());
  const scan::DrainStats stats = drained ? *drained : scan::DrainStats{};

  uint64_t known = 0, unknown = 0, queued = 0, failed = 0, skipped = 0;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& f : report.hashed) {
    nlohmann::json j = {{"path", printable(f.path)}, {"sha256", f.sha256.hex()}};
    std::string text;
    if (f.truncated) {
      ++skipped;
      j["status"] = "skipped";
      text = "not looked up: larger than --max-bytes, only part was hashed";
    } else if (auto v = queue->cached(f.sha256)) {
      const auto& vt = v->verdict;
      ++(vt.known ? known : unknown);
      if (vt.known && vt.stats.malicious > 0) ++flagged;
      j["status"] = vt.known ? "known" : "unknown";
      if (vt.known)
        j.update({{"malicious", vt.stats.malicious},
                  {"suspicious", vt.stats.suspicious},
                  {"undetected", vt.stats.undetected},
                  {"harmless", vt.stats.harmless},
                  {"name", printable(vt.name)},
                  {"label", printable(vt.label)}});
      text = vt_text(vt);
    } else if (queue->waiting(f.sha256)) {
      ++queued;
      j["status"] = "queued";
      text = !drained ? "queued: not asked, the look-ups stopped on an error"
             : stats.retry > 0
                 ? "queued: VirusTotal asked to wait; a later --lookup asks it"
                 : fmt::format(
                       "queued: the limit ({}/min, {}/day) is reached; a later --lookup "
                       "asks it",
                       lc.per_minute, lc.per_day);
    } else {
      ++failed;
      j["status"] = "failed";
      text = "VirusTotal's reply made no sense";
    }
    if (g.json)
      list.push_back(std::move(j));
    else
      std::printf("%s: virustotal: %s\n", escape(f.path).c_str(), text.c_str());
  }
  const auto next = queue->next_slot();
  const auto wait_s =
      std::chrono::duration_cast<std::chrono::seconds>(next - env.clock().now()).count();
  if (g.json) {
    out["lookup"] = {{"sent", stats.sent},
                     {"known", known},
                     {"unknown", unknown},
                     {"queued", queued},
                     {"failed", failed},
                     {"skipped", skipped},
                     {"not_looked_up", report.not_hashed},
                     {"waiting", queue->waiting_count()},
                     {"dropped", queue->dropped()},
                     {"next_in_seconds", queue->waiting_count() ? std::max<int64_t>(0, wait_s) : 0},
                     {"per_minute", lc.per_minute},
                     {"per_day", lc.per_day}};
    out["lookups"] = std::move(list);
  } else if (!g.quiet) {
    std::fprintf(stderr,
                 "virustotal: %s request(s) sent (limits %u/min, %u/day), %s known, %s unknown"
                 "%s%s\n",
                 fmt::format("{}", stats.sent).c_str(), lc.per_minute, lc.per_day,
                 fmt::format("{}", known).c_str(), fmt::format("{}", unknown).c_str(),
                 queue->waiting_count()
                     ? fmt::format(", {} queued for later: run again in {} s to ask them",
                                   queue->waiting_count(), std::max<int64_t>(1, wait_s))
                           .c_str()
                     : "",
                 report.not_hashed ? fmt::format(", {} not looked up (more than {} files)",
                                                 report.not_hashed, kMaxLookupFiles)
                                         .c_str()
                                   : "");
  }
  return std::nullopt;
}

int run_scan(App& app, const ScanOptions& o) {
  const GlobalOptions& g = app.options();
  if (o.paths.empty()) return cli::usage_error("scan", "scan takes at least one PATH");
  scan::RuleOptions rule_options;
  rule_options.builtin = !o.no_builtin;
  for (const auto& r : o.rules) {
    struct stat st {};
    if (::stat(r.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      rule_options.dirs.push_back(r);
    else
      rule_options.files.push_back(r);  // a missing path fails to open, naming it
  }
  auto rules = scan::RuleSet::compile(rule_options);
  if (!rules) return usage(g, rules.error().message());
  scan::Limits limits;
  limits.max_scan_bytes = o.max_bytes;
  limits.timeout = std::chrono::seconds(o.timeout_s);
  scan::Scanner scanner(*rules, limits);

  // --jobs, else one thread per core: the rules are shared, each thread borrows a scanner.
  ThreadExecutor executor(g.jobs != 0 ? g.jobs : std::max(1u, std::thread::hardware_concurrency()));
  Report report{g};
  report.collect = o.lookup;
  const auto start = SystemClock().monotonic();
  for (const auto& path : o.paths) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      report.error(Error{"lstat", path, errno, {}});
      continue;
    }
    // A PATH that is a symlink to a directory is followed (like /var/www/html often is);
    // inside, nothing is.
    struct stat target {};
    if (S_ISDIR(st.st_mode) ||
        (S_ISLNK(st.st_mode) && ::stat(path.c_str(), &target) == 0 && S_ISDIR(target.st_mode))) {
      scan_tree(scanner, executor, report, path);
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      report.error(Error{"scan", path, 0, "not a regular file or a directory (not opened)"});
      continue;
    }
    auto fd = fs::open_admin_read(path);
    if (!fd) {
      report.error(fd.error());
      continue;
    }
    scan_one(scanner, report, fd->get(), path);
  }
  const double seconds = std::chrono::duration<double>(SystemClock().monotonic() - start).count();

  nlohmann::json lookup_json = nlohmann::json::object();
  uint64_t flagged = 0;
  if (o.lookup) {
    if (auto code = run_lookups(g, report, lookup_json, flagged)) return *code;
  }

  if (g.json) {
    nlohmann::json out = {{"rules", (*rules)->rule_count()},
                          {"rule_files", (*rules)->sources()},
                          {"files", report.files},
                          {"from_cache", report.cached},
                          {"matched", report.matched},
                          {"truncated", report.truncated},
                          {"timed_out", report.timeouts},
                          {"skipped", report.skipped},
                          {"errors", report.error_list},
                          {"errors_not_listed", report.errors - report.error_list.size()},
                          {"seconds", seconds},
                          {"results", report.listed}};
    out.update(lookup_json);
    print_json(out);
  } else if (!g.quiet) {
    std::fprintf(
        stderr, "%s file(s) scanned with %zu rules in %.2f s: %s matched, %s error(s)%s%s%s\n",
        fmt::format("{}", report.files).c_str(), (*rules)->rule_count(), seconds,
        fmt::format("{}", report.matched).c_str(), fmt::format("{}", report.errors).c_str(),
        report.skipped ? fmt::format(", {} not regular files skipped", report.skipped).c_str() : "",
        report.truncated ? fmt::format(", {} cut at the size cap", report.truncated).c_str() : "",
        report.timeouts ? fmt::format(", {} timed out", report.timeouts).c_str() : "");
  }
  if (report.matched > 0 || flagged > 0) return kExitChanges;
  return report.errors > 0 ? kExitUsage : kExitOk;
}

constexpr std::string_view kHelp = R"TXT(NAME
    mamori scan - look for web shells and injected scripts with YARA rules

SYNOPSIS
    mamori scan [--rules DIR|FILE]... [--no-builtin-rules] [--max-bytes N]
                [--timeout SECONDS] [--lookup] [--json] PATH...

DESCRIPTION
    Scans each PATH with mamori's own rule set (PHP web shells and their
    obfuscations: eval(base64_decode(...)), gzinflate/str_rot13 chains,
    preg_replace /e, assert($_POST...), create_function, functions named by the
    request, long encoded payloads; JavaScript injectors: hidden iframes,
    document.write(unescape(...)), eval(String.fromCharCode(...)), scripts from bare
    IP addresses) and with any rules the administrator adds. A directory is walked
    without following symlinks; symlinks, FIFOs, sockets and devices inside it are
    skipped, never opened. Prints one line per file that matched:

        PATH: RULE (SEVERITY), RULE [RULE FILE] (SEVERITY)...

    and a summary on stderr. Contents already scanned in this run (same SHA-256)
    are not scanned again. Files are scanned on one thread per core (-j N for N)
    and reported in the order of the walk. Changes nothing, needs no config.

    --rules DIR|FILE    also compile these YARA rules: every *.yar and *.yara file
                        directly inside DIR (sorted), or FILE; each file in its own
                        namespace. The externals of LOKI/THOR rule sets (filename,
                        filepath, extension, filetype, owner) are defined empty.
                        A file that does not compile stops the scan, naming the
                        file and the line.
    --no-builtin-rules  only the --rules files
    --max-bytes N       scan at most the first N bytes of a file (default 16 MiB,
                        at most 1 GiB: the part scanned is held in memory);
                        a larger file says so in its result
    --timeout SECONDS   give up on one file after this long (default 10)
    --lookup            also ask VirusTotal about each file's SHA-256 (only the
                        hash is sent, never the file), with your own API key
                        from the config's [lookup] api_key_file, and print
                        one line per file:

                            PATH: virustotal: M malicious, S suspicious,
                                  U undetected, H harmless (LABEL)
                            PATH: virustotal: unknown to VirusTotal
                            PATH: virustotal: queued: the limit ... is reached

                        Requests keep to [lookup] per_minute and per_day
                        (default 4 and 500: the public API's quota, which may
                        not be used commercially) across runs; what cannot be
                        asked now waits in STATE_DIR/lookup.json and is asked
                        by a later --lookup run. Verdicts are kept 30 days
                        (7 for unknown hashes). See docs/scan.md.

OUTPUT
    With --json: {"rules", "rule_files", "files", "from_cache", "matched",
    "truncated", "timed_out", "skipped", "errors": [...], "errors_not_listed",
    "seconds", "results": [{"path", "sha256", "size", "scanned", "truncated",
    "timed_out", "matches": [{"rule", "namespace", "tags", "description",
    "severity"}...]}...]}. "results" lists the files that matched or timed out;
    at most 1000 errors are listed, the rest counted. With --lookup also
    "lookup": {"sent", "known", "unknown", "queued", "failed", "skipped",
    "not_looked_up", "waiting", "dropped", "next_in_seconds", "per_minute",
    "per_day"} and "lookups": [{"path", "sha256", "status": "known" | "unknown" |
    "queued" | "failed" | "skipped", and when known "malicious", "suspicious",
    "undetected", "harmless", "name", "label"}...] for every file scanned.

EXAMPLES
    mamori scan /var/www/html/wp-content/uploads
    mamori scan --rules /etc/mamori/yara.d --json /srv/www | jq '.results[].path'

EXIT STATUS
    0 nothing matched; 1 some file matched, or (--lookup) VirusTotal's engines
    call some file malicious (even when others could not be read);
    2 bad arguments, a rule file that does not compile, or a file that could not
    be scanned (and nothing matched).
)TXT";

Run setup(CLI::App& cmd) {
  auto o = std::make_shared<ScanOptions>();
  cmd.add_option("path", o->paths);
  cmd.add_option("--rules", o->rules)->allow_extra_args(false);  // one per --rules
  cmd.add_flag("--no-builtin-rules", o->no_builtin);
  // The cap is read into memory whole for one scan: at most 1 GiB.
  cmd.add_option("--max-bytes", o->max_bytes)->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30));
  cmd.add_option("--timeout", o->timeout_s)->check(CLI::Range(1u, 86400u));
  cmd.add_flag("--lookup", o->lookup);
  return [o](App& app) { return run_scan(app, *o); };
}

}  // namespace

Command scan_command() {
  return {"scan", "scan PATH...", "look for web shells and injected scripts (YARA)",
          kHelp,  false,          setup};
}

}  // namespace mamori::cli
