#include "honeypot/line_editor.h"

#include <gtest/gtest.h>

namespace mamori::honeypot {
namespace {

using Kind = EditStep::Kind;

TEST(LineEditor, PtyEchoesAndEndsLinesOnCr) {
  LineEditor e(true, 100);
  auto s = e.feed("id\r");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].kind, Kind::kEcho);
  EXPECT_EQ(s[0].text, "id\r\n");
  EXPECT_EQ(s[1].kind, Kind::kLine);
  EXPECT_EQ(s[1].text, "id");
  // A line typed across packets, with a backspace.
  EXPECT_EQ(e.feed("whox").size(), 1u);
  s = e.feed(
      "\x7f"
      "ami\r\n");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].text, "\b \bami\r\n");
  EXPECT_EQ(s[1].text, "whoami");
}

TEST(LineEditor, WithoutAPtyNoEchoAndCrLfIsOneLine) {
  LineEditor e(false, 100);
  auto s = e.feed("uname -a\r\nid\n\nexit\n");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].text, "uname -a");
  EXPECT_EQ(s[1].text, "id");
  EXPECT_EQ(s[2].text, "");
  EXPECT_EQ(s[3].text, "exit");
  for (const auto& step : s) EXPECT_EQ(step.kind, Kind::kLine);
}

TEST(LineEditor, InterruptAndEof) {
  LineEditor e(true, 100);
  auto s = e.feed("rm -rf /\x03");
  ASSERT_EQ(s.back().kind, Kind::kInterrupt);
  s = e.feed("\r");
  ASSERT_EQ(s.back().kind, Kind::kLine);
  EXPECT_EQ(s.back().text, "") << "the interrupted line is gone";
  EXPECT_EQ(e.feed("x\x04").back().kind, Kind::kEcho) << "^D on a non-empty line does nothing";
  e.feed("\x7f");
  s = e.feed("\x04ignored\r");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].kind, Kind::kEof);
}

TEST(LineEditor, LongLinesAreCutAndMarked) {
  LineEditor e(true, 8);
  auto s = e.feed(std::string(10000, 'a') + "\r");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].text, std::string(8, 'a') + "\r\n") << "echo stops where the line stops";
  EXPECT_EQ(s[1].text, std::string(8, 'a'));
  EXPECT_TRUE(s[1].cut);
  s = e.feed("b\r");
  EXPECT_FALSE(s.back().cut);
}

}  // namespace
}  // namespace mamori::honeypot
