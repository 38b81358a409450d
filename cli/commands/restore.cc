// mamori restore: put changed, removed or re-permissioned entries back to the baseline.

#include <cstdio>

#include "cli/commands/commands.h"
#include "core/base/quote.h"
#include "core/baseline/restore.h"
#include "core/fs/beneath.h"

namespace mamori::cli {

int run_restore(App& app, const std::vector<std::string>& paths, bool all) {
  if (all == !paths.empty())
    return app.report(Error{"restore", "", 0, "name the paths to restore, or give --all"}, kExitUsage);
  auto targets = app.targets(paths, all);
  if (!targets) return app.report(targets.error(), kExitUsage);

  // Restoring refreshes the stat cache, so it opens the state for writing.
  std::unique_ptr<baseline::State> state;
  if (auto code = open_verified_for_write(app, "refusing to restore from a baseline that failed verification", state))
    return *code;
  auto& catalog = state->catalog;

  nlohmann::json out = {{"command", "restore"}, {"restored", nlohmann::json::array()},
                        {"not_in_baseline", nlohmann::json::array()}, {"errors", nlohmann::json::array()}};
  size_t restored = 0, errors = 0, unbaselined = 0;
  for (const auto& t : *targets) {
    const std::string& root_path = t.root->config->path;
    auto root_id = baselined_root(app, catalog, root_path, unbaselined, out["errors"]);
    if (!root_id) return app.report(root_id.error(), App::code_for(root_id.error()));
    if (!*root_id) continue;
    if (!t.rel.empty()) {
      // A path that is neither in the baseline nor beneath a directory that is has
      // nothing to restore: say so instead of reporting success.
      bool known = false;
      auto found = catalog.for_each(**root_id, t.rel, [&](baseline::Entry&&) -> Status {
        known = true;
        return fail("stop", "", ECANCELED);
      });
      if (!known) {
        ++errors;
        warn_all(app, {Error{"restore", absolute(root_path, t.rel), ENOENT, "not in the baseline"}}, &out["errors"]);
        continue;
      }
    }
    auto root_fd = fs::open_root(root_path);
    if (!root_fd) {
      ++errors;
      warn_all(app, {root_fd.error()}, &out["errors"]);
      continue;
    }
    auto rep = baseline::restore(app.env(), catalog, *state->store, **root_id,
                                 app.scan(*t.root, root_fd->get(), nullptr), t.rel);
    if (!rep) return app.report(rep.error(), App::code_for(rep.error()));
    errors += rep->errors.size();
    warn_all(app, rep->errors, &out["errors"]);
    for (const auto& r : rep->restored) {
      ++restored;
      auto j = path_json(root_path, r.path);
      j["was"] = baseline::kind_name(r.was);
      j["attributes"] = baseline::attr_names(r.attrs);
      out["restored"].push_back(std::move(j));
      if (!app.options().json)
        std::printf("restored %s%s\n", escape(absolute(root_path, r.path)).c_str(),
                    r.was == baseline::ChangeKind::kRemoved ? "  (was removed)" : "");
    }
    for (const auto& p : rep->not_in_baseline) {
      out["not_in_baseline"].push_back(path_json(root_path, p));
      if (!app.options().json)
        std::printf("left     %s  (not in the baseline: remove it, or 'mamori accept' it)\n",
                    escape(absolute(root_path, p)).c_str());
    }
  }
  if (app.options().json) print_json(out);
  else if (!app.options().quiet)
    std::printf("%zu entr%s restored%s\n", restored, restored == 1 ? "y" : "ies",
                errors ? (", " + std::to_string(errors) + " could not be").c_str() : "");
  if (errors) return kExitIncomplete;
  return unbaselined ? kExitUsage : kExitOk;
}

}  // namespace mamori::cli
