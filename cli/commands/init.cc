// mamori init: record the baseline of every configured root (or the ones named).

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"
#include "cli/progress.h"
#include "core/base/quote.h"
#include "core/baseline/record.h"
#include "core/fs/beneath.h"

namespace mamori::cli {

int run_init(App& app, const std::vector<std::string>& paths) {
  std::vector<Root*> selected;
  for (const auto& p : paths) {
    auto t = app.resolve(p);
    if (!t || !t->rel.empty())
      return app.report(
          Error{"init", p, 0, "is not a configured root (see [[root]] in the config)"}, kExitUsage);
    if (std::find(selected.begin(), selected.end(), t->root) == selected.end())
      selected.push_back(t->root);
  }
  if (paths.empty())
    for (auto& r : app.roots()) selected.push_back(&r);
  if (selected.empty())
    return app.report(
        Error{"init", app.config().source, 0, "the config lists no [[root]] to protect"},
        kExitUsage);

  auto state = app.open_state(baseline::StateAccess::kWrite);
  if (!state) return app.report(state.error(), App::code_for(state.error()));
  auto& catalog = (*state)->catalog;
  auto& store = *(*state)->store;
  const int64_t now = app.env().clock().now_ns();

  nlohmann::json out = {
      {"command", "init"}, {"roots", nlohmann::json::array()}, {"errors", nlohmann::json::array()}};
  bool incomplete = false;
  auto result = [&]() -> Status {
    auto txn = MAMORI_TRY(db::Transaction::begin(catalog.db()));
    for (Root* r : selected) {
      const std::string& path = r->config->path;
      auto root_fd = MAMORI_TRY(fs::open_root(path));
      const int64_t root_id = MAMORI_TRY(catalog.touch_root(path, now));
      baseline::Progress progress;
      baseline::RecordReport rep;
      {
        ProgressBar bar(progress, "init " + escape(path), app.show_progress());
        rep = MAMORI_TRY(
            baseline::record(catalog, store, root_id, app.scan(*r, root_fd.get(), &progress), ""));
      }
      incomplete |= !rep.errors.empty();
      warn_all(app, rep.errors, &out["errors"]);
      out["roots"].push_back({{"path", path},
                              {"entries", rep.entries},
                              {"files", rep.files},
                              {"bytes", rep.bytes},
                              {"unreadable", rep.errors.size()}});
      if (!app.options().json && !app.options().quiet)
        std::printf("%s: %s entries, %s files, %s%s\n", escape(path).c_str(),
                    fmt::format("{}", rep.entries).c_str(), fmt::format("{}", rep.files).c_str(),
                    human_bytes(rep.bytes).c_str(),
                    rep.errors.empty()
                        ? ""
                        : fmt::format(" ({} left out, see warnings)", rep.errors.size()).c_str());
    }
    if (paths.empty()) {  // roots dropped from the config leave the baseline too
      for (const auto& row : MAMORI_TRY(catalog.roots())) {
        const bool configured =
            std::any_of(app.roots().begin(), app.roots().end(),
                        [&](const Root& r) { return r.config->path == row.path; });
        if (!configured) MAMORI_TRY(catalog.remove_root(row.id));
      }
    }
    return seal_and_commit(app, **state, txn, now, out);
  }();
  if (!result) return app.report(result.error(), App::code_for(result.error()));
  if (app.options().json) print_json(out);
  return incomplete ? kExitIncomplete : kExitOk;
}

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori init - record the baseline

SYNOPSIS
    mamori init [--nice] [-j N] [PATH...]

DESCRIPTION
    Walks every configured root (or only the roots named; each PATH must be a
    configured root) without following symlinks, records every entry that no
    'exclude' pattern matches, hashes every regular file on all cores and stores its
    content, compressed and once per distinct content, in STATE/store. FIFOs,
    sockets and devices are recorded, never opened.

    The new baseline replaces the old one in a single transaction: if init is killed
    or the disk fills, the previous baseline is left as it was. Roots no longer in
    the config are dropped from the baseline when no PATH is given.

    A file that cannot be read is left out of the baseline and named in a warning;
    a file that keeps changing while it is read is retried, then left out, so no torn
    hash is ever recorded. Shows a progress bar when stderr is a terminal.

EXIT STATUS
    0 recorded; 2 bad config or PATH; 3 some entries left out, or the baseline could
    not be written (the old one is intact).
)TXT";

Run setup(CLI::App& cmd) {
  auto paths = std::make_shared<std::vector<std::string>>();
  cmd.add_option("paths", *paths);
  return [paths](App& app) { return run_init(app, *paths); };
}

}  // namespace

Command init_command() {
  return {"init",
          "init [PATH...]",
          "record the baseline of every root (or the roots named)",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
