#include "agent/ban/hook/hook_backend.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "testing/sim_clock.h"
#include "testing/temp_dir.h"

namespace mamori::ban {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

class HookBackendTest : public ::testing::Test {
 protected:
  // An executable shell script that gets `body`; its path.
  std::string script(const std::string& body) {
    tmp_.write("hook.sh", "#!/bin/sh\n" + body, 0755);
    ::chmod((tmp_ / "hook.sh").c_str(), 0755);
    return tmp_ / "hook.sh";
  }
  nlohmann::json input() { return nlohmann::json::parse(tmp_.read("in.json")); }

  testing::TempDir tmp_;
  testing::SimClock clock_;
};

TEST_F(HookBackendTest, SendsOneJsonLineAndTheEnvironment) {
  HookBackend hook(
      {script(
           "cat > \"$1\"\necho \"$MAMORI_BAN_OP $MAMORI_BAN_IP $MAMORI_BAN_TTL\" > \"$1.env\"\n"),
       tmp_ / "in.json"},
      milliseconds(10'000), clock_);
  const nlohmann::json event = {{"rule", {{"name", "sqli"}}}, {"url", {{"original", "/?q=\xff"}}}};
  ASSERT_TRUE(hook.ban(ip("192.0.2.7"), seconds(600), event));
  const std::string raw = tmp_.read("in.json");
  EXPECT_EQ(raw.back(), '\n');
  EXPECT_EQ(raw.find('\n'), raw.size() - 1);
  auto in = input();
  EXPECT_EQ(in["op"], "ban");
  EXPECT_EQ(in["ip"], "192.0.2.7");
  EXPECT_EQ(in["family"], "ipv4");
  EXPECT_EQ(in["ttl_s"], 600);
  EXPECT_EQ(in["event"]["rule"]["name"], "sqli");
  EXPECT_EQ(tmp_.read("in.json.env"), "ban 192.0.2.7 600\n");

  ASSERT_TRUE(hook.unban(ip("2001:db8::1"), {}));
  in = input();
  EXPECT_EQ(in["op"], "unban");
  EXPECT_EQ(in["family"], "ipv6");
  EXPECT_EQ(in["ip"], "2001:db8::1");
}

TEST_F(HookBackendTest, SyncSendsTheCurrentBans) {
  HookBackend hook({script("cat > \"$1\"\n"), tmp_ / "in.json"}, milliseconds(10'000), clock_);
  const int64_t now = std::chrono::duration_cast<seconds>(clock_.now().time_since_epoch()).count();
  ASSERT_TRUE(
      hook.sync({{ip("192.0.2.1"), now + 60}, {ip("192.0.2.2"), now - 1}, {ip("2001:db8::2"), 0}}));
  auto in = input();
  EXPECT_EQ(in["op"], "sync");
  ASSERT_EQ(in["bans"].size(), 2u);
  EXPECT_EQ(in["bans"][0]["ttl_s"], 60);
  EXPECT_EQ(in["bans"][1]["ip"], "2001:db8::2");
  EXPECT_EQ(in["bans"][1]["ttl_s"], 0);
}

TEST_F(HookBackendTest, AFailureCarriesTheExitStatusAndOutput) {
  HookBackend hook({script("echo 'aws: AccessDenied' >&2\nexit 3\n")}, milliseconds(10'000),
                   clock_);
  auto st = hook.ban(ip("192.0.2.7"), seconds(600), {});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("exited 3: aws: AccessDenied"), std::string::npos)
      << st.error().message();
  EXPECT_NE(st.error().message().find("ban hook ban"), std::string::npos);
}

TEST_F(HookBackendTest, AHangingHookTimesOut) {
  HookBackend hook({script("exec sleep 60\n")}, milliseconds(200), clock_);
  auto st = hook.unban(ip("192.0.2.7"), {});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("timed out"), std::string::npos) << st.error().message();
}

TEST_F(HookBackendTest, AMissingCommandAndListAreErrors) {
  HookBackend hook({tmp_ / "missing"}, milliseconds(1000), clock_);
  auto st = hook.ban(ip("192.0.2.7"), seconds(1), {});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("No such file"), std::string::npos) << st.error().message();
  EXPECT_EQ(hook.list().error().errnum, ENOTSUP);
}

}  // namespace
}  // namespace mamori::ban
