#include "core/logparse/ip.h"

#include <arpa/inet.h>

#include <cstring>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace mamori::logparse {
namespace {

std::string round_trip(std::string_view text) {
  const auto ip = IpAddress::parse(text);
  return ip ? ip->to_string() : "<invalid>";
}

TEST(IpAddress, ParsesAndFormatsIpv4) {
  EXPECT_EQ(round_trip("1.2.3.4"), "1.2.3.4");
  EXPECT_EQ(round_trip("0.0.0.0"), "0.0.0.0");
  EXPECT_EQ(round_trip("255.255.255.255"), "255.255.255.255");
  const auto ip = IpAddress::parse("192.0.2.1");
  ASSERT_TRUE(ip);
  EXPECT_TRUE(ip->v4);
  EXPECT_EQ(*ip, IpAddress::from_v4(0xc0000201));
}

TEST(IpAddress, ParsesAndFormatsIpv6InRfc5952Form) {
  EXPECT_EQ(round_trip("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
  EXPECT_EQ(round_trip("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");  // first run wins
  EXPECT_EQ(round_trip("2001:0db8::0001"), "2001:db8::1");
  EXPECT_EQ(round_trip("::"), "::");
  EXPECT_EQ(round_trip("::1"), "::1");
  EXPECT_EQ(round_trip("1::"), "1::");
  EXPECT_EQ(round_trip("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");  // a single zero stays
  EXPECT_EQ(round_trip("fe80::1:2"), "fe80::1:2");
  EXPECT_EQ(round_trip("::1.2.3.4"), "::102:304");
  EXPECT_FALSE(IpAddress::parse("2001:db8::1")->v4);
}

TEST(IpAddress, MappedIpv4IsTheSameClientAsIpv4) {
  const auto mapped = IpAddress::parse("::ffff:1.2.3.4");
  const auto hex = IpAddress::parse("::FFFF:102:304");
  const auto plain = IpAddress::parse("1.2.3.4");
  ASSERT_TRUE(mapped && hex && plain);
  EXPECT_TRUE(mapped->v4);
  EXPECT_EQ(*mapped, *plain);
  EXPECT_EQ(*hex, *plain);
  EXPECT_EQ(mapped->to_string(), "1.2.3.4");
}

TEST(IpAddress, RefusesEverythingThatIsNotALiteral) {
  for (const char* bad : {"",
                          "-",
                          "localhost",
                          "example.com",
                          "1.2.3",
                          "1.2.3.4.5",
                          "256.1.1.1",
                          "01.2.3.4",
                          "1.2.3.04",
                          "1.2.3.4 ",
                          " 1.2.3.4",
                          "1.2.3.4:80",
                          "[::1]",
                          "fe80::1%eth0",
                          ":::",
                          "1::2::3",
                          ":1::",
                          "1:",
                          "1:2:3:4:5:6:7:8:9",
                          "1:2:3:4::5:6:7:8",
                          "12345::",
                          "::ffff:1.2.3",
                          "1.2.3.4::",
                          "::1.2.3.4:1",
                          "g::1",
                          "1.2.3.-1",
                          "1..2.3",
                          "\xff\xfe",
                          "1.2.3.4\n"}) {
    EXPECT_FALSE(IpAddress::parse(bad)) << bad;
  }
  EXPECT_FALSE(IpAddress::parse(std::string_view("1.2.3.4\0", 8)));
}

// The grammar is inet_pton's: any disagreement on random near-addresses is a bug here.
TEST(IpAddress, AgreesWithInetPton) {
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789abcdefABCDEF:.:.::0f";
  for (int n = 0; n < 200000; ++n) {
    std::string s(rng() % 24, ' ');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    unsigned char want[16];
    const bool is_v6 = s.find(':') != std::string::npos;
    const bool pton = inet_pton(is_v6 ? AF_INET6 : AF_INET, s.c_str(), want) == 1;
    const auto ip = IpAddress::parse(s);
    ASSERT_EQ(bool(ip), pton) << "'" << s << "'";
    if (!ip) continue;
    if (is_v6) {
      EXPECT_EQ(std::memcmp(ip->bytes.data(), want, 16), 0) << s;
    } else {
      EXPECT_EQ(std::memcmp(&ip->bytes[12], want, 4), 0) << s;
    }
    EXPECT_EQ(IpAddress::parse(ip->to_string()), ip) << s;
  }
}

TEST(Cidr, ParsesNetworksAndTestsMembership) {
  const auto ten = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(ten) << ten.error().message();
  EXPECT_TRUE(ten->contains(*IpAddress::parse("10.255.1.2")));
  EXPECT_TRUE(ten->contains(*IpAddress::parse("::ffff:10.1.1.1")));
  EXPECT_FALSE(ten->contains(*IpAddress::parse("11.0.0.1")));
  EXPECT_FALSE(ten->contains(*IpAddress::parse("a00::1")));  // same leading bits, other family
  EXPECT_EQ(ten->to_string(), "10.0.0.0/8");

  const auto doc = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(doc);
  EXPECT_TRUE(doc->contains(*IpAddress::parse("2001:db8:ffff::1")));
  EXPECT_FALSE(doc->contains(*IpAddress::parse("2001:db9::1")));
  EXPECT_FALSE(doc->contains(*IpAddress::parse("10.0.0.1")));

  const auto odd = Cidr::parse("192.168.4.0/22");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(*IpAddress::parse("192.168.7.255")));
  EXPECT_FALSE(odd->contains(*IpAddress::parse("192.168.8.0")));

  const auto one = Cidr::parse("203.0.113.7");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->prefix, 32);
  EXPECT_TRUE(one->contains(*IpAddress::parse("203.0.113.7")));
  EXPECT_FALSE(one->contains(*IpAddress::parse("203.0.113.8")));

  const auto all4 = Cidr::parse("0.0.0.0/0");
  ASSERT_TRUE(all4);
  EXPECT_TRUE(all4->contains(*IpAddress::parse("8.8.8.8")));
  EXPECT_FALSE(all4->contains(*IpAddress::parse("::1")));
  const auto all6 = Cidr::parse("::/0");
  ASSERT_TRUE(all6);
  EXPECT_TRUE(all6->contains(*IpAddress::parse("::1")));
  EXPECT_TRUE(all6->contains(*IpAddress::parse("8.8.8.8")));

  const auto mapped = Cidr::parse("::ffff:10.0.0.0/104");
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_TRUE(mapped->contains(*IpAddress::parse("10.9.9.9")));
  EXPECT_FALSE(mapped->contains(*IpAddress::parse("11.0.0.0")));
}

TEST(Cidr, RefusesMalformedNetworksWithAReason) {
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/x",
                          "10.0.0.0/8/8", "host/8", "", "/8", "10.0.0.0/-1"}) {
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
  }
  const auto host_bits = Cidr::parse("10.0.0.1/8");
  ASSERT_FALSE(host_bits);
  EXPECT_EQ(host_bits.error().message(),
            "parse CIDR '10.0.0.1/8': host bits set; the network is 10.0.0.0/8");
}

}  // namespace
}  // namespace mamori::logparse
