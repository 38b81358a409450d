#include <set>
#include <string>

#include <gtest/gtest.h>
#include <CLI/CLI.hpp>

#include "cli/commands/command.h"
#include "cli/help.h"

namespace mamori::cli {
namespace {

size_t widest_line(std::string_view text) {
  size_t widest = 0;
  for (size_t start = 0; start < text.size();) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    widest = std::max(widest, nl - start);
    start = nl + 1;
  }
  return widest;
}

TEST(CommandTable, EveryCommandHasAPageOfItsOwn) {
  std::set<std::string_view> names;
  for (const auto& c : commands()) {
    SCOPED_TRACE(std::string(c.name));
    EXPECT_TRUE(names.insert(c.name).second) << "listed twice";
    EXPECT_TRUE(c.synopsis.starts_with(c.name));
    EXPECT_FALSE(c.summary.empty());
    EXPECT_TRUE(c.setup);
    EXPECT_EQ(find_command(c.name), &c);
    const std::string page = help_text(c.name);
    EXPECT_TRUE(page.starts_with("NAME\n    mamori " + std::string(c.name))) << page;
    for (const char* section : {"\nSYNOPSIS\n", "\nEXIT STATUS\n"})
      EXPECT_NE(page.find(section), std::string::npos) << section;
    EXPECT_LE(widest_line(page), 90u) << "no line runs on past the text's column";
  }
  EXPECT_EQ(find_command("nope"), nullptr);
  EXPECT_EQ(help_text("nope"), "");
}

TEST(CommandTable, TheOverviewListsEveryCommandOnce) {
  const std::string overview = overview_text();
  EXPECT_TRUE(overview.starts_with("NAME\n    mamori - "));
  const size_t begin = overview.find("\nCOMMANDS\n");
  const size_t end = overview.find("Run 'mamori COMMAND --help'");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  const std::string section = overview.substr(begin, end - begin);
  for (const auto& c : commands()) {
    // Followed by its summary, or by a line break when the summary starts below it.
    const std::string line = "\n    " + std::string(c.synopsis);
    EXPECT_TRUE(section.find(line + " ") != std::string::npos ||
                section.find(line + "\n") != std::string::npos)
        << c.name;
  }
  EXPECT_LE(widest_line(overview), 90u);
  // The summaries line up in one column, continuation lines too.
  EXPECT_NE(overview.find("\n    init [PATH...]            record the baseline"), std::string::npos)
      << overview;
  EXPECT_NE(overview.find("\n                              (--quarantine-new: web shells"),
            std::string::npos)
      << overview;
}

// Sets every command up on one parser, as main.cc does, and parses `args`.
struct Parsed {
  CLI::App cli{"mamori"};
  std::vector<Run> runs;
  Parsed() {
    cli.fallthrough();
    cli.require_subcommand(0, 1);
    cli.add_flag("--json");
    for (const auto& c : commands())
      runs.push_back(c.setup(*cli.add_subcommand(std::string(c.name))));
  }
  bool parse(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    try {
      cli.parse(args);
      return true;
    } catch (const CLI::ParseError&) {
      return false;
    }
  }
};

TEST(CommandTable, ActionsAreSubcommandsWithTheirOwnOptions) {
  EXPECT_TRUE(Parsed().parse({"bans", "add", "192.0.2.7", "--ttl", "600", "--reason", "x"}));
  EXPECT_TRUE(Parsed().parse({"bans", "list", "--json"}));  // global options anywhere
  EXPECT_TRUE(Parsed().parse({"evidence", "export", "7", "-o", "out"}));
  EXPECT_TRUE(Parsed().parse({"logs", "test", "--rules", "a", "--rules", "b", "access.log"}));
  EXPECT_FALSE(Parsed().parse({"bans", "list", "--ttl", "5"})) << "--ttl belongs to add";
  EXPECT_FALSE(Parsed().parse({"evidence", "show", "1", "--limit", "2"}));
  EXPECT_FALSE(Parsed().parse({"bans", "frob"}));
}

}  // namespace
}  // namespace mamori::cli
