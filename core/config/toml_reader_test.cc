#include "core/config/toml_reader.h"

#include <gtest/gtest.h>

#include <string>

#include "testing/temp_dir.h"

namespace mamori::config {
namespace {

// A reader over `text` in domain "test", parsed (the test fails when it does not parse).
struct Doc {
  explicit Doc(std::string_view text) : reader("test", "t.toml") {
    EXPECT_TRUE(reader.parse(text, 1 << 20)) << reader.error().text();
  }
  TomlTable top() { return reader.top(); }
  const LoadError& error() const { return reader.error(); }
  TomlReader reader;
};

TEST(TomlReader, SyntaxErrorsAndOversizedTextHaveCodesAndPlaces) {
  TomlReader bad("test", "t.toml");
  EXPECT_FALSE(bad.parse("a = 1\nb = = 2\n", 1024));
  EXPECT_EQ(bad.error().code, "test.syntax");
  EXPECT_EQ(bad.error().file, "t.toml");
  EXPECT_EQ(bad.error().line, 2u);
  EXPECT_GE(bad.error().column, 1u);

  TomlReader big("test", "t.toml");
  EXPECT_FALSE(big.parse(std::string(2 << 20, '#'), 1 << 20));
  EXPECT_EQ(big.error().code, "test.limit");
  EXPECT_EQ(big.error().line, 0u);
  EXPECT_EQ(big.error().message, "larger than 1 MiB");
}

TEST(TomlReader, UnknownKeysAreRefusedWithTheClosestSuggestion) {
  Doc d("[agent]\nsocket = \"/s\"\nsokcet = \"/t\"\n");
  std::optional<TomlTable> agent;
  ASSERT_TRUE(d.top().table("agent", agent));
  ASSERT_TRUE(agent);
  EXPECT_FALSE(agent->only_keys({"socket", "sockets_max"}));
  EXPECT_EQ(d.error().code, "test.unknown_key");
  EXPECT_EQ(d.error().key, "agent.sokcet");
  EXPECT_EQ(d.error().line, 3u);
  EXPECT_EQ(d.error().column, 1u);
  EXPECT_EQ(d.error().message, "unknown key 'sokcet' (did you mean 'socket'?)");

  Doc far("colour = 1\n");
  EXPECT_FALSE(far.top().only_keys({"state_dir"}));
  EXPECT_EQ(far.error().message, "unknown key 'colour'");  // no far-fetched guess

  const std::string_view allowed[] = {"mode", "node", "modes"};
  EXPECT_EQ(closest_key("mdoe", allowed), "mode");  // two edits; the first of equals wins
  EXPECT_EQ(closest_key("modes", allowed), "modes");
  EXPECT_EQ(closest_key("xyzzy", allowed), "");
}

TEST(TomlReader, OptionalValuesKeepDefaultsAndNameWrongTypes) {
  Doc d("s = \"x\"\nb = true\nn = \"four\"\n");
  TomlTable top = d.top();
  std::string s = "default", absent = "default";
  bool b = false;
  ASSERT_TRUE(top.optional("s", s));
  ASSERT_TRUE(top.optional("absent", absent));
  ASSERT_TRUE(top.optional("b", b));
  EXPECT_EQ(s, "x");
  EXPECT_EQ(absent, "default");
  EXPECT_TRUE(b);
  unsigned n = 4;
  EXPECT_FALSE(top.optional("n", n, 0u, 10u));
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(d.error().code, "test.type");
  EXPECT_EQ(d.error().key, "n");
  EXPECT_EQ(d.error().line, 3u);
  EXPECT_EQ(d.error().message, "must be an integer, not a string");
}

TEST(TomlReader, IntegersAreCheckedAgainstTheirRange) {
  Doc d("[t]\nlevel = -7\nbig = 4294967296\n");
  std::optional<TomlTable> t;
  ASSERT_TRUE(d.top().table("t", t));
  int level = 0;
  ASSERT_TRUE(t->optional("level", level, -7, 19));
  EXPECT_EQ(level, -7);
  uint64_t quota = 0;
  uint32_t narrow = 1;
  {
    Doc ok("big = 4294967296\n");
    ASSERT_TRUE(ok.top().optional("big", quota, 1u, UINT64_MAX));  // bound past INT64_MAX
    EXPECT_EQ(quota, 4294967296u);
  }
  EXPECT_FALSE(t->optional("big", narrow, 0u, UINT32_MAX));
  EXPECT_EQ(narrow, 1u);  // never truncated into range
  EXPECT_EQ(d.error().code, "test.value");
  EXPECT_EQ(d.error().key, "t.big");
  EXPECT_EQ(d.error().message, "must be between 0 and 4294967295");
}

TEST(TomlReader, ListsOfStrings) {
  Doc d("a = [\"x\", \"y\"]\nlone = \"POST\"\nmixed = [\"x\", 1]\nmany = [\"1\", \"2\", \"3\"]\n");
  TomlTable top = d.top();
  std::vector<std::string> a, lone;
  ASSERT_TRUE(top.optional("a", a));
  EXPECT_EQ(a, (std::vector<std::string>{"x", "y"}));
  ASSERT_TRUE(top.optional("lone", lone, {.lone_string = true}));
  EXPECT_EQ(lone, std::vector<std::string>{"POST"});

  Doc refuse_lone("lone = \"POST\"\n");
  EXPECT_FALSE(refuse_lone.top().optional("lone", lone));
  EXPECT_EQ(refuse_lone.error().code, "test.type");
  EXPECT_EQ(refuse_lone.error().message, "must be an array of strings, not a string");

  Doc mixed("\nmixed = [\"x\",\n  1]\n");
  EXPECT_FALSE(mixed.top().optional("mixed", a));
  EXPECT_EQ(mixed.error().line, 3u);  // the item, not the key
  EXPECT_EQ(mixed.error().key, "mixed");

  Doc many("many = [\"1\", \"2\", \"3\"]\n");
  EXPECT_FALSE(many.top().optional("many", a, {.max_items = 2}));
  EXPECT_EQ(many.error().code, "test.limit");
  EXPECT_EQ(many.error().message, "more than 2 items");
}

TEST(TomlReader, StringLimits) {
  Doc d("s = \"abcdef\"\n");
  std::string s;
  EXPECT_FALSE(d.top().optional("s", s, 5));
  EXPECT_EQ(d.error().code, "test.limit");
  EXPECT_EQ(d.error().message, "longer than 5 bytes");
  EXPECT_TRUE(s.empty());
}

enum class Colour { kRed, kGreen, kBlue };

TEST(TomlReader, ChoicesNameTheAlternatives) {
  Doc d("c = \"green\"\nformat = \"slack\"\n");
  Colour c = Colour::kRed;
  std::string format = "json";
  ASSERT_TRUE(d.top().choice(
      "c", c, {{"red", Colour::kRed}, {"green", Colour::kGreen}, {"blue", Colour::kBlue}}));
  EXPECT_EQ(c, Colour::kGreen);
  ASSERT_TRUE(d.top().one_of("format", format, {"json", "slack"}));
  EXPECT_EQ(format, "slack");

  Doc bad("c = \"mauve\"\n");
  EXPECT_FALSE(bad.top().choice("c", c, {{"red", Colour::kRed}, {"blue", Colour::kBlue}}));
  EXPECT_EQ(bad.error().code, "test.value");
  EXPECT_EQ(bad.error().message, "must be \"red\" or \"blue\", not 'mauve'");
  Doc three("f = \"xml\"\n");
  EXPECT_FALSE(three.top().one_of("f", format, {"json", "slack", "text"}));
  EXPECT_EQ(three.error().message, "must be \"json\", \"slack\" or \"text\", not 'xml'");
  Doc type("f = 3\n");
  EXPECT_FALSE(type.top().one_of("f", format, {"json"}));
  EXPECT_EQ(type.error().code, "test.type");
}

TEST(TomlReader, NumberOrName) {
  const TomlTable::Choices<int> names = {{"info", 1}, {"critical", 7}};
  Doc d("a = 3\nb = \"critical\"\n");
  TomlTable top = d.top();
  int a = 0, b = 0, x = 0;
  ASSERT_TRUE(top.number_or_name("a", a, 1, 10, names));
  ASSERT_TRUE(top.number_or_name("b", b, 1, 10, names));
  EXPECT_EQ(a, 3);
  EXPECT_EQ(b, 7);
  Doc c("c = 11\n");
  EXPECT_FALSE(c.top().number_or_name("c", x, 1, 10, names));
  EXPECT_EQ(c.error().code, "test.value");
  EXPECT_EQ(c.error().message, "must be \"info\", \"critical\" or a number 1-10");
  Doc loud("d = \"loud\"\n");
  EXPECT_FALSE(loud.top().number_or_name("d", x, 1, 10, names));
  EXPECT_EQ(loud.error().code, "test.value");
  Doc e("e = 1.5\n");
  EXPECT_FALSE(e.top().number_or_name("e", x, 1, 10, names));
  EXPECT_EQ(e.error().code, "test.type");
  EXPECT_EQ(x, 0);
}

TEST(TomlReader, RequiredValuesAreMissingAtTheirTable) {
  Doc d("\n[[root]]\nmode = \"alert\"\n");
  std::vector<TomlTable> roots;
  ASSERT_TRUE(d.top().tables("root", roots));
  ASSERT_EQ(roots.size(), 1u);
  std::string path;
  EXPECT_FALSE(roots[0].required("path", "every [[root]] needs a path", path));
  EXPECT_EQ(d.error().code, "test.missing");
  EXPECT_EQ(d.error().key, "root[1].path");
  EXPECT_EQ(d.error().line, 2u);
  EXPECT_EQ(d.error().message, "every [[root]] needs a path");
}

TEST(TomlReader, TablesAndArraysOfTables) {
  Doc d("[[root]]\npath = \"/a\"\n[[root]]\npath = \"/b\"\n[agent.inner]\nx = 1\n");
  std::vector<TomlTable> roots;
  ASSERT_TRUE(d.top().tables("root", roots));
  ASSERT_EQ(roots.size(), 2u);
  EXPECT_EQ(roots[1].path(), "root[2]");
  EXPECT_EQ(roots[1].key("path"), "root[2].path");
  std::optional<TomlTable> agent, inner, none;
  ASSERT_TRUE(d.top().table("agent", agent));
  ASSERT_TRUE(agent->table("inner", inner));
  EXPECT_EQ(inner->key("x"), "agent.inner.x");
  ASSERT_TRUE(d.top().table("absent", none));
  EXPECT_FALSE(none);

  Doc scalar("root = 1\n");
  EXPECT_FALSE(scalar.top().tables("root", roots));
  EXPECT_EQ(scalar.error().code, "test.type");
  EXPECT_EQ(scalar.error().message, "must be an array of tables: [[root]]");
  Doc items("root = [{path = \"/a\"}, 2]\n");
  EXPECT_FALSE(items.top().tables("root", roots));
  EXPECT_EQ(items.error().key, "root[2]");
  Doc many("[[root]]\n[[root]]\n[[root]]\n");
  EXPECT_FALSE(many.top().tables("root", roots, 2));
  EXPECT_EQ(many.error().code, "test.limit");
  Doc not_table("agent = 1\n");
  EXPECT_FALSE(not_table.top().table("agent", agent));
  EXPECT_EQ(not_table.error().message, "must be a table: [agent]");
}

TEST(TomlReader, TheFirstErrorSticks) {
  Doc d("a = \"x\"\nb = 2\n");
  TomlTable top = d.top();
  int a = 0, b = 0;
  EXPECT_FALSE(top.optional("a", a, 0, 9));
  const LoadError first = d.error();
  EXPECT_FALSE(top.optional("b", b, 0, 1));  // would fail too; does not replace the first
  EXPECT_FALSE(top.optional("b", b, 0, 9));  // would succeed; still refused, untouched
  EXPECT_EQ(b, 0);
  EXPECT_FALSE(top.fail("b", "value", "another"));
  EXPECT_EQ(d.error().key, first.key);
  EXPECT_EQ(d.error().line, 1u);
  EXPECT_FALSE(d.reader.unexpected().value().key.empty());
}

TEST(LoadError, TextNamesThePlaceKeyAndCodeEscaped) {
  const LoadError e{"m.toml", 4, 1, "config.unknown_key", "root[1].\x1b[2J", "unknown key"};
  EXPECT_EQ(e.text(), "m.toml:4:1: root[1].\\x1b[2J: unknown key [config.unknown_key]");
  const LoadError io{"/etc/m\n.toml", 0, 0, "config.io", "", "No such file or directory"};
  EXPECT_EQ(io.text(), "/etc/m\\n.toml: No such file or directory [config.io]");
  EXPECT_EQ(io.to_error().message(),
            "load config: /etc/m\\n.toml: No such file or directory [config.io]");
}

TEST(ReadTomlFile, UnreadableAndOversizedFiles) {
  testing::TempDir dir;
  dir.write("ok.toml", "a = 1\n");
  dir.write("big.toml", std::string(2048, '#'));
  dir.mkdir("dir.toml");
  auto ok = read_toml_file("test", dir / "ok.toml", 1024);
  ASSERT_TRUE(ok) << ok.error().text();
  EXPECT_EQ(*ok, "a = 1\n");
  auto missing = read_toml_file("test", dir / "none.toml", 1024);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "test.io");
  EXPECT_EQ(missing.error().file, dir / "none.toml");
  EXPECT_EQ(missing.error().message, "No such file or directory");
  auto big = read_toml_file("test", dir / "big.toml", 1024);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, "test.limit");
  auto directory = read_toml_file("test", dir / "dir.toml", 1024);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, "test.io");
  EXPECT_EQ(directory.error().message, "not a regular file");
}

}  // namespace
}  // namespace mamori::config
