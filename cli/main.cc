// mamori: parses the command line and runs one command from the table
// (cli/commands/table.cc); the commands themselves live in cli/commands/.

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "cli/commands/command.h"
#include "cli/help.h"
#include "core/base/version.h"

namespace {

using mamori::cli::Command;
using mamori::cli::Run;

struct Bound {
  const Command* command;
  CLI::App* parser;
  Run run;
};

// Our -h/--help instead of CLI11's (which prints its own terse text): on the command and
// on each action beneath it, so `mamori bans add --help` shows the bans page.
void add_help_flags(CLI::App& parser, bool& help) {
  parser.set_help_flag();
  parser.add_flag("-h,--help", help);
  for (auto* sub : parser.get_subcommands({})) add_help_flags(*sub, help);
}

int print(const std::string& text, int code) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mamori::cli;
  GlobalOptions global;
  bool help = false, version = false;

  CLI::App cli("mamori");
  cli.set_help_flag();
  cli.require_subcommand(0, 1);
  cli.fallthrough();  // global options anywhere: `mamori bans list --json`
  cli.add_flag("-h,--help", help);
  cli.add_flag("--version", version);
  cli.add_option("-c,--config", global.config_path);
  cli.add_flag("--json", global.json);
  cli.add_flag("-q,--quiet", global.quiet);
  cli.add_flag("--nice", global.nice);
  cli.add_option("-j,--jobs", global.jobs)->check(CLI::Range(1, 1024));

  std::vector<Bound> bound;
  for (const auto& c : commands()) {
    auto* parser = cli.add_subcommand(std::string(c.name));
    Run run = c.setup(*parser);
    add_help_flags(*parser, help);
    bound.push_back({&c, parser, std::move(run)});
  }
  const auto chosen = [&]() -> const Bound* {
    for (const auto& b : bound)
      if (b.parser->parsed()) return &b;
    return nullptr;
  };

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const Bound* b = chosen();
    std::fprintf(stderr, "mamori: %s\nTry 'mamori %s--help'.\n", e.what(),
                 b ? (std::string(b->command->name) + " ").c_str() : "");
    return kExitUsage;
  }
  const Bound* b = chosen();
  if (help) return print(help_text(b ? b->command->name : ""), kExitOk);
  if (version) return print("mamori " MAMORI_VERSION "\n", kExitOk);
  if (!b) return print(overview_text(), kExitUsage);

  App app(global);
  if (b->command->needs_config)
    if (auto code = app.load()) return *code;
  return b->run(app);
}
