#include "manager/server/drift.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace mamori::manager {
namespace {

// One directory compared between a drifted node ("mine") and a reference node ("theirs"),
// its children gathered page by page.
struct DirWalk {
  DirWalk(size_t r, size_t n, std::string d) : root(r), node(n), dir(std::move(d)) {}
  size_t root;  // indexes into the report
  size_t node;
  std::string dir;
  struct Side {
    std::vector<proto::SitePart> parts;
    std::string self;
    std::string after;
    bool done = false;
  } mine, theirs;
  size_t pages = 0;
};

std::string child_path(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

class Walker {
 public:
  Walker(const AskSites& ask, const DriftLimits& limits, DriftReport& report)
      : ask_(ask), limits_(limits), report_(report) {}

  void start(size_t root, size_t node, const std::string& reference_agent) {
    reference_[{root, node}] = reference_agent;
    walks_.emplace_back(root, node, "");
  }

  Status run(size_t rounds_used) {
    while (!walks_.empty()) {
      if (rounds_used++ >= limits_.rounds) {
        for (auto& w : walks_) fail(w, fmt::format("stopped after {} rounds", limits_.rounds));
        break;
      }
      std::vector<SiteQuestion> questions;
      for (auto& w : walks_) {
        const std::string& root = report_.roots[w.root].root;
        if (!w.mine.done) questions.push_back({node(w).agent_key, {root, w.dir, w.mine.after}});
        if (!w.theirs.done)
          questions.push_back({reference_[{w.root, w.node}], {root, w.dir, w.theirs.after}});
      }
      const auto replies = MAMORI_TRY(ask_(questions));
      size_t next = 0;
      std::vector<DirWalk> later;
      for (auto& w : walks_) {
        bool ok = true;
        for (auto* side : {&w.mine, &w.theirs}) {
          if (side->done) continue;
          const SiteReply& r = replies.at(next++);
          if (!r.answer) {
            fail(w, (side == &w.mine ? "" : "the reference node: ") + r.error);
            ok = false;
            continue;
          }
          if (side->self.empty()) side->self = r.answer->self;
          for (const auto& p : r.answer->parts) side->parts.push_back(p);
          side->done = !r.answer->more || r.answer->parts.empty();
          if (!side->done) side->after = r.answer->parts.back().name;
        }
        if (!ok || !node(w).error.empty()) continue;
        if (++w.pages >= limits_.pages_per_directory && !(w.mine.done && w.theirs.done)) {
          node(w).truncated = true;  // a directory of more than pages × 1,000 entries
          continue;
        }
        if (w.mine.done && w.theirs.done)
          compare(w, later);
        else
          later.push_back(std::move(w));
      }
      walks_ = std::move(later);
    }
    return ok();
  }

 private:
  DriftedNode& node(const DirWalk& w) { return report_.roots[w.root].drifted[w.node]; }

  void fail(DirWalk& w, const std::string& why) {
    if (node(w).error.empty()) node(w).error = why;
  }

  // False once the node has as many differences as are reported.
  bool add(DirWalk& w, std::string path, std::string_view kind, const std::string& type) {
    auto& n = node(w);
    if (n.differences.size() >= limits_.differences_per_node) {
      n.truncated = true;
      return false;
    }
    n.differences.push_back({std::move(path), std::string(kind), type});
    return true;
  }

  // The children of w.dir, in name order on both sides: what differs is reported, a
  // directory whose digest differs is walked next.
  void compare(DirWalk& w, std::vector<DirWalk>& later) {
    const auto& a = w.mine.parts;
    const auto& b = w.theirs.parts;
    // The directory's own entry (mode, owner, ...) first: it sorts before its children.
    if (w.mine.self != w.theirs.self && !add(w, w.dir, "changed", "dir")) return;
    size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
      const int order = i == a.size() ? 1 : j == b.size() ? -1 : a[i].name.compare(b[j].name);
      if (order < 0) {
        if (!add(w, child_path(w.dir, a[i].name), "added", a[i].type)) return;
        ++i;
      } else if (order > 0) {
        if (!add(w, child_path(w.dir, b[j].name), "missing", b[j].type)) return;
        ++j;
      } else {
        if (a[i].digest != b[j].digest) {
          if (a[i].type == "dir" && b[j].type == "dir") {
            later.emplace_back(w.root, w.node, child_path(w.dir, a[i].name));
          } else if (!add(w, child_path(w.dir, a[i].name), "changed", a[i].type)) {
            return;
          }
        }
        ++i;
        ++j;
      }
    }
  }

  const AskSites& ask_;
  const DriftLimits& limits_;
  DriftReport& report_;
  std::map<std::pair<size_t, size_t>, std::string> reference_;
  std::vector<DirWalk> walks_;
};

}  // namespace

Result<DriftReport> find_drift(const std::vector<std::string>& agents, const AskSites& ask,
                               const DriftLimits& limits) {
  DriftReport report;
  std::vector<SiteQuestion> questions;
  for (const auto& a : agents) questions.push_back({a, {}});
  const auto replies = MAMORI_TRY(ask(questions));
  // root → agent_key → its digest; the agents that answered, in the caller's order.
  std::map<std::string, std::map<std::string, proto::SitePart>> roots;
  std::vector<std::string> answered;
  for (size_t i = 0; i < agents.size(); ++i) {
    const SiteReply& r = replies.at(i);
    if (!r.answer) {
      report.unanswered.emplace_back(agents[i], r.error);
      continue;
    }
    answered.push_back(agents[i]);
    for (const auto& p : r.answer->parts) roots[p.name][agents[i]] = p;
  }

  Walker walker(ask, limits, report);
  for (const auto& [root, held] : roots) {
    // The reference: the digest most nodes hold; on a tie, the first agent's.
    std::map<std::string, size_t> votes;
    for (const auto& [agent, part] : held) ++votes[part.digest];
    std::string reference;
    size_t best = 0;
    for (const auto& a : answered) {
      auto it = held.find(a);
      if (it != held.end() && votes[it->second.digest] > best) {
        best = votes[it->second.digest];
        reference = it->second.digest;
      }
    }
    RootDrift rd{root, reference, {}, {}};
    std::string reference_agent;
    for (const auto& a : answered) {
      auto it = held.find(a);
      if (it != held.end() && it->second.digest == reference) {
        rd.reference_agents.push_back(a);
        if (reference_agent.empty()) reference_agent = a;
        continue;
      }
      DriftedNode n{a, "", 0, {}, false, ""};
      if (it == held.end()) {
        n.differences.push_back({"", "missing", "dir"});  // the node has no such root
      } else {
        n.digest = it->second.digest;
        n.entries = it->second.entries;
      }
      rd.drifted.push_back(std::move(n));
    }
    report.roots.push_back(std::move(rd));
    const size_t r = report.roots.size() - 1;
    for (size_t n = 0; n < report.roots[r].drifted.size(); ++n)
      if (!report.roots[r].drifted[n].digest.empty()) walker.start(r, n, reference_agent);
  }
  MAMORI_TRY(walker.run(1));
  // Found breadth first; shown in path order.
  for (auto& root : report.roots)
    for (auto& n : root.drifted)
      std::sort(n.differences.begin(), n.differences.end(),
                [](const Difference& a, const Difference& b) { return a.path < b.path; });
  return report;
}

}  // namespace mamori::manager
