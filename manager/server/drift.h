#pragma once
// Fleet drift (docs/manager.md): which nodes of a group serve something other than the
// rest, and which files differ. Nodes deployed from one release share each root's site
// digest (core/baseline/site.h); the digest most of them hold is the reference, and each
// node that differs is compared with one node holding the reference by descending only
// into the subtrees whose digests differ (the `site` command, a few rounds of questions
// for a few changed files in a site of any size).
//
// The questions go through `Ask` (the CLI: command rows in the store, answered by the
// agents through their manager), so the walk is testable without agents.
//
// Threads: the caller's.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/base/result.h"
#include "core/proto/control.h"

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

}  // namespace mamori::manager
