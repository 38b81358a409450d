#include "core/base/json_depth.h"

#include <string>

#include <gtest/gtest.h>

namespace mamori {
namespace {

std::string nested(size_t levels, char open = '[', char close = ']') {
  return std::string(levels, open) + std::string(levels, close);
}

TEST(JsonDepth, CountsArraysAndObjectsUpToTheLimit) {
  EXPECT_TRUE(json_depth_within("1"));
  EXPECT_TRUE(json_depth_within(nested(kMaxJsonDepth)));
  EXPECT_FALSE(json_depth_within(nested(kMaxJsonDepth + 1)));
  EXPECT_TRUE(json_depth_within(R"({"a":{"b":[1,{"c":2}]}})", 4));
  EXPECT_FALSE(json_depth_within(R"({"a":{"b":[1,{"c":2}]}})", 3));
  // Siblings do not add up: depth is how deep, not how many.
  std::string wide = "[";
  for (int i = 0; i < 1000; ++i) wide += "[],";
  wide += "[]]";
  EXPECT_TRUE(json_depth_within(wide, 2));
}

TEST(JsonDepth, BracketsInStringsDoNotCount) {
  const std::string in_string = "[\"" + nested(1000) + "\"]";
  EXPECT_TRUE(json_depth_within(in_string, 1));
  // An escaped quote does not end the string; an escaped backslash before a quote does.
  EXPECT_TRUE(json_depth_within(R"(["\"[[[[", "x"])", 1));
  EXPECT_FALSE(json_depth_within(R"(["\\", [[]]])", 2));
}

TEST(JsonDepth, AMillionLevelsAreRefusedWithoutParsing) {
  EXPECT_FALSE(json_depth_within(nested(1'000'000, '{', '}')));
  EXPECT_FALSE(json_depth_within(std::string(1'000'000, '[')));  // never closed
}

}  // namespace
}  // namespace mamori
