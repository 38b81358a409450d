#include "core/logparse/health.h"

#include <string>

#include <gtest/gtest.h>

namespace mamori::logparse {
namespace {

using Change = ParseHealth::Change;

// Feeds n lines of one outcome; returns the changes seen, in order.
std::string feed(ParseHealth& h, size_t n, ParseStatus st, std::string_view line = "x") {
  std::string changes;
  for (size_t k = 0; k < n; ++k) {
    const Change c = h.note(st, line);
    if (c == Change::kUnparseable) changes += "U";
    if (c == Change::kParseable) changes += "P";
  }
  return changes;
}

TEST(ParseHealth, AWrongFormatIsSaidOnceAfterTheFirstLines) {
  ParseHealth h;
  EXPECT_EQ(feed(h, 9, ParseStatus::kBadTime, "line"), "");
  EXPECT_FALSE(h.unparseable());
  EXPECT_EQ(feed(h, 1, ParseStatus::kBadTime, "10.0.0.1 - - [7/Dec/2026:09:00:00] h \"GET /\""),
            "U");  // ten lines, every one refused
  EXPECT_TRUE(h.unparseable());
  EXPECT_EQ(h.sample(), "10.0.0.1 - - [7/Dec/2026:09:00:00] h \"GET /\"");
  EXPECT_EQ(h.sample_status(), ParseStatus::kBadTime);
  EXPECT_EQ(h.lines(), 10u);
  EXPECT_EQ(h.failures(), 10u);
  EXPECT_EQ(h.in_window(ParseStatus::kBadTime), 10u);
  EXPECT_EQ(feed(h, 5000, ParseStatus::kBadTime), "");  // once per episode
  EXPECT_EQ(h.episodes(), 1u);
}

TEST(ParseHealth, MoreThanTenPercentOfAHundredLines) {
  ParseHealth h;
  EXPECT_EQ(feed(h, 90, ParseStatus::kOk), "");
  EXPECT_EQ(feed(h, 10, ParseStatus::kNoMatch), "");  // 10 %: not more than
  EXPECT_FALSE(h.unparseable());
  EXPECT_EQ(feed(h, 1, ParseStatus::kNoMatch, "garbage"), "U");  // 11 of 101
  EXPECT_EQ(h.sample(), "garbage");
  EXPECT_EQ(h.failures(), 11u);
  EXPECT_EQ(h.lines(), 101u);
}

TEST(ParseHealth, BadRequestsAndGoodLinesAreNotFailures) {
  ParseHealth h;
  // A scanner's TLS bytes to port 80 are logged in the right format: bad-request.
  EXPECT_EQ(feed(h, 5000, ParseStatus::kBadRequest), "");
  EXPECT_EQ(feed(h, 5000, ParseStatus::kOk), "");
  EXPECT_EQ(h.failures(), 0u);
  EXPECT_TRUE(is_format_failure(ParseStatus::kBadAddress));
  EXPECT_TRUE(is_format_failure(ParseStatus::kTruncated));
  EXPECT_FALSE(is_format_failure(ParseStatus::kTooLong));
  // A few refused lines in a busy log never raise the alarm: 5 % steadily.
  for (int k = 0; k < 200; ++k) {
    EXPECT_EQ(feed(h, 19, ParseStatus::kOk), "");
    EXPECT_EQ(feed(h, 1, ParseStatus::kNoMatch), "");
  }
}

TEST(ParseHealth, ParseableAgainOnceTheWindowIsClean) {
  ParseHealth h({.window = 1000, .min_lines = 100, .min_all = 10, .percent = 10});
  EXPECT_EQ(feed(h, 500, ParseStatus::kOk), "");
  EXPECT_EQ(feed(h, 1000, ParseStatus::kBadTime), "U");  // the format changed under us
  EXPECT_EQ(h.failures(), 1000u);
  // Fixed: parseable once at most 5 % of the window failed (950 good lines), once.
  EXPECT_EQ(feed(h, 949, ParseStatus::kOk), "");
  EXPECT_TRUE(h.unparseable());
  EXPECT_EQ(feed(h, 1, ParseStatus::kOk), "P");
  EXPECT_FALSE(h.unparseable());
  EXPECT_EQ(feed(h, 2000, ParseStatus::kOk), "");
  // A second episode is a new one, with its own sample.
  EXPECT_EQ(feed(h, 111, ParseStatus::kBadAddress, "proxy.local - - ..."), "U");
  EXPECT_EQ(h.sample(), "proxy.local - - ...");
  EXPECT_EQ(h.sample_status(), ParseStatus::kBadAddress);
  EXPECT_EQ(h.episodes(), 2u);
}

TEST(ParseHealth, KeepsOnlyTheStartOfTheSample) {
  ParseHealth h;
  const std::string huge(100000, 'A');
  EXPECT_EQ(feed(h, 10, ParseStatus::kNoMatch, huge), "U");
  EXPECT_EQ(h.sample().size(), ParseHealth::kMaxSample);
}

}  // namespace
}  // namespace mamori::logparse
