#include "agent/triage/lookup_worker.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/proto/actions.h"
#include "testing/sim_env.h"
#include "testing/temp_dir.h"

namespace mamori::triage {
namespace {

using std::chrono::seconds;

hash::Digest digest(int i) { return hash::sha256("file " + std::to_string(i)); }

// Answers like VirusTotal from memory and counts the requests.
class CountingLookup final : public scan::HashLookup {
 public:
  explicit CountingLookup(std::atomic<int>& asked) : asked_(asked) {}
  Result<scan::LookupAnswer> lookup(const hash::Digest& sha256) override {
    ++asked_;
    scan::LookupAnswer a;
    a.kind = scan::LookupAnswer::Kind::kVerdict;
    a.verdict.known = sha256 != digest(404);
    if (!a.verdict.known) return a;
    a.verdict.stats = {31, 2, 27, 0};
    a.verdict.label = "trojan.php/webshell";
    return a;
  }

 private:
  std::atomic<int>& asked_;
};

class LookupWorkerTest : public ::testing::Test {
 protected:
  std::unique_ptr<LookupWorker> start(scan::LookupLimits limits = {}) {
    LookupWorkerOptions o;
    o.state_path = dir / "lookup.json";
    o.limits = limits;
    o.make_client = [this]() -> Result<std::unique_ptr<scan::HashLookup>> {
      return std::make_unique<CountingLookup>(asked);
    };
    // Called on the worker's thread; read here after wait_idle_for_test() (its lock).
    o.publish = [this](std::vector<event::Event>&& events) {
      for (auto& e : events) published.push_back(std::move(e));
    };
    o.log = [this](const std::string& line) { logged.push_back(line); };
    return std::make_unique<LookupWorker>(env, std::move(o));
  }

  static event::Event guard_event(std::string_view action, const hash::Digest& sha) {
    event::Event e(action, event::Severity::kCritical, 1);
    e.set("file.hash.sha256", sha.hex());
    return e;
  }

  testing::TempDir dir;
  testing::SimEnv env;
  std::atomic<int> asked{0};
  std::vector<event::Event> published;
  std::vector<std::string> logged;
};

TEST_F(LookupWorkerTest, AVerdictBecomesAnEventThatJoinsTheGuardsIncident) {
  auto w = start();
  const auto quarantined = guard_event(proto::action::kFileQuarantined, digest(1));
  w->observe(quarantined);
  w->observe(guard_event(proto::action::kFileAllowed, digest(2)));  // not triage's
  event::Event no_hash(proto::action::kFileRestored, event::Severity::kWarning, 1);
  w->observe(no_hash);
  w->wait_idle_for_test();
  EXPECT_EQ(asked, 1);
  ASSERT_EQ(published.size(), 1u);
  const auto& e = published[0];
  EXPECT_EQ(e.action(), proto::action::kFileLookup);
  EXPECT_EQ(e.severity(), event::Severity::kCritical);
  EXPECT_EQ(e.get("mamori.related_event"), quarantined.id());
  EXPECT_EQ(e.get("file.hash.sha256"), digest(1).hex());
  EXPECT_EQ(e.get("mamori.lookup.found"), true);
  EXPECT_EQ(e.get("mamori.lookup.cached"), false);
  EXPECT_EQ(e.get("mamori.lookup.malicious"), 31);
  EXPECT_EQ(e.get("mamori.lookup.label"), "trojan.php/webshell");
  EXPECT_EQ(e.get("mamori.lookup.link"), "https://www.virustotal.com/gui/file/" + digest(1).hex());

  // The same content again (re-planted): from the cache, no request.
  const auto again = guard_event(proto::action::kFileRestored, digest(1));
  w->observe(again);
  w->wait_idle_for_test();
  EXPECT_EQ(asked, 1);
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[1].get("mamori.related_event"), again.id());
  EXPECT_EQ(published[1].get("mamori.lookup.cached"), true);
}

TEST_F(LookupWorkerTest, TheRateHoldsAndWhatWaitsSurvivesARestart) {
  std::vector<std::string> ids;
  {
    auto w = start({.per_minute = 2});
    for (int i = 0; i < 5; ++i) {
      auto e = guard_event(proto::action::kFileRestored, digest(i));
      ids.push_back(e.id());
      w->observe(e);
    }
    w->wait_idle_for_test();
    EXPECT_EQ(asked, 2);
    w->round_for_test();  // nothing more this minute, however often it looks
    EXPECT_EQ(asked, 2);
  }
  EXPECT_EQ(published.size(), 2u);
  auto w = start({.per_minute = 2});  // a restart: the queue and the minute's count persist
  w->wait_idle_for_test();
  EXPECT_EQ(asked, 2);
  env.sim().advance(seconds(60));
  w->round_for_test();
  EXPECT_EQ(asked, 4);
  env.sim().advance(seconds(60));
  w->round_for_test();
  EXPECT_EQ(asked, 5);
  ASSERT_EQ(published.size(), 5u);
  // Oldest first, each naming its own guard event, across the restart.
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(published[i].get("file.hash.sha256"), digest(static_cast<int>(i)).hex());
    EXPECT_EQ(published[i].get("mamori.related_event"), ids[i]);
  }
}

TEST_F(LookupWorkerTest, WhileAnotherProcessHoldsTheQueueTheHashesWait) {
  auto w = start();
  w->wait_idle_for_test();
  {
    auto held = scan::LookupQueue::open(env, dir / "lookup.json", {});  // mamori scan --lookup
    ASSERT_TRUE(held);
    w->observe(guard_event(proto::action::kFileQuarantined, digest(7)));
    w->wait_idle_for_test();
    EXPECT_EQ(asked, 0);
  }
  w->round_for_test();
  EXPECT_EQ(asked, 1);
  ASSERT_EQ(published.size(), 1u);
  EXPECT_TRUE(logged.empty());  // a busy lock is not trouble worth a log line
}

TEST_F(LookupWorkerTest, AnUnknownHashIsSaidSoAndTheInboxIsBounded) {
  auto w = start({.per_minute = 1000});
  w->observe(guard_event(proto::action::kFileCreated, digest(404)));
  w->wait_idle_for_test();
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].get("mamori.lookup.found"), false);
  EXPECT_EQ(published[0].severity(), event::Severity::kInfo);
  EXPECT_TRUE(published[0].get("mamori.lookup.malicious").is_null());
  EXPECT_EQ(w->dropped(), 0u);
}

}  // namespace
}  // namespace mamori::triage
