#pragma once
// One function per subcommand; each returns the process exit code (app.h).

#include <string>
#include <vector>

#include "cli/app.h"

namespace mamori::cli {

int run_init(App& app, const std::vector<std::string>& paths);
int run_check(App& app, const std::vector<std::string>& paths, bool full);
int run_diff(App& app, const std::string& path);
int run_restore(App& app, const std::vector<std::string>& paths, bool all);
int run_accept(App& app, const std::vector<std::string>& paths, bool all);
int run_status(App& app);

// Prints each error on stderr as a warning (text mode) and adds them to `out` (JSON).
void warn_all(App& app, const std::vector<Error>& errors, nlohmann::json* out);

}  // namespace mamori::cli
