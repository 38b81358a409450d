#include "packaging/gen/completion.h"

#include <gtest/gtest.h>

#include "cli/help.h"

namespace mamori::packaging {
namespace {

TEST(Completion, GlobalOptionsComeFromTheOverview) {
  const auto g = global_options_from_help(cli::overview_text());
  for (const char* o :
       {"-c", "--config", "--json", "-q", "--quiet", "-j", "--jobs", "--nice", "--version"})
    EXPECT_NE(std::find(g.options.begin(), g.options.end(), o), g.options.end()) << o;
  EXPECT_EQ(g.valued, (std::vector<std::string>{"-c", "--config", "-j", "--jobs"}));
}

TEST(Completion, EachLevelIsACase) {
  CompletionLevel top{"", {"bans"}, {"--help"}, {}};
  CompletionLevel bans_add{"bans add", {}, {"--ttl", "--force"}, {"--ttl"}};
  const std::string script = bash_completion({"", {}, {"--json"}, {}}, {top, bans_add});
  EXPECT_NE(
      script.find("    'bans add')\n      _mamori_subs=''\n      _mamori_opts='--ttl --force'\n"
                  "      _mamori_valued='--ttl' ;;\n"),
      std::string::npos)
      << script;
  EXPECT_NE(script.find("complete -F _mamori mamori\n"), std::string::npos);
}

}  // namespace
}  // namespace mamori::packaging
