#pragma once
// SHA-256 through OpenSSL's EVP interface (SHA-NI on CPUs that have it).

#include <openssl/evp.h>

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "core/base/result.h"

namespace mamori::hash {

struct Digest {
  std::array<uint8_t, 32> bytes{};

  std::string hex() const;
  static Result<Digest> from_hex(std::string_view hex);
  // From 32 raw bytes (a catalog BLOB); fails on any other length.
  static Result<Digest> from_bytes(std::string_view raw);
  std::string_view raw() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  bool is_zero() const;
  auto operator<=>(const Digest&) const = default;
};

struct DigestHash {
  size_t operator()(const Digest& d) const {
    size_t h;
    static_assert(sizeof h <= sizeof d.bytes);
    __builtin_memcpy(&h, d.bytes.data(), sizeof h);  // already uniformly distributed
    return h;
  }
};

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const uint8_t> data);
  void update(std::string_view data) {
    update({reinterpret_cast<const uint8_t*>(data.data()), data.size()});
  }
  // Returns the digest and resets for reuse.
  Digest finish();

 private:
  EVP_MD_CTX* ctx_;
};

Digest sha256(std::span<const uint8_t> data);
Digest sha256(std::string_view data);

// Whether a == b, in time that depends only on the lengths (which, for the hashes and
// fingerprints compared with it, are public): for secrets and their hashes.
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace mamori::hash
