#pragma once
// Where a ban takes effect: the firewall of this host (nftables/) or something outside it
// that a command reaches (hook/: a cloud network ACL). The ban list (ban_list.h) is the
// source of truth; a backend only applies what the list decided, and after a restart or
// a reboot is given the whole list again (sync).
//
// Backends are synchronous: each call returns once the ban is in force or has failed.
// Unless a backend says otherwise, one thread at a time.

#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/base/result.h"
#include "core/logparse/ip.h"

namespace mamori::ban {

using logparse::Cidr;
using logparse::IpAddress;

// A ban's time to live; kPermanent never expires.
inline constexpr std::chrono::seconds kPermanent{0};

// One ban as a backend holds it.
struct AppliedBan {
  IpAddress ip;
  int64_t expires_at = 0;  // Unix seconds; 0: permanent
  uint8_t prefix = 0;      // 0: the address; else a prefix ban (ip is its first address)
};

class BanBackend {
 public:
  virtual ~BanBackend() = default;
  // Bans `ip` for `ttl` (kPermanent: until unbanned). Banning an address again replaces
  // its TTL with this one, longer or shorter. `event` is the ECS event that caused it,
  // passed on to backends that report (the hook).
  virtual Status ban(const IpAddress& ip, std::chrono::seconds ttl,
                     const nlohmann::json& event) = 0;
  // Lifts the ban; an address that is not banned is not an error.
  virtual Status unban(const IpAddress& ip, const nlohmann::json& event) = 0;
  // The same for a network (prefix escalation, ban_list.h). Backends that cannot hold
  // networks fail with ENOTSUP (the ban stays recorded; its addresses are banned one by
  // one as they offend).
  virtual Status ban_prefix(const logparse::Cidr& network, std::chrono::seconds ttl,
                            const nlohmann::json& event);
  virtual Status unban_prefix(const logparse::Cidr& network, const nlohmann::json& event);
  // What the backend holds now (ENOTSUP where it cannot tell).
  virtual Result<std::vector<AppliedBan>> list() = 0;
  // Makes the backend hold exactly `bans` (expires_at in the past: left out).
  virtual Status sync(const std::vector<AppliedBan>& bans) = 0;
  // "nftables", "hook": for events and messages.
  virtual std::string_view name() const = 0;
};

}  // namespace mamori::ban
