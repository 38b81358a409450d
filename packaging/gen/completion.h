#pragma once
// bash completion for mamori, made from its command table (cli/commands/table.cc) at
// build time, so a new command or option completes without anyone editing a script.
//
// Pure: the caller reads the parsers; this writes the script.

#include <string>
#include <vector>

namespace mamori::packaging {

// One level of the command line: "" (mamori itself), "bans", "bans add"...
struct CompletionLevel {
  std::string path;
  std::vector<std::string> subcommands;  // the words that go one level down
  std::vector<std::string> options;      // every option name, flags and valued
  std::vector<std::string> valued;       // the options that take a value (completed as files)
};

// The options a help text's GLOBAL OPTIONS section lists ("-c, --config FILE   ...":
// -c and --config, both valued), accepted at every level.
CompletionLevel global_options_from_help(const std::string& overview);

// The script for /usr/share/bash-completion/completions/mamori. Global options complete
// at every level; after `deploy ... --` the rest is another command's line.
std::string bash_completion(const CompletionLevel& global,
                            const std::vector<CompletionLevel>& levels);

}  // namespace mamori::packaging
