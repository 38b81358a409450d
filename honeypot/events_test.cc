#include "honeypot/events.h"

#include <gtest/gtest.h>

#include "core/proto/actions.h"
#include "honeypot/banner.h"

namespace mamori::honeypot {
namespace {

constexpr int64_t kNow = 1'700'000'000'000'000'000;

TEST(HoneypotEvents, ConnectionNamesTheSessionAndTheClient) {
  ClientHello h;
  h.version = "SSH-2.0-libssh2_1.10.0";
  h.hassh = "0123456789abcdef0123456789abcdef";
  h.hassh_algorithms = "a;b;c;d";
  Peer p{"192.0.2.7", 40000, ""};
  const auto e = connection_event(p, h, true, "OpenSSH_9.2p1 Debian-2+deb12u3", kNow);
  EXPECT_EQ(e.action(), proto::action::kSshConnection);
  EXPECT_EQ(e.get("event.dataset"), kDataset);
  EXPECT_EQ(e.get("source.ip"), "192.0.2.7");
  EXPECT_EQ(e.get("source.port"), 40000);
  EXPECT_EQ(e.get("mamori.ssh.session"), e.id());
  EXPECT_EQ(e.get("mamori.ssh.hassh"), h.hassh);
  EXPECT_EQ(e.get("mamori.ssh.client_version"), h.version);
  EXPECT_EQ(e.get("mamori.ssh.server_version"), "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3");
  // Without a complete KEXINIT there is no HASSH field at all (never an empty one).
  const auto partial = connection_event(p, h, false, "x", kNow);
  EXPECT_TRUE(partial.get("mamori.ssh.hassh").is_null());
}

TEST(HoneypotEvents, LoginAttempts) {
  Peer p{"2001:db8::1", 5, "sess"};
  LoginAttempt a;
  a.user = "root";
  a.method = "password";
  a.password = "hunter2\xff";  // any bytes: escaped when serialised
  a.attempt = 3;
  auto e = login_event(p, a, kNow);
  EXPECT_EQ(e.action(), proto::action::kSshLoginFailed);
  EXPECT_EQ(e.get("event.outcome"), "failure");
  EXPECT_EQ(e.get("user.name"), "root");
  EXPECT_EQ(e.get("mamori.ssh.session"), "sess");
  EXPECT_EQ(e.get("mamori.ssh.attempt"), 3);
  EXPECT_NE(e.to_json_line().find("\"password\":\"hunter2"), std::string::npos);
  a.success = true;
  EXPECT_EQ(login_event(p, a, kNow).action(), proto::action::kSshLoginSucceeded);
  LoginAttempt k;
  k.user = "git";
  k.method = "publickey";
  k.key_type = "ssh-ed25519";
  k.key_sha256 = "SHA256:abc";
  e = login_event(p, k, kNow);
  EXPECT_TRUE(e.get("mamori.ssh.password").is_null());
  EXPECT_EQ(e.get("mamori.ssh.key_fingerprint"), "SHA256:abc");
}

TEST(HoneypotEvents, CommandDownloadLimitEnd) {
  Peer p{"198.51.100.1", 1, "s"};
  auto c = command_event(p, "root", "uname -a", false, 0, kNow);
  EXPECT_EQ(c.get("process.command_line"), "uname -a");
  EXPECT_TRUE(c.get("mamori.ssh.truncated").is_null());
  DownloadResult off;
  off.result = "not-fetched";
  auto d = download_event(p, "root", "http://x/y", off, kNow);
  EXPECT_EQ(d.action(), proto::action::kSshDownloadAttempted);
  EXPECT_EQ(d.get("url.original"), "http://x/y");
  EXPECT_EQ(d.get("mamori.ssh.download_result"), "not-fetched");
  EXPECT_TRUE(d.get("file.hash.sha256").is_null());
  DownloadResult got;
  got.result = "fetched";
  got.policy = "max_kb";
  got.truncated = true;
  got.sha256 = std::string(64, 'a');
  got.size = 1024;
  got.content_type = "text/x-php";
  got.http_status = 200;
  d = download_event(p, "root", "http://x/y", got, kNow);
  EXPECT_EQ(d.get("file.hash.sha256"), std::string(64, 'a'));
  EXPECT_EQ(d.get("file.size"), 1024);
  EXPECT_EQ(d.get("file.mime_type"), "text/x-php");
  EXPECT_EQ(d.get("mamori.ssh.download_policy"), "max_kb");
  EXPECT_EQ(d.get("mamori.ssh.download_truncated"), true);
  EXPECT_EQ(d.get("http.response.status_code"), 200);
  DownloadResult refused;
  refused.result = "refused";
  refused.policy = "address";
  d = download_event(p, "root", "http://127.0.0.1/", refused, kNow);
  EXPECT_EQ(d.get("mamori.ssh.download_policy"), "address");
  EXPECT_NE(d.get("message").get<std::string>().find("refused by address"), std::string::npos);
  auto pruned = download_pruned_event(std::string(64, 'b'), 10, 1 << 20, kNow);
  EXPECT_EQ(pruned.action(), proto::action::kSshDownloadPruned);
  EXPECT_EQ(pruned.get("mamori.ssh.download_policy"), "quota_mb");
  EXPECT_TRUE(pruned.get("source.ip").is_null());
  auto f = forward_event(p, "root", "smtp.example", 25, "127.0.0.1", 4444, kNow);
  EXPECT_EQ(f.action(), proto::action::kSshForwardAttempted);
  EXPECT_EQ(f.get("destination.address"), "smtp.example");
  EXPECT_EQ(f.get("destination.port"), 25);
  auto l = limit_event(p, "sessions-per-address", "refuse", 16, kNow);
  EXPECT_EQ(l.get("mamori.ssh.limit"), "sessions-per-address");
  EXPECT_EQ(l.get("mamori.ssh.policy"), "refuse");
  auto end = session_end_event(p, "logout", 2'500'000'000, 100, 200, 4, kNow);
  EXPECT_EQ(end.get("event.duration"), 2'500'000'000);
  EXPECT_EQ(end.get("source.bytes"), 100);
  EXPECT_EQ(end.get("mamori.ssh.commands"), 4);
}

TEST(Banner, FoundInAnSshdBinary) {
  using namespace std::string_literals;
  const std::string bin =
      "junk\0OpenSSH_2.3.0*,OpenSSH_2.5*\0OpenSSH_9.2p1 Debian-2+deb12u10\0usage: "s;
  EXPECT_EQ(find_openssh_release(bin), "OpenSSH_9.2p1 Debian-2+deb12u10");
  EXPECT_EQ(find_openssh_release("x\0OpenSSH_9.6p1\0"s), "OpenSSH_9.6p1");
  EXPECT_EQ(find_openssh_release("OpenSSH_7.0*\0"s), "");
  EXPECT_EQ(resolve_banner("OpenSSH_8.4p1", "/nonexistent", nullptr), "OpenSSH_8.4p1");
  std::string why;
  EXPECT_EQ(resolve_banner("auto", "/nonexistent/sshd", &why), kDefaultBanner);
  EXPECT_FALSE(why.empty());
}

}  // namespace
}  // namespace mamori::honeypot
