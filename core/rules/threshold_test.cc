#include "core/rules/threshold.h"

#include <gtest/gtest.h>

namespace mamori::rules {
namespace {

const Ip16 kA = ipv4_mapped(0xc0000201);  // 192.0.2.1
const Ip16 kB = ipv4_mapped(0xc0000202);
constexpr int64_t kT0 = 1710028800;  // 2024-03-10T00:00:00Z

// Rule 0: a signature; rule 1: `count` in `window_s`; rule 2: 2 in 10 s.
RuleSet rules_with(uint32_t count, uint32_t window_s) {
  RuleSet set;
  set.rules.resize(3);
  set.rules[0].id = "sig";
  set.rules[1].id = "thr";
  set.rules[1].kind = Kind::kThreshold;
  set.rules[1].count = count;
  set.rules[1].window_s = window_s;
  set.rules[2] = set.rules[1];
  set.rules[2].id = "other";
  set.rules[2].count = 2;
  set.rules[2].window_s = 10;
  return set;
}

// Hits rule 1 from `ip` once at each time; returns the times at which it fired.
std::vector<int64_t> fires(Thresholds& t, const std::vector<int64_t>& times, const Ip16& ip = kA) {
  std::vector<int64_t> out;
  for (const int64_t s : times)
    if (t.hit(1, ip, kT0 + s)) out.push_back(s);
  return out;
}

TEST(Thresholds, FiresAtTheCountWithinTheWindowThenStartsAgain) {
  Thresholds t(rules_with(3, 60));
  EXPECT_EQ(fires(t, {0, 10, 20}), std::vector<int64_t>{20});
  EXPECT_EQ(fires(t, {21, 22}), std::vector<int64_t>{});
  EXPECT_EQ(fires(t, {23}), std::vector<int64_t>{23});
}

TEST(Thresholds, WindowBoundaryIsExactToTheSecondForShortWindows) {
  // 60 s: requests at 0 and 59 are in one window...
  Thresholds in(rules_with(2, 60));
  EXPECT_EQ(fires(in, {0, 59}), std::vector<int64_t>{59});
  // ...at 0 and 60 they are not.
  Thresholds out(rules_with(2, 60));
  EXPECT_EQ(fires(out, {0, 60}), std::vector<int64_t>{});
  Thresholds ten(rules_with(3, 10));
  EXPECT_EQ(fires(ten, {0, 5, 10, 14}), std::vector<int64_t>{14});  // 0 expired at 10
}

TEST(Thresholds, LongWindowsAreWithinTwoBuckets) {
  // 3600 s: buckets of 113 s, 31 of them: the window looks back 3391 to 3503 s.
  for (const int64_t gap : {0, 1000, 3390}) {
    Thresholds t(rules_with(2, 3600));
    EXPECT_EQ(fires(t, {0, gap}).size(), 1u) << gap;
  }
  for (const int64_t gap : {3503, 3600, 10000}) {
    Thresholds t(rules_with(2, 3600));
    EXPECT_EQ(fires(t, {0, gap}).size(), 0u) << gap;
  }
}

TEST(Thresholds, AddressesAndRulesCountSeparately) {
  Thresholds t(rules_with(2, 60));
  EXPECT_FALSE(t.hit(1, kA, kT0));
  EXPECT_FALSE(t.hit(1, kB, kT0));
  EXPECT_FALSE(t.hit(2, kA, kT0));
  EXPECT_TRUE(t.hit(2, kA, kT0 + 1));
  EXPECT_TRUE(t.hit(1, kB, kT0 + 1));
  EXPECT_TRUE(t.hit(1, kA, kT0 + 2));
  EXPECT_EQ(t.tracked(), 3u);
}

TEST(Thresholds, SignaturesAndUnknownIndexesNeverFire) {
  Thresholds t(rules_with(1, 60));
  EXPECT_FALSE(t.hit(0, kA, kT0));
  EXPECT_FALSE(t.hit(99, kA, kT0));
  EXPECT_TRUE(t.hit(1, kA, kT0));
  EXPECT_EQ(t.tracked(), 1u);
}

TEST(Thresholds, LateLinesCountInsideTheWindowAndAreIgnoredOutside) {
  Thresholds t(rules_with(3, 60));
  EXPECT_EQ(fires(t, {100, 40, 30}), std::vector<int64_t>{});  // 40 and 30 are too old
  EXPECT_EQ(fires(t, {70}), std::vector<int64_t>{});           // late but inside: 2
  EXPECT_EQ(fires(t, {101}), std::vector<int64_t>{101});
}

TEST(Thresholds, AGapLongerThanTheWindowForgetsEverything) {
  Thresholds t(rules_with(3, 60));
  EXPECT_EQ(fires(t, {0, 1, 100000, 100001}), std::vector<int64_t>{});
  EXPECT_EQ(fires(t, {100002}), std::vector<int64_t>{100002});
}

TEST(Thresholds, EvictsTheLeastRecentlyUsedAtTheCap) {
  Thresholds t(rules_with(3, 60), 2);
  const Ip16 c = ipv4_mapped(0xc0000203);
  EXPECT_FALSE(t.hit(1, kA, kT0));
  EXPECT_FALSE(t.hit(1, kB, kT0 + 1));
  EXPECT_FALSE(t.hit(1, kA, kT0 + 2));  // kA is now the most recent: kB goes first
  EXPECT_EQ(t.evictions(), 0u);
  EXPECT_FALSE(t.hit(1, c, kT0 + 3));
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_EQ(t.tracked(), 2u);
  EXPECT_FALSE(t.hit(1, kB, kT0 + 4));  // kA is the oldest but counts two: c goes
  EXPECT_EQ(t.evictions(), 2u);
  EXPECT_EQ(t.spared(), 1u);
  EXPECT_TRUE(t.hit(1, kA, kT0 + 5));  // kA kept its count
  EXPECT_FALSE(t.hit(1, c, kT0 + 6));  // c's request was forgotten
  EXPECT_EQ(t.tracked(), 2u);
  // Two requests that are past their window are not spared.
  Thresholds s(rules_with(3, 60), 2);
  EXPECT_FALSE(s.hit(1, kA, kT0));
  EXPECT_FALSE(s.hit(1, kA, kT0 + 1));
  EXPECT_FALSE(s.hit(1, kB, kT0 + 2));
  EXPECT_FALSE(s.hit(1, kB, kT0 + 3));
  EXPECT_FALSE(s.hit(1, c, kT0 + 100));
  EXPECT_EQ(s.spared(), 0u);
  EXPECT_FALSE(s.hit(1, kB, kT0 + 101));  // kB was kept, kA went: kB's old two are stale
  EXPECT_EQ(s.evictions(), 1u);
}

// An address-rotating flood, one request per address, cannot push out the count of an
// address that came back: the attacker in the middle of it is still caught.
TEST(Thresholds, AFloodOfSinglesSparesCountingPairs) {
  Thresholds t(rules_with(3, 60), 100);
  EXPECT_FALSE(t.hit(1, kA, kT0));
  EXPECT_FALSE(t.hit(1, kA, kT0 + 1));
  for (uint32_t i = 0; i < 100000; ++i)
    EXPECT_FALSE(t.hit(1, ipv4_mapped(0x0a000000 + i), kT0 + 2 + i / 4000));
  EXPECT_EQ(t.tracked(), 100u);
  EXPECT_GT(t.spared(), 0u);
  EXPECT_TRUE(t.hit(1, kA, kT0 + 40));
  // When every pair is counting, the least recently used goes after kSpare are passed.
  Thresholds all(rules_with(3, 60), 4);
  for (uint32_t i = 0; i < 4; ++i)
    for (int k = 0; k < 2; ++k) EXPECT_FALSE(all.hit(1, ipv4_mapped(i), kT0 + k));
  EXPECT_FALSE(all.hit(1, ipv4_mapped(100), kT0 + 3));
  EXPECT_EQ(all.evictions(), 1u);
  EXPECT_EQ(all.tracked(), 4u);
}

TEST(Thresholds, ManyAddressesStayWithinTheCap) {
  Thresholds t(rules_with(5, 60), 1000);
  for (uint32_t i = 0; i < 10000; ++i) EXPECT_FALSE(t.hit(1, ipv4_mapped(i), kT0 + i / 100));
  EXPECT_EQ(t.tracked(), 1000u);
  EXPECT_EQ(t.evictions(), 9000u);
}

// The index (open addressing, backward-shift deletion) under churn: a pair just counted
// is always found again, whatever was evicted around it.
TEST(Thresholds, TheIndexFindsEveryPairUnderChurn) {
  Thresholds t(rules_with(3, 60), 64);
  uint32_t x = 1;
  for (int i = 0; i < 20000; ++i) {
    x = x * 1103515245u + 12345u;
    const Ip16 ip = ipv4_mapped(x >> 16 & 0x3ff);
    const int64_t at = kT0 + 1000 * int64_t{i};  // past any earlier window of rule 2
    EXPECT_FALSE(t.hit(2, ip, at));
    ASSERT_TRUE(t.hit(2, ip, at)) << i;  // 2 in 10 s
    ASSERT_LE(t.tracked(), 64u);
  }
  EXPECT_GT(t.evictions(), 10000u);
}

TEST(Thresholds, Ipv6AndMappedAddressesDiffer) {
  Ip16 v6{};
  v6[0] = 0x20;
  v6[1] = 0x01;
  v6[2] = 0x0d;
  v6[3] = 0xb8;
  Thresholds t(rules_with(2, 60));
  EXPECT_FALSE(t.hit(1, v6, kT0));
  EXPECT_FALSE(t.hit(1, kA, kT0));
  EXPECT_TRUE(t.hit(1, v6, kT0 + 1));
  EXPECT_EQ(kA[10], 0xff);
  EXPECT_EQ(kA[12], 192);
  EXPECT_EQ(kA[15], 1);
}

}  // namespace
}  // namespace mamori::rules
