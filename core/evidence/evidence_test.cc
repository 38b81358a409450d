#include "core/evidence/evidence.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include "core/base/unique_fd.h"
#include "core/db/sqlite.h"
#include "core/evidence/item_json.h"
#include "testing/fault_env.h"
#include "testing/temp_dir.h"

namespace mamori::evidence {
namespace {

using testing::TempDir;

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// The tampered inode the guard hands over: an fd, read with pread from offset 0.
UniqueFd content_fd(const std::string& content) {
  UniqueFd fd(::memfd_create("tampered", MFD_CLOEXEC));
  EXPECT_TRUE(fd.valid());
  EXPECT_EQ(::write(fd.get(), content.data(), content.size()),
            static_cast<ssize_t>(content.size()));
  return fd;  // its position is at the end: add() must not care
}

Item sample(std::string path) {
  Item m;
  m.event_id = "ev-1";
  m.root = "/var/www/html";
  m.path = std::move(path);
  m.reason = "modified";
  m.mode = 0100644;
  m.uid = 33;
  m.gid = 33;
  m.mtime_ns = 1'700'000'000'123'456'789;
  m.who = {4242, "/usr/sbin/php-fpm8.2", "php-fpm: pool www", 33, "www-data",
           1,    "/usr/sbin/php-fpm8.2"};
  m.baseline_sha256 = hash::sha256("original");
  return m;
}

struct Fixture {
  TempDir dir;
  RealEnv env;
  std::string state = dir / "state";

  std::unique_ptr<EvidenceStore> open(Env& e,
                                      EvidenceStore::Access a = EvidenceStore::Access::kWrite,
                                      Options o = {}) {
    return EvidenceStore::open(e, state, a, o).value();
  }
  std::unique_ptr<EvidenceStore> open(Options o) {
    return open(env, EvidenceStore::Access::kWrite, o);
  }
  std::string blob(int64_t id) const {
    char name[32];
    std::snprintf(name, sizeof name, "%012lld.mev", static_cast<long long>(id));
    return state + "/evidence/" + name;
  }
  // What the store keeps, without SQLite's WAL files (they come and go with connections).
  std::set<std::string> files() const {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(state + "/evidence"))
      if (!e.path().filename().string().starts_with("index.db-"))
        out.insert(e.path().filename().string());
    return out;
  }
};

std::string read_all(EvidenceStore& s, int64_t id) {
  std::string out;
  auto st = s.read(id, [&](std::span<const uint8_t> c) {
    out.append(reinterpret_cast<const char*>(c.data()), c.size());
    return ok();
  });
  EXPECT_TRUE(st) << (st ? "" : st.error().message());
  return out;
}

Status try_read(EvidenceStore& s, int64_t id) {
  return s.read(id, [](std::span<const uint8_t>) { return ok(); });
}

void expect_same(const Item& a, const Item& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.time_ns, b.time_ns);
  EXPECT_EQ(a.event_id, b.event_id);
  EXPECT_EQ(a.root, b.root);
  EXPECT_EQ(a.path, b.path);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.truncated, b.truncated);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.uid, b.uid);
  EXPECT_EQ(a.gid, b.gid);
  EXPECT_EQ(a.mtime_ns, b.mtime_ns);
  EXPECT_EQ(a.who.pid, b.who.pid);
  EXPECT_EQ(a.who.executable, b.who.executable);
  EXPECT_EQ(a.who.command_line, b.who.command_line);
  EXPECT_EQ(a.who.uid, b.who.uid);
  EXPECT_EQ(a.who.user, b.who.user);
  EXPECT_EQ(a.who.ppid, b.who.ppid);
  EXPECT_EQ(a.who.parent_executable, b.who.parent_executable);
  EXPECT_EQ(a.baseline_sha256, b.baseline_sha256);
}

TEST(Evidence, AddListGetReadRoundTrip) {
  Fixture f;
  const std::string a = "<?php eval($_POST['x']); ?>\n", b(200000, 'b');
  Item first, second;
  {
    auto s = f.open(f.env);
    first = s->add(sample("index.php"), content_fd(a).get()).value();
    Item m = sample("wp-config.php");
    m.who = {};  // the kernel told us nothing
    m.baseline_sha256.reset();
    second = s->add(m, content_fd(b).get()).value();
    EXPECT_GT(second.id, first.id);
    EXPECT_GT(first.time_ns, 0);
    EXPECT_EQ(first.sha256, hash::sha256(a));
    EXPECT_EQ(first.size, a.size());
    EXPECT_FALSE(first.truncated);
    EXPECT_EQ(read_all(*s, first.id), a);
  }
  // Another process reads what the writer kept.
  auto r = f.open(f.env, EvidenceStore::Access::kRead);
  const auto all = r->list().value();
  ASSERT_EQ(all.size(), 2u);
  expect_same(all[0], second);  // newest first
  expect_same(all[1], first);
  EXPECT_EQ(all[0].who.pid, -1);
  EXPECT_FALSE(all[0].baseline_sha256);
  ASSERT_EQ(r->list(1).value().size(), 1u);
  expect_same(r->get(first.id).value().value(), first);
  EXPECT_FALSE(r->get(999).value());
  EXPECT_EQ(read_all(*r, first.id), a);
  EXPECT_EQ(read_all(*r, second.id), b);
  EXPECT_EQ(try_read(*r, 999).error().errnum, ENOENT);
  const auto u = r->usage().value();
  EXPECT_EQ(u.items, 2u);
  EXPECT_LT(u.stored_bytes, 2000u);  // compressed
  EXPECT_EQ(r->add(sample("x"), content_fd("x").get()).error().errnum, EROFS);
}

TEST(Evidence, ReadingWhatWasNeverKeptIsENOENT) {
  Fixture f;
  EXPECT_EQ(EvidenceStore::open(f.env, f.state, EvidenceStore::Access::kRead).error().errnum,
            ENOENT);
  f.open(f.env);  // created, empty: readers see no items
  EXPECT_TRUE(f.open(f.env, EvidenceStore::Access::kRead)->list().value().empty());
}

TEST(Evidence, OneWriterAtATime) {
  Fixture f;
  auto first = f.open(f.env);
  EXPECT_EQ(EvidenceStore::open(f.env, f.state, EvidenceStore::Access::kWrite).error().errnum,
            EBUSY);
}

TEST(Evidence, QuotaPrunesOldestFirstAndNeverTheNewItem) {
  Fixture f;
  Options o;
  o.quota_bytes = 25000;  // two incompressible 10 kB items fit, three do not
  auto s = f.open(o);
  std::vector<Item> pruned;
  const auto a = s->add(sample("a"), content_fd(random_bytes(10000, 1)).get(), &pruned).value();
  const auto b = s->add(sample("b"), content_fd(random_bytes(10000, 2)).get(), &pruned).value();
  EXPECT_TRUE(pruned.empty());
  const auto c = s->add(sample("c"), content_fd(random_bytes(10000, 3)).get(), &pruned).value();
  ASSERT_EQ(pruned.size(), 1u);
  EXPECT_EQ(pruned[0].id, a.id);
  EXPECT_EQ(pruned[0].path, "a");
  EXPECT_FALSE(s->get(a.id).value());
  EXPECT_NE(::access(f.blob(a.id).c_str(), F_OK), 0);
  EXPECT_LE(s->usage().value().stored_bytes, o.quota_bytes);

  // An item over the whole quota on its own is kept; everything older goes.
  const auto big = s->add(sample("big"), content_fd(random_bytes(40000, 4)).get(), &pruned).value();
  ASSERT_EQ(pruned.size(), 2u);
  EXPECT_EQ(pruned[0].id, b.id);
  EXPECT_EQ(pruned[1].id, c.id);
  const auto left = s->list().value();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id, big.id);
  EXPECT_EQ(read_all(*s, big.id), random_bytes(40000, 4));
  EXPECT_EQ(f.files(), (std::set<std::string>{"index.db", "lock",
                                              std::filesystem::path(f.blob(big.id)).filename()}));
  // Ids are never reused, even once the items that held them are gone.
  s.reset();
  s = f.open(o);
  EXPECT_GT(s->add(sample("d"), content_fd("d").get()).value().id, big.id);
}

TEST(Evidence, KeepsOnlyAPrefixBeyondTheItemLimitAndNeverReadsPastIt) {
  Fixture f;
  Options o;
  o.max_item_bytes = 100000;
  auto s = f.open(o);
  const std::string full = random_bytes(300000, 5);
  const auto it = s->add(sample("huge.php"), content_fd(full).get()).value();
  EXPECT_TRUE(it.truncated);
  EXPECT_EQ(it.size, full.size());
  // The digest is the kept prefix's: the rest was never read.
  EXPECT_EQ(it.sha256, hash::sha256(full.substr(0, 100000)));
  EXPECT_EQ(read_all(*s, it.id), full.substr(0, 100000));
  const auto got = s->get(it.id).value().value();
  EXPECT_TRUE(got.truncated);
  EXPECT_EQ(got.size, full.size());
  EXPECT_EQ(got.sha256, hash::sha256(full.substr(0, 100000)));
  // Exactly at the limit is not truncated.
  const auto exact = s->add(sample("exact"), content_fd(full.substr(0, 100000)).get()).value();
  EXPECT_FALSE(exact.truncated);
  EXPECT_EQ(exact.size, 100000u);
  EXPECT_EQ(exact.sha256, hash::sha256(full.substr(0, 100000)));
  EXPECT_EQ(read_all(*s, exact.id), full.substr(0, 100000));
}

TEST(Evidence, AHugeSparseFileCostsOnlyTheItemLimit) {
  // `truncate -s 15T x.php`: no blocks, 15 TiB of zeros to read. Reading it whole (as
  // add() once did, to hash it) takes hours; the test's time-out catches that.
  Fixture f;
  Options o;
  o.max_item_bytes = 1 << 20;
  auto s = f.open(o);
  UniqueFd fd = content_fd("<?php system($_GET['c']); ?>");
  constexpr uint64_t kHuge = 15ull << 40;
  ASSERT_EQ(::ftruncate(fd.get(), static_cast<off_t>(kHuge)), 0) << std::strerror(errno);
  const auto it = s->add(sample("uploads/z.php"), fd.get()).value();
  EXPECT_TRUE(it.truncated);
  EXPECT_EQ(it.size, kHuge);
  const std::string kept = read_all(*s, it.id);
  ASSERT_EQ(kept.size(), size_t{1} << 20);
  EXPECT_TRUE(kept.starts_with("<?php system"));
  EXPECT_LT(s->usage().value().stored_bytes, 64u << 10);  // zeros compress to nothing
}

Item incident(std::string path, std::string event_id) {
  Item m = sample(std::move(path));
  m.event_id = std::move(event_id);
  return m;
}

TEST(Evidence, AWebShellOutlivesLaterJunk) {
  // Issue 10 item 8: a 1 MiB quota, a web shell written first, then six 300 KB random
  // files: the web shell's evidence survives (it used to be the first one pruned).
  Fixture f;
  Options o;
  o.quota_bytes = 1 << 20;
  auto s = f.open(o);
  std::vector<Item> pruned, all_pruned;
  const std::string shell = "<?php @eval($_POST['x']); ?>\n";
  const auto sh =
      s->add(incident("wp-content/uploads/s.php", "ev-shell"), content_fd(shell).get(), &pruned)
          .value();
  for (int i = 0; i < 6; ++i) {
    const auto it = s->add(
        incident("wp-content/uploads/r" + std::to_string(i) + ".dat", "ev-r" + std::to_string(i)),
        content_fd(random_bytes(300000, 10 + i)).get(), &pruned);
    ASSERT_TRUE(it) << it.error().message();
    all_pruned.insert(all_pruned.end(), pruned.begin(), pruned.end());
  }
  EXPECT_FALSE(all_pruned.empty());  // the quota did bite
  for (const auto& p : all_pruned) EXPECT_NE(p.id, sh.id);
  ASSERT_TRUE(s->get(sh.id).value());
  EXPECT_EQ(read_all(*s, sh.id), shell);
  EXPECT_LE(s->usage().value().stored_bytes, o.quota_bytes);
}

TEST(Evidence, ABurstOfOneIncidentDoesNotFlushOthers) {
  // A quarantined directory of 77 files is one event: past kMaxPerIncident its items are
  // the first to go (each other, the newest included), never the earlier incidents'.
  Fixture f;
  Options o;
  o.quota_bytes = 200000;  // about 19 incompressible 10 kB items
  auto s = f.open(o);
  std::vector<Item> pruned;
  std::vector<int64_t> earlier;
  for (int i = 0; i < 3; ++i)
    earlier.push_back(s->add(incident("old" + std::to_string(i), "ev-old" + std::to_string(i)),
                             content_fd(random_bytes(10000, 100 + i)).get(), &pruned)
                          .value()
                          .id);
  size_t not_kept = 0;
  std::vector<int64_t> burst;
  for (int i = 0; i < 77; ++i) {
    const auto it = s->add(incident("dir/f" + std::to_string(i), "ev-burst"),
                           content_fd(random_bytes(10000, 200 + i)).get(), &pruned)
                        .value();
    burst.push_back(it.id);
    not_kept += pruned.size();
  }
  for (int64_t id : earlier) EXPECT_TRUE(s->get(id).value()) << "earlier item " << id << " pruned";
  // The first items of the burst are kept too; what the store dropped was its tail.
  for (size_t i = 0; i < kFirstPerIncident; ++i) EXPECT_TRUE(s->get(burst[i]).value());
  EXPECT_GE(not_kept, 77u - kMaxPerIncident);
  EXPECT_LE(s->usage().value().stored_bytes, o.quota_bytes);
}

TEST(Evidence, TheSameContentIsStoredOnce) {
  Fixture f;
  auto s = f.open(f.env);
  const std::string shell = "<?php system($_GET['c']); ?>\n";
  const auto a = s->add(incident("uploads/a.php", "ev-a"), content_fd(shell).get()).value();
  EXPECT_FALSE(a.duplicate);
  const auto b = s->add(incident("uploads/b.php", "ev-b"), content_fd(shell).get()).value();
  EXPECT_TRUE(b.duplicate);
  EXPECT_EQ(b.id, a.id);
  EXPECT_EQ(b.path, "uploads/a.php");  // the earlier item stands for both
  EXPECT_EQ(s->usage().value().items, 1u);
  EXPECT_EQ(f.files().size(), 3u);  // index.db, lock, one blob
  // A truncated content is not a duplicate of anything: only its prefix is known.
  const auto c =
      s->add(incident("uploads/c.php", "ev-c"), content_fd(shell + "more").get()).value();
  EXPECT_FALSE(c.duplicate);
  EXPECT_NE(c.id, a.id);
}

TEST(Evidence, AVersion1IndexIsReadAndMigrated) {
  Fixture f;
  int64_t old_id = 0;
  {
    auto s = f.open(f.env);
    old_id = s->add(sample("old.php"), content_fd("<?php old(); ?>").get()).value().id;
  }
  {  // what a mamori before priorities left behind
    auto db = db::Db::open(f.state + "/evidence/index.db", db::Db::Mode::kReadWrite).value();
    ASSERT_TRUE(db.exec("DROP INDEX items_event"));
    ASSERT_TRUE(db.exec("ALTER TABLE items DROP COLUMN priority"));
    ASSERT_TRUE(db.exec("ALTER TABLE items DROP COLUMN scan_rules"));
    ASSERT_TRUE(db.exec("ALTER TABLE items DROP COLUMN scan_truncated"));
    ASSERT_TRUE(db.exec("PRAGMA user_version = 1"));
  }
  {
    auto r = f.open(f.env, EvidenceStore::Access::kRead);
    ASSERT_EQ(r->list().value().size(), 1u);
    EXPECT_EQ(read_all(*r, old_id), "<?php old(); ?>");
  }
  auto s = f.open(f.env);
  const auto it = s->add(sample("new.php"), content_fd("<?php new(); ?>").get()).value();
  EXPECT_GT(it.id, old_id);
  EXPECT_EQ(s->list().value().size(), 2u);
  EXPECT_EQ(read_all(*s, old_id), "<?php old(); ?>");
}

TEST(Evidence, YaraVerdictsAreKeptWithTheItemAndSetLater) {
  Fixture f;
  auto s = f.open(f.env);
  Item shell = sample("uploads/s.php");
  shell.scan = ScanResult{{"mamori_php_eval_decoded", "mamori_php_webshell_exec"}, false};
  const int64_t a = s->add(shell, content_fd("<?php eval(base64_decode('x')); ?>").get())->id;
  // A tampered file's item is added first; the agent scans off its restore path.
  const int64_t b = s->add(sample("index.php"), content_fd("<?php tampered(); ?>").get())->id;
  const int64_t c = s->add(sample("clean.php"), content_fd("<?php clean(); ?>").get())->id;
  EXPECT_EQ(s->get(b).value()->scan, std::nullopt);  // not scanned yet
  ASSERT_TRUE(s->set_scan(b, {{"mamori_php_injected"}, true}));
  ASSERT_TRUE(s->set_scan(c, {}));  // scanned: nothing matched
  EXPECT_EQ(s->set_scan(9999, {}).error().errnum, ENOENT);

  auto r = f.open(f.env, EvidenceStore::Access::kRead);
  EXPECT_EQ(r->get(a).value()->scan,
            (ScanResult{{"mamori_php_eval_decoded", "mamori_php_webshell_exec"}, false}));
  EXPECT_EQ(r->get(b).value()->scan, (ScanResult{{"mamori_php_injected"}, true}));
  EXPECT_EQ(r->get(c).value()->scan, ScanResult{});
  EXPECT_EQ(r->set_scan(c, {}).error().errnum, EROFS);
  const auto j = item_json(*r->get(b).value());
  EXPECT_EQ(j["mamori"]["scan"]["rules"], nlohmann::json::array({"mamori_php_injected"}));
  EXPECT_EQ(j["mamori"]["scan"]["truncated"], true);
  EXPECT_FALSE(item_json(sample("x")).contains("scan"));
  EXPECT_FALSE(item_json(sample("x"))["mamori"].contains("scan"));
}

TEST(Evidence, AVersion2IndexIsReadAsNotScannedAndMigrated) {
  Fixture f;
  int64_t old_id = 0;
  {
    auto s = f.open(f.env);
    old_id = s->add(sample("old.php"), content_fd("<?php old(); ?>").get()).value().id;
  }
  {  // what a mamori before YARA verdicts in evidence left behind
    auto db = db::Db::open(f.state + "/evidence/index.db", db::Db::Mode::kReadWrite).value();
    ASSERT_TRUE(db.exec("ALTER TABLE items DROP COLUMN scan_rules"));
    ASSERT_TRUE(db.exec("ALTER TABLE items DROP COLUMN scan_truncated"));
    ASSERT_TRUE(db.exec("PRAGMA user_version = 2"));
  }
  {
    auto r = f.open(f.env, EvidenceStore::Access::kRead);
    const auto items = r->list().value();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].scan, std::nullopt);
    EXPECT_EQ(r->get(old_id).value()->path, "old.php");
  }
  auto s = f.open(f.env);  // the writer migrates
  EXPECT_EQ(s->get(old_id).value()->scan, std::nullopt);
  ASSERT_TRUE(s->set_scan(old_id, {{"r"}, false}));
  EXPECT_EQ(s->get(old_id).value()->scan, (ScanResult{{"r"}, false}));
}

TEST(Evidence, DamagedBlobsFailWithEBADMSG) {
  Fixture f;
  const std::string text = "defaced by someone\n" + std::string(5000, 'x');
  std::vector<int64_t> ids;
  {
    auto s = f.open(f.env);
    for (int i = 0; i < 4; ++i)
      ids.push_back(s->add(sample("p"), content_fd(text + std::to_string(i)).get()).value().id);
  }
  auto flip = [&](int64_t id, off_t at) {
    const int fd = ::open(f.blob(id).c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0);
    if (at < 0) at += st.st_size;
    char c = 0;
    ASSERT_EQ(::pread(fd, &c, 1, at), 1);
    c ^= 0x20;
    ASSERT_EQ(::pwrite(fd, &c, 1, at), 1);
    ::close(fd);
  };
  flip(ids[0], -3);  // in the zstd payload
  flip(ids[1], 30);  // in the header's digest
  ASSERT_EQ(::truncate(f.blob(ids[2]).c_str(), 70), 0);
  auto s = f.open(f.env, EvidenceStore::Access::kRead);
  for (int i = 0; i < 3; ++i) {
    const auto st = try_read(*s, ids[static_cast<size_t>(i)]);
    ASSERT_FALSE(st) << i;
    EXPECT_EQ(st.error().errnum, EBADMSG) << i;
  }
  EXPECT_EQ(read_all(*s, ids[3]), text + "3");
}

TEST(Evidence, AfterACrashOrphanBlobsAreIgnoredThenRemovedAndMissingBlobsReported) {
  Fixture f;
  Item kept, lost;
  {
    auto s = f.open(f.env);
    kept = s->add(sample("kept"), content_fd("kept").get()).value();
    lost = s->add(sample("lost"), content_fd("lost").get()).value();
  }
  // A writer that died after renaming its blob but before committing its row, one that
  // died while writing, and a blob that vanished under a committed row.
  const std::string orphan = f.blob(lost.id + 1);
  ASSERT_EQ(std::filesystem::copy_file(f.blob(kept.id), orphan), true);
  f.dir.write("state/evidence/blob.tmp", "half a blob");
  ASSERT_EQ(::unlink(f.blob(lost.id).c_str()), 0);
  {
    auto r = f.open(f.env, EvidenceStore::Access::kRead);
    ASSERT_EQ(r->list().value().size(), 2u);  // the orphan is not an item
    EXPECT_EQ(read_all(*r, kept.id), "kept");
    const auto st = try_read(*r, lost.id);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().errnum, EBADMSG);
    EXPECT_NE(st.error().detail.find("missing"), std::string::npos);
  }
  auto s = f.open(f.env);  // the next writer cleans up
  EXPECT_NE(::access(orphan.c_str(), F_OK), 0);
  EXPECT_EQ(f.files().count("blob.tmp"), 0u);
  EXPECT_TRUE(s->get(lost.id).value());  // still listed: the loss stays visible
  EXPECT_EQ(try_read(*s, lost.id).error().errnum, EBADMSG);
  // The orphan's id is free again and is taken by a new item with its own content.
  const auto next = s->add(sample("next"), content_fd("next").get()).value();
  EXPECT_EQ(read_all(*s, next.id), "next");
}

TEST(Evidence, FailuresWhileAddingLeaveNothingHalfAdded) {
  Fixture f;
  const std::string old = "an older item";
  {
    auto s = f.open(f.env);
    ASSERT_TRUE(s->add(sample("old"), content_fd(old).get()));
  }
  const auto before = f.files();
  struct Case {
    const char* name;
    void (*arm)(testing::FaultEnv&);
    int err;
  };
  const Case cases[] = {
      {"ENOSPC on the first write", [](testing::FaultEnv& e) { e.fail_write_from(1, ENOSPC); },
       ENOSPC},
      {"ENOSPC on a later write", [](testing::FaultEnv& e) { e.fail_write_from(3, ENOSPC); },
       ENOSPC},
      {"EIO on the blob's fsync", [](testing::FaultEnv& e) { e.fail_fsync_from(1, EIO); }, EIO},
      {"EIO on the rename", [](testing::FaultEnv& e) { e.fail_rename_from(1, EIO); }, EIO},
      {"EIO on the directory's fsync", [](testing::FaultEnv& e) { e.fail_fsync_from(2, EIO); },
       EIO},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    testing::FaultEnv env;
    Options o;
    o.quota_bytes = 1;  // the add would prune the old item: that must not happen either
    auto s = f.open(env, EvidenceStore::Access::kWrite, o);
    c.arm(env);
    const auto r = s->add(sample("new"), content_fd(random_bytes(1 << 20, 9)).get());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errnum, c.err);
    const auto items = s->list().value();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].path, "old");
    EXPECT_EQ(read_all(*s, items[0].id), old);
    EXPECT_EQ(f.files(), before);
  }
  // Healthy again: the next add works.
  auto s = f.open(f.env);
  EXPECT_TRUE(s->add(sample("new"), content_fd("fine").get()));
}

TEST(Evidence, AnUnreadableFdAddsNothing) {
  Fixture f;
  auto s = f.open(f.env);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);  // pread on a pipe: ESPIPE
  EXPECT_EQ(s->add(sample("fifo"), p[0]).error().errnum, ESPIPE);
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_TRUE(s->list().value().empty());
  EXPECT_EQ(f.files().count("blob.tmp"), 0u);
}

TEST(Evidence, AttackerChosenBytesRoundTripExactly) {
  Fixture f;
  Item m = sample(std::string("wp-content/uploads/a\nb\x1b[2J/\xff\xfe\x80.php\x7f", 36));
  m.who.executable = "/tmp/\xc3\x28payload";
  m.who.command_line = std::string("sh -c 'echo\tpwned'\x01\r\n", 21);
  m.who.parent_executable = "/usr/bin/\xed\xa0\x80";
  m.event_id = "\xf0\x9f\x92\xa5";
  const std::string content = std::string("\0\x01\xff binary", 10);
  const Item added = f.open(f.env)->add(m, content_fd(content).get()).value();
  auto r = f.open(f.env, EvidenceStore::Access::kRead);
  const Item got = r->get(added.id).value().value();
  expect_same(got, added);
  EXPECT_EQ(got.path, m.path);
  EXPECT_EQ(got.path.size(), 36u);
  EXPECT_EQ(got.who.command_line, m.who.command_line);
  EXPECT_EQ(read_all(*r, added.id), content);
}

}  // namespace
}  // namespace mamori::evidence
