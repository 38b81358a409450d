#pragma once
// IP addresses as they appear in access logs, allowlists and bans. Parsing is strict (the
// inet_pton grammar): a log field is only ever taken as a client address when it is an
// exact IPv4 or IPv6 literal, so a hostname, "-" or garbage can never become a wrong ban.
// Plain values; no allocation except to_string().

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/base/result.h"

namespace mamori::logparse {

struct IpAddress {
  // Network order. IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), so one comparison and one
  // CIDR test serve both families.
  std::array<uint8_t, 16> bytes{};
  // True for IPv4, including an IPv4-mapped IPv6 literal (::ffff:1.2.3.4, as dual-stack
  // sockets log it): it is the same client and must hit the same ban.
  bool v4 = false;

  // "1.2.3.4", "2001:db8::1", "::ffff:1.2.3.4". No zone ids, brackets, ports or
  // surrounding spaces; IPv4 octets without leading zeros (no octal ambiguity).
  static std::optional<IpAddress> parse(std::string_view text);
  static IpAddress from_v4(uint32_t host_order);

  // Dotted quad for IPv4, RFC 5952 (lower case, longest zero run as "::") for IPv6.
  std::string to_string() const;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

// A network: 10.0.0.0/8, 2001:db8::/32, or a single address (a /32 or /128).
struct Cidr {
  IpAddress base;      // host bits are zero
  uint8_t prefix = 0;  // in the address's own family: 0-32 for IPv4, 0-128 for IPv6

  // Refuses host bits set below the prefix ("10.0.0.1/8"): a typo there would otherwise
  // silently widen or narrow an allowlist.
  static Result<Cidr> parse(std::string_view text);

  // An IPv4 network contains only IPv4 addresses (mapped or not); an IPv6 network contains
  // what its bits cover (::ffff:0:0/96 covers all of IPv4).
  bool contains(const IpAddress& ip) const;
  std::string to_string() const;

  friend bool operator==(const Cidr&, const Cidr&) = default;
};

// The first of `networks` that contains `ip` (an allowlist, never_ban), or nullptr.
const Cidr* find_network(std::span<const Cidr> networks, const IpAddress& ip);

}  // namespace mamori::logparse
