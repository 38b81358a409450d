#pragma once
// Console users' passwords: argon2id (libargon2, RFC 9106) in the PHC string format
// ("$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH"), which carries its own parameters, so
// hashes made with other parameters keep verifying after a change here.
//
// Parameters (docs/manager.md "Users"): memory 19 MiB, 2 passes, 1 lane, 16-byte random
// salt, 32-byte hash: OWASP's minimum for argon2id, about 30-60 ms on one core. Logins
// verify on a thread of their own (password_checks.h), bounded; the login throttle
// (login_throttle.h) bounds how often one remote client can make it do so.
//
// Threads: free functions, no shared state; safe from any thread.
#include <string>
#include <string_view>

#include "core/base/result.h"

namespace mamori::manager {

inline constexpr size_t kMinPasswordLength = 12;
inline constexpr size_t kMaxPasswordLength = 1024;  // bounds the work a login asks for

// Refuses a password shorter than kMinPasswordLength or longer than kMaxPasswordLength
// bytes, or holding a NUL or a line break.
Status check_password_policy(std::string_view password);

// A new PHC string for `password`, with a fresh random salt.
Result<std::string> hash_password(std::string_view password);

// Whether `password` matches `phc` (constant-time comparison inside libargon2). false for
// a malformed or non-argon2id string, and for a password longer than kMaxPasswordLength.
bool verify_password(std::string_view phc, std::string_view password);

// A valid PHC string of a random password, made once: what a login for an unknown user
// verifies against, so that it takes as long as one for a known user.
const std::string& decoy_password_hash();

}  // namespace mamori::manager
