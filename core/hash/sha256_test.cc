#include "core/hash/sha256.h"

#include <gtest/gtest.h>

namespace mamori::hash {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256("").hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256("abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, StreamingEqualsOneShot) {
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.finish(), sha256("abc"));
  h.update("");  // reusable after finish
  EXPECT_EQ(h.finish(), sha256(""));
}

TEST(Digest, HexRoundTripAndErrors) {
  const auto d = sha256("abc");
  EXPECT_EQ(Digest::from_hex(d.hex()).value(), d);
  EXPECT_FALSE(Digest::from_hex("abc"));
  EXPECT_FALSE(Digest::from_hex(std::string(64, 'g')));
  EXPECT_FALSE(Digest::from_bytes("short"));
}

TEST(Sha256, EqualConstantTime) {
  EXPECT_TRUE(equal_constant_time("abc", "abc"));
  EXPECT_FALSE(equal_constant_time("abc", "abd"));
  EXPECT_FALSE(equal_constant_time("abc", "abcd"));
  EXPECT_TRUE(equal_constant_time("", ""));
}

}  // namespace
}  // namespace mamori::hash
