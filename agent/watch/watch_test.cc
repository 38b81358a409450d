// The kernel backends on the real kernel (the tests run as root): each must report a
// write, a create, a delete and a rename under a root, with the path relative to it,
// and nothing outside it. fanotify drops this process's own events (our restores), so
// the changes are made by a child process.

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <set>

#include <gtest/gtest.h>

#include "agent/watch/fanotify/fanotify_watcher.h"
#include "agent/watch/inotify/inotify_watcher.h"
#include "agent/watch/replay/replay_watcher.h"
#include "core/fs/beneath.h"
#include "testing/temp_dir.h"

namespace mamori::watch {
namespace {

using testing::TempDir;

// Runs `fn` in a child process and returns its pid once it has exited.
pid_t in_child(const std::function<void()>& fn) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    fn();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

// Reads changes until `done` says enough or 5 s pass.
std::vector<Change> collect(Watcher& w,
                            const std::function<bool(const std::vector<Change>&)>& done) {
  std::vector<Change> out;
  for (int i = 0; i < 500 && !done(out); ++i) {
    pollfd p{w.fd(), POLLIN, 0};
    if (::poll(&p, 1, 10) > 0) {
      EXPECT_TRUE(w.read(out));
    }
  }
  return out;
}

bool has(const std::vector<Change>& v, const std::string& rel, uint32_t what) {
  for (const auto& c : v)
    if (c.rel == rel && (c.what & what) == what) return true;
  return false;
}

void exercise(Watcher& w, bool knows_pid) {
  TempDir root, elsewhere;
  root.mkdir("sub");
  root.write("sub/a.php", "a");
  auto fd = fs::open_root(root.path()).value();
  char real[PATH_MAX];
  ASSERT_NE(::realpath(root.path().c_str(), real), nullptr);
  auto added = w.add_root(0, real, fd.get());
  ASSERT_TRUE(added) << added.error().message();

  const pid_t writer = in_child([&] {
    root.write("sub/a.php", "tampered");
    root.write("new.php", "<?php");
    elsewhere.write("outside.txt", "not ours");
    std::rename((root / "sub/a.php").c_str(), (root / "b.php").c_str());
    ::unlink((root / "new.php").c_str());
    ::mkdir((root / "dir").c_str(), 0755);
  });
  auto got = collect(w, [](const std::vector<Change>& v) {
    return has(v, "sub/a.php", kContent) && has(v, "new.php", kCreated) &&
           has(v, "b.php", kCreated) && has(v, "sub/a.php", kRemoved) &&
           has(v, "new.php", kRemoved) && has(v, "dir", kCreated | kIsDir);
  });
  EXPECT_TRUE(has(got, "sub/a.php", kContent));
  EXPECT_TRUE(has(got, "new.php", kCreated));
  EXPECT_TRUE(has(got, "b.php", kCreated));
  EXPECT_TRUE(has(got, "sub/a.php", kRemoved));
  EXPECT_TRUE(has(got, "new.php", kRemoved));
  EXPECT_TRUE(has(got, "dir", kCreated | kIsDir));
  for (const auto& c : got) {
    // Opens are named by file handle, filesystem-wide: the guard decides which matter.
    if (c.what == kOpened) continue;
    EXPECT_EQ(c.rel.find("outside"), std::string::npos) << c.rel;
    EXPECT_EQ(c.root, 0u);
    if (knows_pid) {
      EXPECT_EQ(c.pid, writer) << c.rel;
    }
  }
}

TEST(FanotifyWatcher, ReportsChangesBeneathTheRootWithTheWritersPid) {
  auto w = FanotifyWatcher::create();
  ASSERT_TRUE(w) << w.error().message();  // CI runs as root on a kernel >= 5.9
  exercise(**w, true);
}

TEST(FanotifyWatcher, DropsItsOwnProcesssChanges) {
  TempDir root;
  auto w = FanotifyWatcher::create().value();
  auto fd = fs::open_root(root.path()).value();
  char real[PATH_MAX];
  ASSERT_NE(::realpath(root.path().c_str(), real), nullptr);
  ASSERT_TRUE(w->add_root(0, real, fd.get()));
  root.write("ours.php", "restored by us");
  in_child([&] { root.write("theirs.php", "x"); });
  auto got =
      collect(*w, [](const std::vector<Change>& v) { return has(v, "theirs.php", kCreated); });
  EXPECT_TRUE(has(got, "theirs.php", kCreated));
  EXPECT_FALSE(has(got, "ours.php", 0));
}

TEST(InotifyWatcher, ReportsChangesBeneathTheRoot) {
  auto w = InotifyWatcher::create();
  ASSERT_TRUE(w) << w.error().message();
  exercise(**w, false);
}

TEST(InotifyWatcher, ADirectoryThatAppearsIsWatchedAndItsContentReported) {
  TempDir root;
  auto w = InotifyWatcher::create().value();
  auto fd = fs::open_root(root.path()).value();
  auto added = w->add_root(0, root.path(), fd.get());
  ASSERT_TRUE(added) << added.error().message();
  // Built elsewhere and moved in whole: its files predate any watch on it.
  TempDir staging;
  staging.mkdir("kit");
  staging.write("kit/shell.php", "<?php");
  ASSERT_EQ(std::rename((staging / "kit").c_str(), (root / "kit").c_str()), 0);
  auto got =
      collect(*w, [](const std::vector<Change>& v) { return has(v, "kit/shell.php", kCreated); });
  EXPECT_TRUE(has(got, "kit", kCreated | kIsDir));
  EXPECT_TRUE(has(got, "kit/shell.php", kCreated));
  const size_t before = w->watches();
  root.write("kit/later.php", "x");
  got = collect(*w, [](const std::vector<Change>& v) { return has(v, "kit/later.php", kContent); });
  EXPECT_TRUE(has(got, "kit/later.php", kContent));
  EXPECT_EQ(w->watches(), before);
}

TEST(ReplayWatcher, DeliversWhatWasPushedInOrder) {
  ReplayWatcher w;
  w.push({0, "a", kCreated, 1, {}});
  w.push({0, "", kOverflow, -1, {}});
  pollfd p{w.fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 0), 1);
  std::vector<Change> got;
  ASSERT_TRUE(w.read(got));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].rel, "a");
  EXPECT_EQ(w.overflows(), 1u);
  EXPECT_EQ(::poll(&p, 1, 0), 0);
}

}  // namespace
}  // namespace mamori::watch
