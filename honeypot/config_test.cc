#include "honeypot/config.h"

#include <gtest/gtest.h>

namespace mamori::honeypot {
namespace {

TEST(HoneypotConfig, DefaultsAndAFullFile) {
  auto c = parse_config(R"(
listen = "127.0.0.1:2022"
state_dir = "/var/lib/hp/"
user = "nobody"
banner = "OpenSSH_9.2p1 Debian-2+deb12u3"
hostname = "web-07"
[limits]
sessions = 100
sessions_per_address = 2
auth_attempts = 3
session_bytes = 65536
session_seconds = 30
[[accepted]]
user = "root"
password = "123456"
[[accepted]]
user = "admin"
password = ""
)",
                        "hp.toml");
  ASSERT_TRUE(c) << c.error().text();
  EXPECT_EQ(c->listen_address, "127.0.0.1");
  EXPECT_EQ(c->listen_port, 2022);
  EXPECT_EQ(c->state_dir, "/var/lib/hp");
  EXPECT_EQ(c->limits.sessions_per_address, 2u);
  EXPECT_EQ(c->limits.session_seconds, 30u);
  EXPECT_EQ(c->limits.output_bytes, 4096u);  // default kept
  ASSERT_EQ(c->accepted.size(), 2u);
  EXPECT_EQ(c->accepted[1].user, "admin");
  EXPECT_EQ(c->accepted[1].password, "");

  auto d = parse_config("", "empty.toml");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->listen_port, 2222);
  EXPECT_EQ(d->banner, "auto");
  EXPECT_EQ(d->user, "mamori-honeypot");
  EXPECT_TRUE(d->accepted.empty());
}

// Each bad value: its code, its key, and a line number.
TEST(HoneypotConfig, BadValuesAreNamedWithTheirPlace) {
  struct Case {
    const char* text;
    const char* code;
    const char* key;
  };
  const Case cases[] = {
      {"listen = \"1.2.3.4\"", "honeypot.value", "listen"},
      {"listen = \"1.2.3.4:0\"", "honeypot.value", "listen"},
      {"listen = \"1.2.3.4:70000\"", "honeypot.value", "listen"},
      {"listen = \"host.example:22\"", "honeypot.value", "listen"},
      {"listen = 22", "honeypot.type", "listen"},
      {"state_dir = \"relative/dir\"", "honeypot.value", "state_dir"},
      {"state_dir = \"/a/../b\"", "honeypot.value", "state_dir"},
      {"banner = \"SSH-2.0-OpenSSH\"", "honeypot.value", "banner"},
      {"banner = \"Open\\nSSH\"", "honeypot.value", "banner"},
      {"hostname = \"a b\"", "honeypot.value", "hostname"},
      {"user = \"\"", "honeypot.value", "user"},
      {"colour = 1", "honeypot.unknown_key", "colour"},
      {"[limits]\nsessions = 0", "honeypot.value", "limits.sessions"},
      {"[downloads]\nfetch = 1", "honeypot.type", "downloads.fetch"},
      {"[downloads]\nmax_kb = 0", "honeypot.value", "downloads.max_kb"},
      {"[downloads]\nquota_mb = 1\nmax_kb = 2048", "honeypot.value", "downloads.max_kb"},
      {"[downloads]\nconcurrent = 0", "honeypot.value", "downloads.concurrent"},
      {"[downloads]\nfollow = true", "honeypot.unknown_key", "downloads.follow"},
      {"[limits]\nsession_bytes = 10", "honeypot.value", "limits.session_bytes"},
      {"[limits]\nauth_attempts = -1", "honeypot.value", "limits.auth_attempts"},
      {"[limits]\nsesions = 5", "honeypot.unknown_key", "limits.sesions"},
      {"[limits]\noutbox_mb = 1", "honeypot.value", "limits.outbox_mb"},
      {"[limits]\ncommands = 0", "honeypot.value", "limits.commands"},
      {"[limits]\nforwards = \"many\"", "honeypot.type", "limits.forwards"},
      {"[[accepted]]\nuser = \"root\"", "honeypot.missing", "accepted[1].password"},
      {"[[accepted]]\nuser = \"\"\npassword = \"x\"", "honeypot.value", "accepted[1].user"},
      {"listen = ", "honeypot.syntax", ""},
  };
  for (const auto& c : cases) {
    auto r = parse_config(c.text, "bad.toml");
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code, c.code) << c.text << ": " << r.error().text();
    if (*c.key) {
      EXPECT_EQ(r.error().key, c.key) << c.text << ": " << r.error().text();
    }
    EXPECT_GE(r.error().line, 1u) << c.text;
  }
}

TEST(HoneypotConfig, ListenForms) {
  std::string a;
  uint16_t p = 0;
  EXPECT_TRUE(split_listen("[::1]:22", a, p));
  EXPECT_EQ(a, "::1");
  EXPECT_EQ(p, 22);
  EXPECT_TRUE(split_listen(":2222", a, p));
  EXPECT_EQ(a, "0.0.0.0");
  EXPECT_FALSE(split_listen("::1:22", a, p));  // IPv6 needs brackets
  EXPECT_FALSE(split_listen("1.2.3.4:22x", a, p));
}

TEST(HoneypotConfig, TooLargeAFileIsALimit) {
  std::string big(2 << 20, '#');
  auto r = parse_config(big, "big.toml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "honeypot.limit");
}

}  // namespace
}  // namespace mamori::honeypot
