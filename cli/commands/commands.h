#pragma once
// One function per subcommand; each returns the process exit code (app.h).

#include <string>
#include <vector>

#include "cli/app.h"

namespace mamori::cli {

int run_init(App& app, const std::vector<std::string>& paths);
int run_check(App& app, const std::vector<std::string>& paths, bool full);
int run_diff(App& app, const std::string& path);
// With `quarantine_new`, entries the baseline does not know (unless allow_new lets them
// stay) are moved into the evidence store. Exit 1 when some were left in place.
int run_restore(App& app, const std::vector<std::string>& paths, bool all, bool quarantine_new);
int run_accept(App& app, const std::vector<std::string>& paths, bool all);
int run_status(App& app);
int run_gc(App& app);
// `run_seconds` > 0 stops the agent after that long (tests, benchmarks).
int run_agent_command(App& app, unsigned run_seconds);
int run_mode(App& app, const std::string& root, const std::string& mode);
// Shows the node's health (exit 1 when unhealthy), clears it, or fails it by hand.
int run_heal(App& app, bool clear, const std::string& fail_reason);
int run_deploy(App& app, const std::vector<std::string>& roots, bool review,
               const std::vector<std::string>& command);
// The running agent's status; nullopt when none runs.
Result<std::optional<nlohmann::json>> agent_status(App& app);

struct EvidenceOptions {
  size_t limit = 0;    // list: the newest N items (0 = all)
  std::string output;  // export: the file to create ("" = stdout)
};
// `action` is list, show, diff or export; `args` holds the item id where one is needed.
int run_evidence(App& app, const std::string& action, const std::vector<std::string>& args,
                 const EvidenceOptions& options);

struct LogsOptions {
  std::string format = "combined";  // logparse::LogFormat spec
  std::vector<std::string> rules;   // rule files applied after the built-in defaults
  bool no_default_rules = false;
  std::vector<std::string> allow;  // CIDRs never banned
};
// `mamori logs test FILE`: exit 0 when nothing would be banned, 1 when something would.
// Needs no config.
int run_logs_test(const GlobalOptions& global, const LogsOptions& options, const std::string& path);

struct BansOptions {
  std::optional<int64_t> ttl_s;  // add: this TTL instead of the escalation's
  bool permanent = false;        // add: no expiry
  std::string reason;            // add: recorded with the ban
  bool force = false;            // add: ban even an allowlisted address
};
// `action` is list, add, del or sync; `args` holds the IP address for add and del.
int run_bans(App& app, const std::string& action, const std::vector<std::string>& args,
             const BansOptions& options);

struct EventsOptions {
  std::string since;               // a UTC time or a duration back from now
  std::string path;                // a glob or a prefix over file.path
  std::string ip;                  // source.ip
  bool follow = false;             // then print new events as they are written
  bool check = false;              // check every event against docs/formats/ecs-fields.tsv
  std::vector<std::string> files;  // --check: these files instead of the event log
};
// `mamori events`: exit 0 when something matched (--check: every event valid), 1 when
// nothing did (--check: some event invalid), 2 usage, 3 the log could not be read.
int run_events(App& app, const EventsOptions& options);

// Prints each error on stderr as a warning (text mode) and adds them to `out` (JSON).
void warn_all(App& app, const std::vector<Error>& errors, nlohmann::json* out);

// Opens the state for writing after verifying the catalog, for commands that change
// files or the baseline from it. On failure, reports (prefixing `refusal` to an integrity
// error) and returns the exit code; on success returns nullopt and fills `state`.
std::optional<int> open_verified_for_write(App& app, std::string_view refusal,
                                           std::unique_ptr<baseline::State>& state);

// The catalog id of `root`'s baseline; when it has none, warns and counts it in
// `unbaselined` and returns nullopt.
Result<std::optional<int64_t>> baselined_root(App& app, baseline::Catalog& catalog,
                                              const std::string& root, size_t& unbaselined,
                                              nlohmann::json& errors);

// Makes a writing command's work durable: stores new content, reseals the catalog,
// commits, and reports the new root hash.
Status seal_and_commit(App& app, baseline::State& state, db::Transaction& txn, int64_t now,
                       nlohmann::json& out);

// True when the first 8 KiB hold a NUL byte: such content is shown by hash, not diffed.
bool looks_binary(const std::string& s);
// Prints `diff -u` of the two contents on stdout, labelled a/LABEL and b/LABEL like git
// (the label escaped, so an attacker's file name cannot forge header lines); returns
// diff(1)'s status, 0 same or 1 different. With `captured`, the diff goes there instead
// (exact bytes); when stdout is a terminal, control bytes in it are escaped
// (escape_for_terminal: an attacker's ESC or \r cannot hide a line), lines and tabs kept.
Result<int> unified_diff(Env& env, const std::string& label, const std::string& before,
                         const std::string& after, std::string* captured = nullptr);

}  // namespace mamori::cli
