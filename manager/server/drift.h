#pragma once
// Fleet drift (docs/manager.md): which nodes of a group serve something other than the
// rest, and which files differ. Nodes deployed from one release share each root's site
// digest (core/baseline/site.h); the digest most of them hold is the reference, and each
// node that differs is compared with one node holding the reference by descending only
// into the subtrees whose digests differ (the `site` command, a few rounds of questions
// for a few changed files in a site of any size).
//
// The questions go through `AskSites`, so the walk is testable without agents; the
// CLI and the API ask through the store (ask_through_store: command rows that the
// manager delivers and the agents answer), and print group_drift's JSON.
//
// Threads: the caller's (the API runs walks on a DriftRunner's thread, its own store).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/env.h"
#include "core/base/mutex.h"
#include "core/base/result.h"
#include "core/proto/control.h"
#include "manager/db/store.h"

namespace mamori::manager {

struct SiteQuestion {
  std::string agent_key;
  proto::SiteRequest request;
};
// One per question, in order: the answer, or why there is none (the agent refused, failed
// or did not answer in time).
struct SiteReply {
  std::optional<proto::SiteAnswer> answer;
  std::string error;
};
using AskSites = std::function<Result<std::vector<SiteReply>>(const std::vector<SiteQuestion>&)>;

struct Difference {
  std::string path;  // relative to the root; "" is the root directory itself
  std::string kind;  // changed (content or metadata), added (only this node), missing
  std::string type;  // the entry's type on this node (the reference's when missing)
};

struct DriftedNode {
  std::string agent_key;
  std::string digest;  // "" when the node has no such root
  uint64_t entries = 0;
  std::vector<Difference> differences;
  bool truncated = false;  // more differences than reported
  std::string error;       // the walk stopped: why
};

struct RootDrift {
  std::string root;
  std::string reference_digest;
  std::vector<std::string> reference_agents;  // the nodes that hold it
  std::vector<DriftedNode> drifted;
};

struct DriftReport {
  std::vector<RootDrift> roots;
  std::vector<std::pair<std::string, std::string>> unanswered;  // agent_key, why
};

struct DriftLimits {
  size_t differences_per_node = 100;
  size_t pages_per_directory = 100;  // of proto::kMaxSiteParts children each
  size_t rounds = 256;               // of questions, for the whole walk
};

// `agents` in order of preference: on a tie between digests, the one held by the agent
// listed first is the reference.
Result<DriftReport> find_drift(const std::vector<std::string>& agents, const AskSites& ask,
                               const DriftLimits& limits = {});

// Each question a command row (fleet.h delivers it), its answer read back every 100 ms
// for at most `timeout_s` per round; `cancelled` (may be empty) ends a round early.
AskSites ask_through_store(Store& store, const Clock& clock, int64_t timeout_s,
                           std::function<bool()> cancelled = {});

// The drift of `group` ("" = every agent), as `mamori manager drift --json` prints it and
// POST /api/v1/drift answers: {"roots", "unanswered", "offline", "drift"}. Agents online
// or unhealthy are asked; the others are listed offline. nullopt: no such group.
Result<std::optional<nlohmann::json>> group_drift(Store& store, const Clock& clock,
                                                  const std::string& group, int64_t timeout_s,
                                                  std::function<bool()> cancelled = {});

// One walk at a time on a thread of its own (the API's: a walk waits on agents for
// seconds, the io thread must not). submit() refuses while one runs.
class DriftRunner {
 public:
  DriftRunner();
  ~DriftRunner();  // cancels a walk in progress, then joins
  DriftRunner(const DriftRunner&) = delete;
  DriftRunner& operator=(const DriftRunner&) = delete;

  // `job(cancelled)` runs on the runner's thread; false when one is running already.
  bool submit(std::function<void(const std::function<bool()>& cancelled)> job) MAMORI_EXCLUDES(mu_);

 private:
  void run() MAMORI_EXCLUDES(mu_);

  Mutex mu_;
  CondVar wake_;
  std::function<void(const std::function<bool()>&)> job_ MAMORI_GUARDED_BY(mu_);
  bool busy_ MAMORI_GUARDED_BY(mu_) = false;
  bool stop_ MAMORI_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace mamori::manager
