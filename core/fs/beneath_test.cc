#include "core/fs/beneath.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "core/fs/atomic_replace.h"
#include "core/fs/walk.h"
#include "testing/fault_env.h"
#include "testing/temp_dir.h"

namespace mamori::fs {
namespace {

using testing::TempDir;

TEST(OpenBeneath, RefusesSymlinksAnywhereOnThePath) {
  TempDir t;
  t.mkdir("root");
  t.mkdir("root/dir");
  t.write("outside", "secret");
  ASSERT_EQ(::symlink((t / "outside").c_str(), (t / "root/link").c_str()), 0);
  ASSERT_EQ(::symlink("..", (t / "root/dir/up").c_str()), 0);
  auto root = open_root(t / "root").value();
  EXPECT_EQ(open_beneath(root.get(), "link", O_RDONLY).error().errnum, ELOOP);
  EXPECT_FALSE(open_beneath(root.get(), "dir/up/outside", O_RDONLY));
  EXPECT_FALSE(open_beneath(root.get(), "../outside", O_RDONLY));
  EXPECT_TRUE(open_beneath(root.get(), "dir", O_RDONLY | O_DIRECTORY));
}

TEST(CanonicalRelative, RejectsDotsAndEmptyParts) {
  EXPECT_TRUE(is_canonical_relative(""));
  EXPECT_TRUE(is_canonical_relative("a/b.c"));
  EXPECT_FALSE(is_canonical_relative("/a"));
  EXPECT_FALSE(is_canonical_relative("a//b"));
  EXPECT_FALSE(is_canonical_relative("a/../b"));
  EXPECT_FALSE(is_canonical_relative("a/"));
  EXPECT_EQ(dirname("a/b/c"), "a/b");
  EXPECT_EQ(basename("a/b/c"), "c");
  EXPECT_EQ(dirname("c"), "");
}

TEST(ReplaceFile, FailedFsyncLeavesTheOldFileAndNoTemporary) {
  TempDir t;
  t.write("f", "old");
  auto dir = open_root(t.path()).value();
  testing::FaultEnv env;
  env.fail_fsync_from(1);
  InodeMeta meta{0644, ::getuid(), ::getgid(), 0, ""};
  auto st = replace_file(
      env, dir.get(), "f", meta,
      [&](int fd) {
        return write_all(env, fd, {reinterpret_cast<const uint8_t*>("new"), 3}, "f");
      },
      "f");
  ASSERT_FALSE(st);
  EXPECT_EQ(t.read("f"), "old");
  int entries = 0;
  ASSERT_TRUE(walk(
      dir.get(), "", {}, [&](WalkEntry&&) { ++entries; }, [](Error&&) {}));
  EXPECT_EQ(entries, 2);  // the directory and f: no leftover temporary
}

TEST(ReplaceFile, ReplacesAtomicallyWithMetadata) {
  TempDir t;
  t.write("f", "old", 0600);
  auto dir = open_root(t.path()).value();
  RealEnv env;
  InodeMeta meta{04755 & 0755, ::getuid(), ::getgid(), 1'000'000'000'123, ""};
  ASSERT_TRUE(replace_file(
      env, dir.get(), "f", meta,
      [&](int fd) {
        return write_all(env, fd, {reinterpret_cast<const uint8_t*>("new"), 3}, "f");
      },
      "f"));
  EXPECT_EQ(t.read("f"), "new");
  struct stat st {};
  ASSERT_EQ(::stat((t / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123);
}

TEST(Walk, NeverOpensFifosAndStopsAtTheDepthLimit) {
  TempDir t;
  ASSERT_EQ(::mkfifo((t / "fifo").c_str(), 0600), 0);
  std::string deep;
  for (int i = 0; i < 5; ++i) {
    deep += (deep.empty() ? "" : "/") + std::string("d");
    t.mkdir(deep);
  }
  auto dir = open_root(t.path()).value();
  WalkOptions options;
  options.max_depth = 3;
  std::vector<std::string> paths, incomplete;
  std::vector<Error> errors;
  ASSERT_TRUE(walk(
      dir.get(), "", options,
      [&](WalkEntry&& e) {
        paths.push_back(e.path);
        if (e.incomplete) incomplete.push_back(e.path);
      },
      [&](Error&& e) { errors.push_back(e); }));
  EXPECT_NE(std::find(paths.begin(), paths.end(), "fifo"), paths.end());
  EXPECT_EQ(incomplete, std::vector<std::string>{"d/d/d/d"});
  EXPECT_EQ(errors.size(), 1u);
}

}  // namespace
}  // namespace mamori::fs
