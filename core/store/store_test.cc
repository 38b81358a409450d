#include "core/store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "core/fs/beneath.h"
#include "testing/fault_env.h"
#include "testing/temp_dir.h"

namespace mamori::store {
namespace {

using testing::TempDir;

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct Fixture {
  TempDir dir;
  RealEnv env;
  db::Db db = db::Db::open(dir / "catalog.db", db::Db::Mode::kReadWrite).value();
  UniqueFd state = fs::open_root(dir.path()).value();
  Fixture() { EXPECT_TRUE(Store::create_schema(db)); }
  std::unique_ptr<Store> open(Env& e, Store::Access a = Store::Access::kWrite,
                              StoreOptions o = {}) {
    return Store::open(e, db, state.get(), a, o).value();
  }
  std::unique_ptr<Store> open_deferred(Env& e) {
    StoreOptions o;
    o.defer_compression = true;
    return open(e, Store::Access::kWrite, o);
  }
  std::unique_ptr<Store> open_compressor(Env& e) {
    StoreOptions o;
    o.compressor = true;
    return open(e, Store::Access::kWrite, o);
  }
  int64_t count(const char* sql) {
    auto q = db.prepare(sql).value();
    EXPECT_TRUE(q.step().value());
    return q.int64(0);
  }
  std::string pack() const { return dir / "store/pack-000001.mpk"; }
};

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(Store, RoundTripsCompressibleAndIncompressibleContent) {
  Fixture f;
  auto s = f.open(f.env);
  const std::string text(100000, 'a'), noise = random_bytes(50000, 1);
  ASSERT_TRUE(s->put(hash::sha256(text), bytes(text)));
  ASSERT_TRUE(s->put(hash::sha256(noise), bytes(noise)));
  ASSERT_TRUE(s->put(hash::sha256(text), bytes(text)));  // stored once
  ASSERT_TRUE(s->commit());
  EXPECT_EQ(s->read_all(hash::sha256(text), 1 << 20).value(), text);
  EXPECT_EQ(s->read_all(hash::sha256(noise), 1 << 20).value(), noise);
  const auto stats = s->stats().value();
  EXPECT_EQ(stats.objects, 2u);
  EXPECT_LT(stats.stored_bytes, 51000u);  // text compressed, noise stored raw
  EXPECT_EQ(s->read_all(hash::sha256("absent"), 10).error().errnum, ENOENT);
}

// Reads share a per-thread decoder and buffers: one stopped mid-frame by its sink leaves
// nothing behind, and one started inside another's sink does not clobber it.
TEST(Store, ReadsSharingScratchStayWhole) {
  Fixture f;
  auto s = f.open(f.env);
  std::string text;
  for (int i = 0; text.size() < (1 << 20); ++i)
    text += "<?php echo " + std::to_string(i) + "; ?>\n";
  const std::string noise = random_bytes(300000, 3);
  ASSERT_TRUE(s->put(hash::sha256(text), bytes(text)));
  ASSERT_TRUE(s->put(hash::sha256(noise), bytes(noise)));
  ASSERT_TRUE(s->commit());
  auto stop = s->read(hash::sha256(text),
                      [](std::span<const uint8_t>) -> Status { return fail("sink", "", EIO); });
  ASSERT_FALSE(stop);
  EXPECT_EQ(stop.error().errnum, EIO);
  EXPECT_EQ(s->read_all(hash::sha256(text), 2 << 20).value(), text);
  std::string outer, inner;
  ASSERT_TRUE(s->read(hash::sha256(text), [&](std::span<const uint8_t> chunk) -> Status {
    if (inner.empty()) inner = MAMORI_TRY(s->read_all(hash::sha256(noise), 1 << 20));
    outer.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    return ok();
  }));
  EXPECT_EQ(outer, text);
  EXPECT_EQ(inner, noise);
}

TEST(Store, StreamsLargeFilesAndNoticesChangeWhileStreaming) {
  Fixture f;
  auto s = f.open(f.env);
  const std::string big = random_bytes(3 << 20, 2);
  f.dir.write("big", big);
  auto fd = fs::open_root(f.dir.path()).value();
  auto file = fs::open_beneath(fd.get(), "big", O_RDONLY).value();
  EXPECT_EQ(s->put_stream(hash::sha256("other"), file.get(), big.size(), "big").error().errnum,
            ESTALE);
  ASSERT_TRUE(s->put_stream(hash::sha256(big), file.get(), big.size(), "big"));
  ASSERT_TRUE(s->commit());
  EXPECT_EQ(s->read_all(hash::sha256(big), 4 << 20).value(), big);
  EXPECT_TRUE(s->verify_index());
}

TEST(Store, DetectsAFlippedByte) {
  Fixture f;
  const std::string text = "<?php echo 'hello'; ?>\n";
  {
    auto s = f.open(f.env);
    ASSERT_TRUE(s->put(hash::sha256(text), bytes(text)));
    ASSERT_TRUE(s->commit());
  }
  struct stat st {};
  ASSERT_EQ(::stat(f.pack().c_str(), &st), 0);
  const int fd = ::open(f.pack().c_str(), O_RDWR);
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, st.st_size - 3), 1);
  c ^= 0x20;
  ASSERT_EQ(::pwrite(fd, &c, 1, st.st_size - 3), 1);
  ::close(fd);
  auto s = f.open(f.env, Store::Access::kRead);
  auto r = s->read_all(hash::sha256(text), 1 << 20);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, EBADMSG);
  std::vector<Error> bad;
  InlineExecutor ex;
  ASSERT_TRUE(s->verify_contents(ex, [&](Error&& e) { bad.push_back(e); }));
  EXPECT_EQ(bad.size(), 1u);
}

TEST(Store, DetectsATruncatedPack) {
  Fixture f;
  const std::string text(5000, 'x');
  {
    auto s = f.open(f.env);
    ASSERT_TRUE(s->put(hash::sha256(text), bytes(text)));
    ASSERT_TRUE(s->commit());
  }
  ASSERT_EQ(::truncate(f.pack().c_str(), 20), 0);
  auto s = f.open(f.env, Store::Access::kRead);
  EXPECT_EQ(s->verify_index().error().errnum, EBADMSG);
}

TEST(Store, UncommittedTailIsCutByTheNextWriter) {
  Fixture f;
  const std::string a(1000, 'a'), b(1000, 'b');
  {
    auto s = f.open(f.env);
    ASSERT_TRUE(s->put(hash::sha256(a), bytes(a)));
    ASSERT_TRUE(s->commit());
    ASSERT_TRUE(s->put(hash::sha256(b), bytes(b)));  // never committed: a crash
  }
  struct stat before {
  }, after{};
  ASSERT_EQ(::stat(f.pack().c_str(), &before), 0);
  auto s = f.open(f.env);
  ASSERT_EQ(::stat(f.pack().c_str(), &after), 0);
  EXPECT_LT(after.st_size, before.st_size);
  EXPECT_FALSE(s->contains(hash::sha256(b)));
  EXPECT_EQ(s->read_all(hash::sha256(a), 4096).value(), a);
}

TEST(Store, FailedFsyncIndexesNothing) {
  Fixture f;
  testing::FaultEnv env;
  auto s = f.open(env);
  const std::string a(1000, 'a');
  ASSERT_TRUE(s->put(hash::sha256(a), bytes(a)));
  env.fail_fsync_from(env.fsyncs() + 1);
  EXPECT_FALSE(s->commit());
  auto q = f.db.prepare("SELECT count(*) FROM objects").value();
  ASSERT_TRUE(q.step().value());
  EXPECT_EQ(q.int64(0), 0);
}

TEST(Store, CompactionDropsDeadObjectsAndKeepsLiveOnesReadable) {
  Fixture f;
  const std::string a(5000, 'a'), b = random_bytes(5000, 7), c(5000, 'c');
  {
    auto s = f.open(f.env);
    for (const auto* x : {&a, &b, &c}) ASSERT_TRUE(s->put(hash::sha256(*x), bytes(*x)));
    ASSERT_TRUE(s->commit());
  }
  auto s = f.open(f.env);
  const std::unordered_set<Digest, hash::DigestHash> live{hash::sha256(a), hash::sha256(c)};
  const auto r = s->compact(live).value();
  EXPECT_EQ(r.objects_removed, 1u);
  EXPECT_EQ(r.objects_moved, 2u);
  EXPECT_EQ(r.packs_removed, 1u);
  EXPECT_LT(r.bytes_after, r.bytes_before);
  EXPECT_FALSE(s->contains(hash::sha256(b)));
  EXPECT_EQ(s->read_all(hash::sha256(a), 1 << 20).value(), a);
  EXPECT_EQ(s->read_all(hash::sha256(c), 1 << 20).value(), c);
  EXPECT_EQ(s->read_all(hash::sha256(b), 1 << 20).error().errnum, ENOENT);
  EXPECT_NE(::access(f.pack().c_str(), F_OK), 0);  // pack 1 is gone, its objects moved
  // Nothing left to do the second time; new content still goes in after a compaction.
  EXPECT_EQ(s->compact(live).value().packs_removed, 0u);
  ASSERT_TRUE(s->put(hash::sha256(b), bytes(b)));
  ASSERT_TRUE(s->commit());
  s.reset();
  auto again = f.open(f.env);  // reopening finds the newest pack despite the gap at 1
  EXPECT_EQ(again->read_all(hash::sha256(b), 1 << 20).value(), b);
  EXPECT_TRUE(again->verify_index());
}

TEST(Store, CompactionThatCannotSyncChangesNothing) {
  Fixture f;
  const std::string a(5000, 'a'), b(5000, 'b');
  {
    auto s = f.open(f.env);
    ASSERT_TRUE(s->put(hash::sha256(a), bytes(a)));
    ASSERT_TRUE(s->put(hash::sha256(b), bytes(b)));
    ASSERT_TRUE(s->commit());
  }
  testing::FaultEnv env;
  auto s = f.open(env);
  env.fail_fsync_from(env.fsyncs() + 2);  // the new pack's data cannot be made durable
  EXPECT_FALSE(s->compact({hash::sha256(a)}));
  s.reset();
  auto after = f.open(f.env, Store::Access::kRead);
  EXPECT_EQ(after->read_all(hash::sha256(a), 1 << 20).value(), a);
  EXPECT_EQ(after->read_all(hash::sha256(b), 1 << 20).value(), b);  // nothing was dropped
}

TEST(Store, OneWriterAtATime) {
  Fixture f;
  auto first = f.open(f.env);
  auto second = Store::open(f.env, f.db, f.state.get(), Store::Access::kWrite);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().errnum, EBUSY);
}

// Content put with defer_compression (what init does) is stored raw in a pack of its
// own; compress_pending() rewrites it compressed and deletes the raw pack.
struct Deferred {
  Fixture f;
  std::string text = std::string(200000, 'a') + "<?php echo 1; ?>";
  std::string noise = random_bytes(50000, 3);
  std::string big = std::string(3 << 20, 'b') + random_bytes(4 << 20, 4);  // past inline
  std::vector<const std::string*> all{&text, &noise, &big};
  void fill() {
    auto s = f.open_deferred(f.env);
    ASSERT_TRUE(s->put(hash::sha256(text), bytes(text)));
    ASSERT_TRUE(s->put(hash::sha256(noise), bytes(noise)));
    f.dir.write("big", big);
    auto fd = fs::open_root(f.dir.path()).value();
    auto file = fs::open_beneath(fd.get(), "big", O_RDONLY).value();
    ASSERT_TRUE(s->put_stream(hash::sha256(big), file.get(), big.size(), "big"));
    ASSERT_TRUE(s->commit());
  }
  void expect_all_readable(Store::Access a = Store::Access::kRead) {
    auto s = f.open(f.env, a);
    for (const auto* x : all) EXPECT_EQ(s->read_all(hash::sha256(*x), 8 << 20).value(), *x);
    EXPECT_TRUE(s->verify_index());
    std::vector<Error> bad;
    InlineExecutor ex;
    ASSERT_TRUE(s->verify_contents(ex, [&](Error&& e) { bad.push_back(e); }));
    EXPECT_TRUE(bad.empty());
  }
};

TEST(Store, DeferredContentIsStoredRawThenCompressed) {
  Deferred d;
  d.fill();
  uint64_t content = 0;
  for (const auto* x : d.all) content += x->size();
  EXPECT_EQ(d.f.count("SELECT count(*) FROM raw_packs"), 1);
  EXPECT_GT(static_cast<uint64_t>(d.f.count("SELECT sum(stored_size) FROM objects")), content);
  d.expect_all_readable();  // the raw copies are read and verified like any other

  auto c = d.f.open_compressor(d.f.env);
  EXPECT_TRUE(c->compression_pending().value());
  const auto r = c->compress_pending().value();
  EXPECT_FALSE(r.yielded);
  EXPECT_EQ(r.packs, 1u);
  EXPECT_EQ(r.objects, 3u);
  EXPECT_LT(r.bytes_after, r.bytes_before * 3 / 4);  // the 4 MiB of noise stays as it is
  EXPECT_FALSE(c->compression_pending().value());
  c.reset();
  EXPECT_NE(::access(d.f.pack().c_str(), F_OK), 0);  // the raw pack is gone
  EXPECT_LT(static_cast<uint64_t>(d.f.count("SELECT sum(stored_size) FROM objects")),
            content * 3 / 4);
  d.expect_all_readable();
  // Nothing left: a second pass does nothing.
  EXPECT_EQ(d.f.open_compressor(d.f.env)->compress_pending().value().packs, 0u);
}

TEST(Store, CompressionThatCannotSyncChangesNothing) {
  Deferred d;
  d.fill();
  {
    testing::FaultEnv env;
    auto c = d.f.open_compressor(env);
    env.fail_fsync_from(env.fsyncs() + 2);  // the new pack (created, then written)
    EXPECT_FALSE(c->compress_pending());
  }
  EXPECT_EQ(d.f.count("SELECT count(*) FROM raw_packs"), 1);
  d.expect_all_readable();
  EXPECT_EQ(d.f.open_compressor(d.f.env)->compress_pending().value().packs, 1u);
  d.expect_all_readable();
}

// An Env that kills the process (no cleanup of any kind, as SIGKILL would) at its Nth
// pwrite or fsync.
class DyingEnv final : public Env {
 public:
  DyingEnv(int die_at_write, int die_at_fsync) : write_(die_at_write), fsync_(die_at_fsync) {}
  ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) override {
    if (--write_ == 0) ::_exit(9);
    return Env::pwrite(fd, buf, n, offset);
  }
  int fsync(int fd) override {
    if (--fsync_ == 0) ::_exit(9);
    return Env::fsync(fd);
  }
  const Clock& clock() const override { return clock_; }

 private:
  int write_, fsync_;
  SystemClock clock_;
};

// A compressor killed at any write or fsync leaves every object readable and verified,
// and the next compressor finishes the job.
TEST(Store, KilledCompressorLeavesAUsableStore) {
  std::vector<std::pair<int, int>> deaths;  // (Nth pwrite, Nth fsync), 0 = never
  for (int w = 1; w <= 8; ++w) deaths.emplace_back(w, 0);
  // fsync 1: the new pack's directory entry; 2: its data, before the index switch;
  // 3: the directory after the raw pack was deleted.
  for (int y = 1; y <= 3; ++y) deaths.emplace_back(0, y);
  for (const auto& [w, y] : deaths) {
    {
      SCOPED_TRACE(::testing::Message() << "write " << w << " fsync " << y);
      Deferred d;
      d.fill();
      const pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        // A connection of its own: SQLite connections must not cross a fork.
        auto db = db::Db::open(d.f.dir / "catalog.db", db::Db::Mode::kReadWrite);
        DyingEnv env(w, y);
        StoreOptions o;
        o.compressor = true;
        auto c = Store::open(env, *db, d.f.state.get(), Store::Access::kWrite, o);
        if (c) (void)(*c)->compress_pending();
        ::_exit(0);
      }
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      ASSERT_TRUE(WIFEXITED(status));
      d.expect_all_readable();
      {
        auto writer = d.f.open(d.f.env);  // cuts off what the dead compressor left
        const std::string more(1000, 'm');
        ASSERT_TRUE(writer->put(hash::sha256(more), bytes(more)));
        ASSERT_TRUE(writer->commit());
        d.all.push_back(&more);
        writer.reset();
        d.expect_all_readable(Store::Access::kWrite);
        d.all.pop_back();
      }
      EXPECT_TRUE(d.f.open_compressor(d.f.env)->compress_pending());
      EXPECT_FALSE(d.f.open(d.f.env)->compression_pending().value());
      d.expect_all_readable();
    }
  }
}

// A writer that opens the store while the compressor holds it makes it stop between
// objects, gets the lock once it has, and the compressor's next pass finishes.
TEST(Store, CompressorGivesWayToAWriter) {
  Deferred d;
  d.fill();
  auto c = d.f.open_compressor(d.f.env);
  EXPECT_FALSE(c->should_yield());
  Result<std::unique_ptr<Store>> writer = fail("not yet", "", EAGAIN);
  std::thread t([&] {
    db::Db db = db::Db::open(d.f.dir / "catalog.db", db::Db::Mode::kReadWrite).value();
    writer = Store::open(d.f.env, db, d.f.state.get(), Store::Access::kWrite);
    if (writer) {
      EXPECT_TRUE((*writer)->commit());
      writer->reset();
    }
  });
  const SystemClock clock;
  const auto deadline = clock.monotonic() + std::chrono::seconds(30);
  while (!c->should_yield() && clock.monotonic() < deadline) std::this_thread::yield();
  const auto r = c->compress_pending().value();
  EXPECT_TRUE(r.yielded);
  EXPECT_EQ(r.packs, 0u);
  c.reset();  // lets the writer in
  t.join();
  ASSERT_TRUE(writer) << writer.error().errnum;
  d.expect_all_readable();
  EXPECT_EQ(d.f.open_compressor(d.f.env)->compress_pending().value().packs, 1u);
  d.expect_all_readable();
}

TEST(Store, TwoWritersStillExcludeEachOtherWithoutWaiting) {
  Fixture f;
  auto first = f.open_deferred(f.env);
  auto second = Store::open(f.env, f.db, f.state.get(), Store::Access::kWrite);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().errnum, EBUSY);
}

// compact() that moves raw objects keeps them pending in the pack they went to.
TEST(Store, CompactionKeepsRawObjectsPending) {
  Fixture f;
  const std::string a(5000, 'a'), b(5000, 'b');
  {
    auto s = f.open_deferred(f.env);
    ASSERT_TRUE(s->put(hash::sha256(a), bytes(a)));
    ASSERT_TRUE(s->put(hash::sha256(b), bytes(b)));
    ASSERT_TRUE(s->commit());
  }
  {
    auto s = f.open(f.env);
    EXPECT_EQ(s->compact({hash::sha256(a)}).value().objects_moved, 1u);
  }
  EXPECT_EQ(f.count("SELECT count(*) FROM raw_packs WHERE pack = 1"), 0);
  EXPECT_EQ(f.count("SELECT count(*) FROM raw_packs"), 1);
  const auto r = f.open_compressor(f.env)->compress_pending().value();
  EXPECT_EQ(r.objects, 1u);
  EXPECT_LT(f.count("SELECT sum(stored_size) FROM objects"), 1000);
  EXPECT_EQ(f.open(f.env, Store::Access::kRead)->read_all(hash::sha256(a), 1 << 20).value(), a);
}

}  // namespace
}  // namespace mamori::store
