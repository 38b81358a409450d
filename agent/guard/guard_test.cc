// The guard end to end on a real temporary tree: a baseline is recorded, the tree is
// tampered with, and scripted watcher changes (as the replay backend delivers them)
// drive the real reconcile path. Kernel backends are covered by tests/integration.

#include "agent/guard/guard.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "agent/watch/replay/replay_watcher.h"
#include "core/baseline/record.h"
#include "core/event/schema.h"
#include "core/fs/beneath.h"
#include "core/fs/walk.h"
#include "testing/sim_env.h"
#include "testing/temp_dir.h"

#if defined(__SANITIZE_ADDRESS__)
#define MAMORI_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAMORI_TEST_ASAN 1
#endif
#endif
#ifdef MAMORI_TEST_ASAN
#include <sanitizer/allocator_interface.h>

#include <atomic>
#endif

namespace mamori::guard {
namespace {

using testing::TempDir;

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
    outbox.emplace(
        outbox::Outbox::open(env, {state_dir / "outbox", state_dir / "events.jsonl", {}}).value());
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

  // Every event any guard test wrote is checked against docs/formats/ecs-fields.tsv: an
  // unlisted field or a wrong type anywhere in the guard fails here.
  void TearDown() override {
    if (!outbox) return;
    (void)outbox->flush();
    std::ifstream in(state_dir / "events.jsonl");
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      const auto j = nlohmann::json::parse(line, nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << "line " << n;
      for (const auto& p : event::Schema::builtin().check(j))
        ADD_FAILURE() << "event line " << n << ": " << p << "\n  " << line;
    }
  }

  Guard& guard(config::Mode mode, config::AgentConfig cfg = {},
               std::vector<std::string> exclude = {}) {
    agent_config = cfg;
    publisher.emplace(*outbox, origin);
    g = std::make_unique<Guard>(env, *state, evidence.get(), *publisher, executor, agent_config);
    GuardedRoot r;
    r.path = site.path();
    r.fd = fs::open_root(site.path()).value();
    r.catalog_id = root_id;
    r.mode = mode;
    r.exclude = fs::PathMatcher::compile(exclude).value();
    r.uploads =
        fs::UploadPolicy::compile({"uploads/**"}, config::RootConfig::default_deny_new()).value();
    g->add_root(std::move(r));
    return *g;
  }

  // YARA triage with mamori's own rules, as the agent sets it up.
  void with_yara(size_t max_queued = triage::ScanWorker::kMaxQueued) {
    scanner = std::make_unique<scan::Scanner>(scan::RuleSet::compile({}).value(), scan::Limits{});
    g->set_scanner(scanner.get(), max_queued);
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
  // Lets the loop work through what the guard does in slices (rescans, lost opens), as
  // the agent's does; returns the handle() calls it took.
  int drain() {
    int calls = 0;
    while (g->busy() && calls < 1000) {
      g->handle({});
      ++calls;
    }
    EXPECT_FALSE(g->busy());
    g->capture_due(/*all=*/true);
    EXPECT_TRUE(g->flush());
    return calls;
  }
  static watch::Change at(std::string rel, uint32_t what = watch::kContent) {
    return {0, std::move(rel), what, ::getpid(), {}};
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

  testing::SimEnv env;
  InlineExecutor executor;
  TempDir site, state_dir, outside;
  int64_t root_id = 0;
  std::unique_ptr<baseline::State> state;
  std::optional<outbox::Outbox> outbox;
  const event::Origin origin{{"0e0a1b2c-0000-4000-8000-000000000000", "test", "0.0.0", "h", "h"},
                             env.clock()};
  std::optional<SyncPublisher> publisher;
  std::unique_ptr<evidence::EvidenceStore> evidence;
  config::AgentConfig agent_config;
  std::unique_ptr<scan::Scanner> scanner;  // outlives g
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

// Who-data is read from /proc after the restore (off the path to putting the file
// back): the events and the evidence queued before it was read still name the writer in
// full, for every change of the batch.
TEST_F(GuardTest, WhoDataReadAfterTheRestoreStillNamesTheWriterEverywhere) {
  guard(config::Mode::kPreserve);
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self);
  ASSERT_GT(n, 0);
  const std::string exe(self, static_cast<size_t>(n));
  site.write("wp/load.php", "<?php system($_GET['c']); ?>\n");
  site.write("index.php", "<?php eval($_POST['x']); ?>\n");
  deliver({at("wp/load.php"), at("index.php")});
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  EXPECT_EQ(site.read("index.php"), "<?php require 'wp/load.php';\n");
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 2u);
  for (const auto& e : ev) {
    EXPECT_EQ(e["process"]["pid"], ::getpid());
    EXPECT_EQ(e["process"]["executable"], exe);
    EXPECT_EQ(e["user"]["id"], std::to_string(::getuid()));
    auto item = evidence->get(e["mamori"]["evidence"]["id"].get<int64_t>()).value();
    ASSERT_TRUE(item);
    EXPECT_EQ(item->who.pid, ::getpid());
    EXPECT_EQ(item->who.executable, exe);
    EXPECT_EQ(item->who.uid, static_cast<int64_t>(::getuid()));
  }
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
  env.sim().set(SystemClock().now());
  g->capture_due();
  ASSERT_TRUE(g->flush());
  EXPECT_TRUE(events("file-restored").empty());  // the writer is not done: nothing taken yet
  EXPECT_TRUE(g->next_capture_ns().has_value());

  // The rest lands in the detached inode, not in the site.
  ASSERT_EQ(::write(fd, "system($_GET[1]);", 17), 17);
  ::close(fd);
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  env.sim().set(SystemClock().now() + std::chrono::milliseconds(100));
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

TEST_F(GuardTest, AnEndlessChainOfDirectoriesIsQuarantinedWholeWithoutRecursion) {
  guard(config::Mode::kRestore);
  // Deeper than the old recursion's limit (256), and than the walk's.
  int cur = ::open(site.path().c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(cur, 0);
  ASSERT_EQ(::mkdirat(cur, "chain", 0755), 0);
  for (int i = 0; i < 1000; ++i) {
    const int next = ::openat(cur, i == 0 ? "chain" : "d", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(next, 0);
    ::close(cur);
    cur = next;
    ASSERT_EQ(::mkdirat(cur, "d", 0755), 0);
  }
  const int f = ::openat(cur, "s.php", O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(f, 0);
  ::close(f);
  ::close(cur);
  deliver({at("chain", watch::kCreated | watch::kIsDir)});
  EXPECT_FALSE(exists("chain"));
  EXPECT_TRUE(events("file-restore-failed").empty());
  auto ev = events("file-quarantined");
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev[0]["mamori"]["path"], "chain");
  EXPECT_FALSE(ev[0].contains("error"));
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

TEST_F(GuardTest, AlertReportsEachTamperedStateOnce) {
  guard(config::Mode::kAlert);
  // One write raises modify, close-write and attrib, often in separate batches: the file
  // is unchanged between them, so one report.
  site.write("index.php", "defaced");
  deliver({at("index.php")});
  deliver({at("index.php")});
  deliver({at("index.php", watch::kAttrib)});
  ASSERT_TRUE(g->verify(0, Trigger::kScheduled));  // still the same state
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(events("file-changed").size(), 1u);
  // A different write is a new state: reported again, once.
  site.write("index.php", "defaced again, longer");
  deliver({at("index.php")});
  deliver({at("index.php")});
  EXPECT_EQ(events("file-changed").size(), 2u);
  // A mode change forgets what was reported: the next look reports afresh.
  g->set_mode(0, config::Mode::kAlert);
  deliver({at("index.php")});
  EXPECT_EQ(events("file-changed").size(), 3u);
}

TEST_F(GuardTest, AlertWaitsForAFileBeingWrittenToGoQuiet) {
  guard(config::Mode::kAlert);
  auto handle_now = [&](watch::Change c) {
    replay.push(std::move(c));
    std::vector<watch::Change> batch;
    ASSERT_TRUE(replay.read(batch));
    g->handle(batch);
    g->capture_due();  // as the agent's loop does, without waiting for quiet
    ASSERT_TRUE(g->flush());
  };
  // `echo x > index.php`: truncated first (an event), then written (another).
  site.write("index.php", "");
  handle_now(at("index.php"));
  EXPECT_TRUE(events("file-changed").empty()) << "a passing state was reported";
  EXPECT_TRUE(g->next_capture_ns().has_value());
  site.write("index.php", "defaced");
  handle_now(at("index.php"));
  EXPECT_TRUE(events("file-changed").empty());
  env.sim().advance(std::chrono::milliseconds(200));  // the writer is done
  g->capture_due();
  ASSERT_TRUE(g->flush());
  auto ev = events("file-changed");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["path"], "index.php");
  EXPECT_FALSE(g->next_capture_ns().has_value());
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
           {0, "wp/load.php", watch::kContent, other, {}},
           {0, "uploads/cache.php", watch::kCreated, other, {}}});
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
  deliver({{0, "", watch::kOverflow | watch::kIsDir, -1, {}}});
  EXPECT_EQ(site.read("wp/inc/a.php"), "<?php // a\n");
  EXPECT_EQ(site.read("wp/inc/b.php"), "<?php // b\n");
  EXPECT_EQ(events("watch-overflow").size(), 1u);
  EXPECT_EQ(events("file-restored").size(), 2u);
  EXPECT_EQ(events("file-restored")[0]["mamori"]["trigger"], "overflow");
}

#ifdef MAMORI_TEST_ASAN
// AddressSanitizer keeps freed memory in quarantine, so RSS says nothing of a peak: its
// allocator's own count of the bytes allocated, read at every allocation, does.
std::atomic<bool> g_counting{false};
std::atomic<size_t> g_peak_allocated{0};
void note_allocation(const volatile void*, size_t) {
  if (!g_counting.load(std::memory_order_relaxed)) return;
  const size_t now = __sanitizer_get_current_allocated_bytes();
  size_t peak = g_peak_allocated.load();
  while (now > peak && !g_peak_allocated.compare_exchange_weak(peak, now)) {
  }
}
void note_free(const volatile void*) {}
#endif

// How far memory rose above where it was while `work` ran, in bytes: under
// AddressSanitizer the peak of its allocated bytes; otherwise the rise of the process's
// peak RSS (VmHWM, reset through /proc/self/clear_refs) after the heap gave back what it
// had free.
template <typename Work>
long peak_rise_bytes(Work work) {
#ifdef MAMORI_TEST_ASAN
  static const bool hooked = __sanitizer_install_malloc_and_free_hooks(note_allocation, note_free);
  EXPECT_TRUE(hooked);
  const size_t before = __sanitizer_get_current_allocated_bytes();
  g_peak_allocated = before;
  g_counting = true;
  work();
  g_counting = false;
  return static_cast<long>(g_peak_allocated.load() - before);
#else
  auto kib = [](std::string_view field) {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
      if (line.starts_with(field)) return std::stol(line.substr(field.size()));
    return -1L;
  };
  ::malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM = VmRSS from here
  const long before = kib("VmRSS:");
  work();
  const long peak = kib("VmHWM:");
  EXPECT_GT(before, 0);
  return (peak - before) * 1024;
#endif
}

// The peak memory of a verify of the whole root, above what the guard holds anyway (its
// inode index): it must not hold a list of every baselined file (at a million files a
// list of their paths alone was ~150 MB, half the agent's budget). Measured over a
// second verify (peak_rise_bytes).
TEST_F(GuardTest, AVerifyHoldsNoListOfEveryFile) {
  constexpr int kDirs = 100, kPerDir = 200, kFiles = kDirs * kPerDir;
  for (int d = 0; d < kDirs; ++d) {
    const std::string dir = "d" + std::to_string(d) + "/wp-content/plugins/akismet-spam/inc";
    ASSERT_EQ(std::system(("mkdir -p " + site / dir).c_str()), 0);
    for (int f = 0; f < kPerDir; ++f)
      site.write(dir + "/class-akismet-widget-" + std::to_string(f) + ".php", "<?php\n");
  }
  record_baseline();
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));  // the index is built: not what is measured
  bool verified = false;
  const long rise =
      peak_rise_bytes([&] { verified = g->verify(0, Trigger::kScheduled).has_value(); });
  ASSERT_TRUE(verified);
  const long per_file = rise / kFiles;
  RecordProperty("verify_peak_bytes_per_file", static_cast<int>(per_file));
  std::printf("verify of %d files: peak +%ld KiB (%ld B/file)\n", kFiles, rise / 1024, per_file);
  EXPECT_LE(per_file, 60) << "the verify holds something per file";
}

// A site of many directories (in `parent`: "" the root), for the rescans in slices.
void many_dirs(const TempDir& site, int dirs, int files, const std::string& parent = "") {
  if (!parent.empty()) site.mkdir(parent);
  for (int d = 0; d < dirs; ++d) {
    const std::string dir = fmt::format("{}d{:02}", parent.empty() ? "" : parent + "/", d);
    site.mkdir(dir);
    for (int f = 0; f < files; ++f) site.write(fmt::format("{}/f{}.php", dir, f), "<?php\n");
  }
}

// An overflow's rescan goes in slices between batches (issue 17: a million files took the
// guard's thread ~20 s of CPU, and nothing was restored meanwhile): a tamper read during
// it is restored at once, and the rescan still finds everything the lost events hid: a
// file changed, a hard link to baselined code in the root, one from outside.
TEST_F(GuardTest, ATamperDuringAnOverflowRescanIsRestoredBeforeItEnds) {
  many_dirs(site, 40, 100);
  record_baseline();
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));
  // While events were lost:
  site.write("d30/f5.php", "<?php eval($_POST[1]);\n");
  ASSERT_EQ(::link((site / "d35/f2.php").c_str(), (site / "d39/new.php").c_str()), 0);
  ASSERT_EQ(::link((site / "d20/f1.php").c_str(), (outside / "link").c_str()), 0);
  g->handle({{0, "", watch::kOverflow | watch::kIsDir, -1, {}}});
  ASSERT_TRUE(g->rescanning());
  EXPECT_TRUE(g->rescanning(0));  // mamori status says so
  EXPECT_TRUE(g->busy());
  EXPECT_EQ(site.read("d30/f5.php"), "<?php eval($_POST[1]);\n");  // not reached yet
  // A tamper in a part not rescanned yet: restored in its own batch.
  site.write("d39/f0.php", "<?php system($_GET[1]);\n");
  deliver({at("d39/f0.php")});
  EXPECT_EQ(site.read("d39/f0.php"), "<?php\n");
  EXPECT_TRUE(g->rescanning());
  auto restored = events("file-restored");
  ASSERT_EQ(restored.size(), 1u);
  EXPECT_EQ(restored[0]["mamori"]["path"], "d39/f0.php");
  EXPECT_EQ(restored[0]["mamori"]["trigger"], "realtime");
  const int calls = drain() + 2;
  EXPECT_FALSE(g->rescanning(0));
  EXPECT_GE(calls, 4) << "4,000 files in slices of " << Guard::kRescanSliceEntries << " entries";
  EXPECT_LE(calls, 10);
  // What the lost events hid:
  EXPECT_EQ(site.read("d30/f5.php"), "<?php\n");
  EXPECT_FALSE(exists("d39/new.php"));
  struct stat in {};
  struct stat out {};
  ASSERT_EQ(::stat((site / "d20/f1.php").c_str(), &in), 0);
  ASSERT_EQ(::stat((outside / "link").c_str(), &out), 0);
  EXPECT_NE(in.st_ino, out.st_ino);  // the outside name leads to a detached inode
  EXPECT_EQ(in.st_nlink, 1u);
  std::map<std::string, std::string> acted;  // path -> action
  for (const auto& e : events())
    if (e.contains("mamori") && e["mamori"].contains("path") &&
        e["mamori"].value("trigger", "") == "overflow")
      acted[e["mamori"]["path"]] = e["event"]["action"];
  EXPECT_EQ(acted["d30/f5.php"], "file-restored");
  EXPECT_EQ(acted["d39/new.php"], "file-quarantined");
  EXPECT_EQ(acted["d35/f2.php"], "file-replaced");  // its inode had the new name too
  EXPECT_EQ(acted["d20/f1.php"], "file-replaced");
  EXPECT_EQ(acted.size(), 4u);
  for (const auto& e : events("file-replaced"))
    if (e["mamori"]["path"] == "d20/f1.php") {
      EXPECT_EQ(e["mamori"]["reason"], "inode-shared");
    }
  // Done: the next batch has nothing left to do.
  EXPECT_FALSE(g->busy());
  EXPECT_EQ(g->counters().verifies, 2u);
}

// A top-level directory larger than a slice is rescanned directory by directory, and the
// result is a whole verify's: every kind of change the lost events hid is found.
TEST_F(GuardTest, ALargeTopLevelDirectoryIsRescannedDirectoryByDirectory) {
  many_dirs(site, 40, 100, "big");
  site.write("big/own.php", "<?php // own\n");
  record_baseline();
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));
  // While events were lost:
  site.write("big/d30/f5.php", "<?php eval($_POST[1]);\n");
  site.write("big/own.php", "<?php system($_GET[1]);\n");
  ASSERT_EQ(std::system(("rm -rf " + site / "big/d10").c_str()), 0);
  site.mkdir("big/new");
  site.write("big/new/x.php", "<?php // shell\n");
  ASSERT_EQ(::chmod((site / "big").c_str(), 0700), 0);
  g->handle({{0, "", watch::kOverflow | watch::kIsDir, -1, {}}});
  ASSERT_TRUE(g->rescanning());
  site.write("big/d39/f0.php", "<?php system($_GET[2]);\n");
  deliver({at("big/d39/f0.php")});
  EXPECT_EQ(site.read("big/d39/f0.php"), "<?php\n");
  EXPECT_TRUE(g->rescanning()) << "the directory was compared in one slice";
  const int calls = drain() + 2;
  EXPECT_GE(calls, 4) << "4,000 files in slices of " << Guard::kRescanSliceEntries << " entries";
  EXPECT_EQ(site.read("big/d30/f5.php"), "<?php\n");
  EXPECT_EQ(site.read("big/own.php"), "<?php // own\n");
  EXPECT_EQ(site.read("big/d10/f99.php"), "<?php\n");
  EXPECT_FALSE(exists("big/new"));
  struct stat big {};
  ASSERT_EQ(::stat((site / "big").c_str(), &big), 0);
  EXPECT_EQ(big.st_mode & 07777, 0755u);
  // A second rescan finds nothing left.
  const uint64_t changes = g->counters().changes;
  g->handle({{0, "", watch::kOverflow | watch::kIsDir, -1, {}}});
  drain();
  EXPECT_EQ(g->counters().changes, changes);
}

// Another overflow while a rescan is under way (events lost again, maybe in what it
// compared already) queues one more pass after it, never more than one; each pass ends.
TEST_F(GuardTest, AnOverflowDuringARescanQueuesOneMorePass) {
  many_dirs(site, 80, 50);  // about five slices
  record_baseline();
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));
  const watch::Change overflow{0, "", watch::kOverflow | watch::kIsDir, -1, {}};
  g->handle({overflow});
  g->handle({});
  ASSERT_TRUE(g->rescanning());
  site.write("d00/f1.php", "<?php eval($_POST[1]);\n");  // compared already, events lost again
  for (int i = 0; i < 2; ++i) g->handle({overflow});     // both before it ends
  drain();
  EXPECT_EQ(site.read("d00/f1.php"), "<?php\n");
  EXPECT_EQ(g->counters().verifies, 3u);  // the start-up's, the rescan and one more pass
  EXPECT_EQ(events("watch-overflow").size(), 3u);
  // A whole verify while a rescan is under way does its work and ends it.
  g->handle({overflow});
  EXPECT_TRUE(g->rescanning());
  ASSERT_TRUE(g->verify(0, Trigger::kScheduled));
  EXPECT_FALSE(g->rescanning());
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

TEST_F(GuardTest, StormMessagesCountEveryChange) {
  config::AgentConfig cfg;
  cfg.storm_changes_per_second = 2;
  guard(config::Mode::kRestore, cfg);
  // Four paths changed once each: the first two are reported alone, the third starts the
  // storm; then one of the summarised paths is changed again in the same second.
  const std::vector<std::string> files = {"index.php", "wp/load.php", "wp/inc/a.php",
                                          "wp/inc/b.php"};
  std::vector<watch::Change> changes;
  for (const auto& f : files) {
    site.write(f, "storm");
    changes.push_back(at(f));
  }
  deliver(changes);
  site.write("wp/inc/b.php", "storm again");
  deliver({at("wp/inc/b.php")});
  g->tick();
  ASSERT_TRUE(g->flush());
  auto summary = events("tamper-storm-summary");
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0]["mamori"]["summary"]["path_count"], 2);
  EXPECT_EQ(summary[0]["mamori"]["summary"]["change_count"], 3);
  EXPECT_EQ(summary[0]["message"],
            "3 change(s) to 2 path(s) in the last second; every one was handled");
  g->tick();  // a quiet second ends it
  ASSERT_TRUE(g->flush());
  auto ended = events("tamper-storm-ended");
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]["mamori"]["storm"]["changes"], 5);  // the two before it was declared too
  EXPECT_EQ(ended[0]["message"], "tamper storm over after 5 changes");
}

TEST_F(GuardTest, WhatAStormLeftUnseenIsRestoredWhenItEnds) {
  config::AgentConfig cfg;
  cfg.storm_changes_per_second = 2;
  guard(config::Mode::kRestore, cfg);
  std::vector<watch::Change> changes;
  for (const auto& f : {"index.php", "wp/load.php", "wp/inc/a.php"}) {
    site.write(f, "storm");
    changes.push_back(at(f));
  }
  deliver(changes);
  // A change no event named (as one a restore raced away from would be).
  site.write("wp/inc/b.php", "unseen");
  g->tick();
  EXPECT_EQ(site.read("wp/inc/b.php"), "unseen");  // the storm is still on
  g->tick();                                       // a quiet second ends it
  EXPECT_TRUE(g->rescanning());                    // the rescan goes in slices
  drain();
  ASSERT_EQ(events("tamper-storm-ended").size(), 1u);
  EXPECT_EQ(site.read("wp/inc/b.php"), "<?php // b\n");
  bool reported = false;
  for (const auto& e : events("file-restored"))
    reported |= e["mamori"]["path"] == "wp/inc/b.php" && e["mamori"]["trigger"] == "storm-over";
  EXPECT_TRUE(reported);
}

TEST_F(GuardTest, StormOverVerifiesAreAtMostOneEveryTenSeconds) {
  config::AgentConfig cfg;
  cfg.storm_changes_per_second = 2;
  guard(config::Mode::kRestore, cfg);
  // A storm, a change no event names, a quiet second: verified, restored.
  auto storm_then = [&](const std::string& unseen) {
    std::vector<watch::Change> changes;
    for (const auto& f : {"index.php", "wp/load.php", "wp/inc/a.php"}) {
      site.write(f, "storm");
      changes.push_back(at(f));
    }
    deliver(changes);
    site.write(unseen, "unseen");
    g->tick();
    g->tick();
    drain();
  };
  storm_then("wp/inc/b.php");
  EXPECT_EQ(site.read("wp/inc/b.php"), "<?php // b\n");
  // Another storm at once: its verify waits for the ten seconds to pass.
  storm_then("wp/inc/b.php");
  EXPECT_EQ(site.read("wp/inc/b.php"), "unseen");
  env.sim().advance(std::chrono::seconds(11));
  g->tick();
  drain();
  EXPECT_EQ(site.read("wp/inc/b.php"), "<?php // b\n");
  EXPECT_EQ(events("tamper-storm-ended").size(), 2u);
}

TEST_F(GuardTest, ARetriedDirectoryHasItsContentRestoredToo) {
  guard(config::Mode::kRestore);
  struct stat inc {};
  ASSERT_EQ(::stat((site / "wp/inc").c_str(), &inc), 0);
  ASSERT_EQ(std::system(("rm -rf " + site / "wp/inc").c_str()), 0);
  // The restore cannot make the directory: it is tried again at the next tick.
  ASSERT_EQ(std::system(("chattr +i " + site / "wp").c_str()), 0);
  deliver({at("wp/inc", watch::kRemoved | watch::kIsDir)});
  const bool restored_early = exists("wp/inc");
  ASSERT_EQ(std::system(("chattr -i " + site / "wp").c_str()), 0);  // before any ASSERT can skip it
  EXPECT_FALSE(restored_early);
  // Meanwhile an empty directory is back under the name, as the baseline has it (a racer
  // swapping the restored one away and back does that): no event says what it lacks.
  ASSERT_EQ(::mkdir((site / "wp/inc").c_str(), inc.st_mode & 07777), 0);
  ASSERT_EQ(::chmod((site / "wp/inc").c_str(), inc.st_mode & 07777), 0);
  g->tick();
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(site.read("wp/inc/a.php"), "<?php // a\n");
  EXPECT_EQ(site.read("wp/inc/b.php"), "<?php // b\n");
}

TEST_F(GuardTest, AllowedUploadsNeverMakeAStorm) {
  // 300 photos in one second are an upload day, not an attack (issue 10, item 11).
  config::AgentConfig cfg;
  cfg.storm_changes_per_second = 2;
  guard(config::Mode::kRestore, cfg);
  site.mkdir("uploads/2025");
  std::vector<watch::Change> changes = {at("uploads/2025", watch::kCreated | watch::kIsDir)};
  for (int i = 0; i < 300; ++i) {
    const std::string rel = "uploads/2025/img" + std::to_string(i) + ".jpg";
    site.write(rel, "JFIF");
    changes.push_back(at(rel, watch::kCreated));
  }
  deliver(changes);
  g->tick();
  ASSERT_TRUE(g->flush());
  // Each reported, alone or (past allowed_events_per_second) in one summary.
  const auto summaries = events("file-allowed-summary");
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(
      events("file-allowed").size() + summaries[0]["mamori"]["summary"]["path_count"].get<size_t>(),
      301u);
  EXPECT_TRUE(events("tamper-storm").empty());
  EXPECT_TRUE(events("tamper-storm-summary").empty());
  EXPECT_FALSE(g->in_storm());
  // A tamper right after is reported on its own, not summarised.
  site.write("index.php", "<?php eval($_POST[1]);");
  deliver({at("index.php")});
  EXPECT_EQ(events("file-restored").size(), 1u);
}

TEST_F(GuardTest, ExcludedPathsAreLeftAlone) {
  guard(config::Mode::kRestore, {}, {"cache/**"});
  site.mkdir("cache");
  site.write("cache/page.html", "cached");
  deliver({at("cache/page.html", watch::kCreated)});
  EXPECT_TRUE(exists("cache/page.html"));
  EXPECT_TRUE(events("file-quarantined").empty());
}

// A chain of directories in an upload area, deeper than any walk goes: everything past
// the limit would be served and never verified, so the directory at the limit goes,
// allow_new or not; the levels above it stay (they are allowed uploads).
std::string deep_path(const std::string& top, size_t levels) {
  std::string p = top;
  for (size_t i = 1; i < levels; ++i) p += "/a";
  return p;
}

// Makes `dir` with its parents and, in it, the file `name` holding "x\n"; 0 when done.
int make_deep_file(const std::string& dir, const std::string& name) {
  return std::system(("mkdir -p '" + dir + "' && echo x > '" + dir + "/" + name + "'").c_str());
}

TEST_F(GuardTest, WhatLiesPastTheDepthLimitIsQuarantinedInRealTime) {
  guard(config::Mode::kRestore);
  const std::string bottom = deep_path("uploads/a", 250);
  ASSERT_EQ(make_deep_file(site / bottom, "s.jpg"), 0);
  deliver({at(bottom + "/s.jpg", watch::kCreated)});
  const std::string cut = deep_path("uploads/a", fs::kMaxWalkDepth);  // one level too deep
  EXPECT_FALSE(exists(cut));
  EXPECT_TRUE(exists(std::string(fs::dirname(cut))));
  auto ev = events("file-quarantined");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["path"], cut);
  EXPECT_EQ(ev[0]["mamori"]["reason"], "nested-too-deep");
}

TEST_F(GuardTest, WhatLiesPastTheDepthLimitIsQuarantinedByAVerify) {
  const std::string bottom = deep_path("uploads/a", 260);
  ASSERT_EQ(make_deep_file(site / bottom, "s.php"), 0);
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));
  g->capture_due(/*all=*/true);
  ASSERT_TRUE(g->flush());
  const std::string cut = deep_path("uploads/a", fs::kMaxWalkDepth);
  EXPECT_FALSE(exists(cut));
  EXPECT_TRUE(exists(std::string(fs::dirname(cut))));
  bool said = false;
  for (const auto& e : events("file-quarantined"))
    said |= e["mamori"]["path"] == cut && e["mamori"]["reason"] == "nested-too-deep";
  EXPECT_TRUE(said);
  EXPECT_TRUE(events("file-unreadable").empty());
}

// The same through an overflow's rescan, which compares one top-level name at a time:
// the depth limit still counts from the root.
TEST_F(GuardTest, WhatLiesPastTheDepthLimitIsQuarantinedByAnOverflowRescan) {
  // A baselined chain as deep as the limit (its last directory recorded, never entered).
  const std::string kept = deep_path("wp/a", fs::kMaxWalkDepth);
  ASSERT_EQ(std::system(("mkdir -p '" + site / kept + "'").c_str()), 0);
  record_baseline();
  // While events were lost: a shell beneath it, and a new chain past the limit.
  ASSERT_EQ(make_deep_file(site / kept + "/b", "s.php"), 0);
  const std::string bottom = deep_path("uploads/a", 260);
  ASSERT_EQ(make_deep_file(site / bottom, "s.php"), 0);
  guard(config::Mode::kRestore);
  deliver({{0, "", watch::kOverflow | watch::kIsDir, -1, {}}});
  drain();
  const std::string cut = deep_path("uploads/a", fs::kMaxWalkDepth);
  EXPECT_FALSE(exists(cut));
  EXPECT_TRUE(exists(std::string(fs::dirname(cut))));
  EXPECT_TRUE(exists(kept));
  EXPECT_FALSE(exists(kept + "/b"));
  std::set<std::string> said;
  for (const auto& e : events("file-quarantined"))
    if (e["mamori"]["reason"] == "nested-too-deep") said.insert(e["mamori"]["path"]);
  EXPECT_EQ(said, (std::set<std::string>{cut, kept}));
  EXPECT_TRUE(events("file-unreadable").empty());
}

TEST_F(GuardTest, AHardLinkToBaselinedCodeIsNeverAnAllowedUpload) {
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));  // learns where the baselined files are
  ASSERT_EQ(::link((site / "wp/load.php").c_str(), (site / "uploads/cfg.jpg").c_str()), 0);
  const int fd = ::open((site / "uploads/cfg.jpg").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  deliver({at("uploads/cfg.jpg", watch::kCreated)});
  EXPECT_FALSE(exists("uploads/cfg.jpg"));
  // The writer's descriptor now leads to an inode no name in the tree has.
  ASSERT_EQ(::write(fd, "eval();\n", 8), 8);
  ::close(fd);
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  EXPECT_TRUE(events("file-allowed").empty());
  auto q = events("file-quarantined");
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0]["mamori"]["reason"], "hard-link-to-baselined-file");
  EXPECT_EQ(q[0]["mamori"]["hard_links"][0], site / "wp/load.php");
  EXPECT_EQ(events("file-replaced").size(), 1u);
}

TEST_F(GuardTest, AFileClosedAfterWritingIsReplacedEvenWhenItsBytesMatch) {
  guard(config::Mode::kRestore);
  struct stat before {};
  ASSERT_EQ(::stat((site / "wp/inc/a.php").c_str(), &before), 0);
  const int fd = ::open((site / "wp/inc/a.php").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  deliver({at("wp/inc/a.php", watch::kContent | watch::kClosedWrite)});
  struct stat after {};
  ASSERT_EQ(::stat((site / "wp/inc/a.php").c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino);
  ASSERT_EQ(::pwrite(fd, "<?php eval", 10, 0), 10);  // as through a writable mapping
  ::close(fd);
  EXPECT_EQ(site.read("wp/inc/a.php"), "<?php // a\n");
  auto ev = events("file-replaced");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["reason"], "opened-for-writing");
  // A second look finds our own fresh copy: nothing more to do.
  deliver({at("wp/inc/a.php", watch::kContent | watch::kClosedWrite)});
  EXPECT_EQ(events("file-replaced").size(), 1u);
}

TEST_F(GuardTest, MetadataIsNeverRepairedOnAnInodeWithOtherNames) {
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));
  // A file outside the root with the same bytes, 0600, hard-linked over a baselined name.
  outside.write("secret", "<?php // b\n", 0600);
  ASSERT_EQ(::link((outside / "secret").c_str(), (outside / "link").c_str()), 0);
  ASSERT_EQ(::rename((outside / "link").c_str(), (site / "wp/inc/b.php").c_str()), 0);
  deliver({at("wp/inc/b.php", watch::kCreated)});
  struct stat secret {};
  struct stat b {};
  ASSERT_EQ(::stat((outside / "secret").c_str(), &secret), 0);
  ASSERT_EQ(::stat((site / "wp/inc/b.php").c_str(), &b), 0);
  EXPECT_EQ(secret.st_mode & 07777, 0600u);
  EXPECT_EQ(secret.st_nlink, 1u);
  EXPECT_NE(secret.st_ino, b.st_ino);
  EXPECT_EQ(b.st_mode & 07777, 0644u);
  EXPECT_EQ(site.read("wp/inc/b.php"), "<?php // b\n");
  EXPECT_TRUE(events("file-repaired").empty());
}

TEST_F(GuardTest, AFileOpenForWritingIsDetachedAndWhatIsWrittenIsReported) {
  guard(config::Mode::kPreserve);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));  // the index of baselined files
  // A reader's open is nothing to act on.
  const int reader = ::open((site / "wp/inc/b.php").c_str(), O_RDONLY);
  ASSERT_GE(reader, 0);
  struct stat before {};
  ASSERT_EQ(::stat((site / "wp/inc/b.php").c_str(), &before), 0);
  deliver({at("wp/inc/b.php", watch::kOpened)});
  struct stat after {};
  ASSERT_EQ(::stat((site / "wp/inc/b.php").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  ::close(reader);
  EXPECT_TRUE(events("file-replaced").empty());
  // A writer's open (as before a shared writable mapping): replaced at once; what the
  // writer puts in afterwards lands in the detached inode, and is reported.
  const int writer = ::open((site / "wp/inc/a.php").c_str(), O_RDWR);
  ASSERT_GE(writer, 0);
  replay.push(at("wp/inc/a.php", watch::kOpened));  // handled before the write, as it can be
  std::vector<watch::Change> batch;
  ASSERT_TRUE(replay.read(batch));
  g->handle(batch);
  ASSERT_EQ(::pwrite(writer, "<?php eval", 10, 0), 10);
  ::close(writer);
  g->capture_due(/*all=*/true);
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(site.read("wp/inc/a.php"), "<?php // a\n");
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["path"], "wp/inc/a.php");
  EXPECT_EQ(ev[0]["mamori"]["reason"], "opened-for-writing");
  EXPECT_EQ(ev[0]["mamori"]["attrs"], nlohmann::json::array({"content"}));
  EXPECT_EQ(kept(ev[0]["mamori"]["evidence"]["id"]), "<?php eval\n");
  EXPECT_TRUE(events("file-replaced").empty());
}

// An append (PHP's fopen 'a') grows the detached inode: not hashed in place (a holder could
// have grown it to terabytes), but the event still names the kept bytes' digest.
TEST_F(GuardTest, AnAppendThroughAHeldDescriptorIsReportedWithItsDigest) {
  guard(config::Mode::kPreserve);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));  // the index of baselined files
  const int writer = ::open((site / "wp/inc/a.php").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(writer, 0);
  replay.push(at("wp/inc/a.php", watch::kOpened));
  std::vector<watch::Change> batch;
  ASSERT_TRUE(replay.read(batch));
  g->handle(batch);
  ASSERT_EQ(::write(writer, "eval($_POST[1]);\n", 17), 17);
  ::close(writer);
  g->capture_due(/*all=*/true);
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(site.read("wp/inc/a.php"), "<?php // a\n");
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 1u);
  const std::string bytes = kept(ev[0]["mamori"]["evidence"]["id"]);
  EXPECT_EQ(bytes, "<?php // a\neval($_POST[1]);\n");
  EXPECT_EQ(ev[0]["file"]["hash"]["sha256"], hash::sha256(bytes).hex());
}

// Lost opens: every baselined file is asked, a slice per handle() call (each ask is an
// open of the agent's own, queued like anyone's: all at once, a large root overflowed the
// queue again, for ever). A writer that holds a file open is found in some slice.
TEST_F(GuardTest, LostOpensAreAskedInSlicesAndTheWriterIsFound) {
  const size_t files = 2 * Guard::kOpenProbeSlice + 100;
  for (size_t i = 0; i < files; ++i) site.write("wp/f" + std::to_string(i) + ".php", "<?php\n");
  record_baseline();
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));
  const int writer = ::open((site / "wp/f7.php").c_str(), O_RDWR);
  ASSERT_GE(writer, 0);
  EXPECT_FALSE(g->probing());
  g->handle({{0, "", watch::kOverflow | watch::kOpened, -1, {}}});
  int calls = 1;
  while (g->probing()) {
    ASSERT_LT(calls, 10) << "more than (files / slice) + 1 calls";
    g->handle({});
    ++calls;
  }
  EXPECT_EQ(calls, 3) << files << " files, " << Guard::kOpenProbeSlice << " a slice";
  ASSERT_EQ(::pwrite(writer, "<?php eval", 10, 0), 10);
  ::close(writer);
  g->capture_due(/*all=*/true);
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(site.read("wp/f7.php"), "<?php\n");
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["reason"], "opened-for-writing");
  // A second overflow while slices are left starts the asking over: nothing is skipped.
  g->handle({{0, "", watch::kOverflow | watch::kOpened, -1, {}}});
  g->handle({{0, "", watch::kOverflow | watch::kOpened, -1, {}}});
  calls = 0;
  while (g->probing()) {
    g->handle({});
    ++calls;
  }
  EXPECT_EQ(calls, 2);
}

// Asking after lost opens comes after the batch's own changes: a tamper read with the
// overflow is put back first, not behind a slice of ~4 system calls a file.
TEST_F(GuardTest, ATamperInTheBatchOfLostOpensIsRestoredBeforeTheAsking) {
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));
  const int writer = ::open((site / "index.php").c_str(), O_RDWR);  // holds, writes nothing
  ASSERT_GE(writer, 0);
  site.write("wp/load.php", "<?php system($_GET['c']); ?>\n");
  g->handle({{0, "", watch::kOverflow | watch::kOpened, -1, {}}, at("wp/load.php")});
  ::close(writer);
  g->capture_due(/*all=*/true);
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  std::vector<std::string> order;
  for (const auto& e : events())
    if (e["mamori"].contains("path")) order.push_back(e["mamori"]["path"]);
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], "wp/load.php");  // restored first
  EXPECT_EQ(order[1], "index.php");    // then found held open for writing: replaced
  EXPECT_EQ(events("file-replaced").size(), 1u);
}

TEST_F(GuardTest, WhatLiesBeneathABaselinedDirectoryAtTheLimitIsQuarantined) {
  // The baseline was taken with a chain as deep as the limit: its last directory is
  // recorded but was never entered. A shell put there later is still found and goes.
  const std::string cut = deep_path("uploads/a", fs::kMaxWalkDepth);
  ASSERT_EQ(std::system(("mkdir -p '" + site / cut + "'").c_str()), 0);
  record_baseline();
  ASSERT_EQ(make_deep_file(site / cut + "/b", "s.php"), 0);
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kScheduled));
  g->capture_due(/*all=*/true);
  ASSERT_TRUE(g->flush());
  EXPECT_TRUE(exists(cut));
  EXPECT_FALSE(exists(cut + "/b"));
  bool said = false;
  for (const auto& e : events("file-quarantined"))
    said |= e["mamori"]["path"] == cut && e["mamori"]["reason"] == "nested-too-deep";
  EXPECT_TRUE(said);
}

TEST_F(GuardTest, AHardLinkWhoseBaselinedNameWasReplacedFirstIsStillOne) {
  // The open of the new name is handled before its creation (opens come first): the
  // baselined name gets its fresh copy, and the new name, now the inode's only one, is
  // still a hard link to what was baselined code, not an allowed upload.
  guard(config::Mode::kRestore);
  ASSERT_TRUE(g->verify(0, Trigger::kStartup));
  ASSERT_EQ(::link((site / "wp/load.php").c_str(), (site / "uploads/cfg.jpg").c_str()), 0);
  const int fd = ::open((site / "uploads/cfg.jpg").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  deliver({at("wp/load.php", watch::kOpened), at("uploads/cfg.jpg", watch::kCreated)});
  ::close(fd);
  EXPECT_FALSE(exists("uploads/cfg.jpg"));
  EXPECT_TRUE(events("file-allowed").empty());
  auto q = events("file-quarantined");
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0]["mamori"]["reason"], "hard-link-to-baselined-file");
}

}  // namespace
}  // namespace mamori::guard

namespace mamori::guard {
namespace {

// A one-line dropper (core/scan/testdata/match/eval_base64.php), appended to a
// baselined file.
constexpr std::string_view kDropper = "<?php // load\n@eval(base64_decode('ZWNobyAneCc7'));\n";

TEST_F(GuardTest, ATamperedFileIsRestoredFirstAndScannedAfter) {
  guard(config::Mode::kRestore);
  with_yara();
  site.write("wp/load.php", std::string(kDropper));
  replay.push(at("wp/load.php"));
  std::vector<watch::Change> batch;
  ASSERT_TRUE(replay.read(batch));
  g->handle(batch);
  // Put back before any verdict: the detached inode is scanned once its writer is quiet,
  // on the worker, and the event waits for it.
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  ASSERT_TRUE(g->flush());
  EXPECT_TRUE(events("file-restored").empty());
  EXPECT_EQ(scanner->stats().scans, 0u);
  ASSERT_TRUE(g->next_capture_ns());
  env.sim().set(SystemClock().now() + std::chrono::milliseconds(100));  // quiet
  g->capture_due();
  if (auto due = g->next_capture_ns()) {  // a verdict outstanding is polled soon
    EXPECT_LE(*due - env.clock().now_ns(), Guard::kScanPollNs);
  }
  g->capture_due(/*all=*/true);
  ASSERT_TRUE(g->flush());
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["scan"]["rules"], nlohmann::json::array({"mamori_php_eval_decoded"}));
  // Of another size than the baseline, so only the scan read it whole.
  EXPECT_EQ(ev[0]["file"]["hash"]["sha256"], hash::sha256(kDropper).hex());
  EXPECT_FALSE(g->next_capture_ns().has_value());

  // Clean tampered content: scanned, nothing named.
  site.write("wp/load.php", "<?php // load, edited\n");
  deliver({at("wp/load.php")});
  ev = events("file-restored");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_FALSE(ev[1]["mamori"].contains("scan"));
  EXPECT_EQ(scanner->stats().scans, 2u);
}

TEST_F(GuardTest, AWriteAfterTheRestoreIsInTheScanOfTheDetachedInode) {
  guard(config::Mode::kRestore);
  with_yara();
  // `cat shell > load.php`: truncated (an event, the restore), then written into the
  // inode the restore detached.
  const int fd = ::open((site / "wp/load.php").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  replay.push(at("wp/load.php"));
  std::vector<watch::Change> batch;
  ASSERT_TRUE(replay.read(batch));
  g->handle(batch);
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  env.sim().set(SystemClock().now());
  g->capture_due();  // not quiet yet: nothing scanned
  ASSERT_EQ(::write(fd, kDropper.data(), kDropper.size()), static_cast<ssize_t>(kDropper.size()));
  ::close(fd);
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
  env.sim().set(SystemClock().now() + std::chrono::milliseconds(100));
  g->capture_due(/*all=*/true);
  ASSERT_TRUE(g->flush());
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["scan"]["rules"], nlohmann::json::array({"mamori_php_eval_decoded"}));
  EXPECT_EQ(ev[0]["file"]["hash"]["sha256"], hash::sha256(kDropper).hex());
}

TEST_F(GuardTest, PastTheScanQueueAFileIsRestoredAndSaidNotScanned) {
  guard(config::Mode::kRestore);
  with_yara(/*max_queued=*/1);
  for (const char* rel : {"wp/load.php", "wp/inc/a.php", "wp/inc/b.php"})
    site.write(rel, std::string(kDropper));
  deliver({at("wp/load.php"), at("wp/inc/a.php"), at("wp/inc/b.php")});
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 3u);
  size_t scanned = 0, skipped = 0;
  for (const auto& e : ev) {
    if (e["mamori"].contains("scan") && e["mamori"]["scan"].contains("rules")) ++scanned;
    if (e["mamori"].contains("scan") && e["mamori"]["scan"].value("skipped", false)) ++skipped;
  }
  // One job at a time, and its result is taken only when the guard polls: the first
  // tampered file is scanned, the two behind it are restored and said not scanned.
  EXPECT_EQ(scanned, 1u);
  EXPECT_EQ(skipped, 2u);
  EXPECT_EQ(g->counters().scans_skipped, 2u);
  EXPECT_EQ(site.read("wp/inc/b.php"), "<?php // b\n");
}

TEST_F(GuardTest, PreserveModeRecordsTheVerdictInTheEvidence) {
  guard(config::Mode::kPreserve);
  with_yara();
  site.write("wp/load.php", std::string(kDropper));
  site.write("wp/inc/a.php", "<?php // a, edited\n");
  deliver({at("wp/load.php"), at("wp/inc/a.php")});
  auto ev = events("file-restored");
  ASSERT_EQ(ev.size(), 2u);
  for (const auto& e : ev) {
    const int64_t id = e["mamori"]["evidence"]["id"];
    auto item = evidence->get(id).value();
    ASSERT_TRUE(item && item->scan);
    if (e["mamori"]["path"] == "wp/load.php") {
      EXPECT_EQ(e["mamori"]["scan"]["rules"], nlohmann::json::array({"mamori_php_eval_decoded"}));
      EXPECT_EQ(item->scan->rules, std::vector<std::string>{"mamori_php_eval_decoded"});
      EXPECT_EQ(kept(id), kDropper);
    } else {
      EXPECT_FALSE(e["mamori"].contains("scan"));
      EXPECT_TRUE(item->scan->rules.empty());  // scanned: nothing matched
    }
    EXPECT_FALSE(item->scan->truncated);
  }
}

TEST_F(GuardTest, AQuarantinedFileKeepsItsVerdictInTheEvidence) {
  guard(config::Mode::kRestore);
  with_yara();
  site.write("wp/shell.php", std::string(kDropper));
  deliver({at("wp/shell.php", watch::kCreated)});
  EXPECT_FALSE(exists("wp/shell.php"));
  auto ev = events("file-quarantined");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]["mamori"]["scan"]["rules"], nlohmann::json::array({"mamori_php_eval_decoded"}));
  auto item = evidence->get(ev[0]["mamori"]["evidence"]["id"]).value();
  ASSERT_TRUE(item && item->scan);
  EXPECT_EQ(item->scan->rules, std::vector<std::string>{"mamori_php_eval_decoded"});
}

TEST_F(GuardTest, EveryFileOfAQuarantinedDirectoryIsScannedOffTheGuardsThread) {
  guard(config::Mode::kRestore);
  with_yara();
  site.mkdir("wp/kit");
  site.write("wp/kit/readme.txt", "nothing here\n");
  site.write("wp/kit/shell.php", "<?php system($_GET['c']);\n");
  site.write("wp/kit/dropper.php", std::string(kDropper));
  replay.push(at("wp/kit", watch::kCreated | watch::kIsDir));
  std::vector<watch::Change> batch;
  ASSERT_TRUE(replay.read(batch));
  g->handle(batch);
  EXPECT_FALSE(exists("wp/kit"));
  EXPECT_EQ(scanner->stats().scans, 0u);  // the guard went on: nothing scanned on its thread
  g->capture_due(/*all=*/true);
  ASSERT_TRUE(g->flush());
  auto ev = events("file-quarantined");
  ASSERT_EQ(ev.size(), 1u);
  auto rules = ev[0]["mamori"]["scan"]["rules"];
  ASSERT_TRUE(rules.is_array()) << ev[0];
  std::set<std::string> got(rules.begin(), rules.end());
  EXPECT_EQ(got,
            (std::set<std::string>{"mamori_php_eval_decoded", "mamori_php_exec_request_input"}));
  EXPECT_EQ(scanner->stats().scans, 3u);
  for (const auto& id : ev[0]["mamori"]["evidence"]["ids"]) {
    auto item = evidence->get(id.get<int64_t>()).value();
    ASSERT_TRUE(item && item->scan);
    EXPECT_EQ(item->scan->rules.empty(), item->path == "wp/kit/readme.txt") << item->path;
  }
}

TEST_F(GuardTest, AlertModeScansAChangedOrNewFileWhereItIs) {
  guard(config::Mode::kAlert);
  with_yara();
  site.write("wp/load.php", std::string(kDropper));
  site.write("wp/new.php", "<?php system($_GET['c']);\n");
  site.write("wp/inc/a.php", "<?php // a, edited\n");
  deliver({at("wp/load.php"), at("wp/new.php", watch::kCreated), at("wp/inc/a.php")});
  env.sim().advance(std::chrono::milliseconds(200));  // quiet: alert mode reports now
  g->capture_due(/*all=*/true);
  ASSERT_TRUE(g->flush());
  EXPECT_EQ(site.read("wp/load.php"), kDropper);  // alert changes nothing
  std::map<std::string, nlohmann::json> by_path;
  for (auto& e : events()) by_path[e["mamori"].value("path", "")] = e;
  ASSERT_TRUE(by_path.contains("wp/load.php"));
  EXPECT_EQ(by_path["wp/load.php"]["event"]["action"], "file-changed");
  EXPECT_EQ(by_path["wp/load.php"]["mamori"]["scan"]["rules"],
            nlohmann::json::array({"mamori_php_eval_decoded"}));
  ASSERT_TRUE(by_path.contains("wp/new.php"));
  EXPECT_EQ(by_path["wp/new.php"]["event"]["action"], "file-created");
  EXPECT_EQ(by_path["wp/new.php"]["mamori"]["scan"]["rules"],
            nlohmann::json::array({"mamori_php_exec_request_input"}));
  ASSERT_TRUE(by_path.contains("wp/inc/a.php"));
  EXPECT_FALSE(by_path["wp/inc/a.php"]["mamori"].contains("scan"));
}

// The opcache worker's hook (agent/opcache): told of every path put back or moved out,
// at once and before its event waits for anything, with the event's id; a path a storm
// summary reports instead comes with no id. Alerts and allowed uploads are not told.
TEST_F(GuardTest, TheActedHookHearsOfEveryRestoreAndQuarantine) {
  config::AgentConfig cfg;
  cfg.storm_changes_per_second = 3;
  guard(config::Mode::kRestore, cfg);
  struct Heard {
    std::string rel, action, id;
  };
  std::vector<Heard> heard;
  g->set_acted_hook([&](const std::string& root, const std::string& rel, std::string_view action,
                        const std::string& id) {
    EXPECT_EQ(root, site.path());
    heard.push_back({rel, std::string(action), id});
  });
  site.write("wp/load.php", "<?php eval($_POST['x']);\n");
  site.write("shell.php", "<?php system($_GET['c']);\n");
  site.write("uploads/a.jpg", "\xff\xd8\xff\xe0 photo");
  deliver({at("wp/load.php"), at("shell.php"), at("uploads/a.jpg")});
  ASSERT_EQ(heard.size(), 2u);
  std::map<std::string, Heard> by_rel;
  for (const auto& h : heard) by_rel[h.rel] = h;
  EXPECT_EQ(by_rel["wp/load.php"].action, "file-restored");
  EXPECT_EQ(by_rel["shell.php"].action, "file-quarantined");
  EXPECT_EQ(by_rel["wp/load.php"].id, events("file-restored").at(0)["event"]["id"]);
  EXPECT_EQ(by_rel["shell.php"].id, events("file-quarantined").at(0)["event"]["id"]);
  // A storm: the paths past the threshold are summarised, and still told (no id).
  heard.clear();
  const std::vector<std::string> files = {"index.php", "wp/load.php", "wp/inc/a.php",
                                          "wp/inc/b.php"};
  std::vector<watch::Change> changes;
  for (const auto& f : files) {
    site.write(f, "storm");
    changes.push_back(at(f));
  }
  deliver(changes);
  std::set<std::string> told;
  size_t without_id = 0;
  for (const auto& h : heard) {
    told.insert(h.rel);
    if (h.id.empty()) ++without_id;
  }
  EXPECT_EQ(told, std::set<std::string>(files.begin(), files.end()));
  EXPECT_GT(without_id, 0u);
  // Alert mode changes nothing, and tells nothing.
  heard.clear();
  g->set_mode(0, config::Mode::kAlert);
  site.write("wp/inc/a.php", "<?php // alert\n");
  deliver({at("wp/inc/a.php")});
  EXPECT_TRUE(heard.empty());
}

// A decoy's opens by the web server are the access log's to judge: the server is told by
// its binary's inode, so one whose path reads differently from here (started in another
// mount namespace) is still known, and a copy of it is not.
TEST(WhoTest, RunsOneOfTellsABinaryByItsInode) {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  const std::string path(self, static_cast<size_t>(n));
  const std::string_view mine[] = {"/nonexistent/nginx", path};
  EXPECT_TRUE(runs_one_of(::getpid(), mine));
  EXPECT_FALSE(runs_one_of(0, mine));
  TempDir dir;
  std::ifstream in(path, std::ios::binary);
  std::ofstream(dir / "copy", std::ios::binary) << in.rdbuf();
  const std::string copy = dir / "copy";
  const std::string_view copies[] = {copy};
  EXPECT_FALSE(runs_one_of(::getpid(), copies));
}

}  // namespace
}  // namespace mamori::guard
