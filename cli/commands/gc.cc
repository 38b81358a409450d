// mamori gc: drop stored contents that no baseline entry refers to any more.

#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
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

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori gc - drop stored contents that nothing refers to

SYNOPSIS
    mamori gc [--json]

DESCRIPTION
    Every init and accept adds the new contents to the store and keeps the old ones.
    gc removes the contents no baseline entry refers to any more: each pack file that
    holds one is rewritten (its live contents copied to a new pack and verified
    against their SHA-256), the index is switched in one transaction, and only then
    are the old packs deleted, so a crash at any moment loses nothing. Refuses to run
    when the catalog fails verification.

EXIT STATUS
    0 done (or nothing to do); 2 no baseline or bad config; 3 failed (the store is as
    it was, or compacted; never half); 4 the catalog failed verification.
)TXT";

Run setup(CLI::App& cmd) {
  (void)cmd;
  return [](App& app) { return run_gc(app); };
}

}  // namespace

Command gc_command() {
  return {"gc", "gc", "drop stored contents no baseline entry needs any more", kHelp, true, setup};
}

}  // namespace mamori::cli
