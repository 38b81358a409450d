#include "honeypot/kexinit.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>

namespace mamori::honeypot {
namespace {

constexpr uint8_t kMsgKexinit = 20;

uint32_t be32(std::string_view s, size_t at) {
  return (uint32_t{static_cast<uint8_t>(s[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(s[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(s[at + 2])} << 8) |
         uint32_t{static_cast<uint8_t>(s[at + 3])};
}

// One name-list at `at` within `payload`; false when it runs past the end.
bool name_list(std::string_view payload, size_t& at, std::string& out) {
  if (payload.size() - at < 4) return false;
  const uint32_t n = be32(payload, at);
  at += 4;
  if (payload.size() - at < n) return false;
  out.assign(payload.substr(at, n));
  at += n;
  return true;
}

}  // namespace

std::string hassh_of(std::string_view kex, std::string_view ciphers, std::string_view macs,
                     std::string_view compression) {
  std::string text;
  text.append(kex).append(";").append(ciphers).append(";").append(macs).append(";").append(
      compression);
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  // MD5 because HASSH is defined with it (a fingerprint to compare, not a security hash).
  if (EVP_Digest(text.data(), text.size(), md.data(), &len, EVP_md5(), nullptr) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 15]);
  }
  return hex;
}

HelloParse parse_client_hello(std::string_view data) {
  HelloParse r;
  size_t at = 0;
  if (data.empty()) {
    r.need = 1;
    return r;
  }
  if (data.starts_with("SSH-") || (data.size() < 4 && std::string_view("SSH-").starts_with(data))) {
    const size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      if (data.size() >= kMaxVersionLine) r.status = HelloStatus::kInvalid;
      r.need = data.size() + 1;
      return r;
    }
    if (nl + 1 > kMaxVersionLine) {
      r.status = HelloStatus::kInvalid;
      return r;
    }
    std::string_view line = data.substr(0, nl);
    if (line.ends_with('\r')) line.remove_suffix(1);
    r.hello.version = std::string(line);
    at = nl + 1;
  }
  // The binary packet: uint32 length, byte padding, payload (no MAC before NEWKEYS).
  if (data.size() - at < 6) {
    r.need = at + 6;
    return r;
  }
  const uint32_t packet_length = be32(data, at);
  const auto padding = static_cast<uint8_t>(data[at + 4]);
  if (packet_length < 2 + 16 || packet_length + 4 > kMaxKexinitPacket ||
      padding + 1u >= packet_length || static_cast<uint8_t>(data[at + 5]) != kMsgKexinit) {
    r.status = HelloStatus::kInvalid;
    return r;
  }
  if (data.size() - at < 4 + packet_length) {
    r.need = at + 4 + packet_length;
    return r;
  }
  const std::string_view payload = data.substr(at + 5, packet_length - padding - 1);
  size_t p = 1 + 16;  // message number, cookie
  if (payload.size() < p) {
    r.status = HelloStatus::kInvalid;
    return r;
  }
  std::string enc_s2c, mac_s2c, comp_s2c;
  ClientHello& h = r.hello;
  if (!name_list(payload, p, h.kex) || !name_list(payload, p, h.host_keys) ||
      !name_list(payload, p, h.ciphers) || !name_list(payload, p, enc_s2c) ||
      !name_list(payload, p, h.macs) || !name_list(payload, p, mac_s2c) ||
      !name_list(payload, p, h.compression) || !name_list(payload, p, comp_s2c)) {
    r.status = HelloStatus::kInvalid;
    return r;
  }
  h.hassh_algorithms = h.kex + ";" + h.ciphers + ";" + h.macs + ";" + h.compression;
  h.hassh = hassh_of(h.kex, h.ciphers, h.macs, h.compression);
  r.status = HelloStatus::kDone;
  return r;
}

}  // namespace mamori::honeypot
