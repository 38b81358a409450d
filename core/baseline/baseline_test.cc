// The baseline engine end to end on a real temporary tree: record, check, restore.

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/baseline/check.h"
#include "core/baseline/record.h"
#include "core/baseline/restore.h"
#include "core/baseline/state.h"
#include "core/fs/beneath.h"
#include "testing/fault_env.h"
#include "testing/sim_clock.h"
#include "testing/temp_dir.h"

namespace mamori::baseline {
namespace {

using testing::SimClock;
using testing::TempDir;

class BaselineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    site.mkdir("wp");
    site.mkdir("wp/inc");
    site.write("index.php", "<?php require 'wp/load.php';\n");
    site.write("wp/load.php", "<?php // load\n");
    site.write("wp/inc/a.php", std::string(3 << 20, 'a'));  // streamed, not inline
    ASSERT_EQ(::symlink("wp/load.php", (site / "link").c_str()), 0);
    record_all();
  }

  void record_all() {
    state = open_state(env, state_dir.path(), StateAccess::kWrite).value();
    auto txn = db::Transaction::begin(state->catalog.db()).value();
    root_id = state->catalog.touch_root(site.path(), 1).value();
    auto root = fs::open_root(site.path()).value();
    auto rep = record(state->catalog, *state->store, root_id, ctx(root.get()), "");
    ASSERT_TRUE(rep);
    EXPECT_TRUE(rep->errors.empty());
    ASSERT_TRUE(state->store->commit());
    ASSERT_TRUE(state->catalog.seal(1));
    ASSERT_TRUE(txn.commit());
  }

  CheckReport check(bool full = false) {
    auto root = fs::open_root(site.path()).value();
    return check_root(state->catalog, root_id, ctx(root.get()), "", full).value();
  }

  ScanContext ctx(int root_fd) { return {root_fd, nullptr, executor, clock, nullptr}; }

  std::string summary(const CheckReport& r) {
    std::string s;
    for (const auto& c : r.changes) {
      s += std::string(kind_name(c.kind)) + " " + c.path();
      for (auto a : attr_names(c.attrs)) s += " " + std::string(a);
      s += "\n";
    }
    return s;
  }

  TempDir site, state_dir;
  RealEnv env;
  SimClock clock;  // the files were all just written: a real clock would wait for them to settle
  ThreadExecutor executor{2};
  std::unique_ptr<State> state;
  int64_t root_id = 0;
};

TEST_F(BaselineTest, CleanTreeIsCleanAndVerifies) {
  EXPECT_TRUE(check().changes.empty());
  EXPECT_TRUE(check(true).changes.empty());
  EXPECT_TRUE(state->catalog.verify());
  EXPECT_TRUE(state->store->verify_index());
}

// Runs of zeros come back as holes; the file's size is right whether it ends in data,
// in zeros (a trailing hole, no write to size it) or is zeros only.
TEST_F(BaselineTest, RestoresContentEndingInDataInZerosOrAllZeros) {
  const std::string tail_data = std::string(300 << 10, '\0') + "<?php // end\n";
  const std::string tail_zeros = "<?php // start\n" + std::string(300 << 10, '\0');
  const std::string zeros(200 << 10, '\0');
  site.write("data.php", tail_data);
  site.write("zeros-after.php", tail_zeros);
  site.write("zeros.bin", zeros);
  state.reset();  // its store lock
  record_all();
  for (const char* f : {"data.php", "zeros-after.php", "zeros.bin"})
    ASSERT_EQ(::unlink((site / f).c_str()), 0);
  auto root = fs::open_root(site.path()).value();
  auto rep = restore(env, state->catalog, *state->store, root_id, ctx(root.get()), "").value();
  EXPECT_TRUE(rep.errors.empty());
  EXPECT_EQ(rep.restored.size(), 3u);
  EXPECT_EQ(site.read("data.php"), tail_data);
  EXPECT_EQ(site.read("zeros-after.php"), tail_zeros);
  EXPECT_EQ(site.read("zeros.bin"), zeros);
  struct stat st {};
  ASSERT_EQ(::stat((site / "zeros.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(zeros.size()));
  EXPECT_LT(st.st_blocks * 512, static_cast<off_t>(zeros.size()));  // a hole, not zeros
}

TEST_F(BaselineTest, FindsEveryKindOfChangeAndRestoresIt) {
  site.write("index.php", "<?php require 'wp/load.php';\n<?php eval($_GET[1]);\n");
  ASSERT_EQ(::chmod((site / "wp/load.php").c_str(), 0777), 0);
  ASSERT_EQ(::unlink((site / "wp/inc/a.php").c_str()), 0);
  ASSERT_EQ(::rmdir((site / "wp/inc").c_str()), 0);
  ASSERT_EQ(::unlink((site / "link").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/passwd", (site / "link").c_str()), 0);
  site.write("shell.php", "<?php system($_GET[c]);");
  const auto r = check();
  ASSERT_EQ(r.changes.size(), 6u) << summary(r);
  EXPECT_EQ(summary(r),
            "changed index.php content mtime\n"
            "changed link link_target\n"
            "added shell.php\n"
            "removed wp/inc\n"
            "removed wp/inc/a.php\n"
            "changed wp/load.php mode\n");

  auto root = fs::open_root(site.path()).value();
  auto rep = restore(env, state->catalog, *state->store, root_id, ctx(root.get()), "").value();
  EXPECT_TRUE(rep.errors.empty());
  EXPECT_EQ(rep.restored.size(), 5u);
  EXPECT_EQ(rep.not_in_baseline, std::vector<std::string>{"shell.php"});
  EXPECT_EQ(site.read("index.php"), "<?php require 'wp/load.php';\n");
  EXPECT_EQ(site.read("wp/inc/a.php"), std::string(3 << 20, 'a'));
  struct stat st {};
  ASSERT_EQ(::stat((site / "wp/load.php").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  char target[64] = {};
  ASSERT_GT(::readlink((site / "link").c_str(), target, sizeof target), 0);
  EXPECT_STREQ(target, "wp/load.php");
  EXPECT_EQ(summary(check(true)), "added shell.php\n");
  // The stat cache was refreshed: a fast check re-reads only the new file.
  EXPECT_EQ(check().hashed, 1u);
}

TEST_F(BaselineTest, SameSizeSameMtimeRewriteIsCaughtByCtime) {
  struct stat before {};
  ASSERT_EQ(::stat((site / "wp/load.php").c_str(), &before), 0);
  site.write("wp/load.php", "<?php // LOAD\n");  // same length
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (site / "wp/load.php").c_str(), times, 0), 0);
  EXPECT_EQ(summary(check()), "changed wp/load.php content\n");
}

TEST_F(BaselineTest, TamperedCatalogFailsVerification) {
  ASSERT_TRUE(state->catalog.db().exec("UPDATE entries SET mode = 511 WHERE path = 'index.php'"));
  auto v = state->catalog.verify();
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().errnum, EBADMSG);
  EXPECT_NE(v.error().detail.find("root hash mismatch"), std::string::npos);
}

TEST_F(BaselineTest, RecordOfASubtreeKeepsTheRest) {
  site.write("wp/new.php", "new");
  site.write("index.php", "changed");
  {
    auto txn = db::Transaction::begin(state->catalog.db()).value();
    auto root = fs::open_root(site.path()).value();
    ASSERT_TRUE(record(state->catalog, *state->store, root_id, ctx(root.get()), "wp"));
    ASSERT_TRUE(state->store->commit());
    ASSERT_TRUE(state->catalog.seal(2));
    ASSERT_TRUE(txn.commit());
  }
  EXPECT_EQ(summary(check()), "changed index.php content mtime\n");
}

TEST_F(BaselineTest, AFailedRecordLeavesThePreviousBaselineWhole) {
  const auto before = state->catalog.stored_root_hash().value();
  site.write("index.php", std::string(200000, 'x'));
  site.write("new.php", "new");
  state.reset();
  testing::FaultEnv faulty;
  auto s = open_state(faulty, state_dir.path(), StateAccess::kWrite).value();
  {
    auto txn = db::Transaction::begin(s->catalog.db()).value();
    auto root = fs::open_root(site.path()).value();
    ASSERT_TRUE(record(s->catalog, *s->store, root_id, ctx(root.get()), ""));
    faulty.fail_fsync_from(faulty.fsyncs() + 1, EIO);  // the pack cannot be made durable
    auto st = s->store->commit();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().errnum, EIO);
  }  // the transaction rolls back
  s.reset();
  state = open_state(env, state_dir.path(), StateAccess::kWrite).value();
  EXPECT_EQ(state->catalog.stored_root_hash().value(), before);
  EXPECT_TRUE(state->catalog.verify());
  EXPECT_EQ(summary(check()), "changed index.php content mtime\nadded new.php\n");
}

TEST_F(BaselineTest, AFileStillBeingWrittenIsWaitedFor) {
  // Just written: its ctime is younger than kSettleTime, so the scan waits (on the
  // simulated clock) before it trusts a read, and then records the settled content.
  site.write("wp/load.php", "<?php // v2\n");
  clock.set(SystemClock().now());
  const auto t0 = clock.now();
  EXPECT_EQ(summary(check()), "changed wp/load.php content mtime\n");
  EXPECT_GE(clock.now() - t0, kSettleTime / 2);
}

TEST_F(BaselineTest, UnknownSubtreesAreNotReportedRemoved) {
  Tree t;
  t.incomplete = {"a/b", "z"};
  EXPECT_TRUE(t.unknown("a/b/c"));
  EXPECT_TRUE(t.unknown("a/b/c/d"));
  EXPECT_FALSE(t.unknown("a/b"));
  EXPECT_FALSE(t.unknown("a/bc"));
  EXPECT_TRUE(t.unknown("z/1"));
  EXPECT_FALSE(t.unknown("y"));
}

TEST_F(BaselineTest, MetadataRepairNeverFollowsAHardLinkOutOfTheRoot) {
  // A file outside the root with the same bytes as a baselined one, mode 0600, is
  // hard-linked over it: the check sees only a mode change. Repairing the mode in place
  // would change the outside file; the entry gets a new inode instead.
  TempDir outside;
  outside.write("secret", "<?php // load\n", 0600);
  ASSERT_EQ(::chmod((outside / "secret").c_str(), 0600), 0);
  ASSERT_EQ(::link((outside / "secret").c_str(), (outside / "l").c_str()), 0);
  ASSERT_EQ(::rename((outside / "l").c_str(), (site / "wp/load.php").c_str()), 0);
  auto root = fs::open_root(site.path()).value();
  auto rep = restore(env, state->catalog, *state->store, root_id, ctx(root.get()), "").value();
  EXPECT_TRUE(rep.errors.empty());
  struct stat secret {};
  struct stat now {};
  ASSERT_EQ(::stat((outside / "secret").c_str(), &secret), 0);
  ASSERT_EQ(::stat((site / "wp/load.php").c_str(), &now), 0);
  EXPECT_EQ(secret.st_mode & 07777, 0600u);
  EXPECT_EQ(secret.st_nlink, 1u);
  EXPECT_NE(secret.st_ino, now.st_ino);
  EXPECT_EQ(now.st_mode & 07777, 0644u);
  EXPECT_EQ(site.read("wp/load.php"), "<?php // load\n");
}

// check_root("") compares one top-level name at a time (so only one subtree is held in
// memory); the changes must be what comparing each name as a subtree finds, in path
// order, with names that sort between a directory and its children ("wp.bak" between
// "wp" and "wp/...") and top-level names that appeared, vanished or are now excluded.
TEST_F(BaselineTest, TheWholeRootIsCheckedOneTopLevelNameAtATime) {
  site.mkdir("gone");
  site.write("gone/x.php", "x");
  site.write("wp-a.php", "a");
  site.write("z.php", "z");
  state.reset();  // its store lock
  record_all();
  ASSERT_EQ(state->catalog.top_names(root_id).value(),
            (std::vector<std::string>{"gone", "index.php", "link", "wp", "wp-a.php", "z.php"}));
  ASSERT_EQ(::unlink((site / "gone/x.php").c_str()), 0);
  ASSERT_EQ(::rmdir((site / "gone").c_str()), 0);
  site.write("wp.bak", "copy");                  // new; sorts between wp and wp/...
  site.write("wp/load.php", "<?php // evil\n");  // changed, beneath wp
  site.mkdir("new");
  site.write("new/shell.php", "<?php system($_GET[c]);");
  ASSERT_EQ(::chmod((site / "z.php").c_str(), 0600), 0);
  auto r = check();
  EXPECT_EQ(summary(r),
            "removed gone\n"
            "removed gone/x.php\n"
            "added new\n"
            "added new/shell.php\n"
            "added wp.bak\n"
            "changed wp/load.php content mtime\n"
            "changed z.php mode\n");
  EXPECT_TRUE(r.errors.empty());

  // Excluded now, in the baseline: reported removed, as a single pass reports it.
  auto exclude = fs::PathMatcher::compile({"z.php", "new"}).value();
  auto root = fs::open_root(site.path()).value();
  ScanContext c = ctx(root.get());
  c.exclude = &exclude;
  auto ex = check_root(state->catalog, root_id, c, "", false).value();
  EXPECT_EQ(summary(ex),
            "removed gone\n"
            "removed gone/x.php\n"
            "added wp.bak\n"
            "changed wp/load.php content mtime\n"
            "removed z.php\n");
}

}  // namespace
}  // namespace mamori::baseline
