#include "agent/logwatch/tailer.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "testing/sim_env.h"
#include "testing/temp_dir.h"

namespace mamori::logwatch {
namespace {

using namespace std::chrono_literals;

// A writer that keeps its file open, as a web server does: it goes on writing to the
// same file whatever happens to the name.
class Writer {
 public:
  explicit Writer(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) {
    EXPECT_GE(fd_, 0) << path;
  }
  ~Writer() { ::close(fd_); }
  void write(std::string_view s) const {
    EXPECT_EQ(::write(fd_, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }

 private:
  int fd_;
};

void append(const std::string& path, std::string_view s) { Writer(path).write(s); }

struct Line {
  size_t file;
  std::string text;
  LinePos pos;
};

class TailerTest : public ::testing::Test {
 protected:
  TailerOptions options(std::vector<std::string> paths) {
    TailerOptions o;
    o.paths = std::move(paths);
    o.positions_path = positions_;
    o.on_error = [this](size_t f, const std::optional<Error>& e) {
      errors_.push_back({f, e ? e->message() : ""});
    };
    return o;
  }
  std::unique_ptr<Tailer> make(TailerOptions o) {
    auto t = Tailer::create(env_, std::move(o));
    EXPECT_TRUE(t.has_value()) << (t ? "" : t.error().message());
    return t ? std::move(*t) : nullptr;
  }
  std::unique_ptr<Tailer> make(std::vector<std::string> paths) {
    return make(options(std::move(paths)));
  }

  // Reads until at least `n` lines have come, waiting on fd() for the kernel's news (at
  // most 5 s), then until nothing is pending. Returns the new lines' texts.
  std::vector<std::string> next_lines(Tailer& t, size_t n = 0, size_t per_call = 1000) {
    std::vector<std::string> got;
    const auto on_line = [&](size_t f, std::string_view line, const LinePos& pos) {
      lines_.push_back({f, std::string(line), pos});
      got.emplace_back(line);
    };
    while (true) {
      for (bool more = true; more;) {
        const auto r = t.read(on_line, per_call);
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
        more = r && *r;
      }
      if (got.size() >= n) return got;
      pollfd p{t.fd(), POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) {
        ADD_FAILURE() << "waited for " << n << " lines, got " << got.size();
        return got;
      }
    }
  }

  testing::TempDir dir_;
  testing::SimEnv env_;
  std::string log_ = dir_ / "access.log";
  std::string positions_ = dir_ / "state/logwatch/positions.json";
  std::vector<Line> lines_;
  std::vector<std::pair<size_t, std::string>> errors_;
};

using Lines = std::vector<std::string>;

TEST_F(TailerTest, StartsAtTheEndOfAnExistingLogAndReadsAppends) {
  dir_.write("access.log", "history 1\nhistory 2\n");
  auto t = make({log_});
  EXPECT_EQ(next_lines(*t), Lines{});
  append(log_, "a\nb\n");
  EXPECT_EQ(next_lines(*t, 2), (Lines{"a", "b"}));
  append(log_, "c\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"c"});
  EXPECT_EQ(t->stats().lines, 3u);
  EXPECT_EQ(t->stats().bytes, 6u);
  EXPECT_EQ(lines_[2].pos.offset, 24u);
  EXPECT_EQ(lines_[2].pos.next.offset, 26u);
}

TEST_F(TailerTest, FromStartReadsWhatIsAlreadyThere) {
  dir_.write("access.log", "history 1\nhistory 2\n");
  auto o = options({log_});
  o.from_start = true;
  auto t = make(std::move(o));
  EXPECT_EQ(next_lines(*t, 2), (Lines{"history 1", "history 2"}));
}

TEST_F(TailerTest, HoldsAPartialLineUntilItsNewline) {
  auto t = make({log_});
  Writer w(log_);
  w.write("GET /ind");
  EXPECT_EQ(next_lines(*t), Lines{});
  w.write("ex.php\nGET /x");
  EXPECT_EQ(next_lines(*t, 1), Lines{"GET /index.php"});
  w.write("\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"GET /x"});
  EXPECT_EQ(t->stats().truncated_tails, 0u);
}

TEST_F(TailerTest, RenameAndCreateLosesNothingAndReadsNothingTwice) {
  Writer old_file(log_);
  auto t = make({log_});
  old_file.write("a\nb\n");
  EXPECT_EQ(next_lines(*t, 2), (Lines{"a", "b"}));

  ASSERT_EQ(std::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
  old_file.write("c\n");  // nginx writes to the renamed file until it reopens
  Writer new_file(log_);
  new_file.write("d\n");
  old_file.write("e\n");
  // Both have data: the old file first.
  EXPECT_EQ(next_lines(*t, 3), (Lines{"c", "e", "d"}));
  old_file.write("f\n");  // a worker that has not reopened yet
  EXPECT_EQ(next_lines(*t, 1), Lines{"f"});
  EXPECT_EQ(t->stats().rotations, 1u);

  env_.sim().advance(6s);
  new_file.write("g\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"g"});
  // The old file is closed now that its time is up: nothing of it is read again.
  old_file.write("too late\n");
  new_file.write("h\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"h"});
  EXPECT_EQ(t->stats().lines, 8u);
}

TEST_F(TailerTest, ARotatedPartialLineIsDeliveredMarkedWhenTheOldFileCloses) {
  Writer old_file(log_);
  auto t = make({log_});
  old_file.write("a\ncut sh");
  EXPECT_EQ(next_lines(*t, 1), Lines{"a"});
  ASSERT_EQ(std::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
  Writer new_file(log_);
  new_file.write("b\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"b"});
  env_.sim().advance(6s);
  EXPECT_EQ(next_lines(*t, 1), Lines{"cut sh"});
  EXPECT_TRUE(lines_.back().pos.unterminated);
  EXPECT_FALSE(lines_[0].pos.unterminated);
  EXPECT_EQ(t->stats().truncated_tails, 1u);
}

TEST_F(TailerTest, CopytruncateIsCaughtByTheFingerprintEvenWhenTheNewContentIsLonger) {
  auto t = make({log_});
  append(log_, "GET /first HTTP/1.1\nGET /second HTTP/1.1\n");
  EXPECT_EQ(next_lines(*t, 2), (Lines{"GET /first HTTP/1.1", "GET /second HTTP/1.1"}));
  // Truncated and written again past our offset before we look.
  ASSERT_EQ(::truncate(log_.c_str(), 0), 0);
  append(log_, "POST /wp-login.php HTTP/1.1\nPOST /xmlrpc.php HTTP/1.1\nGET /.env\n");
  EXPECT_EQ(next_lines(*t, 3),
            (Lines{"POST /wp-login.php HTTP/1.1", "POST /xmlrpc.php HTTP/1.1", "GET /.env"}));
  EXPECT_EQ(t->stats().truncations, 1u);
  EXPECT_EQ(t->stats().rotations, 0u);
}

TEST_F(TailerTest, TruncationToShorterIsReadFromTheStart) {
  auto t = make({log_});
  append(log_, "a long line to be cut\n");
  EXPECT_EQ(next_lines(*t, 1).size(), 1u);
  ASSERT_EQ(::truncate(log_.c_str(), 0), 0);
  EXPECT_EQ(next_lines(*t), Lines{});
  append(log_, "x\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"x"});
  EXPECT_EQ(t->stats().truncations, 1u);
}

// Whether this process holds a file that has been deleted.
bool holds_deleted_file() {
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec).string();
    if (target.ends_with(" (deleted)")) return true;
  }
  return false;
}

TEST_F(TailerTest, ALogDeletedUnderUsIsReadToItsEndThenTheNewOneFollowed) {
  auto writer = std::make_unique<Writer>(log_);
  auto t = make({log_});
  writer->write("a\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"a"});
  ASSERT_EQ(::unlink(log_.c_str()), 0);
  writer->write("b\n");  // still written: the data is there, under no name
  EXPECT_EQ(next_lines(*t, 1), Lines{"b"});
  writer = std::make_unique<Writer>(log_);  // the writer reopens
  writer->write("c\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"c"});
  EXPECT_TRUE(holds_deleted_file());
  env_.sim().advance(6s);
  writer->write("d\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"d"});
  EXPECT_FALSE(holds_deleted_file());
}

TEST_F(TailerTest, FollowsAFileWhoseDirectoryDoesNotExistYet) {
  const std::string path = dir_ / "var/log/nginx/access.log";
  auto t = make({path});
  EXPECT_EQ(next_lines(*t), Lines{});
  dir_.mkdir("var");
  dir_.mkdir("var/log");
  dir_.mkdir("var/log/nginx");
  EXPECT_EQ(next_lines(*t), Lines{});
  // Created while we run: read from its first byte.
  dir_.write("var/log/nginx/access.log", "first\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"first"});
  append(path, "second\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"second"});
}

TEST_F(TailerTest, ADirectoryMadeAllAtOnceIsFound) {
  const std::string path = dir_ / "a/b/access.log";
  auto t = make({path});
  std::filesystem::create_directories(dir_ / "a/b");
  dir_.write("a/b/access.log", "x\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"x"});
}

TEST_F(TailerTest, ResumesAfterARestartWithoutGapOrDoubleCount) {
  append(log_, "old\n");
  auto t = make({log_});
  append(log_, "a\nb\n");
  EXPECT_EQ(next_lines(*t, 2), (Lines{"a", "b"}));
  ASSERT_TRUE(t->save().has_value());
  t.reset();
  append(log_, "c\nd\n");  // while stopped
  t = make({log_});
  EXPECT_EQ(next_lines(*t, 2), (Lines{"c", "d"}));
  EXPECT_EQ(::access(positions_.c_str(), R_OK), 0);
  struct stat st {};
  ASSERT_EQ(::stat(positions_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(TailerTest, ResumesThroughARotationThatHappenedWhileStopped) {
  append(log_, "old\n");
  auto t = make({log_});
  append(log_, "a\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"a"});
  ASSERT_TRUE(t->save().has_value());
  t.reset();
  append(log_, "b\n");
  ASSERT_EQ(std::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
  append(log_ + ".1", "c\n");
  append(log_, "d\n");
  t = make({log_});
  EXPECT_EQ(next_lines(*t, 3), (Lines{"b", "c", "d"}));
  EXPECT_EQ(t->stats().rotations, 1u);
  // And the new file's position is what is saved once its lines were read.
  ASSERT_TRUE(t->save().has_value());
  t.reset();
  append(log_, "e\n");
  t = make({log_});
  EXPECT_EQ(next_lines(*t, 1), Lines{"e"});
}

TEST_F(TailerTest, ResumeAfterTheRotatedFileIsGoneReadsTheNewOneWhole) {
  auto t = make({log_});
  append(log_, "a\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"a"});
  ASSERT_TRUE(t->save().has_value());
  t.reset();
  ASSERT_EQ(::unlink(log_.c_str()), 0);
  append(log_, "b\n");
  t = make({log_});
  EXPECT_EQ(next_lines(*t, 1), Lines{"b"});
}

TEST_F(TailerTest, ResumeAfterATruncationWhileStoppedReadsFromTheStart) {
  auto t = make({log_});
  append(log_, "GET /a\nGET /b\n");
  EXPECT_EQ(next_lines(*t, 2).size(), 2u);
  ASSERT_TRUE(t->save().has_value());
  t.reset();
  ASSERT_EQ(::truncate(log_.c_str(), 0), 0);
  append(log_, "GET /c but longer than before\n");
  t = make({log_});
  EXPECT_EQ(next_lines(*t, 1), Lines{"GET /c but longer than before"});
  EXPECT_EQ(t->stats().truncations, 1u);
}

TEST_F(TailerTest, ResumesAtTheEndWhenNothingWasReadBeforeTheRestart) {
  append(log_, "history\n");
  auto t = make({log_});
  ASSERT_TRUE(t->save().has_value());
  t.reset();
  append(log_, "while stopped\n");
  t = make({log_});
  EXPECT_EQ(next_lines(*t, 1), Lines{"while stopped"});
}

TEST_F(TailerTest, WithManualCommitsOnlyWhatWasCommittedIsSkippedAfterARestart) {
  auto o = options({log_});
  o.commit_on_delivery = false;
  auto t = make(o);
  append(log_, "a\nb\nc\n");
  EXPECT_EQ(next_lines(*t, 3).size(), 3u);
  t->commit(0, lines_[0].pos);  // only "a" was processed
  ASSERT_TRUE(t->save().has_value());
  t.reset();
  t = make(o);
  EXPECT_EQ(next_lines(*t, 2), (Lines{"b", "c"}));
}

TEST_F(TailerTest, ACorruptPositionsFileIsReportedAndTreatedAsNone) {
  std::filesystem::create_directories(dir_ / "state/logwatch");
  dir_.write("state/logwatch/positions.json", "{not json");
  append(log_, "history\n");
  auto t = make({log_});
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_EQ(errors_[0].first, Tailer::kPositions);
  EXPECT_NE(errors_[0].second.find("positions.json"), std::string::npos);
  append(log_, "new\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"new"});
}

TEST_F(TailerTest, AMegabyteLineIsDeliveredByItsStartInBoundedMemory) {
  // An attacker pads a header so that the line is too long to keep: its first
  // max_line_bytes (client address and request) still reach the detector, marked.
  auto t = make({log_});
  Writer w(log_);
  w.write("a\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"a"});
  const std::string head = "10.0.0.9 - - [x] \"GET /?id=1 UNION SELECT 1 HTTP/1.1\" ";
  const std::string mb(1 << 20, 'x');
  const size_t before = mallinfo2().uordblks;
  w.write(head + mb);  // no newline yet: a writer mid-line, or an attacker
  EXPECT_EQ(next_lines(*t), Lines{});
  EXPECT_LT(mallinfo2().uordblks, before + (64 << 10));
  w.write(mb);
  w.write("\nb\n");
  const auto got = next_lines(*t, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], (head + mb).substr(0, 16 << 10));
  EXPECT_EQ(got[1], "b");
  ASSERT_EQ(lines_.size(), 3u);
  EXPECT_TRUE(lines_[1].pos.truncated);
  EXPECT_FALSE(lines_[2].pos.truncated);
  EXPECT_EQ(lines_[1].pos.offset, 2u);
  EXPECT_EQ(lines_[1].pos.next.offset, lines_[2].pos.offset);  // resumes after the whole line
  EXPECT_EQ(t->stats().too_long, 1u);
  EXPECT_LT(mallinfo2().uordblks, before + (64 << 10));
}

TEST_F(TailerTest, LineLengthLimitIsInclusive) {
  auto o = options({log_});
  o.max_line_bytes = 8;
  auto t = make(std::move(o));
  Writer w(log_);
  w.write("12345678\n123456789\nok\n1234");
  EXPECT_EQ(next_lines(*t, 3), (Lines{"12345678", "12345678", "ok"}));
  EXPECT_FALSE(lines_[0].pos.truncated);
  EXPECT_TRUE(lines_[1].pos.truncated);
  w.write("56789\nend\n");  // a held part that grows too long
  EXPECT_EQ(next_lines(*t, 2), (Lines{"12345678", "end"}));
  EXPECT_TRUE(lines_[3].pos.truncated);
  EXPECT_EQ(lines_[3].pos.offset, 22u);
  EXPECT_EQ(t->stats().too_long, 2u);
}

TEST_F(TailerTest, AnOverLongLineCutByRotationIsDeliveredByItsStart) {
  auto o = options({log_});
  o.max_line_bytes = 8;
  auto t = make(std::move(o));
  Writer w(log_);
  w.write("0123456789abcdef");  // no '\n' ever: truncated in place
  EXPECT_EQ(next_lines(*t), Lines{});
  ASSERT_EQ(::truncate(log_.c_str(), 0), 0);
  w.write("new\n");
  EXPECT_EQ(next_lines(*t, 2), (Lines{"01234567", "new"}));
  EXPECT_TRUE(lines_[0].pos.truncated);
  EXPECT_TRUE(lines_[0].pos.unterminated);
}

TEST_F(TailerTest, PassesBinaryGarbageAndInvalidUtf8OnAsBytes) {
  auto t = make({log_});
  std::string garbage;
  for (int c = 0; c < 256; ++c) {
    if (c != '\n') garbage += static_cast<char>(c);
  }
  const std::string invalid = "GET /\xc3\x28\xff\xfe HTTP/1.1";
  append(log_, garbage + "\n" + invalid + "\n");
  EXPECT_EQ(next_lines(*t, 2), (Lines{garbage, invalid}));
}

TEST_F(TailerTest, TellsFilesApartInOneDirectoryAndInTwo) {
  dir_.mkdir("other");
  const std::string a = dir_ / "a.log", b = dir_ / "b.log", c = dir_ / "other/c.log";
  auto t = make({a, b, c});
  append(a, "a1\n");
  append(b, "b1\n");
  append(c, "c1\n");
  append(a, "a2\n");
  auto got = next_lines(*t, 4);
  ASSERT_EQ(got.size(), 4u);
  for (const auto& l : lines_) EXPECT_EQ(l.text[0] - 'a', static_cast<int>(l.file)) << l.text;
  // Rotating one of them leaves the others alone.
  ASSERT_EQ(std::rename(b.c_str(), (b + ".1").c_str()), 0);
  append(b, "b2\n");
  append(a, "a3\n");
  got = next_lines(*t, 2);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (Lines{"a3", "b2"}));
  EXPECT_EQ(t->stats().rotations, 1u);
}

TEST_F(TailerTest, ReadsAtMostMaxLinesPerCallAndSharesThemOut) {
  const std::string a = dir_ / "a.log", b = dir_ / "b.log";
  auto t = make({a, b});
  std::string many;
  for (int i = 0; i < 10; ++i) many += "a\n";
  append(a, many);
  append(b, "b\n");
  std::vector<std::string> got;
  const auto on_line = [&](size_t, std::string_view line, const LinePos&) {
    got.emplace_back(line);
  };
  auto r = t->read(on_line, 3);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(*r);
  EXPECT_EQ(got.size(), 3u);
  r = t->read(on_line, 3);  // the next call starts with the other file
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(std::find(got.begin(), got.end(), "b"), got.end());
  while (r && *r) r = t->read(on_line, 3);
  EXPECT_EQ(got.size(), 11u);
}

// Tests run as root, for whom chmod 000 denies nothing; what root cannot open is a
// symlink (refused) or something that is not a regular file.
TEST_F(TailerTest, AnUnopenablePathIsReportedAndTriedAgainOnTheNextEvent) {
  ASSERT_EQ(::symlink("/etc/shadow", log_.c_str()), 0);
  auto t = make({log_});
  ASSERT_TRUE(t->file_error(0).has_value());
  EXPECT_NE(t->file_error(0)->message().find("access.log"), std::string::npos);
  EXPECT_NE(t->file_error(0)->message().find("symbolic link"), std::string::npos);
  EXPECT_EQ(next_lines(*t), Lines{});

  ASSERT_EQ(::unlink(log_.c_str()), 0);
  ASSERT_EQ(::mkfifo(log_.c_str(), 0600), 0);
  EXPECT_EQ(next_lines(*t), Lines{});
  ASSERT_TRUE(t->file_error(0).has_value());
  EXPECT_NE(t->file_error(0)->message().find("not a regular file"), std::string::npos);

  ASSERT_EQ(::unlink(log_.c_str()), 0);
  append(log_, "finally\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"finally"});
  EXPECT_FALSE(t->file_error(0).has_value());
  EXPECT_GE(t->stats().reopen_errors, 2u);
  ASSERT_GE(errors_.size(), 3u);
  EXPECT_EQ(errors_.back(), (std::pair<size_t, std::string>{0, ""}));  // recovered
}

TEST_F(TailerTest, AnEventQueueOverflowLosesNoRotation) {
  Writer old_file(log_);
  auto t = make({log_});
  old_file.write("a\n");
  EXPECT_EQ(next_lines(*t, 1), Lines{"a"});
  // Fill the kernel's queue (fs.inotify.max_queued_events) with events that cannot be
  // merged with the one before, so that those of the rotation are lost.
  int max_queued = 16384;
  if (FILE* in = std::fopen("/proc/sys/fs/inotify/max_queued_events", "r")) {
    EXPECT_EQ(std::fscanf(in, "%d", &max_queued), 1);
    std::fclose(in);
  }
  dir_.write("x", "");
  dir_.write("y", "");
  for (int i = 0; i < 2 * max_queued; ++i)
    ASSERT_EQ(::chmod((dir_ / (i % 2 ? "x" : "y")).c_str(), i % 4 < 2 ? 0600 : 0644), 0);
  ASSERT_EQ(std::rename(log_.c_str(), (log_ + ".1").c_str()), 0);
  old_file.write("b\n");
  Writer new_file(log_);
  new_file.write("c\n");
  EXPECT_EQ(next_lines(*t, 2), (Lines{"b", "c"}));
  EXPECT_EQ(t->stats().overflows, 1u);
  EXPECT_EQ(t->stats().rotations, 1u);
}

TEST_F(TailerTest, RefusesTooManyAndDuplicatePaths) {
  auto o = options({log_, log_});
  EXPECT_FALSE(Tailer::create(env_, o).has_value());
  o.paths = {dir_ / "1", dir_ / "2", dir_ / "3"};
  o.max_files = 2;
  EXPECT_FALSE(Tailer::create(env_, o).has_value());
}

}  // namespace
}  // namespace mamori::logwatch
