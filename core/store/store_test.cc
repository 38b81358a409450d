#include "core/store/store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <random>

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
  std::unique_ptr<Store> open(Env& e, Store::Access a = Store::Access::kWrite) {
    return Store::open(e, db, state.get(), a).value();
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

}  // namespace
}  // namespace mamori::store
