// The drift walk against nodes made of real catalogs, answered as the agent's `site`
// command answers (core/baseline/site.h).

#include "manager/server/drift.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>

#include "core/baseline/site.h"
#include "testing/temp_dir.h"

namespace mamori::manager {
namespace {

using baseline::Entry;
using baseline::FileType;
using testing::TempDir;

struct Node {
  explicit Node(const std::string& root_path = "/srv/www") {
    catalog.emplace(baseline::Catalog::open(state.path(), db::Db::Mode::kReadWrite).value());
    root.path = root_path;
    root.id = catalog->touch_root(root_path, 1).value();
    dir("");
  }
  void file(const std::string& path, std::string_view content, uint32_t mode = 0644) {
    Entry e;
    e.path = path;
    e.type = FileType::kRegular;
    e.mode = mode;
    e.sha256 = hash::sha256(content);
    ASSERT_TRUE(catalog->put(root.id, e));
  }
  void dir(const std::string& path, uint32_t mode = 0755) {
    Entry e;
    e.path = path;
    e.type = FileType::kDirectory;
    e.mode = mode;
    ASSERT_TRUE(catalog->put(root.id, e));
  }
  void remove(const std::string& path) { ASSERT_TRUE(catalog->erase_subtree(root.id, path)); }

  // What Handlers::site answers.
  SiteReply answer(const proto::SiteRequest& q) {
    proto::SiteAnswer a;
    if (q.root.empty()) {
      auto d = baseline::site_digest(*catalog, root).value();
      a.parts.push_back({root.path, "dir", d.digest.hex(), d.entries});
      return {a, ""};
    }
    if (q.root != root.path) return {std::nullopt, "unknown-root"};
    auto c = baseline::site_children(*catalog, root, q.dir, q.after, proto::kMaxSiteParts).value();
    for (auto& p : c.parts)
      a.parts.push_back(
          {p.name, std::string(baseline::type_name(p.type)), p.digest.hex(), p.entries});
    a.more = c.more;
    a.self = c.self.hex();
    return {a, ""};
  }

  TempDir state;
  std::optional<baseline::Catalog> catalog;
  baseline::RootRow root;
};

void wordpress(Node& n) {
  n.dir("wp-admin");
  n.file("wp-admin/admin.php", "admin");
  n.dir("wp-content");
  n.dir("wp-content/plugins");
  n.dir("wp-content/plugins/akismet");
  n.file("wp-content/plugins/akismet/akismet.php", "akismet");
  n.file("index.php", "<?php require 'wp-blog-header.php';");
  n.file("wp-config.php", "<?php define('DB_NAME', 'wp');", 0640);
}

class DriftTest : public ::testing::Test {
 protected:
  Node& add(const std::string& key, const std::string& root = "/srv/www") {
    auto& n = *nodes.emplace(key, std::make_unique<Node>(root)).first->second;
    order.push_back(key);
    return n;
  }
  DriftReport drift(DriftLimits limits = {}) {
    AskSites ask = [&](const std::vector<SiteQuestion>& qs) -> Result<std::vector<SiteReply>> {
      ++rounds;
      std::vector<SiteReply> out;
      for (const auto& q : qs) {
        questions++;
        auto it = nodes.find(q.agent_key);
        out.push_back(silent.count(q.agent_key) || it == nodes.end()
                          ? SiteReply{std::nullopt, "no answer within 30 s"}
                          : it->second->answer(q.request));
      }
      return out;
    };
    return find_drift(order, ask, limits).value();
  }

  std::map<std::string, std::unique_ptr<Node>> nodes;
  std::vector<std::string> order;
  std::set<std::string> silent;
  int rounds = 0, questions = 0;
};

std::string listing(const DriftedNode& n) {
  std::string s;
  for (const auto& d : n.differences) s += d.kind + " " + d.type + " " + d.path + "\n";
  return s;
}

TEST_F(DriftTest, TheOddNodeOutAndEveryFileItChangedAddedOrLost) {
  for (const char* k : {"web1", "web2", "web3"}) wordpress(add(k));
  Node& odd = *nodes["web2"];
  odd.file("wp-content/plugins/akismet/akismet.php", "<?php eval($_POST[0]);");
  odd.file("wp-content/plugins/akismet/.cache.php", "<?php system($_GET[c]);");
  odd.remove("wp-admin/admin.php");
  odd.file("wp-config.php", "<?php define('DB_NAME', 'wp');", 0666);
  odd.dir("wp-content", 0777);

  const auto r = drift();
  ASSERT_EQ(r.roots.size(), 1u);
  EXPECT_TRUE(r.unanswered.empty());
  const auto& root = r.roots[0];
  EXPECT_EQ(root.root, "/srv/www");
  EXPECT_EQ(root.reference_agents, (std::vector<std::string>{"web1", "web3"}));
  ASSERT_EQ(root.drifted.size(), 1u);
  const auto& n = root.drifted[0];
  EXPECT_EQ(n.agent_key, "web2");
  EXPECT_TRUE(n.error.empty()) << n.error;
  EXPECT_FALSE(n.truncated);
  EXPECT_EQ(listing(n),
            "missing file wp-admin/admin.php\n"
            "changed file wp-config.php\n"
            "changed dir wp-content\n"
            "added file wp-content/plugins/akismet/.cache.php\n"
            "changed file wp-content/plugins/akismet/akismet.php\n");
  // Breadth first, only where digests differ: the roots, then one round per level.
  EXPECT_EQ(rounds, 5);
}

TEST_F(DriftTest, AFleetThatAgreesHasNoDrift) {
  for (const char* k : {"a", "b"})
    wordpress(add(k, k == std::string("a") ? "/srv/www" : "/srv/www"));
  const auto r = drift();
  ASSERT_EQ(r.roots.size(), 1u);
  EXPECT_TRUE(r.roots[0].drifted.empty());
  EXPECT_EQ(rounds, 1);
}

TEST_F(DriftTest, SilentNodesAndMissingRootsAreNamed) {
  wordpress(add("web1"));
  wordpress(add("web2"));
  wordpress(add("web3", "/var/www/html"));
  add("web4");  // never answers
  silent.insert("web4");
  const auto r = drift();
  ASSERT_EQ(r.unanswered.size(), 1u);
  EXPECT_EQ(r.unanswered[0].first, "web4");
  ASSERT_EQ(r.roots.size(), 2u);
  // /srv/www: web3 has no such root; /var/www/html: web3 alone holds it, the others not.
  EXPECT_EQ(r.roots[0].root, "/srv/www");
  ASSERT_EQ(r.roots[0].drifted.size(), 1u);
  EXPECT_EQ(r.roots[0].drifted[0].agent_key, "web3");
  EXPECT_EQ(listing(r.roots[0].drifted[0]), "missing dir \n");
  EXPECT_EQ(r.roots[1].reference_agents, std::vector<std::string>{"web3"});
  EXPECT_EQ(r.roots[1].drifted.size(), 2u);
}

TEST_F(DriftTest, ATieGoesToTheFirstNodeAndAFailingReferenceIsNamed) {
  wordpress(add("a"));
  wordpress(add("b"));
  nodes["b"]->file("index.php", "<iframe src=//evil>");
  auto r = drift();
  ASSERT_EQ(r.roots[0].drifted.size(), 1u);
  EXPECT_EQ(r.roots[0].drifted[0].agent_key, "b");
  EXPECT_EQ(listing(r.roots[0].drifted[0]), "changed file index.php\n");

  // The reference stops answering after the first round: the walk says so, no guess.
  int answered = 0;
  AskSites ask = [&](const std::vector<SiteQuestion>& qs) -> Result<std::vector<SiteReply>> {
    std::vector<SiteReply> out;
    for (const auto& q : qs)
      out.push_back(q.agent_key == "a" && answered++ > 0 ? SiteReply{std::nullopt, "gone"}
                                                         : nodes[q.agent_key]->answer(q.request));
    return out;
  };
  r = find_drift(order, ask).value();
  ASSERT_EQ(r.roots[0].drifted.size(), 1u);
  EXPECT_EQ(r.roots[0].drifted[0].error, "the reference node: gone");
  EXPECT_TRUE(r.roots[0].drifted[0].differences.empty());
}

TEST_F(DriftTest, LargeDirectoriesArePagedAndDifferencesBounded) {
  for (const char* k : {"a", "b", "c"}) {
    Node& n = add(k);
    n.dir("uploads");
    for (int i = 0; i < 2500; ++i) n.file("uploads/" + std::to_string(i) + ".jpg", "jpeg");
  }
  nodes["c"]->file("uploads/2222.jpg", "<?php // a shell named .jpg");
  for (int i = 0; i < 7; ++i) nodes["c"]->file("uploads/x" + std::to_string(i) + ".php", "shell");
  auto r = drift();
  ASSERT_EQ(r.roots[0].drifted.size(), 1u);
  const auto& n = r.roots[0].drifted[0];
  ASSERT_EQ(n.differences.size(), 8u) << listing(n);
  EXPECT_EQ(n.differences[0].path, "uploads/2222.jpg");
  EXPECT_EQ(n.differences[0].kind, "changed");
  EXPECT_EQ(n.differences[7].path, "uploads/x6.php");

  r = drift({.differences_per_node = 3});
  EXPECT_EQ(r.roots[0].drifted[0].differences.size(), 3u);
  EXPECT_TRUE(r.roots[0].drifted[0].truncated);
  r = drift({.pages_per_directory = 2});
  EXPECT_TRUE(r.roots[0].drifted[0].truncated) << "2 pages of 1,000 of 2,507 children";
}

}  // namespace
}  // namespace mamori::manager
