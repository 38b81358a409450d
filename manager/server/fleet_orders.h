#pragma once
// What an operator orders the fleet to do, from the CLI (`mamori manager ban`, `unban`,
// `command`) or the API (POST /api/v1/bans, /api/v1/commands): checked, then written to
// the store, the same way from both. The running manager delivers the rows (fleet.h):
// at once when the API wrote them, within kPollInterval when another process did.
//
// Checks return the user's mistake as text (a usage error, an HTTP 400); the store's own
// failures are Errors.

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "core/base/result.h"
#include "core/config/config.h"
#include "core/logparse/ip.h"
#include "core/proto/control.h"
#include "manager/db/store.h"

namespace mamori::manager {

template <typename T>
using Checked = tl::expected<T, std::string>;

// An IPv4 or IPv6 address as the agents read it ("192.0.2.7", "2001:db8::1").
Checked<std::string> canonical_address(std::string_view text);

// [manager] never_ban, parsed (the config loader has checked every entry).
std::vector<logparse::Cidr> never_ban_networks(const config::ManagerConfig& m);

// A fleet-wide ban of `address` for `ttl_s` seconds (0: permanent), recorded for the
// manager to push to every agent. The reason is at most proto::kMaxBanTextLength bytes;
// an address in `never_ban` is refused.
struct BanOrder {
  std::string address;
  int64_t ttl_s = 0;
  std::string reason;
};
Checked<NewBan> check_ban(const BanOrder& order, std::span<const logparse::Cidr> never_ban,
                          int64_t now_ns);

// The control-protocol request of `verify`, `mode ROOT MODE` (ROOT "*": every root),
// `heal-clear`, `ban ADDRESS`, `unban ADDRESS`, `evidence ID` or `site`; a ban lasts `ttl_s`
// (0: permanent) and never holds an address in `never_ban`.
Checked<proto::Request> command_request(std::span<const std::string> words, int64_t ttl_s,
                                        std::string_view reason,
                                        std::span<const logparse::Cidr> never_ban);

// Whom a command goes to: exactly one of an agent (by key), a group, or every agent.
struct CommandTargets {
  std::string agent_key;
  std::string group;
  bool all = false;
};
// agent_key → name of the agents `t` names. Never a revoked agent; a retired one (its node
// is gone) only by its key. Empty when none matches; a usage error unless exactly one of
// the three is given.
Checked<bool> check_targets(const CommandTargets& t);
// An evidence id is one agent's own (and its answer up to 2 MiB): `evidence` goes to one
// agent, never to a group or the fleet.
Checked<bool> check_command_targets(const proto::Request& r, const CommandTargets& t);
Result<std::map<std::string, std::string>> command_targets(Store& store, const CommandTargets& t);

// One command row (pending) per target, all with `request`: row id → agent_key.
Result<std::map<int64_t, std::string>> queue_command(
    Store& store, const std::map<std::string, std::string>& targets, const proto::Request& request,
    int64_t now_ns);

}  // namespace mamori::manager
