#include "core/fs/glob.h"

#include <gtest/gtest.h>

namespace mamori::fs {
namespace {

TEST(GlobMatch, StarStaysWithinOneName) {
  EXPECT_TRUE(glob_match("*.php", "index.php"));
  EXPECT_FALSE(glob_match("*.php", "dir/index.php"));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "a/c"));
}

TEST(GlobMatch, DoubleStarSpansDirectories) {
  EXPECT_TRUE(glob_match("wp-content/cache/**", "wp-content/cache/a/b.html"));
  EXPECT_FALSE(glob_match("wp-content/cache/**", "wp-content/cache"));
  EXPECT_TRUE(glob_match("**/*.log", "error.log"));
  EXPECT_TRUE(glob_match("**/*.log", "a/b/error.log"));
  EXPECT_TRUE(glob_match("a/**/z", "a/z"));
  EXPECT_TRUE(glob_match("a/**/z", "a/b/c/z"));
  EXPECT_FALSE(glob_match("a/**/z", "b/z"));
}

TEST(GlobMatch, ClassesAndEscapes) {
  EXPECT_TRUE(glob_match("[a-c]x", "bx"));
  EXPECT_FALSE(glob_match("[!a-c]x", "bx"));
  EXPECT_TRUE(glob_match("[]]", "]"));
  EXPECT_TRUE(glob_match("\\*", "*"));
  EXPECT_FALSE(glob_match("\\*", "a"));
}

TEST(PathMatcher, PatternWithoutSlashMatchesAnyDepth) {
  auto m = PathMatcher::compile({"*.log", "/top.txt", "cache/"}).value();
  EXPECT_TRUE(m.matches("a/b/debug.log"));
  EXPECT_TRUE(m.matches("top.txt"));
  EXPECT_FALSE(m.matches("a/top.txt"));
  EXPECT_TRUE(m.matches("x/cache"));
  EXPECT_FALSE(m.matches("index.php"));
}

TEST(PathMatcher, FoldedCaseCatchesEveryCasingOfAnExtension) {
  auto deny =
      PathMatcher::compile({"*.php", "*.php[0-9]", "*.PHTML", "/Up/*.inc"}, MatchCase::kFold)
          .value();
  for (const char* p : {"up/b.PHP", "up/c.Php", "up/g.pHtml", "x/s.PHP7", "up/a.inc", "UP/A.INC"})
    EXPECT_TRUE(deny.matches(p)) << p;
  EXPECT_FALSE(deny.matches("up/photo.jpg"));
  // Exact by default: excludes and allow lists keep their meaning.
  auto exact = PathMatcher::compile({"*.php"}).value();
  EXPECT_FALSE(exact.matches("b.PHP"));
}

TEST(PathMatcher, DirectoryStarStarLeadsToTheDirectoryAndItsAncestors) {
  auto allow = PathMatcher::compile({"wp-content/uploads/**", "/sites/*/files/**"}).value();
  // The pattern itself still covers only what is inside.
  EXPECT_FALSE(allow.matches("wp-content/uploads"));
  EXPECT_TRUE(allow.matches("wp-content/uploads/2025/01/a.jpg"));
  // The directories WordPress must create before its first upload.
  EXPECT_TRUE(allow.leads_to("wp-content"));
  EXPECT_TRUE(allow.leads_to("wp-content/uploads"));
  EXPECT_TRUE(allow.leads_to("sites"));
  EXPECT_TRUE(allow.leads_to("sites/a"));
  EXPECT_TRUE(allow.leads_to("sites/a/files"));
  // Nothing beside the path.
  EXPECT_FALSE(allow.leads_to("wp-admin"));
  EXPECT_FALSE(allow.leads_to("wp-content/plugins"));
  EXPECT_FALSE(allow.leads_to("wp-content/uploadsx"));
  EXPECT_FALSE(allow.leads_to("sites/a/other"));
  EXPECT_FALSE(allow.leads_to(""));
  // "**" inside DIR: any directory below what precedes it.
  auto deep = PathMatcher::compile({"data/**/uploads/**"}).value();
  EXPECT_TRUE(deep.leads_to("data/x/y"));
  EXPECT_FALSE(deep.leads_to("other"));
  // Patterns that name no directory lead nowhere.
  EXPECT_FALSE(PathMatcher::compile({"*.jpg", "a/*.png"}).value().leads_to("a"));
}

TEST(PathMatcher, RejectsBadPatterns) {
  EXPECT_FALSE(PathMatcher::compile({""}));
  EXPECT_FALSE(PathMatcher::compile({"[abc"}));
}

}  // namespace
}  // namespace mamori::fs

namespace mamori::fs {
namespace {

TEST(GlobMatch, PathologicalPatternsStayFast) {
  // Exponential for naive backtracking; the memo makes it O(pattern x path).
  const std::string path(4000, 'a');
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", path));
  EXPECT_FALSE(glob_match("**/**/**/**/**/**/**/**/x", std::string(200, '/') + "y"));
}

}  // namespace
}  // namespace mamori::fs
