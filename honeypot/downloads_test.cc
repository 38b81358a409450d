#include "honeypot/downloads.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/hash/sha256.h"
#include "honeypot/config.h"
#include "testing/temp_dir.h"

namespace mamori::honeypot {
namespace {

bool public_text(const char* text) {
  sockaddr_storage ss{};
  if (inet_pton(AF_INET, text, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    ss.ss_family = AF_INET;
    return public_address(reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in));
  }
  EXPECT_EQ(inet_pton(AF_INET6, text, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr), 1) << text;
  ss.ss_family = AF_INET6;
  return public_address(reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in6));
}

TEST(DownloadPolicy, AddressesThatMustNotBeReached) {
  for (const char* a : {"127.0.0.1",
                        "127.1.2.3",
                        "10.0.0.1",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "169.254.169.254",
                        "100.64.0.1",
                        "0.0.0.0",
                        "224.0.0.1",
                        "255.255.255.255",
                        "240.0.0.1",
                        "192.0.2.1",
                        "::1",
                        "::",
                        "fe80::1",
                        "fd00::1",
                        "fc00::1",
                        "ff02::1",
                        "::ffff:127.0.0.1",
                        "::ffff:10.1.2.3",
                        "64:ff9b::a9fe:a9fe",
                        "2002:7f00:1::1",
                        "2001:db8::1"})
    EXPECT_FALSE(public_text(a)) << a;
  for (const char* a : {"1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2a00:1450::1",
                        "::ffff:8.8.8.8", "64:ff9b::808:808"})
    EXPECT_TRUE(public_text(a)) << a;
}

TEST(DownloadPolicy, UrlsRefusedBeforeAnyFetch) {
  EXPECT_EQ(url_refusal("http://malware.example/bot.sh", false), "");
  EXPECT_EQ(url_refusal("HTTPS://malware.example:8443/x", false), "");
  EXPECT_EQ(url_refusal("http://8.8.8.8/x", false), "");
  for (const char* u : {"ftp://malware.example/x", "file:///etc/passwd", "gopher://x/",
                        "malware.example/bot.sh", "dict://127.0.0.1:6379/"})
    EXPECT_EQ(url_refusal(u, false), kPolicyScheme) << u;
  for (const char* u :
       {"http://127.0.0.1/x", "http://127.1/x", "http://2130706433/x", "http://0x7f.1/x",
        "http://user:pw@169.254.169.254/latest/meta-data/", "http://[::1]:8080/",
        "http://localhost/", "http://LOCALHOST:80/", "http://a.localhost/", "http://10.0.0.5/",
        "http://[::ffff:127.0.0.1]/", "http://[fe80::1%25eth0]/"})
    EXPECT_EQ(url_refusal(u, false), kPolicyAddress) << u;
  // The test key: loopback allowed; the scheme rule stays.
  EXPECT_EQ(url_refusal("http://127.0.0.1:8000/x", true), "");
  EXPECT_EQ(url_refusal("file:///etc/passwd", true), kPolicyScheme);
}

TEST(DownloadPolicy, BudgetPerSessionPerHourConcurrent) {
  Downloads d;
  d.per_session = 2;
  d.per_hour = 3;
  d.concurrent = 2;
  FetchBudget b(d);
  constexpr int64_t kMinute = 60'000'000'000;
  uint32_t s1 = 0, s2 = 0, s3 = 0;
  EXPECT_EQ(b.start(s1, 0), "");
  EXPECT_EQ(b.start(s1, kMinute), "");
  EXPECT_EQ(b.start(s1, kMinute), kPolicyPerSession);
  EXPECT_EQ(s1, 2u);
  EXPECT_EQ(b.start(s2, kMinute), kPolicyConcurrent);
  b.finished();
  EXPECT_EQ(b.start(s2, 2 * kMinute), "");
  b.finished();
  EXPECT_EQ(b.start(s2, 3 * kMinute), kPolicyPerHour) << "three started within the hour";
  EXPECT_EQ(s2, 1u) << "a refusal is not counted";
  // The first start leaves the window an hour later.
  EXPECT_EQ(b.start(s3, 60 * kMinute), "");
  EXPECT_EQ(b.start(s3, 60 * kMinute), kPolicyPerHour);
  Downloads none;
  none.per_session = 0;
  FetchBudget zero(none);
  uint32_t s = 0;
  EXPECT_EQ(zero.start(s, 0), kPolicyPerSession);
}

TEST(DownloadStore, ContentAddressedPrivateAndWithinQuota) {
  testing::TempDir t;
  t.mkdir("downloads", 0700);
  t.write("downloads/tmp-leftover", "half a file");
  t.write("downloads/README", "not ours");
  const std::string dir = t / "downloads";
  auto s = DownloadStore::open(dir, 10'000);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(access((dir + "/tmp-leftover").c_str(), F_OK), -1) << "a leftover temporary file";
  EXPECT_EQ(s->files(), 0u);

  const std::string a(4000, 'a'), b(4000, 'b'), c(4000, 'c');
  auto r = s->store(a, 1000);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->sha256, hash::sha256(a).hex());
  EXPECT_FALSE(r->existed);
  struct stat st {};
  ASSERT_EQ(stat((dir + "/" + r->sha256).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(t.read("downloads/" + r->sha256), a);

  // The same content again: stored once.
  r = s->store(a, 2000);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->existed);
  EXPECT_EQ(s->files(), 1u);
  EXPECT_EQ(s->bytes(), 4000u);

  ASSERT_TRUE(s->store(b, 3000));
  // 12,000 bytes > 10,000: the oldest (a) goes, and says so.
  r = s->store(c, 4000);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->pruned.size(), 1u);
  EXPECT_EQ(r->pruned[0].sha256, hash::sha256(a).hex());
  EXPECT_EQ(r->pruned[0].size, 4000u);
  EXPECT_FALSE(s->has(hash::sha256(a).hex()));
  EXPECT_EQ(access((dir + "/" + hash::sha256(a).hex()).c_str(), F_OK), -1);
  EXPECT_EQ(s->bytes(), 8000u);

  // b captured again is the newest: the next prune takes c.
  ASSERT_TRUE(s->store(b, 5000));
  r = s->store(std::string(4000, 'd'), 6000);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->pruned.size(), 1u);
  EXPECT_EQ(r->pruned[0].sha256, hash::sha256(c).hex());

  // Reopened (a restart): what is there counts against the quota.
  auto again = DownloadStore::open(dir, 10'000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->files(), 2u);
  EXPECT_EQ(again->bytes(), 8000u);
  EXPECT_EQ(t.read("downloads/README"), "not ours");
  // Ordered by the time each was stored (their mtime): b (5000) before d (6000).
  r = again->store(std::string(4000, 'e'), 7000);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->pruned.size(), 1u);
  EXPECT_EQ(r->pruned[0].sha256, hash::sha256(b).hex());
}

TEST(DownloadStore, ASymlinkedDirectoryIsRefused) {
  testing::TempDir t;
  t.mkdir("elsewhere", 0700);
  ASSERT_EQ(symlink((t / "elsewhere").c_str(), (t / "downloads").c_str()), 0);
  EXPECT_FALSE(DownloadStore::open(t / "downloads", 1 << 20));
}

}  // namespace
}  // namespace mamori::honeypot
