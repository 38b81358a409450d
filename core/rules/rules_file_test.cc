#include "core/rules/rules_file.h"

#include <gtest/gtest.h>

#include <string>

#include "testing/temp_dir.h"

namespace mamori::rules {
namespace {

const std::string kDefaults = std::string(MAMORI_SOURCE_DIR) + "/etc/rules/default.rules";

config::LoadError error_of(std::string_view text, RuleSet base = {}) {
  auto set = parse_rules(text, "r.rules", std::move(base));
  EXPECT_FALSE(set) << "expected an error for: " << text;
  return set ? config::LoadError{} : set.error();
}

RuleSet parsed(std::string_view text, RuleSet base = {}) {
  auto set = parse_rules(text, "r.rules", std::move(base));
  EXPECT_TRUE(set) << set.error().text();
  return set ? *set : RuleSet{};
}

constexpr std::string_view kTwoRules = R"([[rule]]
id = "env-file"
pattern = '/\.env\b'
action = "ban"
severity = "critical"
tags = ["sensitive-file"]

[[rule]]
id = "login-flood"
kind = "threshold"
pattern = '^/wp-login\.php'
method = ["POST"]
status = ["2xx", 302]
count = 10
window_s = 60
action = "log"
)";

TEST(RulesFile, ParsesSignaturesAndThresholds) {
  const RuleSet set = parsed(kTwoRules);
  ASSERT_EQ(set.rules.size(), 2u);
  const Rule& env = set.rules[0];
  EXPECT_EQ(env.id, "env-file");
  EXPECT_EQ(env.kind, Kind::kSignature);
  EXPECT_EQ(env.action, Action::kBan);
  EXPECT_EQ(env.severity, 7);
  EXPECT_EQ(env.fields, std::vector<Field>{Field::kTarget});
  EXPECT_FALSE(env.case_sensitive);
  EXPECT_EQ(env.file, "r.rules");
  EXPECT_EQ(env.line, 1u);
  EXPECT_EQ(env.pattern_line, 3u);
  const Rule& login = set.rules[1];
  EXPECT_EQ(login.kind, Kind::kThreshold);
  EXPECT_EQ(login.count, 10u);
  EXPECT_EQ(login.window_s, 60u);
  EXPECT_EQ(login.status, (std::vector<StatusRange>{{200, 299}, {302, 302}}));
  EXPECT_TRUE(login.method_allowed("POST"));
  EXPECT_FALSE(login.method_allowed("GET"));
  EXPECT_TRUE(login.status_allowed(204));
  EXPECT_FALSE(login.status_allowed(404));
  EXPECT_EQ(set.find("login-flood"), 1);
  EXPECT_EQ(set.find("nope"), -1);
}

TEST(RulesFile, TheShippedDefaultsLoad) {
  auto set = load_rules({kDefaults});
  ASSERT_TRUE(set) << set.error().text();
  EXPECT_GT(set->rules.size(), 40u);
  for (const Rule& r : set->rules) {
    EXPECT_FALSE(r.description.empty()) << r.id;
    EXPECT_FALSE(r.tags.empty()) << r.id;
  }
}

TEST(RulesFile, ErrorsNameLineColumnAndCode) {
  auto e = error_of("[[rule]]\nid = \"x\"\npatern = 'a'\naction = \"ban\"\n");
  EXPECT_EQ(e.code, "rules.unknown_key");
  EXPECT_EQ(e.line, 3u);
  EXPECT_EQ(e.column, 1u);
  EXPECT_EQ(e.key, "rule[1].patern");
  EXPECT_NE(e.message.find("did you mean 'pattern'"), std::string::npos);
  EXPECT_EQ(e.text().rfind("r.rules:3:1: rule[1].patern: unknown key", 0), 0u) << e.text();
  EXPECT_NE(e.text().find("[rules.unknown_key]"), std::string::npos);

  e = error_of("[[rule]]\nid = \"x\"\npattern = \"unterminated\n");
  EXPECT_EQ(e.code, "rules.syntax");
  EXPECT_EQ(e.line, 3u);

  EXPECT_EQ(error_of("colour = 1\n").code, "rules.unknown_key");
  EXPECT_EQ(error_of("rule = 1\n").code, "rules.type");
  EXPECT_EQ(error_of("rule = [1]\n").code, "rules.type");
  EXPECT_EQ(error_of("[[rule]]\nid = 5\n").code, "rules.type");
  EXPECT_EQ(error_of("[[rule]]\nid = \"a\"\npattern = 'x'\naction = \"ban\"\nenabled = 1\n").code,
            "rules.type");
  EXPECT_EQ(error_of("[[rule]]\nid = \"a\"\npattern = 'x'\naction = \"ban\"\nmethod = [1]\n").code,
            "rules.type");
}

TEST(RulesFile, MissingKeys) {
  auto e = error_of("[[rule]]\npattern = 'x'\naction = \"ban\"\n");
  EXPECT_EQ(e.code, "rules.missing");
  EXPECT_EQ(e.key, "rule[1].id");
  EXPECT_EQ(e.line, 1u);
  e = error_of("\n[[rule]]\nid = \"a\"\npattern = 'x'\n");
  EXPECT_EQ(e.code, "rules.missing");
  EXPECT_EQ(e.key, "a.action");
  EXPECT_EQ(e.line, 2u);
  EXPECT_EQ(error_of("[[rule]]\nid = \"a\"\naction = \"ban\"\n").key, "a.pattern");
  e = error_of("[[rule]]\nid = \"a\"\nkind = \"threshold\"\naction = \"ban\"\ncount = 5\n");
  EXPECT_EQ(e.code, "rules.missing");
  EXPECT_EQ(e.key, "a.window_s");
}

TEST(RulesFile, BadValues) {
  auto value_error = [](std::string_view line) {
    const std::string text =
        "[[rule]]\nid = \"a\"\npattern = 'x'\naction = \"ban\"\n" + std::string(line) + "\n";
    const config::LoadError e = error_of(text);
    EXPECT_EQ(e.line, 5u) << line;
    return e.code;
  };
  EXPECT_EQ(value_error("kind = \"sometimes\""), "rules.value");
  EXPECT_EQ(value_error("field = \"cookie\""), "rules.value");
  EXPECT_EQ(value_error("field = []"), "rules.value");
  EXPECT_EQ(value_error("method = [\"post\"]"), "rules.value");
  EXPECT_EQ(value_error("status = [\"4x\"]"), "rules.value");
  EXPECT_EQ(value_error("status = [700]"), "rules.value");
  EXPECT_EQ(value_error("severity = 11"), "rules.value");
  EXPECT_EQ(value_error("severity = \"loud\""), "rules.value");
  EXPECT_EQ(value_error("count = 5"), "rules.value");  // not on a signature
  EXPECT_EQ(value_error("tags = [\"has space\"]"), "rules.value");
  EXPECT_EQ(error_of("[[rule]]\nid = \"a b\"\npattern = 'x'\naction = \"ban\"\n").code,
            "rules.value");
  EXPECT_EQ(error_of("[[rule]]\nid = \"a\"\npattern = 'x'\naction = \"block\"\n").code,
            "rules.value");
  EXPECT_EQ(error_of("[[rule]]\nid = \"a\"\npattern = ''\naction = \"ban\"\n").code, "rules.value");
  EXPECT_EQ(error_of("[[rule]]\nid = \"a\"\npattern = \"x\\u0000\"\naction = \"ban\"\n").code,
            "rules.value");
  EXPECT_EQ(error_of("[[rule]]\nid = \"a\"\nkind = \"threshold\"\ncount = 0\nwindow_s = 5\n"
                     "action = \"ban\"\n")
                .code,
            "rules.value");
  EXPECT_EQ(error_of("[[rule]]\nid = \"a\"\nkind = \"threshold\"\nfield = \"referer\"\n"
                     "count = 1\nwindow_s = 5\naction = \"ban\"\n")
                .code,
            "rules.value");
}

TEST(RulesFile, PatternsVectorscanRefusesNameTheLine) {
  auto e = error_of("[[rule]]\nid = \"bad-regex\"\naction = \"ban\"\npattern = '(union'\n");
  EXPECT_EQ(e.code, "rules.pattern");
  EXPECT_EQ(e.key, "bad-regex.pattern");
  EXPECT_EQ(e.line, 4u);
  EXPECT_EQ(e.column, 11u);
  EXPECT_NE(e.message.find("parenthes"), std::string::npos) << e.message;
  // Back-references and look-behind are PCRE, not Vectorscan.
  EXPECT_EQ(error_of("[[rule]]\nid = \"a\"\naction = \"ban\"\npattern = '(a)\\1'\n").code,
            "rules.pattern");
  EXPECT_EQ(error_of("[[rule]]\nid = \"a\"\naction = \"ban\"\npattern = '(?<=a)b'\n").code,
            "rules.pattern");
  e = error_of("[[rule]]\nid = \"a\"\naction = \"ban\"\npattern = 'x*'\n");
  EXPECT_EQ(e.code, "rules.pattern");
  EXPECT_NE(e.message.find("empty string"), std::string::npos);
}

TEST(RulesFile, DuplicateIds) {
  auto e = error_of(
      "[[rule]]\nid = \"a\"\npattern = 'x'\naction = \"ban\"\n"
      "[[rule]]\nid = \"a\"\npattern = 'y'\naction = \"ban\"\n");
  EXPECT_EQ(e.code, "rules.duplicate_id");
  EXPECT_EQ(e.line, 6u);
  EXPECT_NE(e.message.find("r.rules:1"), std::string::npos) << e.message;
  // Across files the message says how to change a rule instead.
  const RuleSet base = parsed(kTwoRules);
  auto later = parse_rules("[[rule]]\nid = \"env-file\"\npattern = 'y'\naction = \"log\"\n",
                           "local.rules", base);
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error().code, "rules.duplicate_id");
  EXPECT_EQ(later.error().file, "local.rules");
  EXPECT_NE(later.error().message.find("[[override]]"), std::string::npos);
}

TEST(RulesFile, OverridesDisableAndChangeAction) {
  const RuleSet set = parsed(R"(
[[override]]
id = "env-file"
action = "log"
severity = 3

[[override]]
id = "login-flood"
enabled = false
count = 20
window_s = 120
)",
                             parsed(kTwoRules));
  ASSERT_EQ(set.rules.size(), 2u);
  EXPECT_EQ(set.rules[0].action, Action::kLog);
  EXPECT_EQ(set.rules[0].severity, 3);
  EXPECT_TRUE(set.rules[0].enabled);
  EXPECT_FALSE(set.rules[1].enabled);
  EXPECT_EQ(set.rules[1].count, 20u);
  EXPECT_EQ(set.rules[1].window_s, 120u);
  EXPECT_EQ(set.enabled_count(), 1u);
}

TEST(RulesFile, OverrideErrors) {
  auto e = error_of("[[override]]\nid = \"nope\"\nenabled = false\n", parsed(kTwoRules));
  EXPECT_EQ(e.code, "rules.unknown_rule");
  EXPECT_EQ(e.line, 2u);
  e = error_of("[[override]]\nid = \"env-file\"\npattern = 'x'\n", parsed(kTwoRules));
  EXPECT_EQ(e.code, "rules.unknown_key");
  EXPECT_EQ(e.key, "override[1].pattern");
  e = error_of("[[override]]\nid = \"env-file\"\ncount = 3\n", parsed(kTwoRules));
  EXPECT_EQ(e.code, "rules.value");
  EXPECT_EQ(e.key, "env-file.count");
  EXPECT_EQ(error_of("[[override]]\nenabled = false\n").code, "rules.missing");
  // An override may follow its rule in the same file.
  const RuleSet one = parsed(
      "[[override]]\nid = \"a\"\nenabled = false\n"
      "[[rule]]\nid = \"a\"\npattern = 'x'\naction = \"ban\"\n");
  EXPECT_FALSE(one.rules[0].enabled);
}

TEST(RulesFile, Limits) {
  EXPECT_EQ(error_of(std::string(kMaxFileBytes + 1, '#')).code, "rules.limit");
  auto e = error_of("[[rule]]\nid = \"a\"\naction = \"ban\"\npattern = '" +
                    std::string(kMaxPatternBytes + 1, 'a') + "'\n");
  EXPECT_EQ(e.code, "rules.limit");
  EXPECT_EQ(e.line, 4u);
  std::string many;
  for (size_t i = 0; i <= kMaxRules; ++i)
    many += "[[rule]]\nid = \"r" + std::to_string(i) + "\"\nstatus = 404\naction = \"log\"\n";
  e = error_of(many);
  EXPECT_EQ(e.code, "rules.limit");
  EXPECT_EQ(e.line, kMaxRules * 4 + 1);
  EXPECT_EQ(error_of("[[rule]]\nid = \"" + std::string(65, 'a') + "\"\n").code, "rules.limit");
}

TEST(RulesFile, LoadsFilesInOrderAndReportsUnreadableOnes) {
  testing::TempDir dir;
  dir.mkdir("rules.d");
  dir.write("base.rules", std::string(kTwoRules));
  dir.write("rules.d/20-later.rules", "[[override]]\nid = \"env-file\"\naction = \"log\"\n");
  dir.write("rules.d/10-first.rules", "[[override]]\nid = \"env-file\"\nseverity = 1\n");
  dir.write("rules.d/README", "not rules");
  dir.write("rules.d/.hidden.rules", "garbage");
  auto files = rule_files_in(dir / "rules.d");
  ASSERT_TRUE(files) << files.error().message();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0], dir / "rules.d/10-first.rules");
  files->insert(files->begin(), dir / "base.rules");
  auto set = load_rules(*files);
  ASSERT_TRUE(set) << set.error().text();
  EXPECT_EQ(set->rules[0].action, Action::kLog);
  EXPECT_EQ(set->rules[0].severity, 1);

  auto none = rule_files_in(dir / "missing.d");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  auto missing = load_rules({dir / "base.rules", dir / "nope.rules"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "rules.io");
  EXPECT_EQ(missing.error().file, dir / "nope.rules");
  EXPECT_NE(missing.error().to_error().message().find("nope.rules"), std::string::npos);

  dir.write("big.rules", std::string(kMaxFileBytes + 1, '#'));
  EXPECT_EQ(load_rules({dir / "big.rules"}).error().code, "rules.limit");

  dir.write("bad.rules", "[[rule]]\nid = \"x\"\naction = \"ban\"\npattern = '[a'\n");
  auto bad = load_rules({dir / "base.rules", dir / "bad.rules"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().text().rfind(dir / "bad.rules:4:11: x.pattern: ", 0), 0u)
      << bad.error().text();
}

}  // namespace
}  // namespace mamori::rules
