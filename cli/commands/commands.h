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
int run_gc(App& app);

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

}  // namespace mamori::cli
