// mamori gc: drop stored contents that no baseline entry refers to any more.

#include <cstdio>

#include "cli/commands/commands.h"

namespace mamori::cli {

int run_gc(App& app) {
  std::unique_ptr<baseline::State> state;
  if (auto code = open_verified_for_write(
          app, "refusing to compact a store whose catalog failed verification", state))
    return *code;
  auto result = [&]() -> Result<store::CompactReport> {
    const auto live = MAMORI_TRY(state->catalog.live_digests());
    return state->store->compact(live);
  }();
  if (!result) return app.report(result.error(), App::code_for(result.error()));
  const auto& r = *result;
  if (app.options().json) {
    print_json({{"command", "gc"},
                {"objects_removed", r.objects_removed},
                {"objects_moved", r.objects_moved},
                {"packs_removed", r.packs_removed},
                {"bytes_before", r.bytes_before},
                {"bytes_after", r.bytes_after}});
  } else if (!app.options().quiet) {
    std::printf("removed %llu unreferenced object%s, moved %llu; store %s -> %s\n",
                static_cast<unsigned long long>(r.objects_removed),
                r.objects_removed == 1 ? "" : "s", static_cast<unsigned long long>(r.objects_moved),
                human_bytes(r.bytes_before).c_str(), human_bytes(r.bytes_after).c_str());
  }
  return kExitOk;
}

}  // namespace mamori::cli
