#pragma once
// The ban settings of a config ([ban], [logwatch].allowlist) as agent/ban takes them, and
// where the ban list lives: shared by the agent and `mamori bans`, so both see one list.

#include <string>

#include "agent/ban/ban_list.h"
#include "core/config/config.h"

namespace mamori::ban {

BanOptions options_from(const config::Config& config);
// STATE/bans.db
std::string list_path(const config::Config& config);

}  // namespace mamori::ban
