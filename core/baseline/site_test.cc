// Site digests: equal for copies of one site, different for any change that matters, and
// the children of a directory paged with bounded memory.

#include "core/baseline/site.h"

#include <gtest/gtest.h>

#include "core/db/sqlite.h"
#include "testing/temp_dir.h"

namespace mamori::baseline {
namespace {

using testing::TempDir;

Entry file(std::string path, std::string_view content, int64_t mtime_ns = 1) {
  Entry e;
  e.path = std::move(path);
  e.type = FileType::kRegular;
  e.mode = 0644;
  e.size = content.size();
  e.mtime_ns = mtime_ns;
  e.sha256 = hash::sha256(content);
  return e;
}

Entry dir(std::string path, uint64_t size = 4096) {
  Entry e;
  e.path = std::move(path);
  e.type = FileType::kDirectory;
  e.mode = 0755;
  e.size = size;
  return e;
}

// One node's catalog of one root.
struct Node {
  explicit Node(const std::string& root_path) {
    catalog.emplace(Catalog::open(state.path(), db::Db::Mode::kReadWrite).value());
    root.path = root_path;
    root.id = catalog->touch_root(root_path, 1).value();
  }
  void put(const Entry& e) { ASSERT_TRUE(catalog->put(root.id, e)); }
  std::string digest() { return site_digest(*catalog, root).value().digest.hex(); }

  TempDir state;
  std::optional<Catalog> catalog;
  RootRow root;
};

void put_site(Node& n, int64_t mtime_ns, uint64_t dir_size) {
  n.put(dir("", dir_size));
  n.put(dir("wp", dir_size));
  n.put(file("index.php", "<?php require 'wp/load.php';", mtime_ns));
  n.put(file("wp/load.php", "<?php // load", mtime_ns));
}

TEST(SiteDigest, CopiesOfOneSiteAgreeWhereverAndWheneverWritten) {
  Node a("/srv/www"), b("/var/www/html");
  put_site(a, 1, 4096);
  put_site(b, 999'000'000'000, 12288);  // other mtimes, a directory grown and shrunk
  const auto da = site_digest(*a.catalog, a.root).value();
  EXPECT_EQ(da.entries, 4u);
  EXPECT_EQ(da.name, "/srv/www");
  EXPECT_EQ(da.digest.hex(), b.digest());
  EXPECT_NE(a.catalog->compute_root_hash().value(), b.catalog->compute_root_hash().value());
}

TEST(SiteDigest, ContentModeOwnerTypeAndNamesEachMatter) {
  Node ref("/srv/www");
  put_site(ref, 1, 4096);
  const std::string want = ref.digest();
  auto differs = [&](const std::function<void(Node&)>& change) {
    Node n("/srv/www");
    put_site(n, 1, 4096);
    change(n);
    return n.digest() != want;
  };
  EXPECT_TRUE(differs([](Node& n) { n.put(file("index.php", "<iframe src=//evil>")); }));
  EXPECT_TRUE(differs([](Node& n) {
    auto e = file("index.php", "<?php require 'wp/load.php';");
    e.mode = 0666;
    n.put(e);
  }));
  EXPECT_TRUE(differs([](Node& n) {
    auto e = dir("wp");
    e.uid = 33;
    n.put(e);
  }));
  EXPECT_TRUE(differs([](Node& n) { n.put(file("wp/shell.php", "<?php system($_GET[c]);")); }));
  EXPECT_TRUE(differs([](Node& n) {
    Entry e;
    e.path = "wp/load.php";
    e.type = FileType::kSymlink;
    e.mode = 0777;
    e.set_link_target("/etc/passwd");
    n.put(e);
  }));
  EXPECT_FALSE(differs([](Node&) {}));
}

TEST(SiteChildren, EachChildCoversItsSubtreeThoughNamesInterleave) {
  Node a("/a"), b("/b");
  for (Node* n : {&a, &b}) {
    n->put(dir(""));
    n->put(dir("x"));
    n->put(file("x.b", "sorts between x and x/..."));
    n->put(file("x/1", "one"));
  }
  b.put(file("x/2", "two"));
  auto ca = site_children(*a.catalog, a.root, "", "", 10).value();
  auto cb = site_children(*b.catalog, b.root, "", "", 10).value();
  ASSERT_EQ(ca.parts.size(), 2u);
  ASSERT_EQ(cb.parts.size(), 2u);
  EXPECT_FALSE(ca.more);
  EXPECT_EQ(ca.parts[0].name, "x");
  EXPECT_EQ(ca.parts[0].type, FileType::kDirectory);
  EXPECT_EQ(ca.parts[0].entries, 2u);
  EXPECT_EQ(cb.parts[0].entries, 3u);
  EXPECT_NE(ca.parts[0].digest, cb.parts[0].digest);
  EXPECT_EQ(ca.parts[1].name, "x.b");
  EXPECT_EQ(ca.parts[1].type, FileType::kRegular);
  EXPECT_EQ(ca.parts[1].digest, cb.parts[1].digest);
  // One level down, only x/2 is new.
  auto xa = site_children(*a.catalog, a.root, "x", "", 10).value();
  auto xb = site_children(*b.catalog, b.root, "x", "", 10).value();
  ASSERT_EQ(xa.parts.size(), 1u);
  ASSERT_EQ(xb.parts.size(), 2u);
  EXPECT_EQ(xa.parts[0].digest, xb.parts[0].digest);
  EXPECT_EQ(xb.parts[1].name, "2");
  // The directory's own entry alone: the same on both, and a mode change shows there.
  EXPECT_EQ(xa.self, xb.self);
  EXPECT_FALSE(xa.self.is_zero());
  auto loose = dir("x");
  loose.mode = 0777;
  b.put(loose);
  EXPECT_NE(site_children(*b.catalog, b.root, "x", "", 10).value().self, xa.self);
  // A file's children: none.
  EXPECT_TRUE(site_children(*a.catalog, a.root, "x.b", "", 10).value().parts.empty());
}

TEST(SiteChildren, PagesInNameOrderWhateverTheOrderOfPaths) {
  Node n("/srv/www");
  n.put(dir(""));
  // Names whose subtrees interleave in path order: "d", "d-1", "d/..."; 30 children.
  for (int i = 0; i < 10; ++i) {
    const std::string d = "d" + std::to_string(i);
    n.put(dir(d));
    n.put(file(d + "-f", d));
    n.put(file(d + "/inner", d));
  }
  std::vector<std::string> names;
  std::string after;
  for (int pages = 0;; ++pages) {
    ASSERT_LT(pages, 20);
    auto page = site_children(*n.catalog, n.root, "", after, 7).value();
    ASSERT_LE(page.parts.size(), 7u);
    for (const auto& p : page.parts) names.push_back(p.name);
    if (!page.more) break;
    ASSERT_FALSE(page.parts.empty());
    after = page.parts.back().name;
  }
  ASSERT_EQ(names.size(), 20u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.front(), "d0");
  EXPECT_EQ(names[1], "d0-f");
  // A page's digest is the child's whole subtree, the same as with no paging.
  auto all = site_children(*n.catalog, n.root, "", "", 100).value();
  auto third = site_children(*n.catalog, n.root, "", "d0-f", 1).value();
  ASSERT_EQ(third.parts.size(), 1u);
  EXPECT_TRUE(third.more);
  EXPECT_EQ(third.parts[0].name, all.parts[2].name);
  EXPECT_EQ(third.parts[0].digest, all.parts[2].digest);
  EXPECT_EQ(third.parts[0].entries, 2u);
}

}  // namespace
}  // namespace mamori::baseline
