#include "core/config/config.h"

#include <gtest/gtest.h>

namespace mamori::config {
namespace {

ConfigError error_of(std::string_view text) {
  auto c = parse_config(text, "m.toml");
  EXPECT_FALSE(c) << "expected an error for: " << text;
  return c ? ConfigError{} : c.error();
}

TEST(Config, LoadsTheDocumentedMinimum) {
  auto c = parse_config(R"(
state_dir = "/var/lib/mamori"
[[root]]
path = "/var/www/html/"
mode = "preserve"
exclude = ["wp-content/cache/**"]
)", "m.toml");
  ASSERT_TRUE(c) << c.error().text();
  ASSERT_EQ(c->roots.size(), 1u);
  EXPECT_EQ(c->roots[0].path, "/var/www/html");
  EXPECT_EQ(c->roots[0].mode, Mode::kPreserve);
  EXPECT_EQ(c->roots[0].exclude.size(), 1u);
}

TEST(Config, UnknownKeyNamesLineColumnAndSuggests) {
  const auto e = error_of("state_dir = \"/s\"\n[[root]]\npath = \"/w\"\nmdoe = \"alert\"\n");
  EXPECT_EQ(e.code, "config.unknown_key");
  EXPECT_EQ(e.key, "root[1].mdoe");
  EXPECT_EQ(e.line, 4u);
  EXPECT_EQ(e.column, 1u);
  EXPECT_NE(e.message.find("did you mean 'mode'"), std::string::npos);
  EXPECT_EQ(e.text().rfind("m.toml:4:1: root[1].mdoe: unknown key", 0), 0u);
}

TEST(Config, WrongTypesAndValues) {
  EXPECT_EQ(error_of("state_dir = 5\n").code, "config.type");
  EXPECT_EQ(error_of("state_dir = 5\n").key, "state_dir");
  EXPECT_EQ(error_of("[[root]]\npath = \"/w\"\nmode = \"fix\"\n").code, "config.value");
  EXPECT_EQ(error_of("[[root]]\npath = \"relative\"\n").key, "root[1].path");
  EXPECT_EQ(error_of("[[root]]\nmode = \"alert\"\n").code, "config.missing");
  EXPECT_EQ(error_of("[[root]]\npath = \"/w\"\nexclude = \"*.log\"\n").code, "config.type");
  EXPECT_EQ(error_of("[[root]]\npath = \"/w\"\nexclude = [\"[x\"]\n").code, "config.value");
  EXPECT_EQ(error_of("jobs = -1\n").code, "config.value");
  EXPECT_EQ(error_of("root = 1\n").code, "config.type");
}

TEST(Config, OverlapsBlameTheInnerOrSecondRoot) {
  const auto inner = error_of("[[root]]\npath = \"/w\"\n\n[[root]]\npath = \"/w/sub\"\n");
  EXPECT_EQ(inner.key, "root[2].path");
  EXPECT_EQ(inner.line, 4u);
  const auto twice = error_of("[[root]]\npath = \"/w\"\n[[root]]\npath = \"/w\"\n");
  EXPECT_EQ(twice.key, "root[2].path");
  EXPECT_NE(twice.message.find("listed twice"), std::string::npos);
}

TEST(Config, OverlapsAreRefused) {
  EXPECT_EQ(error_of("[[root]]\npath = \"/w\"\n[[root]]\npath = \"/w/sub\"\n").code, "config.value");
  EXPECT_EQ(error_of("[[root]]\npath = \"/w\"\n[[root]]\npath = \"/w\"\n").code, "config.value");
  EXPECT_EQ(error_of("state_dir = \"/w/state\"\n[[root]]\npath = \"/w\"\n").key, "state_dir");
}

TEST(Config, SyntaxErrorsCarryTheirPlace) {
  const auto e = error_of("state_dir = \"/s\"\n[[root]\n");
  EXPECT_EQ(e.code, "config.syntax");
  EXPECT_EQ(e.line, 2u);
}

TEST(Config, MissingFileIsAnIoError) {
  auto c = load_config("/nonexistent/mamori.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, "config.io");
  EXPECT_NE(c.error().text().find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace mamori::config
