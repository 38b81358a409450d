// mamori mode: switch a running agent's root between alert, restore and preserve.
// (The request itself, run_mode, lives in agent.cc with the other control-socket calls.)

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"

namespace mamori::cli {

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori mode - switch a running agent's root between alert, restore and preserve

SYNOPSIS
    mamori mode ROOT MODE
    mamori mode '*' MODE

DESCRIPTION
    Tells the running agent to guard ROOT (a configured root, or '*' for all) in
    MODE from now on. Leaving alert verifies the root at once, so everything alert
    only reported is repaired. The change lasts until the agent restarts; the config
    keeps its own mode.

EXIT STATUS
    0 switched; 2 bad ROOT or MODE; 3 no agent running, or it refused.
)TXT";

Run setup(CLI::App& cmd) {
  auto root = std::make_shared<std::string>();
  auto mode = std::make_shared<std::string>();
  cmd.add_option("root", *root);
  cmd.add_option("mode", *mode);
  return [root, mode](App& app) {
    if (root->empty() || mode->empty()) return usage_error("mode", "mode takes ROOT and MODE");
    return run_mode(app, *root, *mode);
  };
}

}  // namespace

Command mode_command() {
  return {"mode",
          "mode ROOT|'*' MODE",
          "switch a running agent's root to alert, restore or preserve",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
