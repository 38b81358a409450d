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
