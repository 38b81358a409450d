#include "core/logparse/normalise.h"

#include <string>

#include <gtest/gtest.h>

namespace mamori::logparse {
namespace {

std::string norm(std::string_view raw, TargetInfo* info = nullptr) {
  std::string out;
  const TargetInfo i = normalise_target(raw, out);
  if (info) *info = i;
  return out;
}

struct Case {
  std::string_view raw;
  std::string_view want;
};

TEST(Normalise, Table) {
  const Case cases[] = {
      // Unchanged.
      {"/", "/"},
      {"/index.php", "/index.php"},
      {"/wp-content/themes/a.css?ver=1.1.51", "/wp-content/themes/a.css?ver=1.1.51"},
      {"", ""},
      {"*", "*"},
      // Case.
      {"/WP-LOGIN.PHP", "/wp-login.php"},
      {"/a?ID=1+UNION+SELECT", "/a?id=1 union select"},
      {"/caf\xc3\x89", "/caf\xc3\x89"},  // only ASCII is lower-cased
      // Percent-encoding, single, double, triple; four layers stop at three.
      {"/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"},
      {"/a%20b", "/a b"},
      {"/%252e%252e%252fetc%252fpasswd", "/etc/passwd"},
      {"/%25252e%25252e/x", "/x"},
      {"/%2525252e", "/%2e"},
      {"/?q=%2527", "/?q='"},
      {"/%zz%4", "/%zz%4"},  // not escapes
      {"/%", "/%"},
      // IIS %uXXXX.
      {"/?id=1%u0027%u0020or%u00201=1", "/?id=1' or 1=1"},
      {"/%u002e%u002e/%u002e%u002e/win.ini", "/win.ini"},
      {"/%u00e9", "/\xc3\xa9"},
      {"/%uFF0E", "/\xef\xbc\x8e"},
      // '+' is a space only in the query, and only as written (not %2B).
      {"/a+b?c+d", "/a+b?c d"},
      {"/?q=c%2B%2B", "/?q=c++"},
      // Backslashes, "//", "/./", "/../".
      {"/a\\b\\c", "/a/b/c"},
      {"/a\\b//./c/../d", "/a/b/d"},
      {"/..\\..\\windows\\win.ini", "/windows/win.ini"},
      {"//a///b", "/a/b"},
      {"/a/./b/.", "/a/b/"},
      {"/a/b/../c", "/a/c"},
      {"/a/b/..", "/a/"},
      {"/../../../../etc/passwd", "/etc/passwd"},
      {"/a/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc/passwd", "/etc/passwd"},
      {"/a/b/", "/a/b/"},
      {"/a/.../b", "/a/.../b"},
      {"/a/..b/c", "/a/..b/c"},
      {"/.", "/"},
      {"/..", "/"},
      {"a/../b", "b"},
      // The query keeps its dots and slashes for the rules.
      {"/x.php?file=../../etc/passwd", "/x.php?file=../../etc/passwd"},
      {"/x.php?f=..%5c..%5cwin.ini", "/x.php?f=..\\..\\win.ini"},
      {"/a%3fb?c", "/a?b?c"},  // an encoded '?' stays in the path
      // Overlong UTF-8.
      {"/..%c0%af..%c0%afetc/passwd", "/etc/passwd"},
      {"/%c1%9c", "/"},
      // Absolute-form targets keep their authority.
      {"http://Example.COM//a/../b", "http://example.com/b"},
      {"HTTP://evil.example", "http://evil.example"},
  };
  for (const auto& c : cases) EXPECT_EQ(norm(c.raw), c.want) << "raw: " << c.raw;
}

TEST(Normalise, ReportsDecodeRoundsAndOverEncoding) {
  TargetInfo info;
  norm("/plain", &info);
  EXPECT_EQ(info.decode_rounds, 0);
  norm("/%61", &info);
  EXPECT_EQ(info.decode_rounds, 1);
  norm("/%2561", &info);
  EXPECT_EQ(info.decode_rounds, 2);
  EXPECT_FALSE(info.over_encoded);
  norm("/%252561", &info);
  EXPECT_EQ(info.decode_rounds, 3);
  EXPECT_FALSE(info.over_encoded);
  norm("/%25252561", &info);
  EXPECT_EQ(info.decode_rounds, 3);
  EXPECT_TRUE(info.over_encoded);
}

TEST(Normalise, FlagsTraversalEvenWhenResolvedAway) {
  TargetInfo info;
  norm("/a/b/../c", &info);
  EXPECT_TRUE(info.traversal);
  norm("/a/b/c", &info);
  EXPECT_FALSE(info.traversal);
  norm("/a/%2e%2E/c", &info);
  EXPECT_TRUE(info.traversal);
  norm("/?f=../x", &info);
  EXPECT_FALSE(info.traversal);  // the query is the rules' business
}

TEST(Normalise, KeepsNulBytesVisible) {
  TargetInfo info;
  EXPECT_EQ(norm("/shell.php%00.jpg", &info), "/shell.php%00.jpg");
  EXPECT_TRUE(info.null_byte);
  EXPECT_EQ(norm("/shell.php%2500.jpg", &info), "/shell.php%00.jpg");
  EXPECT_TRUE(info.null_byte);
  EXPECT_EQ(norm("/a%u0000b", &info), "/a%00b");
  EXPECT_TRUE(info.null_byte);
  EXPECT_EQ(norm(std::string_view("/raw\0nul?q=\0", 12), &info), "/raw%00nul?q=%00");
  EXPECT_TRUE(info.null_byte);
  norm("/clean", &info);
  EXPECT_FALSE(info.null_byte);
  std::string out;
  normalise_target(std::string_view("%00\0%2500", 9), out);
  EXPECT_EQ(out.find('\0'), std::string::npos);
}

TEST(Normalise, FlagsOverlongUtf8) {
  TargetInfo info;
  norm("/%c0%ae%c0%ae/", &info);
  EXPECT_TRUE(info.overlong_utf8);
  norm("/caf%c3%a9", &info);
  EXPECT_FALSE(info.overlong_utf8);
}

TEST(Normalise, ExposesTheQueryOffset) {
  std::string out;
  TargetInfo info = normalise_target("/A/../search.php?Q=1%27+UNION+SELECT", out);
  ASSERT_NE(info.query, std::string::npos);
  EXPECT_EQ(out.substr(0, info.query), "/search.php");
  EXPECT_EQ(out.substr(info.query + 1), "q=1' union select");
  info = normalise_target("/no-query", out);
  EXPECT_EQ(info.query, std::string::npos);
  info = normalise_target("/empty?", out);
  EXPECT_EQ(out, "/empty?");
  EXPECT_EQ(info.query, 6u);
}

TEST(Normalise, BoundsItsOutput) {
  std::string out;
  const std::string huge = "/" + std::string(100000, 'A');
  TargetInfo info = normalise_target(huge, out);
  EXPECT_TRUE(info.truncated);
  EXPECT_EQ(out.size(), kMaxNormalisedTarget);
  // Raw NULs grow threefold on the way; the result is still cut to the limit.
  const std::string nuls = "/?" + std::string(5000, '\0');
  info = normalise_target(nuls, out);
  EXPECT_TRUE(info.truncated);
  EXPECT_LE(out.size(), kMaxNormalisedTarget);
  info = normalise_target("/abcdef", out, 4);
  EXPECT_EQ(out, "/abc");
  EXPECT_TRUE(info.truncated);
}

TEST(Normalise, ReusesTheOutputBuffer) {
  std::string out;
  normalise_target("/a/very/long/target/that/allocates/once/" + std::string(200, 'x'), out);
  const char* data = out.data();
  normalise_target("/short", out);
  EXPECT_EQ(out, "/short");
  EXPECT_EQ(out.data(), data);
}

}  // namespace
}  // namespace mamori::logparse
