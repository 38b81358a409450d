#include "manager/server/password.h"

#include <argon2.h>

#include "manager/server/identity.h"

namespace mamori::manager {
namespace {

constexpr uint32_t kTimeCost = 2;
constexpr uint32_t kMemoryKiB = 19 * 1024;
constexpr uint32_t kLanes = 1;
constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;

}  // namespace

Status check_password_policy(std::string_view password) {
  if (password.size() < kMinPasswordLength)
    return fail_msg("password", "", "at least 12 characters");
  if (password.size() > kMaxPasswordLength)
    return fail_msg("password", "", "at most 1024 characters");
  if (password.find_first_of(std::string_view("\0\n\r", 3)) != std::string_view::npos)
    return fail_msg("password", "", "no NUL or line break");
  return {};
}

Result<std::string> hash_password(std::string_view password) {
  MAMORI_TRY(check_password_policy(password));
  const std::string salt = MAMORI_TRY(random_bytes(kSaltBytes));
  std::string out(
      argon2_encodedlen(kTimeCost, kMemoryKiB, kLanes, kSaltBytes, kHashBytes, Argon2_id), '\0');
  const int rc =
      argon2id_hash_encoded(kTimeCost, kMemoryKiB, kLanes, password.data(), password.size(),
                            salt.data(), salt.size(), kHashBytes, out.data(), out.size());
  if (rc != ARGON2_OK) return fail_msg("argon2id", "", argon2_error_message(rc));
  out.resize(out.find('\0'));
  return out;
}

bool verify_password(std::string_view phc, std::string_view password) {
  if (password.size() > kMaxPasswordLength || !phc.starts_with("$argon2id$")) return false;
  const std::string encoded(phc);  // argon2 wants a NUL-terminated string
  return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

const std::string& decoy_password_hash() {
  // No user has this password (unknown users have no hash at all): only its cost matters.
  static const std::string decoy = [] {
    auto h = hash_password("decoy-password-of-no-user");
    return h ? *h : std::string("$argon2id$invalid");
  }();
  return decoy;
}

}  // namespace mamori::manager
