#include "agent/ban/options.h"

namespace mamori::ban {

BanOptions options_from(const config::Config& config) {
  BanOptions o;
  o.backend = config.ban.backend;
  o.nft_table = config.ban.nft_table;
  o.hook = config.ban.hook;
  o.hook_timeout_s = config.ban.hook_timeout_s;
  o.base_ttl_s = config.ban.ttl_s;
  o.factor = static_cast<int>(config.ban.ttl_factor);
  o.max_ttl_s = config.ban.max_ttl_s;
  o.allowlist = config.logwatch.allowlist;
  return o;
}

std::string list_path(const config::Config& config) { return config.state_dir + "/bans.db"; }

}  // namespace mamori::ban
