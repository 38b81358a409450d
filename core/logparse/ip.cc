#include "core/logparse/ip.h"

#include <cstring>

#include <fmt/format.h>

namespace mamori::logparse {
namespace {

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_mapped(const std::array<uint8_t, 16>& b) {
  return std::memcmp(b.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0;
}

// Dotted quad into out[0..4). Leading zeros are refused as inet_pton does: "010" is octal
// to inet_aton and decimal to others, and an address must mean one thing.
bool parse_v4(std::string_view s, uint8_t* out) {
  int octets = 0;
  size_t i = 0;
  while (true) {
    const size_t start = i;
    unsigned value = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 3)
      value = value * 10 + unsigned(s[i++] - '0');
    const size_t digits = i - start;
    if (digits == 0 || value > 255 || (digits > 1 && s[start] == '0')) return false;
    out[octets++] = uint8_t(value);
    if (octets == 4) return i == s.size();
    if (i == s.size() || s[i] != '.') return false;
    ++i;
  }
}

// RFC 4291 text form: up to eight hex groups, one "::" for a run of zero groups, and an
// optional dotted quad in place of the last two groups.
bool parse_v6(std::string_view s, std::array<uint8_t, 16>& out) {
  if (s.size() < 2 || s.size() > 45) return false;
  uint16_t groups[8] = {};
  int n = 0;
  int gap = -1;  // index in groups where "::" stands
  size_t i = 0;
  if (s[0] == ':') {
    if (s[1] != ':') return false;
    gap = 0;
    i = 2;
  }
  uint8_t tail_v4[4];
  bool has_v4 = false;
  while (i < s.size()) {
    const size_t colon = s.find(':', i);
    const std::string_view token =
        s.substr(i, colon == std::string_view::npos ? s.npos : colon - i);
    if (token.find('.') != std::string_view::npos) {
      if (colon != std::string_view::npos || n > 6 || !parse_v4(token, tail_v4)) return false;
      has_v4 = true;
      break;
    }
    if (token.empty() || token.size() > 4 || n == 8) return false;
    unsigned value = 0;
    for (char c : token) {
      const int h = hex_value(c);
      if (h < 0) return false;
      value = value * 16 + unsigned(h);
    }
    groups[n++] = uint16_t(value);
    if (colon == std::string_view::npos) break;
    i = colon + 1;
    if (i < s.size() && s[i] == ':') {
      if (gap >= 0) return false;
      gap = n;
      ++i;
    } else if (i == s.size()) {
      return false;  // a single trailing colon
    }
  }
  const int total = n + (has_v4 ? 2 : 0);
  if (gap < 0 ? total != 8 : total > 7) return false;
  out.fill(0);
  const int after = n - (gap < 0 ? n : gap);  // hex groups written after the gap
  const int before = n - after;
  for (int g = 0; g < before; ++g) {
    out[2 * g] = uint8_t(groups[g] >> 8);
    out[2 * g + 1] = uint8_t(groups[g]);
  }
  const int tail_start = 8 - after - (has_v4 ? 2 : 0);
  for (int g = 0; g < after; ++g) {
    out[2 * (tail_start + g)] = uint8_t(groups[before + g] >> 8);
    out[2 * (tail_start + g) + 1] = uint8_t(groups[before + g]);
  }
  if (has_v4) std::memcpy(&out[12], tail_v4, 4);
  return true;
}

// True when the first `bits` bits of a and b are equal.
bool prefix_equal(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b,
                  unsigned bits) {
  const unsigned whole = bits / 8;
  if (std::memcmp(a.data(), b.data(), whole) != 0) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const uint8_t mask = uint8_t(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  IpAddress ip;
  std::memcpy(ip.bytes.data(), kMappedPrefix.data(), kMappedPrefix.size());
  if (parse_v4(text, &ip.bytes[12])) {
    ip.v4 = true;
    return ip;
  }
  if (!parse_v6(text, ip.bytes)) return std::nullopt;
  ip.v4 = is_mapped(ip.bytes);
  return ip;
}

IpAddress IpAddress::from_v4(uint32_t host_order) {
  IpAddress ip;
  std::memcpy(ip.bytes.data(), kMappedPrefix.data(), kMappedPrefix.size());
  for (int k = 0; k < 4; ++k) ip.bytes[12 + k] = uint8_t(host_order >> (24 - 8 * k));
  ip.v4 = true;
  return ip;
}

std::string IpAddress::to_string() const {
  const auto& b = bytes;
  if (v4) return fmt::format("{}.{}.{}.{}", b[12], b[13], b[14], b[15]);
  if (is_mapped(b)) return fmt::format("::ffff:{}.{}.{}.{}", b[12], b[13], b[14], b[15]);
  uint16_t g[8];
  for (int k = 0; k < 8; ++k) g[k] = uint16_t(b[2 * k] << 8 | b[2 * k + 1]);
  // RFC 5952: the longest run of two or more zero groups becomes "::", the first on a tie.
  int best = -1, best_len = 1;
  for (int k = 0; k < 8;) {
    int len = 0;
    while (k + len < 8 && g[k + len] == 0) ++len;
    if (len > best_len) best = k, best_len = len;
    k += len ? len : 1;
  }
  std::string out;
  for (int k = 0; k < 8; ++k) {
    if (k == best) {
      out += "::";
      k += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    out += fmt::format("{:x}", g[k]);
  }
  return out;
}

Result<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string_view addr = text.substr(0, slash);
  auto ip = IpAddress::parse(addr);
  if (!ip) return fail_msg("parse CIDR", std::string(text), "not an IPv4 or IPv6 address");
  // The notation decides the family: "::ffff:10.0.0.0/104" is an IPv6 network.
  if (addr.find(':') != std::string_view::npos) ip->v4 = false;
  const unsigned max = ip->v4 ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0'))
      return fail_msg("parse CIDR", std::string(text), "bad prefix length");
    prefix = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return fail_msg("parse CIDR", std::string(text), "bad prefix length");
      prefix = prefix * 10 + unsigned(c - '0');
    }
    if (prefix > max)
      return fail_msg("parse CIDR", std::string(text),
                      fmt::format("prefix length {} is longer than {}", prefix, max));
  }
  const unsigned bits = ip->v4 ? prefix + 96 : prefix;
  IpAddress network = *ip;
  for (unsigned k = bits; k < 128; ++k) network.bytes[k / 8] &= uint8_t(~(0x80u >> (k % 8)));
  if (network != *ip)
    return fail_msg(
        "parse CIDR", std::string(text),
        fmt::format("host bits set; the network is {}/{}", network.to_string(), prefix));
  return Cidr{*ip, uint8_t(prefix)};
}

bool Cidr::contains(const IpAddress& ip) const {
  if (base.v4 && !ip.v4) return false;
  return prefix_equal(base.bytes, ip.bytes, base.v4 ? prefix + 96u : prefix);
}

std::string Cidr::to_string() const { return fmt::format("{}/{}", base.to_string(), prefix); }

const Cidr* find_network(std::span<const Cidr> networks, const IpAddress& ip) {
  for (const Cidr& n : networks)
    if (n.contains(ip)) return &n;
  return nullptr;
}

}  // namespace mamori::logparse
