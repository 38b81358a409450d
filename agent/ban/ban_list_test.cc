#include "agent/ban/ban_list.h"

#include <gtest/gtest.h>

#include "core/db/sqlite.h"
#include "testing/sim_clock.h"
#include "testing/temp_dir.h"

namespace mamori::ban {
namespace {

using std::chrono::seconds;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

class BanListTest : public ::testing::Test {
 protected:
  BanListTest() { options_.allowlist = {"10.0.0.0/8", "::1/128"}; }
  BanList open() {
    auto list = BanList::open(tmp_ / "bans.db", options_);
    EXPECT_TRUE(list) << list.error().message();
    return std::move(*list);
  }
  int64_t now() const {
    return std::chrono::duration_cast<seconds>(clock_.now().time_since_epoch()).count();
  }
  static BanRequest logwatch(const char* rule = "sqli") {
    return {rule, "union select in /?id=1", "logwatch", std::nullopt, false};
  }

  testing::TempDir tmp_;
  testing::SimClock clock_;
  BanOptions options_;
};

TEST_F(BanListTest, EscalatesRepeatOffencesUpToTheCap) {
  BanList list = open();
  // 10 min, *4 each time, capped at 7 days.
  const int64_t want[] = {600, 2400, 9600, 38400, 153600, 604800, 604800};
  for (uint32_t n = 1; n <= 7; ++n) {
    auto d = list.ban(ip("192.0.2.7"), logwatch(), now());
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(d->outcome, BanOutcome::kNew);
    EXPECT_EQ(d->entry.offences, n);
    EXPECT_EQ(d->ttl.count(), want[n - 1]) << "offence " << n;
    EXPECT_EQ(d->entry.expires_at, now() + want[n - 1]);
    clock_.advance(seconds(want[n - 1]));
    auto expired = list.expire(now());
    ASSERT_TRUE(expired);
    ASSERT_EQ(expired->size(), 1u);
    EXPECT_EQ((*expired)[0].ip, ip("192.0.2.7"));
  }
}

TEST_F(BanListTest, OffencesWhileBannedDoNotEscalate) {
  BanList list = open();
  ASSERT_TRUE(list.ban(ip("192.0.2.7"), logwatch(), now()));
  clock_.advance(seconds(100));
  auto again = list.ban(ip("192.0.2.7"), logwatch("wp-login"), now());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->outcome, BanOutcome::kAlreadyBanned);
  EXPECT_EQ(again->entry.offences, 1u);
  EXPECT_EQ(again->entry.rule, "sqli");
  EXPECT_EQ(again->ttl.count(), 500);
}

TEST_F(BanListTest, AQuietWindowResetsTheCount) {
  BanList list = open();
  ASSERT_TRUE(list.ban(ip("192.0.2.7"), logwatch(), now()));
  clock_.advance(seconds(options_.escalation_window_s + 1));
  ASSERT_TRUE(list.expire(now()));
  auto d = list.ban(ip("192.0.2.7"), logwatch(), now());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->entry.offences, 1u);
  EXPECT_EQ(d->ttl.count(), 600);
}

TEST_F(BanListTest, ManualTtlReplacesAndPermanentNeverExpires) {
  BanList list = open();
  ASSERT_TRUE(list.ban(ip("192.0.2.7"), logwatch(), now()));
  auto d = list.ban(ip("192.0.2.7"), {"manual", "by hand", "manual", kPermanent, false}, now());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, BanOutcome::kReplaced);
  EXPECT_EQ(d->ttl, kPermanent);
  EXPECT_EQ(d->entry.expires_at, 0);
  EXPECT_EQ(d->entry.source, "manual");
  clock_.advance(seconds(365 * 86400));
  auto expired = list.expire(now());
  ASSERT_TRUE(expired);
  EXPECT_TRUE(expired->empty());
  auto got = list.get(ip("192.0.2.7"));
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->reason, "by hand");
  // A shorter manual TTL replaces a longer ban as well.
  d = list.ban(ip("192.0.2.7"), {"manual", "", "manual", seconds(60), false}, now());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->entry.expires_at, now() + 60);
}

TEST_F(BanListTest, ExpireRemovesOnlyExpiredBansAndListSortsBySoonest) {
  BanList list = open();
  ASSERT_TRUE(list.ban(ip("192.0.2.1"), {"r", "", "manual", seconds(100), false}, now()));
  ASSERT_TRUE(list.ban(ip("2001:db8::1"), {"r", "", "manual", seconds(50), false}, now()));
  ASSERT_TRUE(list.ban(ip("192.0.2.3"), {"r", "", "manual", kPermanent, false}, now()));
  auto all = list.list();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].ip, ip("2001:db8::1"));
  EXPECT_EQ((*all)[2].ip, ip("192.0.2.3"));
  clock_.advance(seconds(50));
  auto expired = list.expire(now());
  ASSERT_TRUE(expired);
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].ip, ip("2001:db8::1"));
  EXPECT_EQ(*list.size(), 2u);
}

TEST_F(BanListTest, RefusesAllowlistedAddressesUnlessForced) {
  BanList list = open();
  auto refused = list.ban(ip("10.1.2.3"), logwatch(), now());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().errnum, EPERM);
  EXPECT_NE(refused.error().message().find("allowlist"), std::string::npos);
  EXPECT_FALSE(list.ban(ip("::1"), logwatch(), now()));
  // The mapped form of an allowlisted IPv4 address is the same client.
  EXPECT_FALSE(list.ban(ip("::ffff:10.0.0.1"), logwatch(), now()));
  BanRequest forced = logwatch();
  forced.force = true;
  EXPECT_TRUE(list.ban(ip("10.1.2.3"), forced, now()));
}

TEST_F(BanListTest, DefaultAllowlistKeepsLoopback) {
  EXPECT_TRUE(BanList::open(tmp_ / "d.db", BanOptions{})->allowlisted(ip("127.0.0.1")));
}

TEST_F(BanListTest, RefusesABadAllowlist) {
  options_.allowlist = {"10.0.0.1/8"};
  auto list = BanList::open(tmp_ / "bans.db", options_);
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().errnum, EINVAL);
  EXPECT_NE(list.error().message().find("10.0.0.1/8"), std::string::npos);
}

TEST_F(BanListTest, MappedAndPlainIpv4AreOneBan) {
  BanList list = open();
  ASSERT_TRUE(list.ban(ip("::ffff:192.0.2.9"), logwatch(), now()));
  auto got = list.get(ip("192.0.2.9"));
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->ip.to_string(), "192.0.2.9");
}

TEST_F(BanListTest, SurvivesReopenWithItsHistory) {
  {
    BanList list = open();
    ASSERT_TRUE(list.ban(ip("192.0.2.7"), logwatch(), now()));
    ASSERT_TRUE(list.ban(ip("2001:db8::7"), {"manual", "r", "manual", kPermanent, false}, now()));
  }
  BanList list = open();
  auto all = list.list();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].rule, "sqli");
  EXPECT_EQ((*all)[0].source, "logwatch");
  EXPECT_EQ((*all)[0].first_seen, now());
  EXPECT_EQ((*all)[1].ip, ip("2001:db8::7"));
  clock_.advance(seconds(600));
  ASSERT_TRUE(list.expire(now()));
  auto d = list.ban(ip("192.0.2.7"), logwatch(), now());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->entry.offences, 2u);
}

TEST_F(BanListTest, UnbanForgetsTheHistory) {
  BanList list = open();
  ASSERT_TRUE(list.ban(ip("192.0.2.7"), logwatch(), now()));
  EXPECT_TRUE(*list.unban(ip("192.0.2.7")));
  EXPECT_FALSE(*list.unban(ip("192.0.2.7")));
  auto d = list.ban(ip("192.0.2.7"), logwatch(), now());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, BanOutcome::kNew);
  EXPECT_EQ(d->entry.offences, 1u);
}

TEST_F(BanListTest, RefusesNewBansPastTheLimit) {
  options_.max_entries = 3;
  BanList list = open();
  for (const char* a : {"192.0.2.1", "192.0.2.2", "192.0.2.3"})
    ASSERT_TRUE(list.ban(ip(a), logwatch(), now()));
  auto full = list.ban(ip("192.0.2.4"), logwatch(), now());
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().errnum, ENOSPC);
  EXPECT_NE(full.error().message().find("3 bans, the limit is 3"), std::string::npos);
  // Changing a current ban needs no room; nor does the refused one leave a trace.
  EXPECT_TRUE(list.ban(ip("192.0.2.1"), {"m", "", "manual", kPermanent, false}, now()));
  EXPECT_EQ(*list.size(), 3u);
  ASSERT_TRUE(list.unban(ip("192.0.2.2")));
  auto d = list.ban(ip("192.0.2.4"), logwatch(), now());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->entry.offences, 1u);
}

TEST_F(BanListTest, ExpiredButNotYetRemovedBanCountsAsNewOffence) {
  BanList list = open();
  ASSERT_TRUE(list.ban(ip("192.0.2.7"), logwatch(), now()));
  clock_.advance(seconds(601));
  auto d = list.ban(ip("192.0.2.7"), logwatch(), now());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->outcome, BanOutcome::kNew);
  EXPECT_EQ(d->entry.offences, 2u);
  EXPECT_EQ(*list.size(), 1u);
}

TEST_F(BanListTest, DataVersionTellsOfAnotherConnectionsChange) {
  BanList agent = open();
  BanList cli = open();
  const int64_t before = *agent.data_version();
  ASSERT_TRUE(cli.ban(ip("192.0.2.7"), logwatch(), now()));
  EXPECT_NE(*agent.data_version(), before);
  EXPECT_TRUE(*agent.get(ip("192.0.2.7")));
}

TEST_F(BanListTest, CorruptFileIsAClearError) {
  tmp_.write("bans.db", std::string(8192, 'x'));
  auto list = BanList::open(tmp_ / "bans.db", options_);
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().errnum, EBADMSG);
  EXPECT_NE(list.error().message().find("bans.db"), std::string::npos);
}

TEST_F(BanListTest, RefusesAForeignDatabase) {
  {
    auto db = db::Db::open(tmp_ / "bans.db", db::Db::Mode::kReadWrite);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("CREATE TABLE entries(path TEXT)"));
  }
  auto list = BanList::open(tmp_ / "bans.db", options_);
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().errnum, EBADMSG);
  EXPECT_NE(list.error().message().find("not a ban list"), std::string::npos);
}

TEST_F(BanListTest, RefusesANewerSchema) {
  {
    auto db = db::Db::open(tmp_ / "bans.db", db::Db::Mode::kReadWrite);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("PRAGMA user_version = 9"));
  }
  auto list = BanList::open(tmp_ / "bans.db", options_);
  ASSERT_FALSE(list);
  EXPECT_NE(list.error().message().find("newer"), std::string::npos);
}

TEST_F(BanListTest, PrefixEscalationIsOffByDefault) {
  BanList list = open();
  for (int i = 1; i <= 20; ++i) {
    auto d = list.ban(ip(("2001:db8:1:2::" + std::to_string(i)).c_str()), logwatch(), now());
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->prefix_ban);
  }
}

TEST_F(BanListTest, ManyOffendersInOneSlash64BanThePrefix) {
  options_.prefix_offenders = 3;
  options_.prefix_window_s = 600;
  BanList list = open();
  // Two addresses of the /64 and one of the next /64: nothing yet.
  ASSERT_FALSE(list.ban(ip("2001:db8:1:2::a"), logwatch(), now())->prefix_ban);
  ASSERT_FALSE(list.ban(ip("2001:db8:1:3::a"), logwatch(), now())->prefix_ban);
  clock_.advance(seconds(10));
  ASSERT_FALSE(list.ban(ip("2001:db8:1:2:ffff::b"), logwatch(), now())->prefix_ban);
  // The same address again (already banned) is not a new offender.
  ASSERT_FALSE(list.ban(ip("2001:db8:1:2::a"), logwatch(), now())->prefix_ban);
  // The third distinct one.
  auto d = list.ban(ip("2001:db8:1:2:1:2:3:4"), logwatch(), now());
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_TRUE(d->prefix_ban);
  const auto& p = *d->prefix_ban;
  EXPECT_EQ(p.entry.key(), "2001:db8:1:2::/64");
  EXPECT_EQ(p.entry.prefix, 64);
  EXPECT_EQ(p.entry.rule, "prefix-escalation");
  EXPECT_EQ(p.offenders, 3u);
  EXPECT_EQ(p.ttl.count(), 600);
  EXPECT_TRUE(p.entry.network().contains(ip("2001:db8:1:2:dead::1")));
  EXPECT_FALSE(p.entry.network().contains(ip("2001:db8:1:3::1")));
  // Recorded: listed, kept across a reopen, applied as a network.
  auto all = list.list();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 5u);
  BanList reopened = open();
  auto again = reopened.list();
  ASSERT_TRUE(again);
  const auto applied = BanList::applied(*again);
  EXPECT_EQ(std::count_if(applied.begin(), applied.end(),
                          [](const AppliedBan& a) { return a.prefix == 64; }),
            1);
  // A fourth offender while the prefix is banned makes no second prefix ban.
  EXPECT_FALSE(reopened.ban(ip("2001:db8:1:2::99"), logwatch(), now())->prefix_ban);
  // It expires like any ban, and unban(Cidr) lifts one by hand.
  EXPECT_TRUE(*reopened.unban(*Cidr::parse("2001:db8:1:2::/64")));
}

TEST_F(BanListTest, OffendersOutsideTheWindowDoNotAddUp) {
  options_.prefix_offenders = 2;
  options_.prefix_window_s = 60;
  BanList list = open();
  ASSERT_FALSE(list.ban(ip("192.0.2.7"), logwatch(), now())->prefix_ban);
  clock_.advance(seconds(61));
  ASSERT_FALSE(list.ban(ip("192.0.2.8"), logwatch(), now())->prefix_ban);
  clock_.advance(seconds(30));
  auto d = list.ban(ip("192.0.2.200"), logwatch(), now());
  ASSERT_TRUE(d->prefix_ban);
  EXPECT_EQ(d->prefix_ban->entry.key(), "192.0.2.0/24");
  EXPECT_EQ(d->prefix_ban->offenders, 2u);
}

TEST_F(BanListTest, APrefixHoldingAnAllowlistedAddressIsNeverBanned) {
  options_.prefix_offenders = 2;
  options_.allowlist = {"198.51.100.10/32", "2001:db8:5:1::10/128"};
  BanList list = open();
  ASSERT_FALSE(list.ban(ip("198.51.100.1"), logwatch(), now())->prefix_ban);
  EXPECT_FALSE(list.ban(ip("198.51.100.2"), logwatch(), now())->prefix_ban);
  ASSERT_FALSE(list.ban(ip("2001:db8:5:1::1"), logwatch(), now())->prefix_ban);
  EXPECT_FALSE(list.ban(ip("2001:db8:5:1::2"), logwatch(), now())->prefix_ban);
  EXPECT_EQ(*list.size(), 4u);  // the four addresses, no prefix
}

TEST_F(BanListTest, PrefixBansAreCapped) {
  options_.prefix_offenders = 2;
  options_.max_prefix_bans = 1;
  BanList list = open();
  ASSERT_TRUE(list.ban(ip("192.0.2.1"), logwatch(), now()));
  ASSERT_TRUE(list.ban(ip("192.0.2.2"), logwatch(), now())->prefix_ban);
  ASSERT_TRUE(list.ban(ip("203.0.113.1"), logwatch(), now()));
  auto d = list.ban(ip("203.0.113.2"), logwatch(), now());
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->prefix_ban);  // the cap: the addresses are still banned one by one
  EXPECT_EQ(d->outcome, BanOutcome::kNew);
}

TEST_F(BanListTest, ManualBansDoNotMakeAPrefix) {
  options_.prefix_offenders = 2;
  BanList list = open();
  const BanRequest manual{"manual", "by hand", "manual", std::nullopt, false};
  ASSERT_FALSE(list.ban(ip("192.0.2.1"), manual, now())->prefix_ban);
  EXPECT_FALSE(list.ban(ip("192.0.2.2"), manual, now())->prefix_ban);
}

}  // namespace
}  // namespace mamori::ban
