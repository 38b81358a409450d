#include "packaging/gen/roff.h"

#include <string>

#include <gtest/gtest.h>

#include "cli/commands/command.h"
#include "cli/help.h"

namespace mamori::packaging {
namespace {

const ManPage kPage{"MAMORI-X", "8", "2026-12-07", "mamori 0.1.0", "System Administration"};

TEST(Roff, EscapesWhatRoffWouldRead) {
  EXPECT_EQ(roff_escape("--full"), "\\-\\-full");
  EXPECT_EQ(roff_escape("a\\b"), "a\\eb");
  EXPECT_EQ(roff_escape(".env"), "\\&.env");
  EXPECT_EQ(roff_escape("'x'"), "\\&'x'");
  EXPECT_EQ(roff_escape("a.b"), "a.b");
}

TEST(Roff, SectionsProseListsAndSamples) {
  const std::string help = R"(NAME
    mamori x - do a thing

SYNOPSIS
    mamori x [--full] PATH
             [--more]

DESCRIPTION
    First line of prose
    continued here.

    list   the first item,
           continued
    add    the second
    logs test [--format SPEC] FILE
                          a term alone, its description below
    Start-up:
      listen      nested item
                  continued
    After the nested list.

        PATH: SAMPLE
          indented

OPTIONS
    --full   re-hash
    --x N    with a sample:
                 a b
             and on
)";
  const std::string roff = help_to_roff(help, kPage);
  EXPECT_NE(
      roff.find(
          ".TH \"MAMORI\\-X\" 8 \"2026\\-12\\-07\" \"mamori 0.1.0\" \"System Administration\"\n"),
      std::string::npos)
      << roff;
  EXPECT_NE(roff.find(".SH \"NAME\"\nmamori\\-x \\- do a thing\n"), std::string::npos) << roff;
  EXPECT_NE(
      roff.find(".SH \"SYNOPSIS\"\n.nf\nmamori x [\\-\\-full] PATH\n         [\\-\\-more]\n.fi\n"),
      std::string::npos)
      << roff;
  EXPECT_NE(roff.find(".PP\nFirst line of prose\ncontinued here.\n"), std::string::npos) << roff;
  EXPECT_NE(
      roff.find(".TP\n\\fBlist\\fR\nthe first item,\ncontinued\n.TP\n\\fBadd\\fR\nthe second\n"),
      std::string::npos)
      << roff;
  EXPECT_NE(
      roff.find(
          ".TP\n\\fBlogs test [\\-\\-format SPEC] FILE\\fR\na term alone, its description below\n"),
      std::string::npos)
      << roff;
  EXPECT_NE(
      roff.find(
          ".PP\nStart\\-up:\n.RS\n.TP\n\\fBlisten\\fR\nnested item\ncontinued\n.RE\n.PP\nAfter the "
          "nested list.\n"),
      std::string::npos)
      << roff;
  EXPECT_NE(roff.find(".PP\n.RS\n.nf\nPATH: SAMPLE\n  indented\n.fi\n.RE\n"), std::string::npos)
      << roff;
  EXPECT_NE(roff.find(".TP\n\\fB\\-\\-x N\\fR\nwith a sample:\n.nf\n    a b\n.fi\nand on\n"),
            std::string::npos)
      << roff;
}

TEST(Roff, SeeAlsoComesLast) {
  const std::string roff = help_to_roff("NAME\n    a - b\n", kPage, ".BR mamori (8)\n");
  EXPECT_TRUE(roff.ends_with(".SH \"SEE ALSO\"\n.BR mamori (8)\n")) << roff;
}

// The real pages: every command is an item of the overview's COMMANDS section, and
// every page has its sections and a whatis line man-db can index.
TEST(Roff, TheOverviewPageListsEveryCommand) {
  const std::string roff = help_to_roff(cli::overview_text(), kPage);
  const size_t begin = roff.find("\n.SH \"COMMANDS\"\n");
  ASSERT_NE(begin, std::string::npos) << roff;
  const std::string section = roff.substr(begin, roff.find("\n.SH ", begin + 1) - begin);
  for (const auto& c : cli::commands())
    EXPECT_NE(section.find("\n.TP\n\\fB" + roff_escape(c.synopsis) + "\\fR\n"), std::string::npos)
        << c.name << " is not an item of COMMANDS:\n"
        << section;
  EXPECT_NE(roff.find(".SH \"NAME\"\nmamori \\- keep web sites standing"), std::string::npos);
  EXPECT_NE(roff.find(".SH \"EXIT STATUS\"\n"), std::string::npos);
}

TEST(Roff, EveryCommandPageHasItsWhatisLine) {
  for (const auto& c : cli::commands()) {
    const std::string roff = help_to_roff(cli::help_text(c.name), kPage);
    std::string name = "mamori\\-" + roff_escape(c.name);
    EXPECT_NE(roff.find(".SH \"NAME\"\n" + name), std::string::npos) << roff.substr(0, 400);
    EXPECT_NE(roff.find(".SH \"SYNOPSIS\"\n.nf\n"), std::string::npos) << c.name;
  }
}

}  // namespace
}  // namespace mamori::packaging
