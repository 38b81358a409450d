#include "agent/logwatch/good_bots.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>

#include <gtest/gtest.h>

namespace mamori::logwatch {
namespace {

using namespace std::chrono_literals;

logparse::IpAddress ip(const char* text) { return *logparse::IpAddress::parse(text); }

constexpr std::string_view kGooglebot =
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

TEST(GoodBotsTest, WhatAUserAgentClaims) {
  EXPECT_EQ(claimed_crawler(kGooglebot)->name, "Googlebot");
  EXPECT_EQ(claimed_crawler("Mozilla/5.0 (compatible; bingbot/2.0)")->name, "bingbot");
  EXPECT_FALSE(claimed_crawler("curl/8.0"));
  EXPECT_FALSE(claimed_crawler(""));
}

TEST(GoodBotsTest, UnderADomainAtALabelBoundary) {
  const std::vector<std::string_view> google = {"googlebot.com", "google.com"};
  EXPECT_TRUE(under_domain("crawl-66-249-66-1.googlebot.com", google));
  EXPECT_TRUE(under_domain("crawl-66-249-66-1.GoogleBot.com.", google));
  EXPECT_TRUE(under_domain("google.com", google));
  EXPECT_FALSE(under_domain("crawl.evilgooglebot.com", google));
  EXPECT_FALSE(under_domain("googlebot.com.evil.example", google));
  EXPECT_FALSE(under_domain("", google));
}

class GoodBotsCheck : public ::testing::Test {
 protected:
  // A resolver for which 66.249.66.1 <-> crawl.googlebot.com; 203.0.113.5 has a PTR under
  // googlebot.com that resolves elsewhere (a forged PTR, which whoever owns the address
  // can set); the rest have no name.
  Resolver fake() {
    Resolver r;
    r.reverse = [this](const logparse::IpAddress& a) -> std::string {
      ++lookups_;
      if (gate_) open_.wait();
      if (a == ip("66.249.66.1")) return "crawl.googlebot.com";
      if (a == ip("203.0.113.5")) return "crawl-forged.googlebot.com";
      return "";
    };
    r.forward = [](const std::string& host) -> std::vector<logparse::IpAddress> {
      if (host == "crawl.googlebot.com") return {ip("66.249.66.1")};
      if (host == "crawl-forged.googlebot.com") return {ip("66.249.66.200")};
      return {};
    };
    return r;
  }
  // The resolver thread's wake-up, as the log watch's eventfd.
  std::function<void()> wake() {
    return [this] {
      std::lock_guard lock(mu_);
      ++wakes_;
      cv_.notify_all();
    };
  }
  // Waits for the resolver's wake-ups (30 s without one fails) until n answers are in.
  std::vector<GoodBots::Done> answers(GoodBots& bots, size_t n) {
    std::vector<GoodBots::Done> all;
    while (true) {
      auto d = bots.take_done(0);
      all.insert(all.end(), d.begin(), d.end());
      if (all.size() >= n) return all;
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, 30s, [&] { return wakes_ > seen_; })) return all;
      seen_ = wakes_;
    }
  }

  std::atomic<int> lookups_{0};
  bool gate_ = false;
  std::promise<void> opener_;
  std::shared_future<void> open_ = opener_.get_future().share();
  std::mutex mu_;
  std::condition_variable cv_;
  int wakes_ = 0, seen_ = 0;
};

TEST_F(GoodBotsCheck, ForwardConfirmedReverseDns) {
  GoodBots bots(fake(), wake());
  uint64_t t1 = 0, t2 = 0, t3 = 0, none = 0;
  std::string host;
  EXPECT_EQ(bots.check(ip("66.249.66.1"), "curl/8", 0, &none, &host),
            GoodBots::Verdict::kNotClaimed);
  EXPECT_EQ(bots.check(ip("66.249.66.1"), kGooglebot, 0, &t1, &host), GoodBots::Verdict::kPending);
  EXPECT_EQ(bots.check(ip("203.0.113.5"), kGooglebot, 0, &t2, &host), GoodBots::Verdict::kPending);
  EXPECT_EQ(bots.check(ip("198.51.100.9"), kGooglebot, 0, &t3, &host), GoodBots::Verdict::kPending);
  const auto done = answers(bots, 3);
  ASSERT_EQ(done.size(), 3u);
  for (const auto& d : done) {
    EXPECT_EQ(d.verified, d.ticket == t1) << d.ticket;
    if (d.verified) EXPECT_EQ(d.host, "crawl.googlebot.com");
  }
  // Cached: no second look-up either way; a verified Googlebot is no bingbot.
  const int before = lookups_.load();
  EXPECT_EQ(bots.check(ip("66.249.66.1"), kGooglebot, 1, &none, &host),
            GoodBots::Verdict::kVerified);
  EXPECT_EQ(host, "crawl.googlebot.com");
  EXPECT_EQ(bots.check(ip("203.0.113.5"), kGooglebot, 1, &none, &host), GoodBots::Verdict::kFailed);
  EXPECT_EQ(lookups_.load(), before);
  EXPECT_EQ(bots.check(ip("66.249.66.1"), "Mozilla/5.0 (compatible; bingbot/2.0)", 1, &t1, &host),
            GoodBots::Verdict::kPending);
  const auto again = answers(bots, 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_FALSE(again[0].verified);
}

TEST_F(GoodBotsCheck, AFloodOfClaimsIsNotAQueue) {
  gate_ = true;  // the resolver hangs (a resolver timing out)
  GoodBots bots(fake(), wake());
  uint64_t ticket = 0;
  std::string host;
  size_t pending = 0, failed = 0;
  for (uint32_t i = 0; i < 1000; ++i) {
    const auto v =
        bots.check(logparse::IpAddress::from_v4(0x0a000000 + i), kGooglebot, 0, &ticket, &host);
    pending += v == GoodBots::Verdict::kPending;
    failed += v == GoodBots::Verdict::kFailed;
  }
  EXPECT_EQ(pending, GoodBots::kMaxPending);
  EXPECT_EQ(failed, 1000 - GoodBots::kMaxPending);
  opener_.set_value();
  EXPECT_EQ(answers(bots, GoodBots::kMaxPending).size(), GoodBots::kMaxPending);
}

}  // namespace
}  // namespace mamori::logwatch
