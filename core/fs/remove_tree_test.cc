#include "core/fs/remove_tree.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "core/base/unique_fd.h"
#include "testing/temp_dir.h"

namespace mamori::fs {
namespace {

using testing::TempDir;

bool exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

// Builds `depth` nested directories "d" under `dir_fd`/`top`, a file in each; returns
// nothing, leaves no descriptor open.
void chain(int parent_fd, const std::string& top, size_t depth) {
  ASSERT_EQ(::mkdirat(parent_fd, top.c_str(), 0755), 0);
  UniqueFd cur(::openat(parent_fd, top.c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_TRUE(cur.valid());
  for (size_t i = 0; i < depth; ++i) {
    UniqueFd f(::openat(cur.get(), "s.php", O_WRONLY | O_CREAT, 0644));
    ASSERT_TRUE(f.valid());
    ASSERT_EQ(::mkdirat(cur.get(), "d", 0755), 0);
    UniqueFd next(::openat(cur.get(), "d", O_RDONLY | O_DIRECTORY));
    ASSERT_TRUE(next.valid());
    cur = std::move(next);
  }
}

TEST(RemoveTree, RemovesAChainFarDeeperThanTheDescriptorLimit) {
  TempDir t;
  t.mkdir("root");
  UniqueFd root(::open((t / "root").c_str(), O_RDONLY | O_DIRECTORY));
  chain(root.get(), "top", 3000);
  t.write("root/keep", "x");
  // With 64 descriptors, anything that holds one per level fails long before the bottom.
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  rlimit low = old;
  low.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  RemoveTreeReport report;
  size_t seen = 0;
  RemoveTreeOptions options;
  options.before_unlink = [&](int, const std::string& name, const struct stat& st,
                              const std::string& path) {
    EXPECT_EQ(name, "s.php");
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_TRUE(path.starts_with("top/")) << path;
    ++seen;
  };
  auto st = remove_tree(root.get(), "top", "top", options, report);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(seen, 3000u);
  EXPECT_EQ(report.files, 3000u);
  EXPECT_EQ(report.directories, 3001u);
  EXPECT_EQ(report.max_depth, 2999u);  // the last, empty level is removed without entering it
  EXPECT_FALSE(exists(t / "root/top"));
  EXPECT_TRUE(exists(t / "root/keep"));
}

TEST(RemoveTree, StopsWhenALevelIsMovedOutFromUnderIt) {
  // Mid-removal the attacker renames the first level out of the tree being removed: going
  // back up through ".." would now lead into the root itself. The removal must stop
  // there, and nothing outside the tree may be touched.
  TempDir t;
  t.mkdir("root");
  UniqueFd root(::open((t / "root").c_str(), O_RDONLY | O_DIRECTORY));
  chain(root.get(), "top", 5);
  t.write("root/index.php", "site");
  RemoveTreeOptions options;
  bool moved = false;
  options.before_unlink = [&](int, const std::string&, const struct stat&,
                              const std::string& path) {
    if (!moved && path == "top/d/d/d/s.php") {
      moved = true;
      ASSERT_EQ(::rename((t / "root/top/d").c_str(), (t / "root/moved").c_str()), 0);
    }
  };
  RemoveTreeReport report;
  auto st = remove_tree(root.get(), "top", "top", options, report);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, ESTALE) << st.error().message();
  EXPECT_TRUE(moved);
  EXPECT_TRUE(exists(t / "root/index.php"));
  EXPECT_TRUE(exists(t / "root/moved"));
  EXPECT_TRUE(exists(t / "root/top"));
}

TEST(RemoveTree, GivesUpPastItsEntryBudget) {
  TempDir t;
  t.mkdir("root");
  t.mkdir("root/top");
  for (int i = 0; i < 10; ++i) t.write("root/top/f" + std::to_string(i), "x");
  UniqueFd root(::open((t / "root").c_str(), O_RDONLY | O_DIRECTORY));
  RemoveTreeOptions options;
  options.max_entries = 4;
  RemoveTreeReport report;
  auto st = remove_tree(root.get(), "top", "top", options, report);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, EAGAIN);
  EXPECT_EQ(report.files, 4u);
  options.max_entries = 100;
  EXPECT_TRUE(remove_tree(root.get(), "top", "top", options, report));
  EXPECT_FALSE(exists(t / "root/top"));
}

TEST(RemoveTree, CanEmptyADirectoryAndKeepIt) {
  TempDir t;
  t.mkdir("root");
  UniqueFd root(::open((t / "root").c_str(), O_RDONLY | O_DIRECTORY));
  chain(root.get(), "top", 5);
  RemoveTreeOptions options;
  options.keep_top = true;
  RemoveTreeReport report;
  ASSERT_TRUE(remove_tree(root.get(), "top", "top", options, report));
  EXPECT_TRUE(exists(t / "root/top"));
  EXPECT_FALSE(exists(t / "root/top/d"));
  EXPECT_FALSE(exists(t / "root/top/s.php"));
}

TEST(RemoveTree, NeverFollowsASymlink) {
  TempDir t;
  t.mkdir("root");
  t.mkdir("root/top");
  t.mkdir("outside");
  t.write("outside/secret", "x");
  ASSERT_EQ(::symlink((t / "outside").c_str(), (t / "root/top/link").c_str()), 0);
  UniqueFd root(::open((t / "root").c_str(), O_RDONLY | O_DIRECTORY));
  RemoveTreeReport report;
  ASSERT_TRUE(remove_tree(root.get(), "top", "top", {}, report));
  EXPECT_FALSE(exists(t / "root/top"));
  EXPECT_TRUE(exists(t / "outside/secret"));
}

}  // namespace
}  // namespace mamori::fs
