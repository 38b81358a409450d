// The agent in process: its start-up steps one by one, and the real loop (guard, outbox,
// sinks, healer, control handlers) driven by a replay watcher in a temporary tree.

#include "agent/app/agent.h"

#include <arpa/inet.h>
#include <fcntl.h>
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

#include "agent/control/handlers.h"
#include "agent/watch/replay/replay_watcher.h"
#include "core/base/unique_fd.h"
#include "core/baseline/record.h"
#include "core/baseline/state.h"
#include "core/db/sqlite.h"
#include "core/evidence/evidence.h"
#include "core/fs/beneath.h"
#include "core/proto/actions.h"
#include "core/proto/control.h"
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
      "listen",         "open_state",     "load_origin",   "open_outbox",
      "start_sinks",    "start_link",     "open_evidence", "open_heal",
      "open_roots",     "start_watchers", "start_gate",    "verify_roots",
      "start_logwatch", "start_pages",    "serve_control", "notify_ready"};
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

// The manager's evidence command, answered by the agent's handlers from its own stores:
// the kept bytes (a prefix past the limit) and the baseline's content, or why not.
TEST_F(AgentTest, EvidenceCommandAnswersWithTheKeptAndTheBaselineContent) {
  record_baseline();
  const std::string good = "<?php require 'load.php';\n";
  const std::string big(proto::kMaxEvidenceBytes + 5000, 'x');
  std::vector<int64_t> ids;
  TempDir copies;  // the tampered contents, outside the guarded site
  {
    auto store =
        evidence::EvidenceStore::open(env, state.path(), evidence::EvidenceStore::Access::kWrite);
    ASSERT_TRUE(store) << store.error().message();
    auto keep = [&](const std::string& name, const std::string& content,
                    std::optional<hash::Digest> baseline) {
      copies.write(name, content);
      UniqueFd fd(::open((copies / name).c_str(), O_RDONLY | O_CLOEXEC));
      evidence::Item meta;
      meta.root = site.path();
      meta.path = name;
      meta.reason = "modified";
      meta.baseline_sha256 = baseline;
      auto item = (*store)->add(meta, fd.get());
      ASSERT_TRUE(item) << item.error().message();
      ids.push_back(item->id);
    };
    keep("tampered.php", big, hash::sha256(good));            // before: the baseline's
    keep("same.php", good, hash::sha256(good));               // the kept one is the baseline's
    keep("new.php", "<?php eval($_POST[0]);", std::nullopt);  // a new file
    keep("gone.php", "x", hash::sha256(std::string_view("never stored")));
  }
  Agent agent(env, executor, options);
  ASSERT_TRUE(agent.start());
  auto ask = [&](int64_t id) {
    return agent.handlers().handle(proto::Request{proto::kVersion, proto::EvidenceRequest{id}});
  };

  auto a = ask(ids[0]);
  ASSERT_TRUE(std::holds_alternative<proto::EvidenceAnswer>(a));
  const auto& tampered = std::get<proto::EvidenceAnswer>(a);
  EXPECT_EQ(tampered.after.bytes, big.substr(0, proto::kMaxEvidenceBytes));
  EXPECT_FALSE(tampered.after.complete) << "a prefix";
  ASSERT_TRUE(tampered.before);
  EXPECT_EQ(tampered.before->bytes, good);
  EXPECT_TRUE(tampered.before->complete);
  EXPECT_EQ(tampered.item["mamori"]["evidence"]["id"], ids[0]);
  EXPECT_NE(tampered.item["file"]["path"].get<std::string>().find("tampered.php"),
            std::string::npos);

  const char* missing[] = {"same", "unknown", "gone"};
  for (size_t i = 1; i < 4; ++i) {
    auto x = ask(ids[i]);
    ASSERT_TRUE(std::holds_alternative<proto::EvidenceAnswer>(x)) << i;
    EXPECT_FALSE(std::get<proto::EvidenceAnswer>(x).before) << i;
    EXPECT_EQ(std::get<proto::EvidenceAnswer>(x).before_missing, missing[i - 1]);
    EXPECT_TRUE(std::get<proto::EvidenceAnswer>(x).after.complete) << i;
  }
  auto none = ask(9999);
  ASSERT_TRUE(std::holds_alternative<proto::ErrorAnswer>(none));
  EXPECT_EQ(std::get<proto::ErrorAnswer>(none).code, proto::ErrorCode::kBadArgument);
}

// The site command: each root's digest, then a directory's children, the same digests
// the baseline module computes; an unknown root is named as such.
TEST_F(AgentTest, SiteCommandAnswersTheBaselinesDigests) {
  record_baseline();
  Agent agent(env, executor, options);
  ASSERT_TRUE(agent.start());
  auto ask = [&](proto::SiteRequest q) { return agent.handlers().handle({proto::kVersion, q}); };
  auto roots = ask({});
  ASSERT_TRUE(std::holds_alternative<proto::SiteAnswer>(roots));
  const auto& r = std::get<proto::SiteAnswer>(roots);
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].name, site.path());
  EXPECT_EQ(r.parts[0].entries, 3u) << "the root and its two files";

  auto top = ask({site.path(), "", ""});
  ASSERT_TRUE(std::holds_alternative<proto::SiteAnswer>(top));
  const auto& t = std::get<proto::SiteAnswer>(top);
  ASSERT_EQ(t.parts.size(), 2u);
  EXPECT_EQ(t.parts[0].name, "index.php");
  EXPECT_EQ(t.parts[0].type, "file");
  EXPECT_EQ(t.parts[1].name, "load.php");
  EXPECT_FALSE(t.more);
  auto page = ask({site.path(), "", "index.php"});
  ASSERT_TRUE(std::holds_alternative<proto::SiteAnswer>(page));
  ASSERT_EQ(std::get<proto::SiteAnswer>(page).parts.size(), 1u);
  EXPECT_EQ(std::get<proto::SiteAnswer>(page).parts[0].digest, t.parts[1].digest);

  auto unknown = ask({"/nowhere", "", ""});
  ASSERT_TRUE(std::holds_alternative<proto::ErrorAnswer>(unknown));
  EXPECT_EQ(std::get<proto::ErrorAnswer>(unknown).code, proto::ErrorCode::kUnknownRoot);
}

}  // namespace
}  // namespace mamori::agent
