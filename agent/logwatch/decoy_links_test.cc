#include "agent/logwatch/decoy_links.h"

#include <gtest/gtest.h>

namespace mamori::logwatch {
namespace {

logparse::IpAddress ip(const char* text) { return *logparse::IpAddress::parse(text); }

TEST(DecoyRuleTest, IdsSayFetchOrCredential) {
  std::string token;
  EXPECT_EQ(decoy_rule("decoy-k3v9x0q2m7aa", &token), DecoyRule::kFetch);
  EXPECT_EQ(token, "k3v9x0q2m7aa");
  EXPECT_EQ(decoy_rule("decoy-credential-k3v9x0q2m7aa", &token), DecoyRule::kCredential);
  EXPECT_EQ(token, "k3v9x0q2m7aa");
  EXPECT_EQ(credential_rule_id("k3v9x0q2m7aa"), "decoy-credential-k3v9x0q2m7aa");
  EXPECT_EQ(decoy_rule("decoy-", &token), DecoyRule::kNone);
  EXPECT_EQ(decoy_rule("decoy-credential-", &token), DecoyRule::kFetch);  // a token "credential-"
  EXPECT_EQ(decoy_rule("wp-config-backup", &token), DecoyRule::kNone);
  EXPECT_EQ(decoy_rule("guard-correlation", &token), DecoyRule::kNone);
}

TEST(DecoyLinksTest, NewestFetchFirstAndBounded) {
  DecoyLinks links;
  EXPECT_TRUE(links.fetchers("tok").empty());
  links.fetched("tok", ip("192.0.2.1"), "e1", 1);
  links.fetched("tok", ip("192.0.2.2"), "e2", 2);
  links.fetched("other", ip("192.0.2.9"), "e9", 3);
  auto f = links.fetchers("tok");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].ip, ip("192.0.2.2"));
  EXPECT_EQ(f[1].event_id, "e1");

  // Fetched again while banned (no event): first again, still linked to its ban.
  links.fetched("tok", ip("192.0.2.1"), "", 4);
  f = links.fetchers("tok");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].ip, ip("192.0.2.1"));
  EXPECT_EQ(f[0].event_id, "e1");

  for (uint32_t i = 0; i < 100; ++i)
    links.fetched("tok", logparse::IpAddress::from_v4(0x0a000000 + i), "x", 10 + i);
  f = links.fetchers("tok");
  ASSERT_EQ(f.size(), DecoyLinks::kPerToken);
  EXPECT_EQ(f[0].ip, logparse::IpAddress::from_v4(0x0a000000 + 99));
}

TEST(DecoyLinksTest, OneUseAMinutePerAddress) {
  DecoyLinks links;
  const int64_t s = 1'000'000'000;
  EXPECT_TRUE(links.first_use("tok", ip("198.51.100.7"), 100 * s));
  EXPECT_FALSE(links.first_use("tok", ip("198.51.100.7"), 130 * s));
  EXPECT_TRUE(links.first_use("tok", ip("198.51.100.8"), 130 * s));
  EXPECT_TRUE(links.first_use("tok2", ip("198.51.100.7"), 130 * s));
  EXPECT_TRUE(links.first_use("tok", ip("198.51.100.7"), 161 * s));
  // A flood of addresses does not grow the memory past its bound.
  for (uint32_t i = 0; i < 3 * DecoyLinks::kMaxTokens; ++i)
    EXPECT_TRUE(links.first_use("tok", logparse::IpAddress::from_v4(0x0b000000 + i), 200 * s));
}

}  // namespace
}  // namespace mamori::logwatch
