#include "agent/pages/discovery.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "agent/pages/page_monitor.h"
#include "core/logparse/format.h"
#include "core/proto/actions.h"
#include "testing/sim_env.h"
#include "testing/temp_dir.h"

namespace mamori::pages {
namespace {

constexpr const char* kLog = "/var/log/nginx/access.log";

class DiscoveryTest : public ::testing::Test {
 protected:
  DiscoveryTest() {
    config_.state_dir = dir_.path();
    config::LogConfig log;
    log.path = kLog;
    log.format = "vhost_combined";
    log.root = "/srv/www";
    config_.logs.push_back(log);
    config_.page_discovery.discover = 2;
    config_.page_discovery.base_url = "http://www.example.com";
    config_.page_discovery.page.root = "/srv/www";
    config_.page_discovery.page.interval_s = 60;
  }
  std::shared_ptr<Discoverer> make() {
    return std::make_shared<Discoverer>(env_, config_,
                                        [this](const std::string& l) { logs_.push_back(l); });
  }
  // One request line, as nginx's vhost_combined logs it.
  void request(Discoverer& d, const std::string& ip, const std::string& target, int status = 200,
               const std::string& method = "GET", const std::string& host = "www.example.com",
               const std::string& log = kLog) {
    const std::string line = fmt::format(
        "{}:80 {} - - [07/Dec/2026:11:00:00 +0000] \"{} {} HTTP/1.1\" {} 512 \"-\" \"Mozilla/5.0\"",
        host, ip, method, target, status);
    ASSERT_EQ(format_.parse(line, entry_), logparse::ParseStatus::kOk) << line;
    d.note(log, entry_);
  }
  static std::vector<std::string> paths(const std::vector<page::DiscoveredPage>& v) {
    std::vector<std::string> out;
    for (const auto& p : v) out.push_back(p.path);
    return out;
  }

  testing::TempDir dir_;
  testing::SimEnv env_;
  config::Config config_;
  std::vector<std::string> logs_;
  logparse::LogFormat format_ = *logparse::LogFormat::compile("vhost_combined");
  logparse::Entry entry_;
};

TEST_F(DiscoveryTest, APathJoinsOnceThreeAddressesAskedForIt) {
  auto d = make();
  auto first = d->take_change();  // the set read at start: none
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->empty());
  request(*d, "192.0.2.1", "/");
  request(*d, "192.0.2.2", "/?s=search");  // the query is dropped: "/"
  for (int i = 0; i < 50; ++i) request(*d, "203.0.113.9", "/attacker/");  // one address
  request(*d, "192.0.2.3", "/", 404);                                     // not a 200
  request(*d, "192.0.2.4", "/", 200, "POST");                             // not a GET
  request(*d, "192.0.2.5", "/", 200, "GET", "evil.example");              // another site
  request(*d, "192.0.2.6", "/", 200, "GET", "www.example.com", "/var/log/other.log");
  request(*d, "192.0.2.7", "/style.css");
  EXPECT_FALSE(d->take_change());
  request(*d, "192.0.2.8", "/#top");
  auto set = d->take_change();
  ASSERT_TRUE(set);
  EXPECT_EQ(paths(*set), std::vector<std::string>{"/"});
  EXPECT_FALSE(d->take_change());
  const auto pc = d->page_config("/");
  EXPECT_EQ(pc.url, "http://www.example.com/");
  EXPECT_EQ(pc.root, "/srv/www");
  EXPECT_EQ(pc.interval_s, 60u);

  // Persisted: a restart starts with it.
  auto again = make();
  set = again->take_change();
  ASSERT_TRUE(set);
  EXPECT_EQ(paths(*set), std::vector<std::string>{"/"});
  // Another base_url: started afresh, said once.
  config_.page_discovery.base_url = "http://shop.example.com";
  auto other = make();
  EXPECT_TRUE(other->take_change()->empty());
  ASSERT_EQ(logs_.size(), 1u);
  EXPECT_NE(logs_[0].find("discovery starts afresh"), std::string::npos);
}

TEST_F(DiscoveryTest, RankingReplacesAPageNobodyAsksForAnyMore) {
  config_.page_discovery.rank_every_s = 3600;
  auto d = make();
  (void)d->take_change();
  for (const char* p : {"/a/", "/b/"})
    for (int c = 0; c < 5; ++c) request(*d, fmt::format("192.0.2.{}", c), p);
  EXPECT_EQ(paths(*d->take_change()), (std::vector<std::string>{"/a/", "/b/"}));
  // The set is full: /c/ waits for the next ranking, and wins it over /b/.
  for (int c = 0; c < 20; ++c) request(*d, fmt::format("198.51.100.{}", c), "/c/");
  for (int c = 0; c < 20; ++c) request(*d, fmt::format("198.51.100.{}", c), "/a/");
  EXPECT_FALSE(d->take_change());
  env_.sim().advance(std::chrono::seconds(3600));
  EXPECT_EQ(paths(*d->take_change()), (std::vector<std::string>{"/a/", "/c/"}));
}

TEST_F(DiscoveryTest, TheMonitorWatchesDiscoveredPagesAndDropsThemWithTheirRecords) {
  auto d = make();
  std::vector<event::Event> events;
  std::vector<std::string> fetched;
  PageMonitorOptions o;
  o.state_dir = dir_.path();
  config::PageConfig configured;
  configured.url = "http://www.example.com/";  // also configured: the [[page]] wins
  o.pages = {configured};
  o.discovery = d;
  o.publish = [&](std::vector<event::Event>&& v) {
    for (auto& e : v) events.push_back(std::move(e));
  };
  o.log = [&](const std::string& l) { logs_.push_back(l); };
  std::string body = "<p>a post</p>";
  o.fetch = [&](const FetchRequest& r) -> Result<FetchResult> {
    fetched.push_back(r.url);
    FetchResult out;
    out.status = 200;
    out.body = body;
    return out;
  };
  PageMonitor m(env_, std::move(o));
  for (const char* p : {"/", "/about/"})
    for (int c = 0; c < 3; ++c) request(*d, fmt::format("192.0.2.{}", c), p);
  m.check_all();
  EXPECT_EQ(m.urls_for_test(),
            (std::vector<std::string>{"http://www.example.com/", "http://www.example.com/about/"}));
  EXPECT_EQ(fetched.size(), 2u);
  body += R"(<script src="https://evil.example/x.js"></script>)";
  m.check_all();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].get("url.full"), "http://www.example.com/about/");
  EXPECT_EQ(events[1].get("mamori.page.discovered"), true);
  EXPECT_TRUE(events[0].get("mamori.page.discovered").is_null());
  EXPECT_TRUE(m.injected());

  // /about/ leaves the set at a ranking (nobody asked for it since): its record goes.
  const std::string about = page::record_path(dir_.path(), "http://www.example.com/about/");
  ASSERT_TRUE(page::load_record(about).value().has_value());
  for (const char* p : {"/x/", "/y/"})
    for (int c = 0; c < 9; ++c) request(*d, fmt::format("198.51.100.{}", c), p);
  env_.sim().advance(std::chrono::seconds(config_.page_discovery.rank_every_s));
  m.check_all();
  EXPECT_EQ(m.urls_for_test(),
            (std::vector<std::string>{"http://www.example.com/", "http://www.example.com/x/",
                                      "http://www.example.com/y/"}));
  EXPECT_FALSE(page::load_record(about).value().has_value());
}

}  // namespace
}  // namespace mamori::pages
