// mamori deploy: make a legitimate change while the agent guards.
// (The steps, run_deploy, live in agent.cc with the other control-socket calls.)

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/commands/commands.h"

namespace mamori::cli {

namespace {

constexpr std::string_view kHelp = R"TXT(NAME
    mamori deploy - make a legitimate change while the agent guards

SYNOPSIS
    mamori deploy [--review] [--root ROOT]... -- CMD [ARGS...]

DESCRIPTION
    Pauses restoring on the roots (every root, or the --root ones; changes are still
    reported, as mamori.mode "deploy"), runs CMD, then shows what changed ('mamori
    check') and takes it into the baseline ('mamori accept'). With --review, asks
    before accepting; answering no rolls back. If CMD fails, the roots are restored
    to the baseline. Restoring resumes in every case, after a verify of the roots
    (so files a failed CMD created are quarantined). Without a running agent the
    same steps run without the pause.

    Only CMD's own process tree may change the roots: the agent judges each change
    by the process that wrote it (fanotify), so a change by any other process during
    the deploy (a dropper running as the web server's user) is restored or
    quarantined at once, reported with mamori.deploy.writer "foreign", named on
    stderr and never accepted. When the agent cannot name writers (inotify),
    nothing is accepted without --review (see docs/agent.md).

EXAMPLES
    mamori deploy -- wp core update --path=/var/www/html
    mamori deploy --root /var/www/html -- wp plugin update akismet
    mamori deploy --review -- rsync -a release/ /var/www/html/

EXIT STATUS
    0 deployed and accepted (or nothing changed); 2 usage; 3 CMD failed and the
    roots were rolled back, or accepting failed, or the agent could not attribute
    the changes and --review was not given (rolled back); 4 the baseline failed
    verification.
)TXT";

Run setup(CLI::App& cmd) {
  struct Parsed {
    bool review = false;
    std::vector<std::string> roots, command;
  };
  auto p = std::make_shared<Parsed>();
  cmd.add_flag("--review", p->review);
  cmd.add_option("--root", p->roots);
  cmd.add_option("command", p->command);
  return [p](App& app) { return run_deploy(app, p->roots, p->review, p->command); };
}

}  // namespace

Command deploy_command() {
  return {"deploy",
          "deploy [--review] -- CMD",
          "run a legitimate change, then take it into the baseline",
          kHelp,
          true,
          setup};
}

}  // namespace mamori::cli
