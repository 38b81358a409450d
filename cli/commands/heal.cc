// mamori heal: the node's health as its load balancer sees it.
// (The request, run_heal, lives in agent.cc with the other control-socket calls.)

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"

namespace mamori::cli {

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori heal - the node's health as its load balancer sees it

SYNOPSIS
    mamori heal [--json]
    mamori heal --clear
    mamori heal --fail REASON

DESCRIPTION
    A node under attack takes itself out of its load balancer's rotation: when a
    [heal] condition fires (a tamper storm, more than heal.tamper_count tampers in
    heal.tamper_window seconds, a file that could not be restored, a quarantined
    script, mamori's own baseline failing verification), the running agent removes
    or rewrites heal.health_file, answers 503 on heal.health_listen, runs heal.hook
    with the event as JSON on its stdin, and reports node-unhealthy. The state
    survives restarts of the agent.

    Without options, shows the state. --clear puts the node back in rotation now
    (after you have looked at it). --fail REASON takes it out by hand, e.g. for
    maintenance. With heal.recover_after, the agent also returns on its own once
    no condition fired for that long and a full verify then finds nothing.
    Recipes for AWS, HAProxy and nginx: docs/heal.md.

EXAMPLES
    mamori heal                          healthy, or why not
    mamori heal --clear                  back into rotation
    mamori heal --fail "kernel update"   drain this node

EXIT STATUS
    0 healthy (or the change was made); 1 unhealthy; 2 usage; 3 no agent running,
    or it refused.
)TXT";

Run setup(CLI::App& cmd) {
  auto clear = std::make_shared<bool>(false);
  auto fail_reason = std::make_shared<std::string>();
  cmd.add_flag("--clear", *clear);
  cmd.add_option("--fail", *fail_reason);
  return [clear, fail_reason](App& app) {
    if (*clear && !fail_reason->empty())
      return usage_error("heal", "heal takes --clear or --fail REASON, not both");
    return run_heal(app, *clear, *fail_reason);
  };
}

}  // namespace

Command heal_command() {
  return {"heal",
          "heal [--clear|--fail WHY]",
          "the node's health as its load balancer sees it",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
