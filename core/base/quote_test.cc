#include "core/base/quote.h"

#include <gtest/gtest.h>

#include "core/base/result.h"

namespace mamori {
namespace {

TEST(Quote, EscapesControlBytesAndInvalidUtf8) {
  EXPECT_EQ(quote("a b"), "'a b'");
  EXPECT_EQ(quote("evil\nname"), "'evil\\nname'");
  EXPECT_EQ(quote("\x1b[31mred"), "'\\x1b[31mred'");
  EXPECT_EQ(quote("caf\xc3\xa9"), "'caf\xc3\xa9'");
  EXPECT_EQ(quote("bad\xff\xc3"), "'bad\\xff\\xc3'");
  EXPECT_EQ(quote("it's"), "'it\\'s'");
}

TEST(Quote, TerminalTextKeepsLinesAndEscapesWhatATerminalWouldAct) {
  EXPECT_EQ(escape_for_terminal("line 1\n\tline 2\n"), "line 1\n\tline 2\n");
  EXPECT_EQ(escape_for_terminal("ok\r\x1b[2Khidden"), "ok\\x0d\\x1b[2Khidden");
  EXPECT_EQ(escape_for_terminal("del\x7f bad\xff"), "del\\x7f bad\\xff");
  EXPECT_EQ(escape_for_terminal("c1 \xc2\x9b"
                                "2K"),
            "c1 \\u{009b}2K");  // U+009B CSI
  EXPECT_EQ(escape_for_terminal("rtl \xe2\x80\xae"
                                "x"),
            "rtl \\u{202e}x");                                                   // U+202E
  EXPECT_EQ(escape_for_terminal("caf\xc3\xa9 \\n 'q'"), "caf\xc3\xa9 \\n 'q'");  // text stays
}

TEST(Quote, RejectsOverlongAndSurrogates) {
  EXPECT_TRUE(is_valid_utf8("plain \xe6\x97\xa5"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(Error, MessageNamesOperationPathAndErrno) {
  Error e{"renameat2", "wp/index.php", ENOSPC, ""};
  EXPECT_EQ(e.message(), "renameat2 'wp/index.php': No space left on device");
  Error d{"parse config", "", 0, "unknown key"};
  EXPECT_EQ(d.message(), "parse config: unknown key");
}

Result<int> half(int x) {
  if (x % 2) return fail_msg("half", "", "odd");
  return x / 2;
}
Result<int> quarter(int x) {
  const int h = MAMORI_TRY(half(x));
  return MAMORI_TRY(half(h));
}

TEST(Result, TryPropagatesFirstError) {
  EXPECT_EQ(quarter(8).value(), 2);
  ASSERT_FALSE(quarter(6).has_value());
  EXPECT_EQ(quarter(6).error().detail, "odd");
}

}  // namespace
}  // namespace mamori
