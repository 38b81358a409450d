#include "agent/ban/banner.h"

#include <gtest/gtest.h>

#include "testing/sim_clock.h"
#include "testing/temp_dir.h"

namespace mamori::ban {
namespace {

using std::chrono::seconds;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

// Records what it was asked; fails when told to.
class RecordingBackend final : public BanBackend {
 public:
  Status ban(const IpAddress& ip, seconds ttl, const nlohmann::json&) override {
    if (failing) return fail("fake ban", ip.to_string(), EIO);
    calls.push_back("ban " + ip.to_string() + " " + std::to_string(ttl.count()));
    return ok();
  }
  Status unban(const IpAddress& ip, const nlohmann::json&) override {
    calls.push_back("unban " + ip.to_string());
    return ok();
  }
  Result<std::vector<AppliedBan>> list() override { return synced; }
  Status sync(const std::vector<AppliedBan>& bans) override {
    synced = bans;
    return ok();
  }
  std::string_view name() const override { return "recording"; }

  bool failing = false;
  std::vector<std::string> calls;
  std::vector<AppliedBan> synced;
};

class BannerTest : public ::testing::Test {
 protected:
  BannerTest() : list_(*BanList::open(tmp_ / "bans.db", BanOptions{})) {}

  testing::TempDir tmp_;
  testing::SimClock clock_;
  BanList list_;
  RecordingBackend backend_;
  Banner banner_{list_, backend_, clock_};
};

TEST_F(BannerTest, AppliesWhatTheListDecidesOnce) {
  const BanRequest r{"sqli", "", "logwatch", std::nullopt, false};
  ASSERT_TRUE(banner_.ban(ip("192.0.2.7"), r, {}));
  auto again = banner_.ban(ip("192.0.2.7"), r, {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->outcome, BanOutcome::kAlreadyBanned);
  EXPECT_EQ(backend_.calls, std::vector<std::string>{"ban 192.0.2.7 600"});
}

TEST_F(BannerTest, ABackendFailureKeepsTheBanRecordedForSync) {
  backend_.failing = true;
  EXPECT_FALSE(banner_.ban(ip("192.0.2.7"), {"sqli", "", "logwatch", std::nullopt, false}, {}));
  ASSERT_TRUE(banner_.sync());
  ASSERT_EQ(backend_.synced.size(), 1u);
  EXPECT_EQ(backend_.synced[0].ip, ip("192.0.2.7"));
  EXPECT_EQ(backend_.synced[0].expires_at, banner_.now() + 600);
}

TEST_F(BannerTest, ExpireLiftsExpiredBansInTheBackend) {
  ASSERT_TRUE(banner_.ban(ip("192.0.2.7"), {"m", "", "manual", seconds(5), false}, {}));
  ASSERT_TRUE(banner_.ban(ip("192.0.2.8"), {"m", "", "manual", kPermanent, false}, {}));
  clock_.advance(seconds(5));
  auto expired = banner_.expire();
  ASSERT_TRUE(expired);
  ASSERT_EQ(expired->entries.size(), 1u);
  EXPECT_TRUE(expired->errors.empty());
  EXPECT_EQ(backend_.calls.back(), "unban 192.0.2.7");
  auto unbanned = banner_.unban(ip("192.0.2.8"), {});
  ASSERT_TRUE(unbanned);
  EXPECT_TRUE(*unbanned);
  EXPECT_EQ(backend_.calls.back(), "unban 192.0.2.8");
}

TEST(OpenBackend, RefusesUnknownOrIncompleteBackends) {
  testing::SimClock clock;
  BanOptions options;
  options.backend = "iptables";
  EXPECT_EQ(open_backend(options, clock).error().errnum, EINVAL);
  options.backend = "hook";
  EXPECT_EQ(open_backend(options, clock).error().errnum, EINVAL);
  options.hook = {"/bin/true"};
  ASSERT_TRUE(open_backend(options, clock));
  options.backend = "none";
  auto none = open_backend(options, clock);
  ASSERT_TRUE(none);
  EXPECT_EQ((*none)->name(), "none");
}

}  // namespace
}  // namespace mamori::ban
