// The agent in process: its start-up steps one by one, and the real loop (guard, outbox,
// sinks, healer, control handlers) driven by a replay watcher in a temporary tree.

#include "agent/app/agent.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/watch/replay/replay_watcher.h"
#include "core/base/unique_fd.h"
#include "core/baseline/record.h"
#include "core/baseline/state.h"
#include "core/db/sqlite.h"
#include "core/fs/beneath.h"
#include "core/proto/actions.h"
#include "testing/temp_dir.h"

namespace mamori::agent {
namespace {

using testing::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    site.write("index.php", "<?php require 'load.php';\n");
    site.write("load.php", "<?php // load\n");
    // A syslog receiver: the sink's deliveries are what the test waits on.
    syslog_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(syslog_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ::getsockname(syslog_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    const std::string text = "state_dir = \"" + state.path() + "\"\n" + "[[root]]\npath = \"" +
                             site.path() + "\"\nmode = \"restore\"\n" + "[agent]\nsocket = \"" +
                             (state / "agent.sock") + "\"\n" + "event_log = \"" +
                             (state / "events.jsonl") + "\"\n" +
                             "[[sink]]\ntype = \"syslog\"\naddress = \"udp://127.0.0.1:" +
                             std::to_string(ntohs(addr.sin_port)) + "\"\n";
    auto c = config::parse_config(text, "agent_test.toml");
    ASSERT_TRUE(c) << c.error().text();
    options.config = std::move(*c);
    options.config_path = "agent_test.toml";
    options.make_watcher = [this](config::Backend) -> Result<std::unique_ptr<watch::Watcher>> {
      auto w = std::make_unique<watch::ReplayWatcher>();
      replay = w.get();
      return std::unique_ptr<watch::Watcher>(std::move(w));
    };
  }

  void record_baseline() {
    auto w = baseline::open_state(env, state.path(), baseline::StateAccess::kWrite).value();
    auto txn = db::Transaction::begin(w->catalog.db()).value();
    const int64_t id = w->catalog.touch_root(site.path(), 1).value();
    auto root = fs::open_root(site.path()).value();
    baseline::ScanContext ctx{root.get(), nullptr, executor, env.clock(), nullptr};
    ASSERT_TRUE(baseline::record(w->catalog, *w->store, id, ctx, ""));
    ASSERT_TRUE(w->store->commit());
    ASSERT_TRUE(w->catalog.seal(1));
    ASSERT_TRUE(txn.commit());
  }

  // The next syslog message that contains `needle`, waiting at most 10 s for it.
  std::string receive(const std::string& needle) {
    char buf[65536];
    while (true) {
      pollfd p{syslog_.get(), POLLIN, 0};
      if (::poll(&p, 1, 10'000) != 1) return "";
      const ssize_t n = ::recv(syslog_.get(), buf, sizeof buf, 0);
      if (n <= 0) return "";
      std::string msg(buf, static_cast<size_t>(n));
      if (msg.find(needle) != std::string::npos) return msg;
    }
  }

  TempDir site, state;
  RealEnv env;
  ThreadExecutor executor{2};
  AgentOptions options;
  watch::ReplayWatcher* replay = nullptr;  // owned by the agent
  UniqueFd syslog_;
};

TEST_F(AgentTest, StepsAreTheDocumentedOnesInOrder) {
  const std::vector<std::string_view> want = {
      "listen",       "open_state",     "load_origin",   "open_outbox", "start_sinks",
      "start_link",   "open_evidence",  "open_heal",     "open_roots",  "start_watchers",
      "verify_roots", "start_logwatch", "serve_control", "notify_ready"};
  EXPECT_EQ(Agent::step_names(), want);
}

TEST_F(AgentTest, EachStepRunsOnItsOwnAndAFailureNamesIt) {
  // Before any `mamori init`: no catalog, open_state fails, named.
  {
    Agent agent(env, executor, options);
    auto st = agent.start();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().op, "open_state") << st.error().message();
  }
  record_baseline();
  // Up to a step, and no further: open_heal is done, start_watchers did not run.
  {
    Agent agent(env, executor, options);
    auto st = agent.start("open_heal");
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(replay, nullptr) << "start_watchers ran although start stopped before it";
  }
  // A second root without a baseline: open_roots fails, named, with its reason.
  {
    TempDir other;
    AgentOptions two = options;
    two.config.roots.push_back(two.config.roots[0]);
    two.config.roots.back().path = other.path();
    Agent agent(env, executor, two);
    auto st = agent.start();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().op, "open_roots");
    EXPECT_NE(st.error().message().find("has no baseline yet"), std::string::npos)
        << st.error().message();
  }
  // A second agent on the same socket stops at the first step.
  Agent first(env, executor, options);
  ASSERT_TRUE(first.start("listen"));
  Agent second(env, executor, options);
  auto st = second.start();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().op, "listen");
  EXPECT_NE(st.error().message().find("another mamori agent is running"), std::string::npos);
  EXPECT_FALSE(Agent(env, executor, options).start("no_such_step"));
}

TEST_F(AgentTest, ReplayedTamperIsRestoredWrittenAndDelivered) {
  record_baseline();
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  options.stop_fd = stop.get();
  Agent agent(env, executor, options);
  ASSERT_TRUE(agent.start());
  ASSERT_NE(replay, nullptr);
  ASSERT_FALSE(receive(std::string(proto::action::kAgentStarted)).empty());

  int code = -1;
  std::thread loop([&] { code = agent.run(); });
  site.write("index.php", "<?php system($_GET['c']);\n");
  replay->push(watch::Change{0, "index.php", watch::kContent | watch::kClosedWrite, -1, ""});
  const std::string delivered = receive(std::string(proto::action::kFileRestored));
  const uint64_t one = 1;
  ASSERT_EQ(::write(stop.get(), &one, sizeof one), 8);
  loop.join();

  EXPECT_EQ(code, 0);
  EXPECT_NE(delivered.find("index.php"), std::string::npos) << delivered;
  EXPECT_EQ(site.read("index.php"), "<?php require 'load.php';\n");
  const std::string events = slurp(state / "events.jsonl");
  EXPECT_NE(events.find("\"file-restored\""), std::string::npos);
  EXPECT_NE(events.find("\"agent-stopped\""), std::string::npos);
  // The healer saw it too: one restore is no condition, the node stays healthy.
  EXPECT_EQ(events.find("\"node-unhealthy\""), std::string::npos);
  // Every action written is one the protocol names (the schema's EventAction).
  std::istringstream lines(events);
  for (std::string line; std::getline(lines, line);) {
    const auto action = nlohmann::json::parse(line)["event"]["action"].get<std::string>();
    EXPECT_NE(
        std::find(proto::action::kAllActions.begin(), proto::action::kAllActions.end(), action),
        proto::action::kAllActions.end())
        << action;
  }
}

}  // namespace
}  // namespace mamori::agent
