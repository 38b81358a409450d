#include "agent/heal/healer.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <deque>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/base/unique_fd.h"
#include "testing/sim_env.h"
#include "testing/temp_dir.h"

namespace mamori::heal {

// From health_endpoint_test.cc.
std::string http_for_test(uint16_t port, const std::string& request, bool ipv6);

namespace {

using event::Event;
using event::Severity;
using std::chrono::seconds;

std::string status_line(uint16_t port) {
  const std::string r = http_for_test(port, "GET / HTTP/1.0\r\n\r\n", false);
  return r.substr(0, r.find("\r\n"));
}

class HealerTest : public ::testing::Test {
 protected:
  HealerTest() {
    tmp_.mkdir("state");
    tmp_.mkdir("www");
    config_.health_file = tmp_ / "www/health";
    config_.health_listen = "127.0.0.1:0";
  }

  Clock& clock() { return env_.sim(); }
  void advance(int s) { env_.sim().advance(seconds(s)); }

  std::unique_ptr<Healer> open(Env* env = nullptr) {
    auto h = Healer::open(
        env ? *env : env_, config_, tmp_ / "state",
        [this](Event e) { events_.push_back(std::move(e)); },
        [this]() -> Result<bool> {
          ++verifies_;
          if (verify_results_.empty()) return true;
          auto r = verify_results_.front();
          verify_results_.pop_front();
          return r;
        });
    EXPECT_TRUE(h) << h.error().message();
    return h ? std::move(*h) : nullptr;
  }

  // A hook script that stores its stdin and environment.
  void use_recording_hook() {
    tmp_.write("hook.sh", "#!/bin/sh\ncat > \"$1\"\nprintf '%s' \"$MAMORI_HEAL_REASON\" > \"$2\"\n",
               0755);
    ::chmod((tmp_ / "hook.sh").c_str(), 0755);
    config_.hook = {tmp_ / "hook.sh", tmp_ / "hook.in", tmp_ / "hook.reason"};
  }

  Event ev(std::string_view action) { return Event(action, Severity::kWarning, clock().now_ns()); }
  Event file_ev(std::string_view action, std::string rel, std::string mode = "restore",
                std::string trigger = "realtime") {
    Event e = ev(action);
    e.set("file.path", "/srv/www/" + rel)
        .set("mamori.root", "/srv/www")
        .set("mamori.path", rel)
        .set("mamori.mode", mode)
        .set("mamori.trigger", trigger);
    return e;
  }

  std::vector<Event> taken(std::string_view action) {
    std::vector<Event> out;
    for (const auto& e : events_)
      if (e.action() == action) out.push_back(e);
    return out;
  }
  bool health_file_exists() {
    struct stat st {};
    return ::stat(config_.health_file.c_str(), &st) == 0;
  }

  testing::TempDir tmp_;
  testing::SimEnv env_;
  config::HealConfig config_;
  std::vector<Event> events_;
  std::deque<Result<bool>> verify_results_;
  int verifies_ = 0;
};

TEST_F(HealerTest, StartsHealthy) {
  auto h = open();
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->healthy());
  EXPECT_EQ(tmp_.read("www/health"), "ok\n");
  struct stat st {};
  ASSERT_EQ(::stat(config_.health_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  ASSERT_EQ(::stat((tmp_ / "state/heal.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(status_line(h->endpoint_port()), "HTTP/1.1 200 OK");
  EXPECT_TRUE(events_.empty());
  EXPECT_EQ(proto::to_json(h->status())["healthy"], true);
  EXPECT_EQ(proto::to_json(h->status())["endpoint"],
            "127.0.0.1:" + std::to_string(h->endpoint_port()));
}

TEST_F(HealerTest, StormTakesTheNodeOutOfRotation) {
  use_recording_hook();
  auto h = open();
  ASSERT_TRUE(h);
  Event storm = ev("tamper-storm");
  storm.set("mamori.root", "/srv/www");
  h->observe(storm);

  EXPECT_FALSE(h->healthy());
  EXPECT_FALSE(health_file_exists());
  const uint16_t port = h->endpoint_port();
  const std::string r = http_for_test(port, "GET / HTTP/1.0\r\n\r\n", false);
  EXPECT_TRUE(r.starts_with("HTTP/1.1 503")) << r;
  EXPECT_TRUE(r.ends_with("\r\n\r\nunhealthy: tamper-storm\n")) << r;

  auto down = taken("node-unhealthy");
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].severity(), Severity::kCritical);
  EXPECT_EQ(down[0].get("mamori.heal.reason"), "tamper-storm");
  EXPECT_EQ(down[0].get("mamori.heal.trigger.id"), storm.id());
  EXPECT_EQ(down[0].get("mamori.heal.trigger.action"), "tamper-storm");
  EXPECT_NE(down[0].get("message").get<std::string>().find("tamper-storm"), std::string::npos);

  h->wait_hooks_for_test();
  h->tick();
  EXPECT_EQ(tmp_.read("hook.in"), storm.to_json_line() + "\n");
  EXPECT_EQ(tmp_.read("hook.reason"), "tamper-storm");
  auto ran = taken("hook-ran");
  ASSERT_EQ(ran.size(), 1u);
  EXPECT_EQ(ran[0].get("event.outcome"), "success");
  EXPECT_EQ(ran[0].get("mamori.hook.exit_code"), 0);

  // The same episode: no second event, no second hook.
  h->observe(storm);
  h->wait_hooks_for_test();
  h->tick();
  EXPECT_EQ(taken("node-unhealthy").size(), 1u);
  EXPECT_EQ(taken("hook-ran").size(), 1u);
  EXPECT_EQ(proto::to_json(h->status())["trigger_event_id"], storm.id());
  EXPECT_EQ(proto::to_json(h->status())["reason"], "tamper-storm");
}

TEST_F(HealerTest, RewriteSaysDown) {
  config_.health_file_action = config::HealthFileAction::kRewrite;
  config_.health_listen.clear();
  auto h = open();
  ASSERT_TRUE(h);
  h->observe(ev("tamper-storm"));
  EXPECT_EQ(tmp_.read("www/health"), "DOWN tamper-storm\n");
  EXPECT_EQ(h->endpoint_port(), 0);
  EXPECT_EQ(proto::to_json(h->status())["endpoint"], nullptr);
  ASSERT_TRUE(h->clear("test"));
  EXPECT_EQ(tmp_.read("www/health"), "ok\n");
}

TEST_F(HealerTest, StormConditionCanBeOff) {
  config_.on_storm = false;
  auto h = open();
  h->observe(ev("tamper-storm"));
  EXPECT_TRUE(h->healthy());
}

TEST_F(HealerTest, PageInjectedIsAConditionWhenAskedFor) {
  auto h = open();
  h->observe(ev("page-injected"));
  EXPECT_TRUE(h->healthy());  // off by default: the owner's new script would drain the node
  h.reset();
  config_.on_page_injected = true;
  h = open();
  Event injected = ev("page-injected");
  injected.set("url.full", "http://www.example.com/");
  h->observe(injected);
  EXPECT_FALSE(h->healthy());
  EXPECT_FALSE(health_file_exists());
  auto down = taken("node-unhealthy");
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].get("mamori.heal.reason"), "page-injected");
  EXPECT_EQ(down[0].get("mamori.heal.trigger.id"), injected.id());
}

TEST_F(HealerTest, TamperRateInASlidingWindow) {
  config_.on_storm = false;
  config_.tamper_count = 3;
  config_.tamper_window_s = 10;
  auto h = open();
  for (int i = 0; i < 3; ++i) h->observe(file_ev("file-restored", "a.html"));
  EXPECT_TRUE(h->healthy());
  // Older than the window: forgotten.
  advance(11);
  h->tick();
  h->observe(file_ev("file-created", "b.html"));
  h->observe(file_ev("file-deleted", "c.html"));
  advance(5);
  h->observe(file_ev("file-changed", "d.html"));
  EXPECT_TRUE(h->healthy());
  // Non-tamper events do not count.
  h->observe(file_ev("file-allowed", "upload.jpg"));
  h->observe(ev("agent-started"));
  EXPECT_TRUE(h->healthy());
  Event fourth = file_ev("file-repaired", "e.html");
  h->observe(fourth);
  EXPECT_FALSE(h->healthy());
  EXPECT_EQ(proto::to_json(h->status())["reason"], "tamper-rate");
  EXPECT_EQ(proto::to_json(h->status())["trigger_event_id"], fourth.id());
}

TEST_F(HealerTest, SummariesCountEveryPath) {
  config_.on_storm = false;
  config_.tamper_count = 4;
  auto h = open();
  Event summary = ev("tamper-storm-summary");
  summary.set("mamori.summary.path_count", 5).set("mamori.mode", "restore");
  h->observe(summary);
  EXPECT_FALSE(h->healthy());
  EXPECT_EQ(proto::to_json(h->status())["reason"], "tamper-rate");
}

TEST_F(HealerTest, DeploysNeverCount) {
  config_.tamper_count = 2;
  auto h = open();
  for (int i = 0; i < 10; ++i) h->observe(file_ev("file-changed", "x.php", "deploy"));
  EXPECT_TRUE(h->healthy());

  // A storm during a deploy carries no mode: the deploy-started event tells.
  Event started = ev("deploy-started");
  started.set("mamori.root", "/srv/www");
  h->observe(started);
  Event storm = ev("tamper-storm");
  storm.set("mamori.root", "/srv/www");
  h->observe(storm);
  Event summary = ev("tamper-storm-summary");
  summary.set("mamori.root", "/srv/www").set("mamori.mode", "restore");
  summary.set("mamori.summary.path_count", 1000);
  h->observe(summary);
  EXPECT_TRUE(h->healthy());

  Event ended = ev("deploy-ended");
  ended.set("mamori.root", "/srv/www");
  h->observe(ended);
  h->observe(storm);
  EXPECT_FALSE(h->healthy());
}

TEST_F(HealerTest, ScriptQuarantined) {
  config_.on_script_quarantined = true;
  auto h = open();
  h->observe(file_ev("file-quarantined", "uploads/cat.jpg"));
  h->observe(file_ev("file-quarantined", "uploads/php"));
  h->observe(file_ev("file-changed", "shell.php"));
  EXPECT_TRUE(h->healthy());
  h->observe(file_ev("file-quarantined", "uploads/shell.PHP5"));
  EXPECT_FALSE(h->healthy());
  EXPECT_EQ(proto::to_json(h->status())["reason"], "script-quarantined");
}

TEST_F(HealerTest, ScriptQuarantinedCanBeOff) {
  config_.on_script_quarantined = false;
  auto h = open();
  h->observe(file_ev("file-quarantined", "uploads/shell.php"));
  EXPECT_TRUE(h->healthy());
}

TEST(IsExecutableScript, Extensions) {
  for (const char* yes :
       {"a.php", "/x/b.phtml", "c.php3", "c.php8", "d.phar", "e.pl", "f.py", "g.sh", "h.cgi",
        "i.jsp", "j.JSPX", "k.asp", "l.aspx", "m.rb", "n.Lua", "x.jpg.php"})
    EXPECT_TRUE(is_executable_script(yes)) << yes;
  for (const char* no :
       {"a.html", "b.php.jpg", "php", "/x.php/readme", ".php", "c.php9", "d.phpx", ""})
    EXPECT_FALSE(is_executable_script(no)) << no;
}

TEST_F(HealerTest, RestoreFailedOnlyOnTheGuardsLastAttempt) {
  auto h = open();
  // A lost race, then a retry that succeeds: no condition.
  h->observe(file_ev("file-restore-failed", "index.php"));
  h->observe(file_ev("file-restored", "index.php", "restore", "retry"));
  for (int i = 1; i < Healer::kRestoreAttempts; ++i)
    h->observe(
        file_ev("file-restore-failed", "index.php", "restore", i == 1 ? "realtime" : "retry"));
  EXPECT_TRUE(h->healthy());
  // Another path's failure does not add up with this one.
  h->observe(file_ev("file-restore-failed", "other.php"));
  EXPECT_TRUE(h->healthy());
  Event last = file_ev("file-restore-failed", "index.php", "restore", "retry");
  h->observe(last);
  EXPECT_FALSE(h->healthy());
  EXPECT_EQ(proto::to_json(h->status())["reason"], "restore-failed");
  EXPECT_EQ(proto::to_json(h->status())["trigger_event_id"], last.id());
}

TEST_F(HealerTest, RestoreFailedCanBeOff) {
  config_.on_restore_failed = false;
  auto h = open();
  for (int i = 0; i < Healer::kRestoreAttempts * 2; ++i)
    h->observe(file_ev("file-restore-failed", "index.php", "restore", i ? "retry" : "realtime"));
  EXPECT_TRUE(h->healthy());
}

TEST_F(HealerTest, StateFailed) {
  auto h = open();
  h->observe(ev("state-failed"));
  EXPECT_FALSE(h->healthy());
  EXPECT_EQ(proto::to_json(h->status())["reason"], "state-failed");
}

TEST_F(HealerTest, IgnoresItsOwnEvents) {
  config_.tamper_count = 1;
  auto h = open();
  for (const char* own :
       {"node-unhealthy", "node-healthy", "hook-ran", "hook-failed", "health-action-failed"})
    for (int i = 0; i < 3; ++i) h->observe(ev(own));
  EXPECT_TRUE(h->healthy());
}

TEST_F(HealerTest, HookExitStatusIsAFailure) {
  tmp_.write("hook.sh", "#!/bin/sh\necho 'no route to LB API'\nexit 3\n", 0755);
  ::chmod((tmp_ / "hook.sh").c_str(), 0755);
  config_.hook = {tmp_ / "hook.sh"};
  auto h = open();
  h->observe(ev("tamper-storm"));
  h->wait_hooks_for_test();
  h->tick();
  auto failed = taken("hook-failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].get("event.outcome"), "failure");
  EXPECT_EQ(failed[0].get("mamori.hook.exit_code"), 3);
  EXPECT_EQ(failed[0].get("mamori.hook.output"), "no route to LB API\n");
  EXPECT_EQ(failed[0].get("error.message"), "exited with status 3");
  EXPECT_FALSE(h->healthy());
}

TEST_F(HealerTest, MissingHookIsAFailure) {
  config_.hook = {tmp_ / "no-such-hook", "arg"};
  auto h = open();
  h->observe(ev("tamper-storm"));
  h->wait_hooks_for_test();
  h->tick();
  auto failed = taken("hook-failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0].get("error.message").get<std::string>().find("No such file"),
            std::string::npos)
      << failed[0].to_json_line();
  EXPECT_FALSE(h->healthy());
}

TEST_F(HealerTest, HangingHookIsKilledAtItsTimeout) {
  // Real time: the hook is a real process.
  RealEnv real;
  tmp_.write("hook.sh", "#!/bin/sh\nsleep 100\n", 0755);
  ::chmod((tmp_ / "hook.sh").c_str(), 0755);
  config_.hook = {tmp_ / "hook.sh"};
  config_.hook_timeout_s = 1;
  auto h = open(&real);
  h->observe(ev("tamper-storm"));
  EXPECT_EQ(proto::to_json(h->status())["hooks_running"], 1);
  h->wait_hooks_for_test();
  h->tick();
  auto failed = taken("hook-failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].get("mamori.hook.timed_out"), true);
  EXPECT_EQ(failed[0].get("mamori.hook.signal"), SIGTERM);
  EXPECT_GE(failed[0].get("mamori.hook.duration_ms").get<int64_t>(), 1000);
  EXPECT_EQ(proto::to_json(h->status())["hooks_running"], 0);
}

TEST_F(HealerTest, RecoversAfterACleanVerify) {
  config_.recover_after_s = 60;
  auto h = open();
  h->observe(ev("tamper-storm"));
  ASSERT_FALSE(h->healthy());
  EXPECT_FALSE(proto::to_json(h->status())["recover_at"].is_null());

  advance(30);
  h->tick();
  EXPECT_EQ(verifies_, 0);
  // Another condition pushes recovery back.
  h->observe(ev("state-failed"));
  advance(31);
  h->tick();
  EXPECT_EQ(verifies_, 0);

  verify_results_ = {false, fail_msg("verify", "/srv/www", "broken"), true};
  advance(30);
  h->tick();
  EXPECT_EQ(verifies_, 1);  // dirty
  EXPECT_FALSE(h->healthy());
  advance(59);
  h->tick();
  EXPECT_EQ(verifies_, 1);
  advance(1);
  h->tick();
  EXPECT_EQ(verifies_, 2);  // an error counts as not clean
  EXPECT_FALSE(h->healthy());
  advance(60);
  h->tick();
  EXPECT_EQ(verifies_, 3);
  EXPECT_TRUE(h->healthy());
  EXPECT_EQ(tmp_.read("www/health"), "ok\n");
  EXPECT_EQ(status_line(h->endpoint_port()), "HTTP/1.1 200 OK");
  auto up = taken("node-healthy");
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].get("mamori.heal.recovered"), "verify-clean");
  EXPECT_EQ(up[0].get("mamori.heal.previous_reason"), "tamper-storm");
  EXPECT_TRUE(proto::to_json(h->status())["recover_at"].is_null());

  // A new episode after recovery.
  h->observe(ev("tamper-storm"));
  EXPECT_FALSE(h->healthy());
  EXPECT_EQ(taken("node-unhealthy").size(), 2u);
}

TEST_F(HealerTest, NoRecoveryWithoutRecoverAfter) {
  config_.recover_after_s = 0;
  auto h = open();
  h->observe(ev("tamper-storm"));
  advance(100000);
  h->tick();
  EXPECT_EQ(verifies_, 0);
  EXPECT_FALSE(h->healthy());
  EXPECT_TRUE(proto::to_json(h->status())["recover_at"].is_null());
}

TEST_F(HealerTest, ClearMakesHealthyAtOnce) {
  auto h = open();
  ASSERT_TRUE(h->clear("nobody"));  // already healthy: nothing to say
  EXPECT_TRUE(taken("node-healthy").empty());
  h->observe(ev("tamper-storm"));
  ASSERT_TRUE(h->clear("alice"));
  EXPECT_TRUE(h->healthy());
  EXPECT_EQ(tmp_.read("www/health"), "ok\n");
  EXPECT_EQ(status_line(h->endpoint_port()), "HTTP/1.1 200 OK");
  auto up = taken("node-healthy");
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].get("mamori.heal.cleared_by"), "alice");
}

TEST_F(HealerTest, ManualFailWaitsForClear) {
  use_recording_hook();
  config_.recover_after_s = 10;
  auto h = open();
  ASSERT_TRUE(h->fail("maintenance\nwindow"));
  EXPECT_FALSE(h->healthy());
  EXPECT_EQ(proto::to_json(h->status())["reason"], "maintenance window");
  EXPECT_EQ(proto::to_json(h->status())["manual"], true);
  EXPECT_FALSE(health_file_exists());
  auto down = taken("node-unhealthy");
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].get("mamori.heal.manual"), true);
  h->wait_hooks_for_test();
  EXPECT_EQ(tmp_.read("hook.in"), down[0].to_json_line() + "\n");
  advance(1000);
  h->tick();
  EXPECT_EQ(verifies_, 0);
  EXPECT_FALSE(h->healthy());
  ASSERT_TRUE(h->clear("bob"));
  EXPECT_TRUE(h->healthy());
}

TEST_F(HealerTest, AFailDuringAConditionMakesItManual) {
  config_.recover_after_s = 10;
  auto h = open();
  h->observe(ev("tamper-storm"));
  ASSERT_TRUE(h->fail("keep it out"));
  advance(1000);
  h->tick();
  EXPECT_EQ(verifies_, 0);
  EXPECT_FALSE(h->healthy());
  EXPECT_EQ(proto::to_json(h->status())["reason"], "tamper-storm");
  EXPECT_EQ(proto::to_json(h->status())["manual"], true);
}

TEST_F(HealerTest, UnhealthySurvivesARestart) {
  use_recording_hook();
  {
    auto h = open();
    h->observe(ev("tamper-storm"));
    h->wait_hooks_for_test();
  }
  EXPECT_FALSE(health_file_exists());
  events_.clear();
  ::unlink((tmp_ / "hook.in").c_str());

  auto h = open();
  ASSERT_TRUE(h);
  EXPECT_FALSE(h->healthy());
  EXPECT_FALSE(health_file_exists());
  EXPECT_EQ(status_line(h->endpoint_port()), "HTTP/1.1 503 Service Unavailable");
  EXPECT_EQ(proto::to_json(h->status())["reason"], "tamper-storm");
  // Not a new episode: no event, no hook.
  h->wait_hooks_for_test();
  EXPECT_TRUE(events_.empty());
  struct stat st {};
  EXPECT_NE(::stat((tmp_ / "hook.in").c_str(), &st), 0);

  ASSERT_TRUE(h->clear("alice"));
  h.reset();
  h = open();
  EXPECT_TRUE(h->healthy());
  EXPECT_EQ(tmp_.read("www/health"), "ok\n");
}

TEST_F(HealerTest, RecoveryTimeSurvivesARestart) {
  config_.recover_after_s = 60;
  {
    auto h = open();
    h->observe(ev("tamper-storm"));
  }
  advance(61);
  auto h = open();
  h->tick();
  EXPECT_EQ(verifies_, 1);
  EXPECT_TRUE(h->healthy());
}

TEST_F(HealerTest, CorruptStateIsUnhealthy) {
  for (const std::string& bad : std::vector<std::string>{
           "{\"version\":1,\"healthy\":tr", "[]", "{\"version\":2,\"healthy\":true,\"since_ns\":1}",
           "{\"version\":1,\"healthy\":\"yes\",\"since_ns\":1}", std::string("\0\1\2", 3)}) {
    tmp_.write("state/heal.json", bad, 0600);
    tmp_.write("www/health", "ok\n");
    events_.clear();
    auto h = open();
    ASSERT_TRUE(h);
    EXPECT_FALSE(h->healthy()) << bad;
    EXPECT_EQ(proto::to_json(h->status())["reason"], "state file unreadable");
    EXPECT_FALSE(health_file_exists());
    auto down = taken("node-unhealthy");
    ASSERT_EQ(down.size(), 1u);
    EXPECT_FALSE(down[0].get("error.message").is_null());
  }
}

TEST_F(HealerTest, StateFileThatIsADirectoryIsUnhealthy) {
  tmp_.mkdir("state/heal.json");
  auto h = open();
  ASSERT_TRUE(h);
  EXPECT_FALSE(h->healthy());
  // It cannot be replaced either: reported, not fatal.
  EXPECT_FALSE(taken("health-action-failed").empty());
}

TEST_F(HealerTest, BadStateDirFailsOpen) {
  tmp_.write("not-a-dir", "");
  auto h = Healer::open(
      env_, config_, tmp_ / "not-a-dir", [](Event) {}, [] { return Result<bool>(true); });
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().errnum, ENOTDIR);
}

TEST_F(HealerTest, MissingHealthFileDirectoryIsReportedAndRetried) {
  config_.health_file = tmp_ / "gone/health";
  auto h = open();
  ASSERT_TRUE(h);
  auto failed = taken("health-action-failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].get("error.message"),
            "health file directory '" + tmp_ / "gone" + "' does not exist");
  EXPECT_EQ(failed[0].severity(), Severity::kWarning);
  // Once per error, though retried every tick.
  h->tick();
  h->tick();
  EXPECT_EQ(taken("health-action-failed").size(), 1u);
  // State is still tracked, and the endpoint still works.
  h->observe(ev("tamper-storm"));
  EXPECT_FALSE(h->healthy());
  EXPECT_EQ(status_line(h->endpoint_port()), "HTTP/1.1 503 Service Unavailable");
  ASSERT_TRUE(h->clear("alice"));
  tmp_.mkdir("gone");
  h->tick();
  EXPECT_EQ(tmp_.read("gone/health"), "ok\n");
  EXPECT_TRUE(proto::to_json(h->status())["action_errors"].empty());
}

TEST_F(HealerTest, PortInUseIsReportedAndRetried) {
  auto other = HealthEndpoint::start("127.0.0.1:0", true, "");
  ASSERT_TRUE(other);
  const uint16_t port = (*other)->port();
  config_.health_listen = "127.0.0.1:" + std::to_string(port);
  auto h = open();
  ASSERT_TRUE(h);
  auto failed = taken("health-action-failed");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_NE(failed[0].get("error.message").get<std::string>().find("Address already in use"),
            std::string::npos);
  EXPECT_EQ(h->endpoint_port(), 0);
  h->observe(ev("tamper-storm"));
  EXPECT_FALSE(h->healthy());
  EXPECT_FALSE(health_file_exists());
  other->reset();
  h->tick();
  EXPECT_EQ(h->endpoint_port(), port);
  EXPECT_EQ(status_line(port), "HTTP/1.1 503 Service Unavailable");
}

}  // namespace
}  // namespace mamori::heal
