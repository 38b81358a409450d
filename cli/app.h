#pragma once
// What every subcommand shares: the loaded config, the OS, the exit codes, how paths
// on the command line map to roots, and how results are printed (text or --json).

#include <sys/types.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/env.h"
#include "core/base/parallel.h"
#include "core/base/result.h"
#include "core/baseline/check.h"
#include "core/baseline/state.h"
#include "core/config/config.h"
#include "core/evidence/item_json.h"
#include "core/fs/glob.h"

namespace mamori::cli {

// Documented in `mamori --help` and README.md; scripts rely on them.
enum Exit : int {
  kExitOk = 0,          // done; check: no change
  kExitChanges = 1,     // check/diff: differences found
  kExitUsage = 2,       // bad arguments, bad config, no baseline yet
  kExitIncomplete = 3,  // an operation failed or some entries could not be handled
  kExitIntegrity = 4,   // mamori's own catalog or store failed verification
};

struct GlobalOptions {
  std::string config_path = "/etc/mamori/mamori.toml";
  bool json = false;
  bool quiet = false;
  bool nice = false;
  unsigned jobs = 0;  // 0: from the config, else one per core
};

struct Root {
  const config::RootConfig* config = nullptr;
  fs::PathMatcher exclude;
};

class App {
 public:
  explicit App(GlobalOptions options) : options_(std::move(options)) {}

  // Loads the config and compiles excludes; prints the error and returns the exit code
  // on failure.
  std::optional<int> load();

  const GlobalOptions& options() const { return options_; }
  const config::Config& config() const { return config_; }
  std::vector<Root>& roots() { return roots_; }
  Env& env() { return env_; }
  Executor& executor() { return *executor_; }
  bool show_progress() const;
  // Says on stderr that the state directory `dir` was mode `was` and was made 0700.
  void warn_private_dir(const std::string& dir, mode_t was) const;

  Result<std::unique_ptr<baseline::State>> open_state(baseline::StateAccess access);
  // How to scan `root`, open as `root_fd`.
  baseline::ScanContext scan(const Root& root, int root_fd, baseline::Progress* progress) {
    return {root_fd, root.exclude.empty() ? nullptr : &root.exclude, *executor_, env_.clock(),
            progress};
  }

  // Maps a path from the command line (absolute or relative to the working directory)
  // to the configured root holding it and the path relative to that root.
  struct Target {
    Root* root = nullptr;
    std::string rel;
  };
  Result<Target> resolve(const std::string& arg);
  // Every root with `all`, else the targets the paths resolve to.
  Result<std::vector<Target>> targets(const std::vector<std::string>& paths, bool all);

  // Prints an error for a human (stderr) and returns the exit code for it.
  int report(const Error& e, int code);
  // The exit code for a failed state operation: integrity damage or a plain failure.
  static int code_for(const Error& e);

 private:
  GlobalOptions options_;
  config::Config config_;
  std::vector<Root> roots_;
  RealEnv env_;
  std::unique_ptr<Executor> executor_;
};

// JSON helpers shared by the commands.
using evidence::path_json;
nlohmann::json entry_json(const baseline::Entry& e);
nlohmann::json error_json(const Error& e);
using evidence::absolute;
void print_json(const nlohmann::json& j);
using evidence::format_time_ns;
std::string human_bytes(uint64_t bytes);

}  // namespace mamori::cli
