// mamori accept: take the current state of paths (or of everything) into the baseline.

#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "cli/progress.h"
#include "core/base/quote.h"
#include "core/baseline/record.h"
#include "core/fs/beneath.h"

namespace mamori::cli {

int run_accept(App& app, const std::vector<std::string>& paths, bool all) {
  if (all == !paths.empty())
    return app.report(Error{"accept", "", 0, "name the paths to accept, or give --all"},
                      kExitUsage);
  auto targets = app.targets(paths, all);
  if (!targets) return app.report(targets.error(), kExitUsage);

  std::unique_ptr<baseline::State> state;
  if (auto code = open_verified_for_write(app,
                                          "refusing to extend a baseline that failed verification "
                                          "(run 'mamori init' to start over)",
                                          state))
    return *code;
  auto& catalog = state->catalog;
  const int64_t now = app.env().clock().now_ns();
  nlohmann::json out = {{"command", "accept"},
                        {"accepted", nlohmann::json::array()},
                        {"errors", nlohmann::json::array()}};
  size_t errors = 0;
  auto result = [&]() -> Status {
    auto txn = MAMORI_TRY(db::Transaction::begin(catalog.db()));
    for (const auto& t : *targets) {
      const std::string& root_path = t.root->config->path;
      auto root_fd = MAMORI_TRY(fs::open_root(root_path));
      auto row = MAMORI_TRY(catalog.find_root(root_path));
      const int64_t root_id = row ? row->id : MAMORI_TRY(catalog.touch_root(root_path, now));
      baseline::Progress progress;
      baseline::RecordReport rep;
      {
        ProgressBar bar(progress, "accept " + escape(absolute(root_path, t.rel)),
                        app.show_progress());
        rep = MAMORI_TRY(baseline::record(catalog, *state->store, root_id,
                                          app.scan(*t.root, root_fd.get(), &progress), t.rel));
      }
      errors += rep.errors.size();
      warn_all(app, rep.errors, &out["errors"]);
      auto j = path_json(root_path, t.rel);
      j["entries"] = rep.entries;
      out["accepted"].push_back(std::move(j));
      if (!app.options().json)
        std::printf("accepted %s  (%llu entr%s)\n", escape(absolute(root_path, t.rel)).c_str(),
                    static_cast<unsigned long long>(rep.entries), rep.entries == 1 ? "y" : "ies");
    }
    return seal_and_commit(app, *state, txn, now, out);
  }();
  if (!result) return app.report(result.error(), App::code_for(result.error()));
  if (app.options().json) print_json(out);
  return errors ? kExitIncomplete : kExitOk;
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori accept - take the current state into the baseline

SYNOPSIS
    mamori accept PATH...
    mamori accept --all

DESCRIPTION
    Records what is at each PATH now (a file, or a directory and everything beneath
    it) as the new baseline for it, storing new content; a PATH that no longer
    exists is removed from the baseline. With --all, every root is re-recorded. Use
    it after a legitimate change such as a plugin update. Runs in one transaction
    and reseals the catalog with a new root hash.

EXIT STATUS
    0 accepted; 2 usage error; 3 some entries could not be read (left out) or the
    baseline could not be written; 4 the baseline failed verification.
)TXT";

Run setup(CLI::App& cmd) {
  auto paths = std::make_shared<std::vector<std::string>>();
  auto all = std::make_shared<bool>(false);
  cmd.add_flag("--all", *all);
  cmd.add_option("paths", *paths);
  return [paths, all](App& app) { return run_accept(app, *paths, *all); };
}

}  // namespace

Command accept_command() {
  return {"accept", "accept PATH...|--all", "take the current state into the baseline", kHelp, true,
          setup};
}

}  // namespace mamori::cli
