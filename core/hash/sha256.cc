#include "core/hash/sha256.h"

#include <openssl/crypto.h>

#include <cstdlib>

namespace mamori::hash {

std::string Digest::hex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(64, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 0xF];
  }
  return out;
}

Result<Digest> Digest::from_hex(std::string_view hex) {
  if (hex.size() != 64) return fail_msg("parse sha256", std::string(hex), "want 64 hex digits");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Digest d;
  for (size_t i = 0; i < 32; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return fail_msg("parse sha256", std::string(hex), "not hexadecimal");
    d.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return d;
}

Result<Digest> Digest::from_bytes(std::string_view raw) {
  if (raw.size() != 32) return fail_msg("read sha256", "", "stored digest is not 32 bytes");
  Digest d;
  __builtin_memcpy(d.bytes.data(), raw.data(), 32);
  return d;
}

bool Digest::is_zero() const {
  for (uint8_t b : bytes)
    if (b) return false;
  return true;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) std::abort();  // OOM only
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::update(std::span<const uint8_t> data) {
  if (!data.empty()) EVP_DigestUpdate(ctx_, data.data(), data.size());
}

Digest Sha256::finish() {
  Digest d;
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx_, d.bytes.data(), &len);
  EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  return d;
}

Digest sha256(std::span<const uint8_t> data) {
  Digest d;
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), d.bytes.data(), &len, EVP_sha256(), nullptr);
  return d;
}

Digest sha256(std::string_view data) {
  return sha256(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace mamori::hash
