// Real nftables, in a network namespace of each test's own (unshare(CLONE_NEWNET)): the
// host's firewall is never touched. Needs root.

#include "agent/ban/nftables/nftables_backend.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/base/unique_fd.h"
#include "testing/sim_clock.h"

namespace mamori::ban {
namespace {

using std::chrono::seconds;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

sockaddr_storage address(const char* text, uint16_t port) {
  sockaddr_storage ss{};
  if (inet_pton(AF_INET, text, &reinterpret_cast<sockaddr_in&>(ss).sin_addr) == 1) {
    auto& in = reinterpret_cast<sockaddr_in&>(ss);
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
  } else {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    EXPECT_EQ(inet_pton(AF_INET6, text, &in6.sin6_addr), 1) << text;
  }
  return ss;
}

class NftablesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) FAIL() << "needs root for a network namespace (tests run as root)";
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << strerror(errno);
    // The namespace's loopback starts down.
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    ASSERT_EQ(::ioctl(s.get(), SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    ASSERT_EQ(::ioctl(s.get(), SIOCSIFFLAGS, &ifr), 0);
    auto b = NftablesBackend::open("mamori_test", clock_);
    ASSERT_TRUE(b) << b.error().message();
    nft_ = std::move(*b);
  }

  int64_t now() const {
    return std::chrono::duration_cast<seconds>(clock_.now().time_since_epoch()).count();
  }
  std::string nft(const std::string& commands, bool json = false) {
    auto out = nft_->run_for_test(commands, json);
    EXPECT_TRUE(out) << out.error().message();
    return out ? *out : "";
  }
  // Packets the drop rule for `set` ("banned4", "banned6") has counted.
  int64_t dropped(const std::string& set) {
    auto j = nlohmann::json::parse(nft("list chain inet mamori_test prerouting", true));
    for (const auto& item : j["nftables"]) {
      if (!item.contains("rule") ||
          item["rule"]["expr"].dump().find("@" + set) == std::string::npos)
        continue;
      for (const auto& e : item["rule"]["expr"])
        if (e.contains("counter")) return e["counter"]["packets"].get<int64_t>();
    }
    ADD_FAILURE() << "no drop rule for " << set;
    return -1;
  }

  // A listening TCP socket on `host`:`port`.
  UniqueFd listen_on(const char* host, uint16_t port) {
    auto ss = address(host, port);
    UniqueFd s(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&ss), sizeof ss), 0) << strerror(errno);
    EXPECT_EQ(::listen(s.get(), 8), 0);
    return s;
  }
  // Starts a non-blocking connect from `from` to `to`:`port`.
  UniqueFd connect_from(const char* from, const char* to, uint16_t port) {
    auto src = address(from, 0), dst = address(to, port);
    UniqueFd s(::socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    // An IPv6 address just added may still be tentative (duplicate address detection):
    // binding to it is allowed all the same.
    const int one = 1;
    if (dst.ss_family == AF_INET6) ::setsockopt(s.get(), SOL_IPV6, IPV6_FREEBIND, &one, sizeof one);
    EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&src), sizeof src), 0) << strerror(errno);
    const int rc = ::connect(s.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst);
    EXPECT_TRUE(rc == 0 || errno == EINPROGRESS) << strerror(errno);
    return s;
  }
  // Whether `fd` became ready for `events` within `ms`.
  static bool ready(int fd, short events, int ms) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, ms) == 1 && (p.revents & events);
  }
  static bool connected(int fd) {
    int err = -1;
    socklen_t len = sizeof err;
    return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
  }

  testing::SimClock clock_;
  std::unique_ptr<NftablesBackend> nft_;
};

TEST_F(NftablesTest, CreatesItsTableOnceAndLeavesOthersAlone) {
  nft("add table inet other\nadd chain inet other c\nadd rule inet other c counter accept\n");
  auto again = NftablesBackend::open("mamori_test", clock_);
  ASSERT_TRUE(again) << again.error().message();
  const std::string ruleset = nft("list ruleset");
  auto count = [&](const std::string& s) {
    size_t n = 0;
    for (size_t at = ruleset.find(s); at != std::string::npos; at = ruleset.find(s, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("ip saddr @banned4 counter"), 1u) << ruleset;
  EXPECT_EQ(count("ip6 saddr @banned6 counter"), 1u) << ruleset;
  EXPECT_EQ(count("ip saddr @banned4net counter"), 1u) << ruleset;
  EXPECT_EQ(count("ip6 saddr @banned6net counter"), 1u) << ruleset;
  EXPECT_EQ(count("hook prerouting priority raw"), 1u) << ruleset;
  EXPECT_NE(ruleset.find("table inet other"), std::string::npos);
  EXPECT_NE(ruleset.find("counter packets 0 bytes 0 accept"), std::string::npos);
}

TEST_F(NftablesTest, StartingAgainKeepsTheBans) {
  ASSERT_TRUE(nft_->ban(ip("192.0.2.7"), seconds(600), {}));
  ASSERT_TRUE(NftablesBackend::open("mamori_test", clock_));
  auto bans = nft_->list();
  ASSERT_TRUE(bans);
  EXPECT_EQ(bans->size(), 1u);
}

TEST_F(NftablesTest, BanPutsTheElementWithItsTimeout) {
  ASSERT_TRUE(nft_->ban(ip("192.0.2.7"), seconds(600), {}));
  auto bans = nft_->list();
  ASSERT_TRUE(bans) << bans.error().message();
  ASSERT_EQ(bans->size(), 1u);
  EXPECT_EQ((*bans)[0].ip, ip("192.0.2.7"));
  EXPECT_NEAR((*bans)[0].expires_at, now() + 600, 2);
  EXPECT_NE(nft("list set inet mamori_test banned4").find("192.0.2.7 timeout 10m"),
            std::string::npos);
}

TEST_F(NftablesTest, BanningAgainReplacesTheTimeout) {
  ASSERT_TRUE(nft_->ban(ip("192.0.2.7"), seconds(600), {}));
  ASSERT_TRUE(nft_->ban(ip("192.0.2.7"), seconds(3000), {}));
  auto bans = nft_->list();
  ASSERT_TRUE(bans);
  ASSERT_EQ(bans->size(), 1u);
  EXPECT_NEAR((*bans)[0].expires_at, now() + 3000, 2);
  ASSERT_TRUE(nft_->ban(ip("192.0.2.7"), seconds(100), {}));  // shorter wins too
  EXPECT_NEAR((*nft_->list())[0].expires_at, now() + 100, 2);
  ASSERT_TRUE(nft_->ban(ip("192.0.2.7"), kPermanent, {}));
  EXPECT_EQ((*nft_->list())[0].expires_at, 0);
  EXPECT_NE(nft("list set inet mamori_test banned4").find("elements = { 192.0.2.7 }"),
            std::string::npos);
}

TEST_F(NftablesTest, UnbanRemovesAndAnAbsentAddressIsNoError) {
  ASSERT_TRUE(nft_->ban(ip("192.0.2.7"), seconds(600), {}));
  ASSERT_TRUE(nft_->unban(ip("192.0.2.7"), {}));
  EXPECT_TRUE(nft_->list()->empty());
  EXPECT_TRUE(nft_->unban(ip("192.0.2.7"), {}));
  EXPECT_TRUE(nft_->unban(ip("2001:db8::9"), {}));
}

TEST_F(NftablesTest, Ipv6GoesToItsOwnSet) {
  ASSERT_TRUE(nft_->ban(ip("2001:db8::1"), seconds(600), {}));
  ASSERT_TRUE(nft_->ban(ip("::ffff:192.0.2.8"), seconds(600), {}));
  EXPECT_NE(nft("list set inet mamori_test banned6").find("2001:db8::1 timeout"),
            std::string::npos);
  EXPECT_NE(nft("list set inet mamori_test banned4").find("192.0.2.8 timeout"), std::string::npos);
  EXPECT_EQ(nft_->list()->size(), 2u);
}

TEST_F(NftablesTest, SyncMakesTheSetsHoldExactlyTheList) {
  ASSERT_TRUE(nft_->ban(ip("192.0.2.99"), seconds(600), {}));  // not in the list
  ASSERT_TRUE(nft_->sync({{ip("192.0.2.1"), now() + 60},
                          {ip("192.0.2.2"), now() - 1},  // expired: left out
                          {ip("2001:db8::2"), 0}}));
  auto bans = nft_->list();
  ASSERT_TRUE(bans);
  ASSERT_EQ(bans->size(), 2u);
  EXPECT_EQ((*bans)[0].ip, ip("192.0.2.1"));
  EXPECT_NEAR((*bans)[0].expires_at, now() + 60, 2);
  EXPECT_EQ((*bans)[1].ip, ip("2001:db8::2"));
  EXPECT_EQ((*bans)[1].expires_at, 0);
}

TEST_F(NftablesTest, SyncHandlesManyBansInBatches) {
  std::vector<AppliedBan> many;
  for (uint32_t i = 0; i < 25'000; ++i) many.push_back({IpAddress::from_v4(0x0A000000 + i), 0});
  ASSERT_TRUE(nft_->sync(many));
  EXPECT_EQ(nft_->list()->size(), 25'000u);
}

TEST_F(NftablesTest, PutsItsTableBackAfterAFlush) {
  nft("flush ruleset");
  ASSERT_TRUE(nft_->ban(ip("192.0.2.7"), seconds(600), {}));
  EXPECT_EQ(nft_->list()->size(), 1u);
}

TEST_F(NftablesTest, RefusesABadTableName) {
  auto b = NftablesBackend::open("x; flush ruleset", clock_);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().errnum, EINVAL);
}

TEST_F(NftablesTest, ErrorsCarryNftsMessage) {
  nft("flush ruleset\nadd table inet mamori_test\n"
      "add set inet mamori_test banned4 { type ipv6_addr; }\n");  // a clashing set
  auto b = NftablesBackend::open("mamori_test", clock_);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("nft"), std::string::npos);
  EXPECT_NE(b.error().message().find("table inet mamori_test"), std::string::npos)
      << b.error().message();
}

TEST_F(NftablesTest, DropsNewConnectionsFromABannedAddress) {
  UniqueFd server = listen_on("127.0.0.2", 8080);
  ASSERT_TRUE(nft_->ban(ip("127.0.0.9"), seconds(600), {}));
  UniqueFd good = connect_from("127.0.0.10", "127.0.0.2", 8080);
  EXPECT_TRUE(ready(good.get(), POLLOUT, 5000) && connected(good.get()));
  UniqueFd bad = connect_from("127.0.0.9", "127.0.0.2", 8080);
  // The SYN reached the drop rule (counted), so no answer can come; a second is plenty
  // for loopback.
  EXPECT_GE(dropped("banned4"), 1);
  EXPECT_FALSE(ready(bad.get(), POLLOUT, 1000));
  ASSERT_TRUE(nft_->unban(ip("127.0.0.9"), {}));
  UniqueFd again = connect_from("127.0.0.9", "127.0.0.2", 8080);
  EXPECT_TRUE(ready(again.get(), POLLOUT, 5000) && connected(again.get()));
}

TEST_F(NftablesTest, CutsAnEstablishedConnection) {
  UniqueFd server = listen_on("127.0.0.2", 8080);
  UniqueFd client = connect_from("127.0.0.11", "127.0.0.2", 8080);
  ASSERT_TRUE(ready(client.get(), POLLOUT, 5000) && connected(client.get()));
  UniqueFd conn(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  char buf[8];
  ASSERT_EQ(::send(client.get(), "a", 1, MSG_NOSIGNAL), 1);
  ASSERT_TRUE(ready(conn.get(), POLLIN, 5000));
  ASSERT_EQ(::recv(conn.get(), buf, sizeof buf, 0), 1);

  ASSERT_TRUE(nft_->ban(ip("127.0.0.11"), seconds(600), {}));
  const int64_t before = dropped("banned4");
  ASSERT_EQ(::send(client.get(), "b", 1, MSG_NOSIGNAL), 1);
  EXPECT_GT(dropped("banned4"), before);
  EXPECT_FALSE(ready(conn.get(), POLLIN, 1000));
  // Lifted: TCP's retransmission delivers it.
  ASSERT_TRUE(nft_->unban(ip("127.0.0.11"), {}));
  ASSERT_TRUE(ready(conn.get(), POLLIN, 10'000));
  EXPECT_EQ(::recv(conn.get(), buf, sizeof buf, 0), 1);
  EXPECT_EQ(buf[0], 'b');
}

TEST_F(NftablesTest, DropsIpv6) {
  UniqueFd server = listen_on("::1", 8080);
  ASSERT_TRUE(nft_->ban(ip("::1"), seconds(600), {}));
  UniqueFd bad = connect_from("::1", "::1", 8080);
  EXPECT_GE(dropped("banned6"), 1);
  EXPECT_FALSE(ready(bad.get(), POLLOUT, 1000));
}

// linux/ipv6.h's in6_ifreq, which cannot be included beside netinet/in.h.
struct In6Ifreq {
  in6_addr addr;
  uint32_t prefixlen;
  int ifindex;
};

TEST_F(NftablesTest, APrefixBanDropsEveryAddressOfTheSlash64) {
  // Two addresses of 2001:db8:1:2::/64 and one outside it, on this namespace's loopback.
  UniqueFd s6(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  for (const char* a : {"2001:db8:1:2::10", "2001:db8:1:2::77", "2001:db8:1:3::5"}) {
    In6Ifreq r{};
    ASSERT_EQ(inet_pton(AF_INET6, a, &r.addr), 1);
    r.prefixlen = 128;
    r.ifindex = static_cast<int>(::if_nametoindex("lo"));
    ASSERT_EQ(::ioctl(s6.get(), SIOCSIFADDR, &r), 0) << a << ": " << strerror(errno);
  }
  UniqueFd server = listen_on("::1", 8080);
  const Cidr net = *Cidr::parse("2001:db8:1:2::/64");
  ASSERT_TRUE(nft_->ban_prefix(net, seconds(600), {}));
  EXPECT_NE(nft("list set inet mamori_test banned6net").find("2001:db8:1:2::/64 timeout"),
            std::string::npos);
  // Another address of the /64 than any that offended: dropped.
  UniqueFd bad = connect_from("2001:db8:1:2::77", "::1", 8080);
  EXPECT_GE(dropped("banned6net"), 1);
  EXPECT_FALSE(ready(bad.get(), POLLOUT, 1000));
  // The next /64 is not covered.
  UniqueFd good = connect_from("2001:db8:1:3::5", "::1", 8080);
  EXPECT_TRUE(ready(good.get(), POLLOUT, 5000) && connected(good.get()));
  // list() reports it as a network; sync keeps it; unban lifts it.
  auto held = nft_->list();
  ASSERT_TRUE(held);
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0].prefix, 64);
  EXPECT_EQ((*held)[0].ip.to_string(), "2001:db8:1:2::");
  ASSERT_TRUE(nft_->sync({{net.base, now() + 60, 64}, {ip("192.0.2.1"), 0, 0}}));
  EXPECT_EQ(nft_->list()->size(), 2u);
  ASSERT_TRUE(nft_->unban_prefix(net, {}));
  UniqueFd again = connect_from("2001:db8:1:2::10", "::1", 8080);
  EXPECT_TRUE(ready(again.get(), POLLOUT, 5000) && connected(again.get()));
}

TEST_F(NftablesTest, APrefixBanDropsEveryAddressOfTheSlash24) {
  UniqueFd server = listen_on("127.0.0.2", 8080);
  ASSERT_TRUE(nft_->ban_prefix(*Cidr::parse("127.0.5.0/24"), seconds(600), {}));
  UniqueFd bad = connect_from("127.0.5.200", "127.0.0.2", 8080);
  EXPECT_GE(dropped("banned4net"), 1);
  EXPECT_FALSE(ready(bad.get(), POLLOUT, 1000));
  UniqueFd good = connect_from("127.0.6.1", "127.0.0.2", 8080);
  EXPECT_TRUE(ready(good.get(), POLLOUT, 5000) && connected(good.get()));
}

}  // namespace
}  // namespace mamori::ban
