// mamori accept: take the current state of paths (or of everything) into the baseline.

#include <cstdio>

#include "cli/commands/commands.h"
#include "cli/progress.h"
#include "core/base/quote.h"
#include "core/baseline/record.h"
#include "core/fs/beneath.h"

namespace mamori::cli {

int run_accept(App& app, const std::vector<std::string>& paths, bool all) {
  if (all == !paths.empty())
    return app.report(Error{"accept", "", 0, "name the paths to accept, or give --all"}, kExitUsage);
  std::vector<App::Target> targets;
  for (const auto& p : paths) {
    auto t = app.resolve(p);
    if (!t) return app.report(t.error(), kExitUsage);
    targets.push_back(*t);
  }
  if (all)
    for (auto& r : app.roots()) targets.push_back({&r, ""});

  auto state = app.open_state(baseline::StateAccess::kWrite);
  if (!state) return app.report(state.error(), App::code_for(state.error()));
  auto& catalog = (*state)->catalog;
  if (auto v = catalog.verify(); !v) {
    Error e = v.error();
    e.detail = "refusing to extend a baseline that failed verification (run 'mamori init' to start over): " + e.detail;
    return app.report(e, kExitIntegrity);
  }
  const int64_t now = app.env().clock().now_ns();
  nlohmann::json out = {{"command", "accept"}, {"accepted", nlohmann::json::array()},
                        {"errors", nlohmann::json::array()}};
  size_t errors = 0;
  auto result = [&]() -> Status {
    auto txn = MAMORI_TRY(db::Transaction::begin(catalog.db()));
    for (const auto& t : targets) {
      const std::string& root_path = t.root->config->path;
      auto root_fd = MAMORI_TRY(fs::open_root(root_path));
      auto row = MAMORI_TRY(catalog.find_root(root_path));
      const int64_t root_id = row ? row->id : MAMORI_TRY(catalog.touch_root(root_path, now));
      baseline::Progress progress;
      baseline::RecordReport rep;
      {
        ProgressBar bar(progress, "accept " + escape(absolute(root_path, t.rel)), app.show_progress());
        rep = MAMORI_TRY(baseline::record(catalog, *(*state)->store, root_id,
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
    MAMORI_TRY((*state)->store->commit());
    const auto root_hash = MAMORI_TRY(catalog.seal(now));
    MAMORI_TRY(txn.commit());
    out["root_hash"] = root_hash.hex();
    if (!app.options().json && !app.options().quiet)
      std::printf("baseline sealed; root hash %s\n", root_hash.hex().c_str());
    return ok();
  }();
  if (!result) return app.report(result.error(), App::code_for(result.error()));
  if (app.options().json) print_json(out);
  return errors ? kExitIncomplete : kExitOk;
}

}  // namespace mamori::cli
