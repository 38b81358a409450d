// mamori-gen-docs: writes, at build time, what the package ships beside the binary and
// makes from the binary's own help text and command table, so neither can drift:
//   OUTDIR/mamori.8, OUTDIR/mamori-COMMAND.8   the manual pages (packaging/gen/roff.h)
//   OUTDIR/mamori.bash-completion              bash completion (packaging/gen/completion.h)
// Usage: mamori-gen-docs OUTDIR VERSION DATE

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/help.h"
#include "packaging/gen/completion.h"
#include "packaging/gen/roff.h"

namespace {

using mamori::packaging::CompletionLevel;

bool write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) std::fprintf(stderr, "mamori-gen-docs: cannot write %s\n", path.c_str());
  return static_cast<bool>(out);
}

// Each level of `parser` (its actions, their actions...) with its options' names.
void collect(const CLI::App& parser, const std::string& path, std::vector<CompletionLevel>& out) {
  CompletionLevel level;
  level.path = path;
  for (const CLI::Option* o : parser.get_options()) {
    if (!o->nonpositional()) continue;
    std::vector<std::string> names;
    for (const auto& s : o->get_snames()) names.push_back("-" + s);
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
    for (const auto& n : names) {
      level.options.push_back(n);
      if (o->get_type_size_max() > 0) level.valued.push_back(n);
    }
  }
  level.options.emplace_back("--help");
  std::vector<const CLI::App*> subs = parser.get_subcommands([](const CLI::App*) { return true; });
  for (const CLI::App* sub : subs) level.subcommands.push_back(sub->get_name());
  out.push_back(level);
  for (const CLI::App* sub : subs)
    collect(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mamori;
  if (argc != 4) {
    std::fprintf(stderr, "usage: mamori-gen-docs OUTDIR VERSION DATE\n");
    return 2;
  }
  const std::string dir = argv[1];
  packaging::ManPage page{"MAMORI", "8", argv[3], std::string("mamori ") + argv[2],
                          "System Administration"};

  std::string see_also;
  for (const auto& c : cli::commands()) {
    see_also += ".BR mamori\\-" + packaging::roff_escape(c.name) + " (8),\n";
  }
  see_also +=
      ".BR systemd.service (5),\n.BR fanotify (7),\n.BR nft (8)\n.PP\n"
      "The systemd units mamori\\-agent.service (the real\\-time guard), "
      "mamori\\-check.service and mamori\\-check.timer (an hourly batch check).\n";
  bool ok = write(dir + "/mamori.8", packaging::help_to_roff(cli::overview_text(), page, see_also));

  CLI::App cli("mamori");
  std::vector<CompletionLevel> levels;
  for (const auto& c : cli::commands()) {
    packaging::ManPage sub = page;
    sub.title = "MAMORI-";
    for (char ch : c.name)
      sub.title += static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
    ok = write(dir + "/mamori-" + std::string(c.name) + ".8",
               packaging::help_to_roff(cli::help_text(c.name), sub, ".BR mamori (8)\n")) &&
         ok;
    CLI::App* parser = cli.add_subcommand(std::string(c.name));
    (void)c.setup(*parser);
  }
  collect(cli, "", levels);
  const auto global = packaging::global_options_from_help(cli::overview_text());
  ok = write(dir + "/mamori.bash-completion", packaging::bash_completion(global, levels)) && ok;
  return ok ? 0 : 1;
}
