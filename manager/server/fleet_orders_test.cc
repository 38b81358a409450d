#include "manager/server/fleet_orders.h"

#include <gtest/gtest.h>

namespace mamori::manager {
namespace {

constexpr int64_t kNow = 1'700'000'000'000'000'000;

TEST(FleetOrders, AddressesAreWrittenAsTheAgentsReadThem) {
  EXPECT_EQ(*canonical_address("2001:DB8:0::7"), "2001:db8::7");
  EXPECT_EQ(*canonical_address("192.0.2.7"), "192.0.2.7");
  for (const char* bad : {"", "192.0.2.256", "example.org", "192.0.2.7/24", "1.2.3.4 "})
    EXPECT_FALSE(canonical_address(bad)) << bad;
}

TEST(FleetOrders, ABanIsCheckedWhole) {
  auto ban = check_ban({"192.0.2.7", 600, "probing"}, {}, kNow);
  ASSERT_TRUE(ban) << ban.error();
  EXPECT_EQ(ban->expires_at_ns, kNow + 600'000'000'000);
  EXPECT_EQ(ban->origin, "manager");
  EXPECT_FALSE(ban->pushed);  // for the manager to push
  EXPECT_EQ(check_ban({"192.0.2.7", 0, ""}, {}, kNow)->expires_at_ns, 0);  // permanent
  EXPECT_FALSE(check_ban({"192.0.2.7", -1, ""}, {}, kNow));
  EXPECT_FALSE(check_ban({"192.0.2.7", 11LL * 366 * 86400, ""}, {}, kNow));
  EXPECT_FALSE(check_ban({"192.0.2.7", 1, std::string(1025, 'x')}, {}, kNow));
  EXPECT_TRUE(check_ban({"192.0.2.7", 1, std::string(1024, 'x')}, {}, kNow));
}

TEST(FleetOrders, NeverBanKeepsAnAddressFromEveryFleetBan) {
  config::ManagerConfig m;
  m.never_ban.push_back("10.55.0.0/16");
  const auto never = never_ban_networks(m);
  ASSERT_EQ(never.size(), 3u);  // the default loopback networks, and this one
  auto refused = check_ban({"10.55.3.4", 600, ""}, never, kNow);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("10.55.0.0/16"), std::string::npos) << refused.error();
  EXPECT_FALSE(check_ban({"127.0.0.1", 600, ""}, never, kNow));
  EXPECT_FALSE(check_ban({"::1", 600, ""}, never, kNow));
  EXPECT_FALSE(check_ban({"::ffff:10.55.0.9", 600, ""}, never, kNow));  // the same address
  EXPECT_TRUE(check_ban({"10.56.0.1", 600, ""}, never, kNow));
  const std::vector<std::string> ban{"ban", "10.55.0.1"}, unban{"unban", "10.55.0.1"};
  EXPECT_FALSE(command_request(ban, 0, "", never));
  // Lifting stays possible: the ban may predate the never_ban entry.
  EXPECT_TRUE(command_request(unban, 0, "", never));
  EXPECT_TRUE(command_request(ban, 0, "", {}));
}

TEST(FleetOrders, CommandsAreTheControlProtocolsRequests) {
  auto words = [](std::initializer_list<std::string> w) { return std::vector<std::string>(w); };
  auto mode = command_request(words({"mode", "*", "preserve"}), 0, "", {});
  ASSERT_TRUE(mode) << mode.error();
  EXPECT_EQ(proto::to_json(*mode)["cmd"], "mode");
  EXPECT_EQ(proto::to_json(*mode)["mode"], "preserve");
  auto ban = command_request(words({"ban", "2001:DB8::1"}), 60, "", {});
  ASSERT_TRUE(ban) << ban.error();
  EXPECT_EQ(proto::to_json(*ban)["addresses"], nlohmann::json::array({"2001:db8::1"}));
  EXPECT_EQ(proto::to_json(*ban)["origin"], "manager");
  EXPECT_TRUE(command_request(words({"verify"}), 0, "", {}));
  EXPECT_TRUE(command_request(words({"heal-clear"}), 0, "", {}));
  EXPECT_TRUE(command_request(words({"unban", "192.0.2.1"}), 0, "", {}));
  for (const auto& bad : {words({}), words({"reboot"}), words({"verify", "now"}),
                          words({"mode", "*"}), words({"mode", "*", "chaos"}),
                          words({"ban", "nobody"}), words({"ban", "192.0.2.1", "192.0.2.2"})})
    EXPECT_FALSE(command_request(bad, 0, "", {})) << (bad.empty() ? "" : bad[0]);
  EXPECT_FALSE(command_request(words({"ban", "192.0.2.1"}), -5, "", {}));
}

TEST(FleetOrders, EvidenceIsOneAgentsItem) {
  auto words = [](std::initializer_list<std::string> w) { return std::vector<std::string>(w); };
  auto e = command_request(words({"evidence", "17"}), 0, "", {});
  ASSERT_TRUE(e) << e.error();
  EXPECT_EQ(proto::to_json(*e)["id"], 17);
  for (const auto& bad : {words({"evidence"}), words({"evidence", "0"}), words({"evidence", "-3"}),
                          words({"evidence", "7x"}), words({"evidence", "99999999999999999999"}),
                          words({"evidence", "1", "2"})})
    EXPECT_FALSE(command_request(bad, 0, "", {})) << bad.size();
  EXPECT_TRUE(check_command_targets(*e, {"key", "", false}));
  EXPECT_FALSE(check_command_targets(*e, {"", "web", false}));
  EXPECT_FALSE(check_command_targets(*e, {"", "", true}));
  auto verify = command_request(words({"verify"}), 0, "", {});
  EXPECT_TRUE(check_command_targets(*verify, {"", "", true}));
  auto site = command_request(words({"site"}), 0, "", {});
  ASSERT_TRUE(site) << site.error();
  EXPECT_EQ(proto::to_json(*site)["cmd"], "site");
  EXPECT_TRUE(check_command_targets(*site, {"", "web", false}));
  EXPECT_FALSE(command_request(words({"site", "/srv/www"}), 0, "", {}));
}

TEST(FleetOrders, AcceptGoesToOneAgentAndRestoreToAny) {
  auto words = [](std::initializer_list<std::string> w) { return std::vector<std::string>(w); };
  auto a = command_request(words({"accept", "/srv/www", "index.php", "17"}), 0, "", {});
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(proto::to_json(*a)["cmd"], "accept");
  EXPECT_EQ(proto::to_json(*a)["evidence"], 17);
  EXPECT_TRUE(command_request(words({"accept", "/srv/www", "wp-content"}), 0, "", {}));
  auto r = command_request(words({"restore", "/srv/www", "index.php"}), 0, "", {});
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(proto::to_json(*r)["path"], "index.php");
  for (const auto& bad :
       {words({"accept"}), words({"accept", "/srv/www"}), words({"accept", "/srv/www", "../x"}),
        words({"accept", "/srv/www", "x", "0"}), words({"restore", "/srv/www", "x", "3"}),
        words({"restore", "", "x"}), words({"restore", "/srv/www", "/etc/passwd"})})
    EXPECT_FALSE(command_request(bad, 0, "", {})) << bad.size();
  EXPECT_TRUE(check_command_targets(*a, {"key", "", false}));
  EXPECT_FALSE(check_command_targets(*a, {"", "web", false}));
  EXPECT_TRUE(check_command_targets(*r, {"", "web", false}));
}

TEST(FleetOrders, ExactlyOneTarget) {
  EXPECT_TRUE(check_targets({"key", "", false}));
  EXPECT_TRUE(check_targets({"", "web", false}));
  EXPECT_TRUE(check_targets({"", "", true}));
  EXPECT_FALSE(check_targets({"", "", false}));
  EXPECT_FALSE(check_targets({"key", "web", false}));
  EXPECT_FALSE(check_targets({"key", "", true}));
}

}  // namespace
}  // namespace mamori::manager
