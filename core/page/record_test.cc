#include "core/page/record.h"

#include <gtest/gtest.h>

#include "core/base/env.h"
#include "testing/temp_dir.h"

namespace mamori::page {
namespace {

Element el(std::string kind, std::string value, std::string origin) {
  return {std::move(kind), std::move(value), std::move(origin), {}};
}

TEST(PageRecord, NewElementsAreThoseTheBaselineLacks) {
  ActiveContent base, now;
  add_element(base, el("script", "https://a/x.js", "https://a"));
  add_element(now, el("script", "https://a/x.js", "https://a"));
  add_element(now, el("script", "https://evil/x.js", "https://evil"));
  const auto n = new_elements(base, now);
  ASSERT_EQ(n.size(), 1u);
  EXPECT_EQ(n[0].value, "https://evil/x.js");
  EXPECT_TRUE(new_elements(now, base).empty());
}

TEST(PageRecord, Allowlist) {
  auto a = OriginAllowlist::compile(
      {"self", "https://cdn.example.com", "https://*.static.example", "data:"},
      "https://www.example.com/x");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_TRUE(a->allows(el("script", "u", "https://www.example.com")));
  EXPECT_TRUE(a->allows(el("script", "u", "https://cdn.example.com")));
  EXPECT_TRUE(a->allows(el("script", "u", "https://img.static.example")));
  EXPECT_TRUE(a->allows(el("script", "u", "data:")));
  EXPECT_FALSE(a->allows(el("script", "u", "https://static.example")));
  EXPECT_FALSE(a->allows(el("script", "u", "http://cdn.example.com")));
  EXPECT_FALSE(a->allows(el("script", "u", "https://cdn.example.com.evil.example")));
  EXPECT_FALSE(a->allows(el("script", "u", "https://evilstatic.example")));
  // Inline code is never allowed by origin, whatever the list says.
  EXPECT_FALSE(a->allows(el("inline-script", "sha256:00", std::string(kInlineOrigin))));
  EXPECT_FALSE(a->allows(el("script", "u", "")));
}

TEST(PageRecord, AllowlistEntriesAreChecked) {
  for (const char* good : {"self", "https://a.example", "https://a.example/", "http://a:8080",
                           "https://*.a.example", "data:"})
    EXPECT_EQ(allow_origin_problem(good), "") << good;
  for (const char* bad : {"", "a.example", "https://a.example/path", "https://A.example",
                          "https://a.example:443", "*", "https://a.*.example", "https://u@a"})
    EXPECT_NE(allow_origin_problem(bad), "") << bad;
}

TEST(PageRecord, RoundTripsThroughItsFile) {
  testing::TempDir dir;
  RealEnv env;
  PageRecord r;
  r.url = "https://www.example.com/";
  add_element(r.baseline, el("script", "https://a/x.js", "https://a"));
  r.baseline_ns = 5;
  r.baseline_by = "first-fetch";
  r.current = r.baseline;
  add_element(r.current, {"inline-script", "sha256:ab", "inline", "alert(\xff)"});
  r.current.truncated = true;
  r.current_ns = 7;
  r.reported.push_back(r.current.elements[0]);
  r.error = "timeout";
  const std::string path = record_path(dir.path(), r.url);
  EXPECT_EQ(path.substr(0, dir.path().size() + 7), dir.path() + "/pages/");
  ASSERT_TRUE(load_record(path));
  EXPECT_FALSE(*load_record(path));  // none yet
  {
    auto lock = lock_records(dir.path());
    ASSERT_TRUE(lock) << lock.error().message();
    ASSERT_TRUE(save_record(env, path, r));
  }
  auto back = load_record(path);
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_TRUE(*back);
  const PageRecord& b = **back;
  EXPECT_EQ(b.url, r.url);
  EXPECT_EQ(b.baseline.elements.size(), 1u);
  EXPECT_EQ(b.current.elements.size(), 2u);
  EXPECT_TRUE(b.current.truncated);
  EXPECT_EQ(b.current_ns, 7);
  EXPECT_EQ(b.reported.size(), 1u);
  EXPECT_EQ(b.error, "timeout");
  EXPECT_EQ(b.baseline_by, "first-fetch");
}

TEST(PageRecord, DamageIsAnErrorNeverAGuess) {
  for (const char* text :
       {"", "{", "[]", R"({"version":2,"url":"u","baseline":{"elements":[]}})",
        R"({"version":1,"url":1,"baseline":{"elements":[]}})", R"({"version":1,"url":"u"})",
        R"({"version":1,"url":"u","baseline":{"elements":[1]}})",
        R"({"version":1,"url":"u","baseline":{"elements":[{"kind":"k","value":"v"}]}})",
        R"({"version":1,"url":"u","baseline":{"elements":[]},"reported":{}})",
        R"({"version":1,"url":"u","baseline":{"elements":[],"taken_ns":"x"}})"})
    EXPECT_FALSE(parse_record(text, "p")) << text;
  EXPECT_TRUE(parse_record(R"({"version":1,"url":"u","baseline":{"elements":[]}})", "p"));
}

}  // namespace
}  // namespace mamori::page
