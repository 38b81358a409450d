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
  o.prefix_offenders = config.ban.prefix_offenders;
  o.prefix_v6 = static_cast<uint8_t>(config.ban.prefix_v6);
  o.prefix_v4 = static_cast<uint8_t>(config.ban.prefix_v4);
  o.prefix_window_s = config.ban.prefix_window_s;
  o.max_prefix_bans = config.ban.max_prefix_bans;
  return o;
}

std::string list_path(const config::Config& config) { return config.state_dir + "/bans.db"; }

}  // namespace mamori::ban
