#include "honeypot/limits.h"

#include <gtest/gtest.h>

namespace mamori::honeypot {
namespace {

TEST(Admission, PerAddressLimitRefusesAndReportsOncePerEpisode) {
  Limits l;
  l.sessions = 100;
  l.sessions_per_address = 2;
  Admission a(l);
  EXPECT_TRUE(a.admit("10.0.0.1").admitted);
  EXPECT_TRUE(a.admit("10.0.0.1").admitted);
  auto d = a.admit("10.0.0.1");
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.limit, kLimitSessionsPerAddress);
  EXPECT_TRUE(d.report);
  for (int i = 0; i < 50; ++i) {
    d = a.admit("10.0.0.1");
    EXPECT_FALSE(d.admitted);
    EXPECT_FALSE(d.report) << "one event per episode, not per refusal";
  }
  // Another address is not held back by the first one's flood.
  EXPECT_TRUE(a.admit("10.0.0.2").admitted);
  EXPECT_EQ(a.refused(), 51u);
  // One closes: a new one fits; the next refusal starts a new episode.
  a.release("10.0.0.1");
  EXPECT_TRUE(a.admit("10.0.0.1").admitted);
  d = a.admit("10.0.0.1");
  EXPECT_FALSE(d.admitted);
  EXPECT_TRUE(d.report);
}

TEST(Admission, TotalLimitAndStateIsBounded) {
  Limits l;
  l.sessions = 3;
  l.sessions_per_address = 3;
  Admission a(l);
  EXPECT_TRUE(a.admit("a").admitted);
  EXPECT_TRUE(a.admit("b").admitted);
  EXPECT_TRUE(a.admit("c").admitted);
  auto d = a.admit("d");
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.limit, kLimitSessions);
  EXPECT_TRUE(d.report);
  EXPECT_FALSE(a.admit("e").report);
  EXPECT_EQ(a.addresses(), 3u) << "refused addresses leave no state behind";
  a.release("a");
  a.release("b");
  a.release("c");
  EXPECT_EQ(a.open(), 0u);
  EXPECT_EQ(a.addresses(), 0u);
  a.release("never-admitted");  // harmless
  EXPECT_EQ(a.open(), 0u);
  EXPECT_TRUE(a.admit("d").admitted);
  EXPECT_EQ(a.open_from("d"), 1u);
}

}  // namespace
}  // namespace mamori::honeypot
