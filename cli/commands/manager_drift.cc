// mamori manager drift: which nodes of a group serve something other than the rest, and
// which files (manager/server/drift.h walks and answers the JSON; this prints it).

#include <cstdio>

#include "cli/commands/command.h"
#include "cli/commands/manager_fleet.h"
#include "core/base/quote.h"
#include "core/fs/admin_files.h"
#include "manager/db/store.h"
#include "manager/server/drift.h"

namespace mamori::cli {
namespace {

using nlohmann::json;

std::string text(const json& j, const char* key) { return escape(j.value(key, std::string())); }

void print_drift(const json& d) {
  for (const auto& r : d["roots"]) {
    std::string who;
    for (const auto& a : r["reference"]["agents"])
      who += (who.empty() ? "" : ", ") + text(a, "name");
    std::printf("%s: %zu node(s) agree on %.12s: %s\n", text(r, "root").c_str(),
                r["reference"]["agents"].size(), text(r["reference"], "digest").c_str(),
                who.c_str());
    for (const auto& n : r["drifted"]) {
      const std::string error = text(n, "error");
      std::printf("  %s (%s) differs:%s\n", text(n, "name").c_str(), text(n, "agent_key").c_str(),
                  error.empty() ? "" : (" " + error).c_str());
      for (const auto& x : n["differences"]) {
        // With path_hex, "path" is escaped already.
        const std::string path =
            x.contains("path_hex") ? x["path"].get<std::string>() : text(x, "path");
        std::printf("    %-8s %-8s %s\n", text(x, "kind").c_str(), text(x, "type").c_str(),
                    path.empty() ? "(the root itself)" : path.c_str());
      }
      if (n.value("truncated", false)) std::printf("    ... and more\n");
    }
  }
  for (const auto& x : d["unanswered"])
    std::printf("not compared: %s (%s): %s\n", text(x, "name").c_str(),
                text(x, "agent_key").c_str(), text(x, "why").c_str());
  for (const auto& x : d["offline"])
    std::printf("not compared: %s (%s): %s\n", text(x, "name").c_str(),
                text(x, "agent_key").c_str(), text(x, "status").c_str());
  if (!d["drift"].get<bool>() && d["unanswered"].empty())
    std::printf("no drift: every node compared serves the same\n");
}

}  // namespace

int fleet_drift(App& app, const FleetOptions& o) {
  if (!o.agent.empty() || o.group.empty() == !o.all)
    return app.report(
        Error{"manager drift", "", 0, "drift compares nodes: give --group NAME or --all"},
        kExitUsage);
  auto timeout = parse_duration(o.timeout);
  if (!timeout || *timeout <= 0)
    return app.report(Error{"manager drift", o.timeout, 0, "--timeout takes a duration: 30, 2m"},
                      kExitUsage);
  const auto& m = app.config().manager;
  if (auto st = fs::make_private_dir(m.state_dir); !st)
    return app.report(st.error(), kExitIncomplete);
  auto store = manager::open_store(app.env(), m.database);
  if (!store) return app.report(store.error(), kExitIncomplete);
  auto d = manager::group_drift(**store, app.env().clock(), o.group, *timeout);
  if (!d) return app.report(d.error(), kExitIncomplete);
  if (!*d)
    return app.report(
        Error{"manager drift", o.group, ENOENT, "no such group: see mamori manager agents"},
        kExitUsage);
  const json& drift = **d;
  if (app.options().json)
    print_json(drift);
  else if (!app.options().quiet)
    print_drift(drift);
  if (drift["drift"].get<bool>()) return kExitChanges;
  bool incomplete = !drift["unanswered"].empty();
  for (const auto& r : drift["roots"])
    for (const auto& n : r["drifted"])
      incomplete = incomplete || !n["error"].get<std::string>().empty();
  return incomplete ? kExitIncomplete : kExitOk;
}

}  // namespace mamori::cli
