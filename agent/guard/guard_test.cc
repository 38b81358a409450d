// The guard end to end on a real temporary tree: a baseline is recorded, the tree is
// tampered with, and scripted watcher changes (as the replay backend delivers them)
// drive the real reconcile path. Kernel backends are covered by tests/integration.

#include "agent/guard/guard.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "agent/watch/replay/replay_watcher.h"
#include "core/baseline/record.h"
#include "core/fs/beneath.h"
#include "testing/sim_clock.h"
#include "testing/temp_dir.h"

namespace mamori::guard {
namespace {

using testing::TempDir;

class SimEnv final : public Env {
 public:
  const Clock& clock() const override { return clock_; }
  testing::SimClock& sim() { return clock_; }

 private:
  testing::SimClock clock_;
};

class GuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    site.mkdir("wp");
    site.mkdir("wp/inc");
    site.mkdir("uploads");
    site.write("index.php", "<?php require 'wp/load.php';\n");
    site.write("wp/load.php", "<?php // load\n");
    site.write("wp/inc/a.php", "<?php // a\n");
    site.write("wp/inc/b.php", "<?php // b\n");
    record_baseline();
    outbox.emplace(outbox::Outbox::open(env, state_dir / "events.jsonl").value());
    evidence = evidence::EvidenceStore::open(env, state_dir.path(),
                                             evidence::EvidenceStore::Access::kWrite)
                   .value();
  }

  // Records the tree as the baseline (as `mamori init` does), then reopens the state
  // read only, as the agent holds it.
  void record_baseline() {
    state.reset();
    {
      auto w = baseline::open_state(env, state_dir.path(), baseline::StateAccess::kWrite).value();
      auto txn = db::Transaction::begin(w->catalog.db()).value();
      root_id = w->catalog.touch_root(site.path(), 1).value();
      auto root = fs::open_root(site.path()).value();
      baseline::ScanContext ctx{root.get(), nullptr, executor, env.clock(), nullptr};
      ASSERT_TRUE(baseline::record(w->catalog, *w->store, root_id, ctx, ""));
      ASSERT_TRUE(w->store->commit());
      ASSERT_TRUE(w->catalog.seal(1));
      ASSERT_TRUE(txn.commit());
    }
    state = baseline::open_state(env, state_dir.path(), baseline::StateAccess::kRead).value();
  }

  Guard& guard(config::Mode mode, config::AgentConfig cfg = {},
               std::vector<std::string> exclude = {}) {
    agent_config = cfg;
    publisher.emplace(*outbox);
    g = std::make_unique<Guard>(env, *state, evidence.get(), *publisher, executor, agent_config);
    GuardedRoot r;
    r.path = site.path();
    r.fd = fs::open_root(site.path()).value();
    r.catalog_id = root_id;
    r.mode = mode;
    r.exclude = fs::PathMatcher::compile(exclude).value();
    r.allow_new = fs::PathMatcher::compile({"uploads/**"}).value();
    r.deny_new = fs::PathMatcher::compile(config::RootConfig::default_deny_new()).value();
    g->add_root(std::move(r));
    return *g;
  }

  // Delivers changes through the replay watcher, as the agent's loop does.
  void deliver(std::vector<watch::Change> changes) {
    for (auto& c : changes) replay.push(std::move(c));
    std::vector<watch::Change> batch;
    ASSERT_TRUE(replay.read(batch));
    g->handle(batch);
    g->capture_due(/*all=*/true);  // waiting for quiet has a test of its own
    ASSERT_TRUE(g->flush());
  }
  static watch::Change at(std::string rel, uint32_t what = watch::kContent) {
    return {0, std::move(rel), what, ::getpid()};
  }

  std::vector<nlohmann::json> events(std::string_view action = "") {
    std::ifstream in(state_dir / "events.jsonl");
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      if (action.empty() || j["event"]["action"] == action) out.push_back(j);
    }
    return out;
  }
  // The bytes the evidence store kept for item `id`.
  std::string kept(int64_t id) {
    std::string out;
    EXPECT_TRUE(evidence->read(id, [&](std::span<const uint8_t> c) {
      out.append(reinterpret_cast<const char*>(c.data()), c.size());
      return ok();
    }));
    return out;
  }
  bool exists(const std::string& rel) {
    struct stat st {};
    return ::lstat((site / rel).c_str(), &st) == 0;
  }

  SimEnv env;
  InlineExecutor executor;
  TempDir site, state_dir, outside;
  int64_t root_id = 0;
  std::unique_ptr<baseline::State> state;
  std::optional<outbox::Outbox> outbox;
  std::optional<SyncPublisher> publisher;
  std::unique_ptr<evidence::EvidenceStore> evidence;
  config::AgentConfig agent_config;
  std::unique_ptr<Guard> g;
  watch::ReplayWatcher replay;
};

TEST_F(GuardTest, RestoreModePutsContentBackAndReportsWhoDidIt) {
  guard(config::Mode::kRestore);
  site.write("wp/load.php", "<?php eval($_POST['x']);\n");
  deliver({at("wp/load.php")});
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["path"], "wp/load.php");
  EXPECT_EQ(ev[0]["mamori"]["trigger"], "realtime");
  EXPECT_EQ(ev[0]["process"]["pid"], ::getpid());
  EXPECT_FALSE(ev[0]["mamori"].contains("evidence"));  // restore keeps no copy
  EXPECT_EQ(ev[0]["mamori"]["attrs"], nlohmann::json::array({"content", "mtime"}));
}

TEST_F(GuardTest, PreserveModeKeepsExactlyTheTamperedBytes) {
  guard(config::Mode::kPreserve);
  const std::string tampered = "<?php // load\n<?php system($_GET['c']); ?>\n";
  site.write("wp/load.php", tampered);
  deliver({at("wp/load.php")});
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 1u);
  const int64_t id = ev[0]["mamori"]["evidence"]["id"];
  EXPECT_EQ(kept(id), tampered);
  auto item = evidence->get(id).value();
  ASSERT_TRUE(item);
  EXPECT_EQ(item->event_id, ev[0]["event"]["id"]);
  EXPECT_EQ(item->who.pid, ::getpid());
}

TEST_F(GuardTest, PreserveWaitsForTheWriterToFinishBeforeTakingEvidence) {
  guard(config::Mode::kPreserve);
  // The attacker truncates and writes in two steps; the guard restores after the first.
  const int fd = ::open((site / "wp/load.php").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "<?php ", 6), 6);
  replay.push(at("wp/load.php"));
  std::vector<watch::Change> batch;
  ASSERT_TRUE(replay.read(batch));
  g->handle(batch);
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");  // restored at once
  env.sim().set(std::chrono::system_clock::now());
  g->capture_due();
  ASSERT_TRUE(g->flush());
  EXPECT_TRUE(events("file-restored").empty());  // the writer is not done: nothing taken yet
  EXPECT_TRUE(g->next_capture_ns().has_value());

  // The rest lands in the detached inode, not in the site.
  ASSERT_EQ(::write(fd, "system($_GET[1]);", 17), 17);
  ::close(fd);
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  env.sim().set(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  g->capture_due();
  ASSERT_TRUE(g->flush());
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 1u);
  const std::string bytes = kept(ev[0]["mamori"]["evidence"]["id"]);
  EXPECT_EQ(bytes, "<?php system($_GET[1]);");
  EXPECT_EQ(ev[0]["file"]["hash"]["sha256"], hash::sha256(bytes).hex());
  EXPECT_FALSE(g->next_capture_ns().has_value());
}

TEST_F(GuardTest, DuplicateAndStaleEventsChangeNothing) {
  guard(config::Mode::kRestore);
  site.write("index.php", "defaced");
  deliver({at("index.php"), at("index.php"), at("index.php", watch::kAttrib), at("wp/inc/a.php"),
           at("never/existed.php", watch::kRemoved)});
  EXPECT_EQ(site.read("index.php"), "<?php require 'wp/load.php';\n");
  EXPECT_EQ(events("file-restored").size(), 1u);
  EXPECT_EQ(g->counters().changes, 1u);
}

TEST_F(GuardTest, NewFilesAreQuarantinedUnlessAnUploadThatIsNoScript) {
  guard(config::Mode::kRestore);
  site.write("shell.php", "<?php system($_GET['c']);");
  site.mkdir("uploads/2026");
  site.write("uploads/2026/photo.jpg", "JFIF");
  site.write("uploads/2026/s.php", "<?php eval($_POST[1]);");
  site.write("uploads/2026/s.php.jpg", "<?php eval($_POST[2]);");  // not a duplicate
  deliver({at("shell.php", watch::kCreated), at("uploads/2026", watch::kCreated | watch::kIsDir),
           at("uploads/2026/photo.jpg", watch::kCreated), at("uploads/2026/s.php", watch::kCreated),
           at("uploads/2026/s.php.jpg", watch::kCreated)});
  EXPECT_FALSE(exists("shell.php"));
  EXPECT_TRUE(exists("uploads/2026/photo.jpg"));
  EXPECT_FALSE(exists("uploads/2026/s.php"));
  EXPECT_FALSE(exists("uploads/2026/s.php.jpg"));
  EXPECT_EQ(events("file-quarantined").size(), 3u);
  EXPECT_EQ(events("file-allowed").size(), 2u);  // the directory and the photo
  auto items = evidence->list().value();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].reason, "quarantined");
}

TEST_F(GuardTest, ADirectoryMovedInWholeIsLookedInside) {
  guard(config::Mode::kRestore);
  // Built elsewhere and renamed in: the kernel reports only the directory.
  outside.mkdir("kit");
  outside.write("kit/shell.php", "<?php system($_GET[1]);");
  outside.write("kit/logo.png", "PNG");
  ASSERT_EQ(std::rename((outside / "kit").c_str(), (site / "uploads/kit").c_str()), 0);
  deliver({at("uploads/kit", watch::kCreated | watch::kIsDir)});
  EXPECT_FALSE(exists("uploads/kit/shell.php"));
  EXPECT_TRUE(exists("uploads/kit/logo.png"));
  ASSERT_EQ(events("file-quarantined").size(), 1u);
  EXPECT_EQ(events("file-quarantined")[0]["mamori"]["path"], "uploads/kit/shell.php");
}

TEST_F(GuardTest, EveryNameOfAHardLinkedFileComesBack) {
  // A baseline in which two names share one inode.
  ASSERT_EQ(::link((site / "wp/inc/a.php").c_str(), (site / "wp/inc/a-copy.php").c_str()), 0);
  record_baseline();
  guard(config::Mode::kRestore);
  {
    std::ofstream out(site / "wp/inc/a.php", std::ios::app);  // in place: both names see it
    out << "<?php system($_GET[1]);";
  }
  ASSERT_NE(site.read("wp/inc/a-copy.php"), "<?php // a\n");
  deliver({at("wp/inc/a.php")});  // the kernel names only the path written through
  EXPECT_EQ(site.read("wp/inc/a.php"), "<?php // a\n");
  EXPECT_EQ(site.read("wp/inc/a-copy.php"), "<?php // a\n");
  EXPECT_EQ(events("file-restored").size(), 2u);
}

TEST_F(GuardTest, AnEndlessChainOfDirectoriesIsRefusedNotRecursedInto) {
  guard(config::Mode::kRestore);
  std::string deep = "chain";
  site.mkdir(deep);
  for (int i = 0; i < 300; ++i) {
    deep += "/d";
    site.mkdir(deep);
  }
  deliver({at("chain", watch::kCreated | watch::kIsDir)});  // must not blow the stack
  bool refused = false;
  for (const auto& e : events("file-restore-failed"))
    refused |=
        e["error"]["message"].get<std::string>().find("nested deeper than") != std::string::npos;
  for (const auto& e : events("file-quarantined"))
    refused |= e.contains("error") && e["error"]["message"].get<std::string>().find(
                                          "nested deeper than") != std::string::npos;
  EXPECT_TRUE(refused);
}

TEST_F(GuardTest, AFailedRestoreIsTriedAgainAtTheNextTick) {
  guard(config::Mode::kRestore);
  ASSERT_EQ(::unlink((site / "wp/inc/a.php").c_str()), 0);
  // An immutable directory refuses the restore (as a racing attacker might, for a moment).
  ASSERT_EQ(std::system(("chattr +i " + site / "wp/inc").c_str()), 0);
  deliver({at("wp/inc/a.php", watch::kRemoved)});
  const bool restored_early = exists("wp/inc/a.php");
  const auto failed = events("file-restore-failed");
  ASSERT_EQ(std::system(("chattr -i " + site / "wp/inc").c_str()),
            0);  // before any ASSERT can skip it
  EXPECT_FALSE(restored_early);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]["event"]["outcome"], "failure");
  g->tick();
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(site.read("wp/inc/a.php"), "<?php // a\n");
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["trigger"], "retry");
}

TEST_F(GuardTest, ADeletedTreeComesBackWhole) {
  guard(config::Mode::kRestore);
  ASSERT_EQ(std::system(("rm -rf " + site / "wp").c_str()), 0);
  deliver({at("wp/inc/a.php", watch::kRemoved), at("wp", watch::kRemoved | watch::kIsDir)});
  EXPECT_EQ(site.read("wp/inc/a.php"), "<?php // a\n");
  EXPECT_EQ(site.read("wp/inc/b.php"), "<?php // b\n");
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
}

TEST_F(GuardTest, ADirectorySwappedForASymlinkIsNeverWrittenThrough) {
  guard(config::Mode::kRestore);
  ASSERT_EQ(std::system(("rm -rf " + site / "wp/inc").c_str()), 0);
  ASSERT_EQ(::symlink(outside.path().c_str(), (site / "wp/inc").c_str()), 0);
  deliver({at("wp/inc/a.php"), at("wp/inc", watch::kCreated)});
  struct stat st {};
  ASSERT_EQ(::lstat((site / "wp/inc").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(site.read("wp/inc/a.php"), "<?php // a\n");
  EXPECT_FALSE(exists("../" + outside.path() + "/a.php"));
  EXPECT_EQ(::access((outside / "a.php").c_str(), F_OK), -1);
}

TEST_F(GuardTest, AlertChangesNothingUntilTheModeLeavesAlert) {
  guard(config::Mode::kAlert);
  site.write("index.php", "defaced");
  site.write("new.php", "<?php");
  ASSERT_EQ(::chmod((site / "wp/load.php").c_str(), 0777), 0);
  deliver({at("index.php"), at("new.php", watch::kCreated), at("wp/load.php", watch::kAttrib)});
  EXPECT_EQ(site.read("index.php"), "defaced");
  EXPECT_TRUE(exists("new.php"));
  EXPECT_EQ(events("file-changed").size(), 2u);
  EXPECT_EQ(events("file-created").size(), 1u);

  g->set_mode(0, config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kResume));
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(site.read("index.php"), "<?php require 'wp/load.php';\n");
  EXPECT_FALSE(exists("new.php"));
  struct stat st {};
  ASSERT_EQ(::stat((site / "wp/load.php").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(events("file-repaired").size(), 1u);
}

TEST_F(GuardTest, PausedForADeployReportsOnly) {
  guard(config::Mode::kRestore);
  g->set_paused(0, true);
  site.write("index.php", "new release");
  deliver({at("index.php")});
  EXPECT_EQ(site.read("index.php"), "new release");
  auto ev = events("file-changed");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["mode"], "deploy");
}

TEST_F(GuardTest, DuringADeployOnlyTheDeploysProcessTreeIsLeftAlone) {
  guard(config::Mode::kRestore);
  g->set_paused(0, true);
  ASSERT_TRUE(g->begin_deploy(::getpid()));  // this test is the deploy
  // A writer outside the tree: our parent (a pid that is not ours nor a descendant).
  const pid_t other = ::getppid();
  site.write("index.php", "new release");
  site.write("wp/load.php", "<?php eval($_POST['x']);\n");
  site.write("uploads/cache.php", "<?php system($_GET['c']);\n");
  deliver({at("index.php"),
           {0, "wp/load.php", watch::kContent, other},
           {0, "uploads/cache.php", watch::kCreated, other}});
  EXPECT_EQ(site.read("index.php"), "new release");
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  EXPECT_FALSE(exists("uploads/cache.php"));
  const auto& paths = g->deploy_paths();
  EXPECT_EQ(paths.deploy.at(0), (std::set<std::string>{"index.php"}));
  EXPECT_EQ(paths.foreign.at(0), (std::set<std::string>{"uploads/cache.php", "wp/load.php"}));
  auto restored = events("file-restored");
  ASSERT_EQ(restored.size(), 1u);
  EXPECT_EQ(restored[0]["mamori"]["deploy"]["writer"], "foreign");
  EXPECT_EQ(restored[0]["mamori"]["mode"], "restore");
  EXPECT_EQ(events("file-changed")[0]["mamori"]["deploy"]["writer"], "deploy");
  EXPECT_FALSE(g->begin_deploy(::getpid())) << "one deploy at a time";
  g->end_deploy();
  EXPECT_TRUE(g->deploy_paths().deploy.empty());
}

TEST_F(GuardTest, AllowedUploadsPastTheLimitGoIntoOneSummary) {
  config::AgentConfig cfg;
  cfg.allowed_events_per_second = 3;
  guard(config::Mode::kRestore, cfg);
  std::vector<watch::Change> changes;
  for (int i = 0; i < 10; ++i) {
    site.write("uploads/p" + std::to_string(i) + ".jpg", "jpeg");
    changes.push_back(at("uploads/p" + std::to_string(i) + ".jpg", watch::kCreated));
  }
  site.write("wp/load.php", "<?php eval($_POST['x']);\n");
  changes.push_back(at("wp/load.php"));
  deliver(changes);
  EXPECT_EQ(events("file-allowed").size(), 3u);
  EXPECT_TRUE(events("file-allowed-summary").empty()) << "the summary comes with the tick";
  g->tick();
  ASSERT_TRUE(g->flush());
  auto summary = events("file-allowed-summary");
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0]["mamori"]["summary"]["path_count"], 7);
  EXPECT_EQ(summary[0]["mamori"]["summary"]["paths"][0], "uploads/p3.jpg");
  EXPECT_EQ(summary[0]["event"]["severity"], 1);
  EXPECT_EQ(events("file-restored").size(), 1u) << "the security event is never summarised away";
  // A verify has its own window, summarised at its end.
  ASSERT_TRUE(g->verify(0, Trigger::kScheduled));
  ASSERT_TRUE(g->flush());
  summary = events("file-allowed-summary");
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[1]["mamori"]["trigger"], "scheduled");
  EXPECT_EQ(summary[1]["mamori"]["summary"]["path_count"], 7);
}

TEST_F(GuardTest, AnOverflowRescansTheRoot) {
  guard(config::Mode::kRestore);
  site.write("wp/inc/a.php", "lost event 1");
  ASSERT_EQ(::unlink((site / "wp/inc/b.php").c_str()), 0);
  deliver({{0, "", watch::kOverflow | watch::kIsDir, -1}});
  EXPECT_EQ(site.read("wp/inc/a.php"), "<?php // a\n");
  EXPECT_EQ(site.read("wp/inc/b.php"), "<?php // b\n");
  EXPECT_EQ(events("watch-overflow").size(), 1u);
  EXPECT_EQ(events("file-restored").size(), 2u);
  EXPECT_EQ(events("file-restored")[0]["mamori"]["trigger"], "overflow");
}

TEST_F(GuardTest, CreateThenRenameOverAProtectedFile) {
  guard(config::Mode::kRestore);
  site.write("wp/.tmp123", "<?php evil();");
  ASSERT_EQ(::rename((site / "wp/.tmp123").c_str(), (site / "wp/load.php").c_str()), 0);
  deliver({at("wp/.tmp123", watch::kCreated), at("wp/.tmp123", watch::kRemoved),
           at("wp/load.php", watch::kCreated)});
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  EXPECT_FALSE(exists("wp/.tmp123"));
  EXPECT_EQ(events("file-restored").size(), 1u);
}

TEST_F(GuardTest, AStormIsReportedInBulkAndEveryPathIsNamed) {
  config::AgentConfig cfg;
  cfg.storm_changes_per_second = 2;
  guard(config::Mode::kRestore, cfg);
  const std::vector<std::string> files = {"index.php", "wp/load.php", "wp/inc/a.php",
                                          "wp/inc/b.php"};
  std::vector<watch::Change> changes;
  for (const auto& f : files) {
    site.write(f, "storm");
    changes.push_back(at(f));
  }
  deliver(changes);
  for (const auto& f : files) EXPECT_NE(site.read(f), "storm") << f;
  g->tick();
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(events("tamper-storm").size(), 1u);
  std::set<std::string> named;
  for (const auto& e : events("file-restored")) named.insert(e["mamori"]["path"]);
  for (const auto& e : events("tamper-storm-summary"))
    for (const auto& p : e["mamori"]["summary"]["paths"]) named.insert(p);
  EXPECT_EQ(named, std::set<std::string>(files.begin(), files.end()));
  g->tick();  // a quiet second ends it
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(events("tamper-storm-ended").size(), 1u);
}

TEST_F(GuardTest, ExcludedPathsAreLeftAlone) {
  guard(config::Mode::kRestore, {}, {"cache/**"});
  site.mkdir("cache");
  site.write("cache/page.html", "cached");
  deliver({at("cache/page.html", watch::kCreated)});
  EXPECT_TRUE(exists("cache/page.html"));
  EXPECT_TRUE(events("file-quarantined").empty());
}

}  // namespace
}  // namespace mamori::guard
