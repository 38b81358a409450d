// mamori manager drift: which nodes of a group serve something other than the rest, and
// which files (manager/server/drift.h does the walk; this asks the agents through the
// store, as `mamori manager command` does, and prints the answer).

#include <cstdio>
#include <map>

#include <fmt/format.h>

#include "cli/commands/command.h"
#include "cli/commands/manager_fleet.h"
#include "core/base/quote.h"
#include "core/fs/admin_files.h"
#include "manager/db/store.h"
#include "manager/server/drift.h"
#include "manager/server/fleet_orders.h"

namespace mamori::cli {
namespace {

using manager::AgentStatus;
using nlohmann::json;

constexpr auto kAnswerPoll = std::chrono::milliseconds(100);

// A path that is not UTF-8 cannot be a JSON string: escaped, and its bytes in hex.
json path_json(const std::string& path) {
  json j = {{"path", is_valid_utf8(path) ? path : escape(path)}};
  if (!is_valid_utf8(path)) {
    std::string hex;
    for (unsigned char c : path) hex += fmt::format("{:02x}", c);
    j["path_hex"] = hex;
  }
  return j;
}

// Each question a command row; the answers read back until all are in or `timeout_s`.
class StoreAsk {
 public:
  StoreAsk(App& app, manager::Store& store, int64_t timeout_s, std::string timeout_text)
      : app_(app), store_(store), timeout_s_(timeout_s), timeout_text_(std::move(timeout_text)) {}

  Result<std::vector<manager::SiteReply>> operator()(
      const std::vector<manager::SiteQuestion>& questions) {
    std::vector<int64_t> ids;
    for (const auto& q : questions) {
      const proto::Request request{proto::kVersion, q.request};
      auto queued = MAMORI_TRY(manager::queue_command(store_, {{q.agent_key, ""}}, request,
                                                      app_.env().clock().now_ns()));
      ids.push_back(queued.begin()->first);
    }
    std::vector<manager::SiteReply> replies(questions.size());
    std::vector<bool> done(questions.size(), false);
    size_t left = questions.size();
    const auto deadline = app_.env().clock().monotonic() + std::chrono::seconds(timeout_s_);
    while (left > 0) {
      for (size_t i = 0; i < ids.size(); ++i) {
        if (done[i]) continue;
        auto row = MAMORI_TRY(store_.find_command(ids[i]));
        if (!row || row->answered_at_ns == 0) continue;
        done[i] = true;
        --left;
        replies[i] = reply(*row);
      }
      if (left == 0) break;
      if (app_.env().clock().monotonic() >= deadline) {
        for (size_t i = 0; i < ids.size(); ++i)
          if (!done[i]) replies[i].error = "no answer within " + timeout_text_;
        break;
      }
      app_.env().clock().wait(kAnswerPoll);
    }
    return replies;
  }

 private:
  static manager::SiteReply reply(const manager::CommandRow& row) {
    const json answer = json::parse(row.answer_json, nullptr, false);
    if (row.state == manager::CommandState::kOk) {
      auto a = proto::decode_site_answer(answer);
      if (a) return {std::move(*a), ""};
      return {std::nullopt, "a malformed answer: " + a.error().message};
    }
    std::string why = std::string(manager::to_string(row.state));
    if (answer.is_object() && answer.contains("error") && answer["error"].is_object())
      why += ": " + answer["error"].value("message", std::string());
    return {std::nullopt, why};
  }

  App& app_;
  manager::Store& store_;
  int64_t timeout_s_;
  std::string timeout_text_;
};

}  // namespace

int fleet_drift(App& app, const FleetOptions& o) {
  if (!o.agent.empty() || o.group.empty() == !o.all)
    return app.report(
        Error{"manager drift", "", 0, "drift compares nodes: give --group NAME or --all"},
        kExitUsage);
  auto timeout = parse_duration(o.timeout);
  if (!timeout)
    return app.report(Error{"manager drift", o.timeout, 0, "--timeout takes a duration: 30, 2m"},
                      kExitUsage);
  const auto& m = app.config().manager;
  if (auto st = fs::make_private_dir(m.state_dir); !st)
    return app.report(st.error(), kExitIncomplete);
  auto store = manager::open_store(app.env(), m.database);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto agents = (*store)->list_agents();
  if (!agents) return app.report(agents.error(), kExitIncomplete);

  // Only connected agents are asked: a question to another would wait for its hello.
  std::vector<std::string> asked;
  std::map<std::string, std::string> names;
  json offline = json::array();
  for (const auto& a : *agents) {
    if (!o.all && a.group != o.group) continue;
    if (a.status == AgentStatus::kRevoked || a.status == AgentStatus::kRetired) continue;
    names[a.agent_key] = a.info.name;
    if (a.status == AgentStatus::kOnline || a.status == AgentStatus::kUnhealthy)
      asked.push_back(a.agent_key);
    else
      offline.push_back({{"agent_key", a.agent_key},
                         {"name", a.info.name},
                         {"status", std::string(manager::to_string(a.status))}});
  }
  if (names.empty())
    return app.report(
        Error{"manager drift", o.group, ENOENT, "no such group: see mamori manager agents"},
        kExitUsage);

  StoreAsk ask(app, **store, *timeout, o.timeout);
  auto report = manager::find_drift(asked, std::ref(ask));
  if (!report) return app.report(report.error(), kExitIncomplete);

  bool drift = false, incomplete = !report->unanswered.empty();
  json roots = json::array();
  for (const auto& r : report->roots) {
    json reference = json::array();
    for (const auto& k : r.reference_agents)
      reference.push_back({{"agent_key", k}, {"name", names[k]}});
    json drifted = json::array();
    for (const auto& n : r.drifted) {
      drift = true;
      incomplete = incomplete || !n.error.empty();
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
  for (const auto& [k, why] : report->unanswered)
    unanswered.push_back({{"agent_key", k}, {"name", names[k]}, {"why", why}});

  if (app.options().json) {
    print_json(
        {{"roots", roots}, {"unanswered", unanswered}, {"offline", offline}, {"drift", drift}});
  } else if (!app.options().quiet) {
    for (const auto& r : report->roots) {
      std::string who;
      for (const auto& k : r.reference_agents) who += (who.empty() ? "" : ", ") + escape(names[k]);
      std::printf("%s: %zu node(s) agree on %.12s: %s\n", escape(r.root).c_str(),
                  r.reference_agents.size(), r.reference_digest.c_str(), who.c_str());
      for (const auto& n : r.drifted) {
        std::printf("  %s (%s) differs:%s\n", escape(names[n.agent_key]).c_str(),
                    n.agent_key.c_str(), n.error.empty() ? "" : (" " + escape(n.error)).c_str());
        for (const auto& d : n.differences)
          std::printf("    %-8s %-8s %s\n", d.kind.c_str(), d.type.c_str(),
                      d.path.empty() ? "(the root itself)" : escape(d.path).c_str());
        if (n.truncated) std::printf("    ... and more\n");
      }
    }
    for (const auto& [k, why] : report->unanswered)
      std::printf("not compared: %s (%s): %s\n", escape(names[k]).c_str(), k.c_str(),
                  escape(why).c_str());
    for (const auto& x : offline)
      std::printf("not compared: %s (%s): %s\n", escape(x["name"].get<std::string>()).c_str(),
                  x["agent_key"].get<std::string>().c_str(),
                  x["status"].get<std::string>().c_str());
    if (!drift && report->unanswered.empty())
      std::printf("no drift: every node compared serves the same\n");
  }
  if (drift) return kExitChanges;
  return incomplete ? kExitIncomplete : kExitOk;
}

}  // namespace mamori::cli
