#pragma once
// mamori manager ban|unban|bans|command|drift: fleet control from the command line
// (docs/manager.md, Fleet control). Each writes rows to the manager's store (bans, commands); the
// running manager notices within a poll (manager/server/fleet.h) and pushes them to the agents.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/app.h"

namespace mamori::cli {

struct FleetOptions {
  std::string ttl;  // DURATION; "" = permanent
  std::string reason;
  std::string agent;  // command targets: one of these three
  std::string group;
  bool all = false;
  bool wait = false;
  std::string timeout = "30s";
  std::vector<std::string> args;
};

// "90", "30m", "12h", "7d", "2w" → seconds (manager.cc).
std::optional<int64_t> parse_duration(const std::string& text);

int fleet_ban(App& app, const FleetOptions& o);
int fleet_unban(App& app, const FleetOptions& o);
int fleet_bans(App& app);
int fleet_command(App& app, const FleetOptions& o);
// mamori manager drift (manager_drift.cc).
int fleet_drift(App& app, const FleetOptions& o);

}  // namespace mamori::cli
