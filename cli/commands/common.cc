// What several subcommands share: warnings, verified state, a root's baseline, sealing.

#include <cstdio>

#include "cli/commands/commands.h"

namespace mamori::cli {

void warn_all(App& app, const std::vector<Error>& errors, nlohmann::json* out) {
  for (const auto& e : errors) {
    if (out) out->push_back(error_json(e));
    if (!app.options().json) std::fprintf(stderr, "mamori: warning: %s\n", e.message().c_str());
  }
}

std::optional<int> open_verified_for_write(App& app, std::string_view refusal,
                                           std::unique_ptr<baseline::State>& state) {
  auto opened = app.open_state(baseline::StateAccess::kWrite);
  if (!opened) return app.report(opened.error(), App::code_for(opened.error()));
  if (auto v = (*opened)->catalog.verify(); !v) {
    Error e = v.error();
    e.detail = std::string(refusal) + ": " + e.detail;
    return app.report(e, App::code_for(e));
  }
  state = std::move(*opened);
  return std::nullopt;
}

Result<std::optional<int64_t>> baselined_root(App& app, baseline::Catalog& catalog,
                                              const std::string& root, size_t& unbaselined,
                                              nlohmann::json& errors) {
  auto row = MAMORI_TRY(catalog.find_root(root));
  if (row) return std::optional<int64_t>(row->id);
  ++unbaselined;
  warn_all(app, {Error{"baseline", root, 0, "root has no baseline yet: run 'mamori init'"}}, &errors);
  return std::optional<int64_t>{};
}

Status seal_and_commit(App& app, baseline::State& state, db::Transaction& txn, int64_t now,
                       nlohmann::json& out) {
  MAMORI_TRY(state.store->commit());
  const auto root_hash = MAMORI_TRY(state.catalog.seal(now));
  MAMORI_TRY(txn.commit());
  out["root_hash"] = root_hash.hex();
  if (!app.options().json && !app.options().quiet)
    std::printf("baseline sealed; root hash %s\n", root_hash.hex().c_str());
  return ok();
}

}  // namespace mamori::cli
