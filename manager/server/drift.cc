#include "manager/server/drift.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/base/quote.h"
#include "core/base/thread_name.h"
#include "manager/server/hub.h"  // new_uuid

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

namespace {

constexpr auto kAnswerPoll = std::chrono::milliseconds(100);

SiteReply reply_of(const CommandRow& row) {
  const nlohmann::json answer = nlohmann::json::parse(row.answer_json, nullptr, false);
  if (row.state == CommandState::kOk) {
    auto a = proto::decode_site_answer(answer);
    if (a) return {std::move(*a), ""};
    return {std::nullopt, "a malformed answer: " + a.error().message};
  }
  std::string why(to_string(row.state));
  if (answer.is_object() && answer.contains("error") && answer["error"].is_object())
    why += ": " + answer["error"].value("message", std::string());
  return {std::nullopt, why};
}

// A path that is not UTF-8 cannot be a JSON string: escaped, and its bytes in hex.
nlohmann::json path_json(const std::string& path) {
  if (is_valid_utf8(path)) return {{"path", path}};
  std::string hex;
  for (unsigned char c : path) hex += fmt::format("{:02x}", c);
  return {{"path", escape(path)}, {"path_hex", hex}};
}

}  // namespace

AskSites ask_through_store(Store& store, const Clock& clock, int64_t timeout_s,
                           std::function<bool()> cancelled) {
  return [&store, &clock, timeout_s, cancelled = std::move(cancelled)](
             const std::vector<SiteQuestion>& questions) -> Result<std::vector<SiteReply>> {
    std::vector<int64_t> ids;
    for (const auto& q : questions) {
      const std::string text = proto::to_json(proto::Request{proto::kVersion, q.request}).dump();
      ids.push_back(MAMORI_TRY(store.add_command({new_uuid(), q.agent_key, text, clock.now_ns()})));
    }
    std::vector<SiteReply> replies(questions.size());
    std::vector<bool> done(questions.size(), false);
    size_t left = questions.size();
    const auto deadline = clock.monotonic() + std::chrono::seconds(timeout_s);
    while (left > 0) {
      for (size_t i = 0; i < ids.size(); ++i) {
        if (done[i]) continue;
        auto row = MAMORI_TRY(store.find_command(ids[i]));
        if (!row || row->answered_at_ns == 0) continue;
        done[i] = true;
        --left;
        replies[i] = reply_of(*row);
      }
      if (left == 0) break;
      if (cancelled && cancelled()) return fail("drift", "", ECANCELED, "the manager is stopping");
      if (clock.monotonic() >= deadline) {
        for (size_t i = 0; i < ids.size(); ++i)
          if (!done[i]) replies[i].error = fmt::format("no answer within {} s", timeout_s);
        break;
      }
      clock.wait(kAnswerPoll);
    }
    return replies;
  };
}

Result<std::optional<nlohmann::json>> group_drift(Store& store, const Clock& clock,
                                                  const std::string& group, int64_t timeout_s,
                                                  std::function<bool()> cancelled) {
  using nlohmann::json;
  std::vector<std::string> asked;
  std::map<std::string, std::string> names;
  json offline = json::array();
  for (const auto& a : MAMORI_TRY(store.list_agents())) {
    if (!group.empty() && a.group != group) continue;
    if (a.status == AgentStatus::kRevoked || a.status == AgentStatus::kRetired) continue;
    names[a.agent_key] = a.info.name;
    if (a.status == AgentStatus::kOnline || a.status == AgentStatus::kUnhealthy)
      asked.push_back(a.agent_key);
    else
      offline.push_back({{"agent_key", a.agent_key},
                         {"name", a.info.name},
                         {"status", std::string(to_string(a.status))}});
  }
  if (names.empty()) return std::optional<json>{};
  const auto report =
      MAMORI_TRY(find_drift(asked, ask_through_store(store, clock, timeout_s, cancelled)));
  bool drift = false;
  json roots = json::array();
  for (const auto& r : report.roots) {
    json reference = json::array();
    for (const auto& k : r.reference_agents)
      reference.push_back({{"agent_key", k}, {"name", names[k]}});
    json drifted = json::array();
    for (const auto& n : r.drifted) {
      drift = true;
      json differences = json::array();
      for (const auto& d : n.differences) {
        json x = path_json(d.path);
        x["kind"] = d.kind;
        x["type"] = d.type;
        differences.push_back(std::move(x));
      }
      drifted.push_back({{"agent_key", n.agent_key},
                         {"name", names[n.agent_key]},
                         {"digest", n.digest},
                         {"entries", n.entries},
                         {"differences", std::move(differences)},
                         {"truncated", n.truncated},
                         {"error", n.error}});
    }
    roots.push_back({{"root", r.root},
                     {"reference", {{"digest", r.reference_digest}, {"agents", reference}}},
                     {"drifted", std::move(drifted)}});
  }
  json unanswered = json::array();
  for (const auto& [k, why] : report.unanswered)
    unanswered.push_back({{"agent_key", k}, {"name", names[k]}, {"why", why}});
  return std::optional<json>(
      json{{"roots", roots}, {"unanswered", unanswered}, {"offline", offline}, {"drift", drift}});
}

DriftRunner::DriftRunner() : thread_([this] { run(); }) {}

DriftRunner::~DriftRunner() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

bool DriftRunner::submit(std::function<void(const std::function<bool()>& cancelled)> job) {
  {
    MutexLock lock(mu_);
    if (busy_ || stop_) return false;
    busy_ = true;
    job_ = std::move(job);
  }
  wake_.notify_one();
  return true;
}

void DriftRunner::run() {
  name_this_thread("mamori-drift");
  const std::function<bool()> cancelled = [this] {
    MutexLock lock(mu_);
    return stop_;
  };
  for (;;) {
    std::function<void(const std::function<bool()>&)> job;
    {
      MutexLock lock(mu_);
      wake_.wait(mu_, [&]() MAMORI_REQUIRES(mu_) { return job_ != nullptr || stop_; });
      if (stop_) return;
      job = std::move(job_);
      job_ = nullptr;
    }
    job(cancelled);
    MutexLock lock(mu_);
    busy_ = false;
  }
}

}  // namespace mamori::manager
