#include "core/db/sqlite.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing/temp_dir.h"

namespace mamori::db {
namespace {

// Rows of `t` as another process sees them (its own connection, its own locks).
int rows_seen_by_another_process(const std::string& path, Db::Mode mode) {
  const pid_t pid = fork();
  if (pid == 0) {
    auto db = Db::open(path, mode);
    if (!db) _exit(255);
    auto s = db->prepare("SELECT COUNT(*) FROM t");
    if (!s || !s->step().value_or(false)) _exit(254);
    _exit(static_cast<int>(s->int64(0)));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Whether another process would see the database in use: the shared lock every
// connection holds on the -shm file's "DMS" byte (SQLite's os_unix.c: byte 128), which
// the last connection to close finds free and then deletes the WAL.
bool dms_locked_for_another_process(const std::string& path) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open((path + "-shm").c_str(), O_RDWR | O_CLOEXEC);
    struct flock probe {};
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    probe.l_start = 128;
    probe.l_len = 1;
    if (fd < 0 || ::fcntl(fd, F_GETLK, &probe) != 0) _exit(2);
    _exit(probe.l_type == F_UNLCK ? 1 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A second connection in one process (the manager's event writer) must not drop the
// first one's POSIX locks, which any close() of the database, its -wal or -shm does.
// Without them, the next process to open and close the database took itself for the
// last one and deleted the WAL, and the first connection's commits went on into the
// deleted file, invisible to every other process (the CLI saw no agent enrolled).
TEST(SqliteTest, ASecondConnectionInOneProcessKeepsTheFirstOnesLocks) {
  testing::TempDir dir;
  const std::string path = dir / "x.db";
  auto a = Db::open(path, Db::Mode::kReadWrite);
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_TRUE(a->exec("CREATE TABLE t (v INTEGER)"));
  ASSERT_TRUE(a->exec("INSERT INTO t VALUES (1)"));
  ASSERT_TRUE(dms_locked_for_another_process(path));
  auto b = Db::open(path, Db::Mode::kReadWrite);
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_TRUE(dms_locked_for_another_process(path)) << "the second open dropped the lock";
  ASSERT_TRUE(a->exec("INSERT INTO t VALUES (2)"));
  ASSERT_TRUE(b->exec("INSERT INTO t VALUES (3)"));
  EXPECT_EQ(rows_seen_by_another_process(path, Db::Mode::kReadWrite), 3);
  ASSERT_TRUE(a->exec("INSERT INTO t VALUES (4)"));
  EXPECT_EQ(rows_seen_by_another_process(path, Db::Mode::kReadOnly), 4);
  struct stat st {};
  EXPECT_EQ(::stat((path + "-wal").c_str(), &st), 0) << "the WAL of the open database is there";
}

TEST(SqliteTest, LooseModesAreTightenedAndSymlinksRefused) {
  testing::TempDir dir;
  const std::string path = dir / "x.db";
  { ASSERT_TRUE(Db::open(path, Db::Mode::kReadWrite)); }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  { ASSERT_TRUE(Db::open(path, Db::Mode::kReadWrite)); }
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  const std::string link = dir / "link.db";
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  EXPECT_FALSE(Db::open(link, Db::Mode::kReadWrite));
}

}  // namespace
}  // namespace mamori::db
