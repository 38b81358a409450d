#include "agent/pages/page_monitor.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/page/record.h"
#include "core/proto/actions.h"
#include "testing/temp_dir.h"

namespace mamori::pages {
namespace {

constexpr const char* kUrl = "http://127.0.0.1:8080/";

class PageMonitorTest : public ::testing::Test {
 protected:
  std::unique_ptr<PageMonitor> make(config::PageConfig pc) {
    PageMonitorOptions o;
    o.state_dir = dir_.path();
    o.pages = {std::move(pc)};
    o.publish = [this](std::vector<event::Event>&& events) {
      for (auto& e : events) events_.push_back(std::move(e));
    };
    o.log = [this](const std::string& line) { logs_.push_back(line); };
    o.fetch = [this](const FetchRequest& r) -> Result<FetchResult> {
      requests_.push_back(r);
      if (!error_.empty()) return fail_msg("fetch", r.url, error_);
      FetchResult out;
      out.status = status_;
      out.location = location_;
      out.body = body_;
      if (r.user_agent.find("Googlebot") != std::string::npos) out.body += bot_extra_;
      out.too_large = out.body.size() > r.max_bytes;
      if (out.too_large) out.body.resize(r.max_bytes);
      return out;
    };
    return std::make_unique<PageMonitor>(env_, std::move(o));
  }
  static config::PageConfig page(std::vector<std::string> allow = {}) {
    config::PageConfig pc;
    pc.url = kUrl;
    pc.allow_origins = std::move(allow);
    return pc;
  }
  std::vector<event::Event> take() { return std::exchange(events_, {}); }

  testing::TempDir dir_;
  RealEnv env_;
  std::vector<event::Event> events_;
  std::vector<std::string> logs_;
  std::vector<FetchRequest> requests_;
  std::string body_ = "<html><script src=/wp-includes/a.js></script><p>first post</p></html>";
  std::string bot_extra_;
  std::string error_;
  std::string location_;
  long status_ = 200;
};

TEST_F(PageMonitorTest, FirstFetchIsTheBaselineThenANewScriptIsReportedOnce) {
  auto m = make(page());
  m->check_all();
  EXPECT_TRUE(take().empty());
  auto record = page::load_record(page::record_path(dir_.path(), kUrl));
  ASSERT_TRUE(record && *record);
  EXPECT_EQ((*record)->baseline.elements.size(), 1u);
  EXPECT_EQ((*record)->baseline_by, "first-fetch");

  // A new post: text only.
  body_ += "<p>second post, <a href=/about/>about</a></p>";
  m->check_all();
  EXPECT_TRUE(take().empty());

  body_ += R"(<script src="https://evil.example/x.js"></script>)";
  m->check_all();
  auto events = take();
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0];
  EXPECT_EQ(e.action(), proto::action::kPageInjected);
  EXPECT_EQ(e.get("url.full"), kUrl);
  EXPECT_EQ(e.get("mamori.page.element"), "script");
  EXPECT_EQ(e.get("mamori.page.value"), "https://evil.example/x.js");
  EXPECT_EQ(e.get("mamori.page.origin"), "https://evil.example");
  EXPECT_NE(e.get("user_agent.original").get<std::string>().find("Mozilla"), std::string::npos);

  m->check_all();  // still there: said once
  EXPECT_TRUE(take().empty());
  // A new monitor (an agent restart) does not say it again either: the record keeps it.
  auto again = make(page());
  again->check_all();
  EXPECT_TRUE(take().empty());
}

TEST_F(PageMonitorTest, GoneAndBackIsReportedAgain) {
  auto m = make(page());
  m->check_all();
  const std::string clean = body_;
  body_ += "<script>document.write('x')</script>";
  m->check_all();
  EXPECT_EQ(take().size(), 1u);
  body_ = clean;
  m->check_all();
  EXPECT_TRUE(take().empty());
  body_ += "<script>document.write('x')</script>";
  m->check_all();
  auto events = take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].get("mamori.page.element"), "inline-script");
  EXPECT_EQ(events[0].get("mamori.page.origin"), "inline");
  EXPECT_EQ(events[0].get("mamori.page.snippet"), "document.write('x')");
}

TEST_F(PageMonitorTest, AllowedOriginsAreNoAlertButInlineCodeAlwaysIs) {
  auto m = make(page({"self", "https://*.cdn.example"}));
  m->check_all();
  body_ += R"h(<script src="/wp-content/plugins/new.js"></script>
              <script src="https://js.cdn.example/lib.js"></script>
              <img src=x onerror="alert(1)">)h";
  m->check_all();
  auto events = take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].get("mamori.page.element"), "event-handler");
}

TEST_F(PageMonitorTest, CloakingShownOnlyToACrawlerIsCaughtByItsFetch) {
  auto pc = page();
  pc.user_agents = {"browser", "googlebot"};
  auto m = make(pc);
  m->check_all();
  EXPECT_TRUE(take().empty());
  ASSERT_EQ(requests_.size(), 2u);
  bot_extra_ = R"(<a href="https://casino.example/">casino</a>)";
  m->check_all();
  auto events = take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].get("mamori.page.element"), "link");
  EXPECT_EQ(events[0].get("mamori.page.value"), "https://casino.example");
  EXPECT_NE(events[0].get("user_agent.original").get<std::string>().find("Googlebot"),
            std::string::npos);
}

TEST_F(PageMonitorTest, AFailingPageIsSaidOnceAndNeverTakesABaseline) {
  auto m = make(page());
  error_ = "Connection refused";
  m->check_all();
  m->check_all();
  auto events = take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].action(), proto::action::kPageFetchFailed);
  auto record = page::load_record(page::record_path(dir_.path(), kUrl));
  ASSERT_TRUE(record);
  EXPECT_FALSE(*record);  // no baseline from nothing
  error_.clear();
  m->check_all();
  EXPECT_TRUE(take().empty());
  status_ = 503;
  m->check_all();
  events = take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].get("http.response.status_code"), 503);
  record = page::load_record(page::record_path(dir_.path(), kUrl));
  ASSERT_TRUE(record && *record);
  EXPECT_NE((*record)->error.find("503"), std::string::npos);
}

TEST_F(PageMonitorTest, TooLargeIsRefusedNotJudgedInPart) {
  auto pc = page();
  pc.max_kb = 1;
  auto m = make(pc);
  m->check_all();
  body_ += std::string(2000, ' ') + R"(<script src="https://evil.example/x.js"></script>)";
  m->check_all();
  auto events = take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].action(), proto::action::kPageFetchFailed);
  EXPECT_NE(events[0].get("error.message").get<std::string>().find(page::kTooLarge),
            std::string::npos);
}

TEST_F(PageMonitorTest, ARedirectIsContent) {
  status_ = 301;
  location_ = "/home/";
  auto m = make(page());
  m->check_all();
  EXPECT_TRUE(take().empty());
  location_ = "https://evil.example/";
  m->check_all();
  auto events = take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].get("mamori.page.element"), "redirect");
  EXPECT_EQ(events[0].get("mamori.page.origin"), "https://evil.example");
}

TEST_F(PageMonitorTest, ManyNewElementsAreReportedInBoundedChecks) {
  auto m = make(page());
  m->check_all();
  for (int i = 0; i < 40; ++i)
    body_ += "<script src=https://evil.example/" + std::to_string(i) + ".js></script>";
  m->check_all();
  EXPECT_EQ(take().size(), PageMonitor::kMaxEventsPerCheck);
  m->check_all();
  EXPECT_EQ(take().size(), 40 - PageMonitor::kMaxEventsPerCheck);
  m->check_all();
  EXPECT_TRUE(take().empty());
}

TEST_F(PageMonitorTest, AnAcceptedBaselineIsHonoured) {
  auto m = make(page());
  m->check_all();
  body_ += R"(<iframe src="https://video.example/embed/1"></iframe>)";
  m->check_all();
  EXPECT_EQ(take().size(), 1u);
  // What `mamori pages accept` does.
  const std::string path = page::record_path(dir_.path(), kUrl);
  auto r = page::load_record(path);
  ASSERT_TRUE(r && *r);
  (*r)->baseline = (*r)->current;
  (*r)->reported.clear();
  ASSERT_TRUE(page::save_record(env_, path, **r));
  body_ += R"(<iframe src="https://video.example/embed/1"></iframe>)";
  m->check_all();
  EXPECT_TRUE(take().empty());
}

TEST_F(PageMonitorTest, ADamagedRecordIsNeverReplacedByANewBaseline) {
  auto m = make(page());
  m->check_all();
  dir_.write("pages/" + page::record_path(dir_.path(), kUrl).substr(dir_.path().size() + 7),
             "{not json", 0600);
  body_ += R"(<script src="https://evil.example/x.js"></script>)";
  m->check_all();
  auto events = take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].action(), proto::action::kPageFetchFailed);
  EXPECT_EQ(dir_.read(page::record_path(dir_.path(), kUrl).substr(dir_.path().size() + 1)),
            "{not json");
}

TEST_F(PageMonitorTest, ACheckTheGuardAskedForNamesItsEvent) {
  auto pc = page();
  pc.root = "/srv/www/site";
  auto m = make(pc);
  m->check_all();
  EXPECT_FALSE(m->injected());
  body_ += R"(<script src="https://evil.example/x.js"></script>)";
  // A file of another site: this page is not checked for it, nor linked to it.
  m->poke({"/srv/www", "other/index.php", "other-event"});
  // Files of its site: the first one asked for the check.
  m->poke({"/srv/www", "site/wp-content/plugins/a.php", "guard-event-1"});
  m->poke({"/srv/www/site", "index.php", "guard-event-2"});
  m->check_all();
  auto events = take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].get("mamori.related_event"), "guard-event-1");
  EXPECT_TRUE(m->injected());
  ASSERT_EQ(m->take_injected().size(), 1u);
  EXPECT_TRUE(m->take_injected().empty());
  // A scheduled check links to nothing.
  body_ += "<script>alert(1)</script>";
  m->check_all();
  events = take();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].get("mamori.related_event").is_null());
  // Cleaned up: not injected any more (the healer's recovery may go on).
  body_ = "<html><script src=/wp-includes/a.js></script><p>first post</p></html>";
  m->check_all();
  EXPECT_FALSE(m->injected());
}

TEST_F(PageMonitorTest, TheThreadChecksAtOnceAndWhenPoked) {
  std::mutex mu;
  std::condition_variable cv;
  int fetches = 0;
  PageMonitorOptions o;
  o.state_dir = dir_.path();
  auto pc = page();
  pc.interval_s = 3600;
  o.pages = {pc};
  o.publish = [](std::vector<event::Event>&&) {};
  o.log = [](const std::string&) {};
  o.fetch = [&](const FetchRequest&) -> Result<FetchResult> {
    {
      std::lock_guard<std::mutex> l(mu);
      ++fetches;
    }
    cv.notify_all();
    FetchResult r;
    r.status = 200;
    r.body = "<p>x</p>";
    return r;
  };
  PageMonitor m(env_, std::move(o));
  m.start();
  std::unique_lock<std::mutex> l(mu);
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(30), [&] { return fetches >= 1; }));
  l.unlock();
  m.poke({"/srv/www", "index.php", "guard-event"});
  l.lock();
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(30), [&] { return fetches >= 2; }));
}

// One HTTP exchange per connection on 127.0.0.1, answered with `response`; the request
// is kept. For fetch_with_curl against a real socket.
class OneShotServer {
 public:
  explicit OneShotServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      char buf[4096];
      while (request_.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request_.append(buf, static_cast<size_t>(n));
      }
      size_t off = 0;
      while (off < response_.size()) {
        const ssize_t n = ::write(c, response_.data() + off, response_.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::close(c);
    });
  }
  ~OneShotServer() {
    ::shutdown(fd_, SHUT_RDWR);  // an accept() nobody answered returns
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  // After the fetch returned (the thread has answered and closed).
  const std::string& request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  std::string response_;
  int fd_ = -1;
  int port_ = 0;
  std::string request_;
  std::thread thread_;
};

TEST(FetchWithCurl, ARedirectIsReadNotFollowed) {
  OneShotServer server(
      "HTTP/1.1 301 Moved\r\nLocation: https://evil.example/\r\nContent-Length: 3\r\n"
      "Connection: close\r\n\r\nbye");
  auto r = fetch_with_curl(
      {fmt::format("http://127.0.0.1:{}/", server.port()), "UA-test/1", "", 5, 1024, nullptr});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 301);
  EXPECT_EQ(r->location, "https://evil.example/");
  EXPECT_NE(server.request().find("User-Agent: UA-test/1\r\n"), std::string::npos);
}

TEST(FetchWithCurl, PastMaxBytesTheTransferStops) {
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n" +
                       std::string(5000, 'x'));
  auto r = fetch_with_curl(
      {fmt::format("http://127.0.0.1:{}/", server.port()), "UA", "", 5, 1000, nullptr});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->too_large);
  EXPECT_LE(r->body.size(), 1000u);
}

TEST(FetchWithCurl, ConnectToSendsTheUrlsNameToAnotherAddress) {
  OneShotServer server(
      "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\n<p>ok</p>");
  auto r = fetch_with_curl({"http://www.example.test/x", "UA",
                            fmt::format("127.0.0.1:{}", server.port()), 5, 1000, nullptr});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "<p>ok</p>");
  EXPECT_NE(server.request().find("Host: www.example.test\r\n"), std::string::npos);
}

TEST(FetchWithCurl, ACancelledFetchStops) {
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  const std::atomic<bool> cancel{true};
  auto r = fetch_with_curl(
      {fmt::format("http://127.0.0.1:{}/", server.port()), "UA", "", 5, 1000, &cancel});
  EXPECT_FALSE(r);
}

TEST(FetchWithCurl, OnlyHttpAndHttps) {
  EXPECT_FALSE(fetch_with_curl({"file:///etc/passwd", "UA", "", 5, 1000, nullptr}));
}

}  // namespace
}  // namespace mamori::pages
