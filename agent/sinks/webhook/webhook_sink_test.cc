// The webhook sink: the Slack line compared whole, hostile text kept inert, config
// validation, and real POSTs to tests/integration/webhook_server.py (http.server).

#include "agent/sinks/webhook/webhook_sink.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/base/env.h"
#include "testing/child_server.h"
#include "testing/refused_port.h"
#include "testing/temp_dir.h"

namespace mamori::sinks {
namespace {

using mamori::testing::ChildServer;
using mamori::testing::TempDir;

nlohmann::json restored_event(int n = 1) {
  nlohmann::json e = nlohmann::json::parse(R"({
    "@timestamp": "2024-05-01T12:00:00.000000Z",
    "event": {"action": "file-restored", "severity": 5, "outcome": "success"},
    "host": {"hostname": "web1"},
    "file": {"path": "/var/www/html/wp-config.php"},
    "mamori": {"root": "/var/www/html", "mode": "preserve"},
    "process": {"pid": 1234, "executable": "/usr/sbin/php-fpm8.2"},
    "user": {"id": "33", "name": "www-data"},
    "source": {"ip": "203.0.113.7"}
  })");
  e["event"]["id"] = fmt::format("{:032x}", n);
  return e;
}

TEST(FormatSlack, OneReadableLine) {
  const auto body = nlohmann::json::parse(format_slack(restored_event()));
  ASSERT_TRUE(body.is_object());
  EXPECT_EQ(body.size(), 1u);
  EXPECT_EQ(body["text"],
            ":warning: *WARNING* file-restored on web1: `/var/www/html/wp-config.php` by "
            "`/usr/sbin/php-fpm8.2` (pid 1234, user www-data) from 203.0.113.7 — success "
            "(mode preserve)");
}

TEST(FormatSlack, WithoutPathOrProcess) {
  nlohmann::json e = restored_event();
  e["event"]["action"] = "tamper-storm";
  e["event"]["severity"] = 7;
  e.erase("file");
  e.erase("process");
  e.erase("source");
  e["message"] = "tamper storm on /var/www/html";
  EXPECT_EQ(nlohmann::json::parse(format_slack(e))["text"],
            ":rotating_light: *CRITICAL* tamper-storm on web1: `tamper storm on /var/www/html` — "
            "success (mode preserve)");
}

TEST(FormatSlack, AttackerFileNameCannotMentionOrLink) {
  nlohmann::json e = restored_event();
  e["file"]["path"] = "/var/www/<!channel> <http://evil|click>`x`\n@here\xff.php";
  const std::string body = format_slack(e);
  const auto parsed = nlohmann::json::parse(body);  // valid JSON even with invalid UTF-8
  const std::string text = parsed["text"];
  EXPECT_EQ(text.find('<'), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  EXPECT_NE(text.find("`/var/www/&lt;!channel&gt; &lt;http://evil|click&gt;'x'\\n@here\\xff.php`"),
            std::string::npos)
      << text;
}

// --- config validation --------------------------------------------------------------------

config::SinkConfig webhook_config(
    const std::string& url = "https://hooks.example.com/T0/B0/SECRET") {
  config::SinkConfig c;
  c.name = "slack";
  c.type = config::SinkType::kWebhook;
  c.url = url;
  c.timeout_s = 10;
  return c;
}

std::string refusal(const config::SinkConfig& c) {
  auto sink = make_webhook_sink(c);
  return sink ? "(accepted)" : sink.error().message();
}

TEST(WebhookConfig, RefusesWhatCannotWorkNamingTheSink) {
  auto c = webhook_config();
  c.format = "slack";
  c.headers = {"Authorization: Bearer abc", "X-Tenant:web"};
  EXPECT_EQ(refusal(c), "(accepted)");

  EXPECT_EQ(refusal(webhook_config("")),
            "webhook sink 'slack': no url (http://... or https://...)");
  EXPECT_EQ(refusal(webhook_config("file:///etc/passwd")),
            "webhook sink 'slack': url scheme 'file' is not http or https");
  EXPECT_EQ(refusal(webhook_config("smtp://127.0.0.1")),
            "webhook sink 'slack': url scheme 'smtp' is not http or https");
  EXPECT_NE(refusal(webhook_config("hooks.example.com/x")).find("webhook sink 'slack': url: "),
            std::string::npos);
  c = webhook_config();
  c.format = "xml";
  EXPECT_EQ(refusal(c), "webhook sink 'slack': format 'xml' is not json or slack");
  c = webhook_config();
  c.timeout_s = 0;
  EXPECT_EQ(refusal(c), "webhook sink 'slack': timeout must be at least 1 second");
}

TEST(WebhookConfig, BadHeadersAreNamedWithoutTheirValue) {
  auto c = webhook_config();
  c.headers = {"X-Ok: 1", "Authorization Bearer SECRET-TOKEN"};
  EXPECT_EQ(refusal(c),
            "webhook sink 'slack': header 2 ('Authorization Bearer SECRET-TOKEN') is not "
            "'Name: value'");
  c.headers = {"Authorization: Bearer SECRET\r\nX-Evil: 1"};
  EXPECT_EQ(refusal(c), "webhook sink 'slack': header 1 ('Authorization') is not 'Name: value'");
  c.headers = {"Bad Name: x"};
  EXPECT_EQ(refusal(c), "webhook sink 'slack': header 1 ('Bad Name') is not 'Name: value'");
  c.headers = {"X-Empty:  "};
  EXPECT_EQ(refusal(c), "webhook sink 'slack': header 1 ('X-Empty') is not 'Name: value'");
}

// --- delivery to a real HTTP server ---------------------------------------------------------

class WebhookDelivery : public ::testing::Test {
 protected:
  void start(std::vector<std::string> args = {}) {
    args.insert(args.begin(), dir_.path());
    server_ = std::make_unique<ChildServer>("webhook_server.py", args);
    ASSERT_NE(server_->port(), 0);
  }
  config::SinkConfig config(const std::string& path = "/hook/T0/SECRET") const {
    return webhook_config(fmt::format("http://127.0.0.1:{}{}", server_->port(), path));
  }
  std::vector<nlohmann::json> read_lines(const std::string& name) const {
    std::vector<nlohmann::json> out;
    if (::access((dir_ / name).c_str(), F_OK) != 0) return out;
    std::istringstream in(dir_.read(name));
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  std::vector<nlohmann::json> requests() const { return read_lines("requests.jsonl"); }
  std::vector<nlohmann::json> bodies() const { return read_lines("bodies.jsonl"); }

  TempDir dir_;
  std::unique_ptr<ChildServer> server_;
};

TEST_F(WebhookDelivery, JsonPostsEachEventInOrder) {
  start();
  auto c = config();
  c.headers = {"Authorization: Bearer t0ken", "X-Tenant: web"};
  auto sink = make_webhook_sink(c);
  ASSERT_TRUE(sink.has_value()) << sink.error().message();
  const std::vector<nlohmann::json> events = {restored_event(1), restored_event(2),
                                              restored_event(3)};
  const auto sent = (*sink)->deliver(events);
  ASSERT_TRUE(sent.has_value()) << sent.error().message();

  EXPECT_EQ(bodies(), events);
  const auto reqs = requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(reqs[i]["path"], "/hook/T0/SECRET");
    EXPECT_EQ(reqs[i]["headers"]["content-type"], "application/json");
    EXPECT_EQ(reqs[i]["headers"]["x-mamori-event-id"], events[i]["event"]["id"]);
    EXPECT_EQ(reqs[i]["headers"]["authorization"], "Bearer t0ken");
    EXPECT_EQ(reqs[i]["headers"]["x-tenant"], "web");
    EXPECT_EQ(reqs[i]["headers"]["user-agent"].get<std::string>().substr(0, 7), "mamori/");
  }
}

TEST_F(WebhookDelivery, SlackBodyIsJsonWithText) {
  start();
  auto c = config();
  c.format = "slack";
  auto sink = make_webhook_sink(c);
  ASSERT_TRUE(sink.has_value());
  const std::vector<nlohmann::json> events = {restored_event()};
  ASSERT_TRUE((*sink)->deliver(events).has_value());
  const auto got = bodies();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], nlohmann::json::parse(format_slack(events[0])));
  EXPECT_TRUE(got[0]["text"].get<std::string>().starts_with(":warning: *WARNING* file-restored"));
}

TEST_F(WebhookDelivery, ServerErrorStopsTheBatchAndARetryDeliversIt) {
  start({"--fail-first", "1"});
  auto sink = make_webhook_sink(config());
  ASSERT_TRUE(sink.has_value());
  const std::vector<nlohmann::json> events = {restored_event(1), restored_event(2)};
  const auto first = (*sink)->deliver(events);
  ASSERT_FALSE(first.has_value());
  // The origin only: the path of a webhook URL is often its secret.
  EXPECT_EQ(first.error().message(),
            fmt::format("webhook sink 'slack': http://127.0.0.1:{}: HTTP 500: 'down for a test'",
                        server_->port()));
  EXPECT_EQ(requests().size(), 1u);  // the second event was not tried

  ASSERT_TRUE((*sink)->deliver(events).has_value());
  EXPECT_EQ(bodies(), events);
}

TEST_F(WebhookDelivery, RedirectIsNotFollowed) {
  start({"--status", "302", "--reply", "moved"});
  auto sink = make_webhook_sink(config());
  ASSERT_TRUE(sink.has_value());
  const std::vector<nlohmann::json> events = {restored_event()};
  const auto sent = (*sink)->deliver(events);
  ASSERT_FALSE(sent.has_value());
  EXPECT_TRUE(sent.error().message().ends_with(": HTTP 302: 'moved'")) << sent.error().message();
  EXPECT_EQ(requests().size(), 1u);
}

TEST(WebhookDeliveryFailure, ConnectionRefusedFailsAtOnce) {
  const testing::RefusedPort refused;

  auto sink =
      make_webhook_sink(webhook_config(fmt::format("http://127.0.0.1:{}/x", refused.port())));
  ASSERT_TRUE(sink.has_value());
  const std::vector<nlohmann::json> events = {restored_event()};
  const auto start = SystemClock().monotonic();
  const auto sent = (*sink)->deliver(events);
  ASSERT_FALSE(sent.has_value());
  EXPECT_LT(SystemClock().monotonic() - start, std::chrono::seconds(5));
  EXPECT_NE(sent.error().message().find("Failed to connect to 127.0.0.1 port"), std::string::npos)
      << sent.error().message();
}

}  // namespace
}  // namespace mamori::sinks
