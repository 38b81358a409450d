#include "agent/guard/deploy_tree.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "testing/temp_dir.h"

namespace mamori::guard {
namespace {

// A child that waits until told to exit (a pipe closes), so the test decides when it
// is gone.
struct Child {
  pid_t pid = -1;
  int release = -1;
  Child() {
    int p[2];
    EXPECT_EQ(::pipe(p), 0);
    pid = ::fork();
    if (pid == 0) {
      ::close(p[1]);
      char c;
      (void)!::read(p[0], &c, 1);
      ::_exit(0);
    }
    ::close(p[0]);
    release = p[1];
  }
  void exit_and_reap() {
    ::close(release);
    int st = 0;
    ::waitpid(pid, &st, 0);
  }
};

TEST(DeployTree, AChildOfTheDeployIsItsEvenAfterItExited) {
  auto tree = DeployTree::start(::getpid());
  ASSERT_TRUE(tree) << tree.error().message();
  ASSERT_TRUE((*tree)->following_forks()) << "tests run as root: the connector must open";
  Child c;
  c.exit_and_reap();  // wrote, exited, reaped before its change was judged
  (*tree)->update();
  EXPECT_TRUE((*tree)->owns(c.pid));
  EXPECT_TRUE((*tree)->owns(::getpid()));
  EXPECT_FALSE((*tree)->owns(::getppid()));
  EXPECT_FALSE((*tree)->owns(1));
  EXPECT_FALSE((*tree)->owns(-1)) << "no writer named: not the deploy's";
  EXPECT_TRUE((*tree)->root_alive());
}

TEST(DeployTree, AProcessNotStartedByTheDeployIsNotIts) {
  // The deploy is a child of ours; we (its parent) and our other children are not in it.
  Child deploy;
  auto tree = DeployTree::start(deploy.pid);
  ASSERT_TRUE(tree);
  Child sibling;
  (*tree)->update();
  EXPECT_TRUE((*tree)->owns(deploy.pid));
  EXPECT_FALSE((*tree)->owns(sibling.pid));
  EXPECT_FALSE((*tree)->owns(::getpid()));
  sibling.exit_and_reap();
  deploy.exit_and_reap();
  EXPECT_FALSE((*tree)->root_alive()) << "the deploy's process is gone";
}

// The /proc walk (no connector): a fake procfs with a chain 300 -> 200 -> 100 (root).
TEST(DeployTree, WithoutForkEventsTheParentChainDecidesAndStartTimesCatchReuse) {
  testing::TempDir proc;
  auto stat = [&](int pid, int ppid, int start) {
    ::mkdir((proc / std::to_string(pid)).c_str(), 0755);  // EEXIST when the pid is reused
    std::string s = std::to_string(pid) + " (a b) c) S " + std::to_string(ppid);
    for (int f = 5; f <= 21; ++f) s += " 0";
    s += " " + std::to_string(start) + " 0 0\n";
    proc.write(std::to_string(pid) + "/stat", s);
  };
  stat(100, 1, 1000);
  stat(200, 100, 2000);
  stat(300, 200, 3000);
  stat(400, 1, 4000);
  auto tree = DeployTree::start(100, proc.path(), /*follow_forks=*/false);
  ASSERT_TRUE(tree);
  EXPECT_TRUE((*tree)->owns(300));
  EXPECT_FALSE((*tree)->owns(400));
  EXPECT_FALSE((*tree)->owns(500)) << "gone and unknown: not the deploy's";
  // 300 exits and its pid is reused by a process outside the tree.
  stat(300, 400, 9000);
  EXPECT_FALSE((*tree)->owns(300));
  // The root's pid reused: what the deploy started stays its; what the new process
  // behind the pid starts is not.
  stat(100, 1, 7777);
  stat(600, 100, 8000);
  EXPECT_FALSE((*tree)->root_alive());
  EXPECT_TRUE((*tree)->owns(200));
  EXPECT_FALSE((*tree)->owns(600));
}

}  // namespace
}  // namespace mamori::guard
