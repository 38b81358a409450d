// mamori scan: YARA triage of files and trees on demand (core/scan), with mamori's own
// rule set and the administrator's. Needs no config and changes nothing.

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
#include "core/fs/admin_files.h"
#include "core/fs/beneath.h"
#include "core/fs/walk.h"
#include "core/scan/scanner.h"

namespace mamori::cli {
namespace {

// Errors --json lists one by one; past this they are only counted (a tree of unreadable
// files must not make a report of millions of lines).
constexpr size_t kMaxListedErrors = 1000;

struct ScanOptions {
  std::vector<std::string> paths;
  std::vector<std::string> rules;  // directories or files
  bool no_builtin = false;
  uint64_t max_bytes = scan::Limits{}.max_scan_bytes;
  unsigned timeout_s = static_cast<unsigned>(scan::Limits{}.timeout.count());
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

  if (g.json) {
    print_json({{"rules", (*rules)->rule_count()},
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
                {"results", report.listed}});
  } else if (!g.quiet) {
    std::fprintf(
        stderr, "%s file(s) scanned with %zu rules in %.2f s: %s matched, %s error(s)%s%s%s\n",
        fmt::format("{}", report.files).c_str(), (*rules)->rule_count(), seconds,
        fmt::format("{}", report.matched).c_str(), fmt::format("{}", report.errors).c_str(),
        report.skipped ? fmt::format(", {} not regular files skipped", report.skipped).c_str() : "",
        report.truncated ? fmt::format(", {} cut at the size cap", report.truncated).c_str() : "",
        report.timeouts ? fmt::format(", {} timed out", report.timeouts).c_str() : "");
  }
  if (report.matched > 0) return kExitChanges;
  return report.errors > 0 ? kExitUsage : kExitOk;
}

constexpr std::string_view kHelp = R"TXT(NAME
    mamori scan - look for web shells and injected scripts with YARA rules

SYNOPSIS
    mamori scan [--rules DIR|FILE]... [--no-builtin-rules] [--max-bytes N]
                [--timeout SECONDS] [--json] PATH...

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

OUTPUT
    With --json: {"rules", "rule_files", "files", "from_cache", "matched",
    "truncated", "timed_out", "skipped", "errors": [...], "errors_not_listed",
    "seconds", "results": [{"path", "sha256", "size", "scanned", "truncated",
    "timed_out", "matches": [{"rule", "namespace", "tags", "description",
    "severity"}...]}...]}. "results" lists the files that matched or timed out;
    at most 1000 errors are listed, the rest counted.

EXAMPLES
    mamori scan /var/www/html/wp-content/uploads
    mamori scan --rules /etc/mamori/yara.d --json /srv/www | jq '.results[].path'

EXIT STATUS
    0 nothing matched; 1 some file matched (even when others could not be read);
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
  return [o](App& app) { return run_scan(app, *o); };
}

}  // namespace

Command scan_command() {
  return {"scan", "scan PATH...", "look for web shells and injected scripts (YARA)",
          kHelp,  false,          setup};
}

}  // namespace mamori::cli
