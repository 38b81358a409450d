#include "agent/guard/inode_index.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace mamori::guard {
namespace {

std::set<std::string> rels(const std::vector<InodeIndex::Name>& names) {
  std::set<std::string> out;
  for (const auto& n : names) out.insert(fmt::format("{}:{}", n.root, n.rel));
  return out;
}

TEST(InodeIndex, SetFindEraseByPathInodeAndHandle) {
  InodeIndex x;
  x.set(0, "index.php", {1, 10}, "h-index");
  x.set(0, "wp/a.php", {1, 11}, "h-a");
  x.set(0, "wp/link-to-a.php", {1, 11}, "h-a");  // a hard link: the same inode
  x.set(1, "wp/a.php", {2, 11}, "");             // another root, another device
  EXPECT_EQ(x.size(), 4u);
  EXPECT_EQ(x.of(0, "index.php"), (InodeId{1, 10}));
  EXPECT_EQ(x.of(1, "wp/a.php"), (InodeId{2, 11}));
  EXPECT_FALSE(x.of(0, "wp"));
  EXPECT_FALSE(x.of(0, "nope/a.php"));
  EXPECT_FALSE(x.of(2, "index.php"));
  EXPECT_EQ(rels(x.names({1, 11})), (std::set<std::string>{"0:wp/a.php", "0:wp/link-to-a.php"}));
  EXPECT_EQ(rels(x.names({2, 11})), (std::set<std::string>{"1:wp/a.php"}));
  EXPECT_TRUE(x.names({3, 11}).empty());
  EXPECT_EQ(rels(x.names_by_handle("h-a")),
            (std::set<std::string>{"0:wp/a.php", "0:wp/link-to-a.php"}));
  EXPECT_TRUE(x.names_by_handle("").empty());
  EXPECT_TRUE(x.names_by_handle("h-other").empty());

  // A restore puts a new inode in place: the old one no longer names the path.
  x.set(0, "wp/a.php", {1, 12}, "h-a2");
  EXPECT_EQ(x.size(), 4u);
  EXPECT_EQ(rels(x.names({1, 11})), (std::set<std::string>{"0:wp/link-to-a.php"}));
  EXPECT_EQ(rels(x.names_by_handle("h-a2")), (std::set<std::string>{"0:wp/a.php"}));
  x.erase(0, "wp/link-to-a.php");
  x.erase(0, "wp/never.php");
  EXPECT_TRUE(x.names({1, 11}).empty());
  EXPECT_TRUE(x.names_by_handle("h-a").empty());
  EXPECT_EQ(x.size(), 3u);

  auto p = x.paths(0);
  std::sort(p.begin(), p.end());
  EXPECT_EQ(p, (std::vector<std::string>{"index.php", "wp/a.php"}));
  x.clear(0);
  EXPECT_EQ(x.size(), 1u);
  EXPECT_FALSE(x.of(0, "index.php"));
  EXPECT_EQ(x.of(1, "wp/a.php"), (InodeId{2, 11}));
  EXPECT_TRUE(x.paths(0).empty());
  x.clear(1);
  EXPECT_EQ(x.size(), 0u);
  x.set(0, "again.php", {1, 99});
  EXPECT_EQ(x.of(0, "again.php"), (InodeId{1, 99}));
}

// Random operations against a plain map: the tables' tombstones, growth, rebuilds and
// the name arena's compaction must never lose or invent an entry.
TEST(InodeIndex, MatchesAMapUnderRandomOperations) {
  InodeIndex x;
  std::map<std::pair<size_t, std::string>, InodeId> model;
  std::mt19937_64 rng(7);
  for (int step = 0; step < 200000; ++step) {
    const size_t root = rng() % 3;
    const std::string rel =
        fmt::format("d{}/s{}/file-with-a-longish-name-{}.php", rng() % 7, rng() % 13, rng() % 500);
    const int op = static_cast<int>(rng() % 100);
    if (op < 60) {
      const InodeId id{static_cast<dev_t>(1 + root), static_cast<ino_t>(rng() % 3000)};
      x.set(root, rel, id, fmt::format("h{}", id.ino));
      model[{root, rel}] = id;
    } else if (op < 95) {
      x.erase(root, rel);
      model.erase({root, rel});
    } else if (op < 96) {
      x.clear(root);
      std::erase_if(model, [&](const auto& kv) { return kv.first.first == root; });
    } else {
      const auto got = x.of(root, rel);
      auto it = model.find({root, rel});
      ASSERT_EQ(got.has_value(), it != model.end()) << rel;
      if (got) {
        ASSERT_EQ(*got, it->second);
      }
    }
  }
  ASSERT_EQ(x.size(), model.size());
  std::map<std::pair<dev_t, ino_t>, std::set<std::string>> by_inode;
  for (const auto& [k, id] : model) {
    ASSERT_EQ(x.of(k.first, k.second), id) << k.second;
    by_inode[{id.dev, id.ino}].insert(fmt::format("{}:{}", k.first, k.second));
  }
  for (const auto& [id, names] : by_inode) {
    ASSERT_EQ(rels(x.names({id.first, id.second})), names);
    ASSERT_EQ(rels(x.names_by_handle(fmt::format("h{}", id.second))).size() >= names.size(), true);
  }
}

TEST(InodeIndex, HundredsOfThousandsOfFilesFitInAHundredBytesEach) {
  InodeIndex x;
  constexpr int kFiles = 300'000;
  auto path = [](int i) {
    return fmt::format("site{:03}/wordpress/wp-content/plugins/p{}/includes/class-file-{}.php",
                       i / 33000, i / 50 % 400, i);
  };
  for (int i = 0; i < kFiles; ++i)
    x.set(0, path(i), {1, static_cast<ino_t>(1000 + i)}, fmt::format("fsid-type-handle-{:012}", i));
  EXPECT_EQ(x.size(), static_cast<size_t>(kFiles));
  EXPECT_LE(x.memory_bytes(), size_t{100} * kFiles) << x.memory_bytes();
  RecordProperty("bytes_per_file", static_cast<int>(x.memory_bytes() / kFiles));
  EXPECT_EQ(x.of(0, path(123456)), (InodeId{1, 124456}));
  EXPECT_EQ(x.names({1, 124456}).at(0).rel, path(123456));
}

}  // namespace
}  // namespace mamori::guard
