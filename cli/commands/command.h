#pragma once
// One subcommand of `mamori`, as the table in cli/commands/table.cc lists it.
//
// Each file in cli/commands/ that implements a command returns a Command from a
// registration function named NAME_command() (e.g. `Command bans_command();`). Adding a
// command is that file plus one line in table.cc's MAMORI_COMMANDS list; main.cc and the
// overview page (`mamori --help`) take every command from the table.
//
// Contract: setup() is called once per process, before parsing, with the command's own
// CLI11 subcommand; it declares the options, positional arguments and action
// subcommands (e.g. `bans add`) and returns the function that runs the command with the
// values parsed into them (captured by the returned function, which owns them).
// main.cc adds -h/--help to the command and to every subcommand setup() made, so
// `mamori bans add --help` shows the command's page; global options (--json, --config,
// ...) are declared by main.cc and accepted anywhere on the line (CLI11 fallthrough).

#include <functional>
#include <span>
#include <string_view>

#include "cli/app.h"

namespace CLI {
class App;
}

namespace mamori::cli {

// Runs a parsed command and returns the process exit code (app.h). The App has loaded
// the config unless the command says it needs none (then only app.options() is valid).
using Run = std::function<int(App& app)>;

struct Command {
  std::string_view name;      // `mamori NAME`
  std::string_view synopsis;  // the overview's left column, e.g. "check [--full] [PATH...]"
  std::string_view summary;   // the overview's right column; '\n' starts a continuation line
  std::string_view help;      // the manual page of `mamori NAME --help` (NAME, SYNOPSIS, ...)
  bool needs_config = true;   // false: runs without loading the config (logs test)
  std::function<Run(CLI::App& command)> setup;
};

// Every command, in the order the overview lists them.
std::span<const Command> commands();
// The command called `name`; nullptr when there is none.
const Command* find_command(std::string_view name);

// The text for a usage error inside a command: "mamori: MESSAGE" and where help is, on
// stderr; returns kExitUsage.
int usage_error(std::string_view command, std::string_view message);

}  // namespace mamori::cli
