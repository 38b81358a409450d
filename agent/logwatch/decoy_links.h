#pragma once
// Who fetched which decoy (docs/decoys.md), so a fake credential used later names the
// address that stole it: the access log's decoy hits are remembered per decoy token,
// and a credential use (on the SSH honeypot, on wp-login.php) is linked to them into one
// incident (decoy-credential-used, docs/formats/events.md).
//
// The rule ids say what a ban means: "decoy-credential-<token>" is a credential of the
// decoy <token> used; any other "decoy-<token>" is a fetch of it.
//
// Threads: one owner. Memory: kPerToken fetches per token; tokens come from the rule
// files (the administrator's), never from a request, and are capped at kMaxTokens.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/logparse/ip.h"

namespace mamori::logwatch {

enum class DecoyRule { kNone, kFetch, kCredential };

// What the ban rule `rule_id` means; `token` gets the decoy's token.
DecoyRule decoy_rule(std::string_view rule_id, std::string* token);
// The rule id that bans whoever used the credentials of decoy `token`.
std::string credential_rule_id(std::string_view token);

struct DecoyFetch {
  logparse::IpAddress ip;
  std::string event_id;  // its ip-banned event; "" when it was already banned
  int64_t time_ns = 0;
};

class DecoyLinks {
 public:
  static constexpr size_t kPerToken = 8;
  static constexpr size_t kMaxTokens = 4096;

  // `ip` fetched the decoy `token`. The same address again moves to the front.
  void fetched(std::string_view token, const logparse::IpAddress& ip, std::string event_id,
               int64_t time_ns);
  // Newest first.
  std::vector<DecoyFetch> fetchers(std::string_view token) const;

  // False when `ip` used a credential of `token` less than kUseQuietNs ago: a brute force
  // that tries the stolen password six times is one incident, not six.
  static constexpr int64_t kUseQuietNs = 60'000'000'000;
  bool first_use(std::string_view token, const logparse::IpAddress& ip, int64_t now_ns);

 private:
  std::unordered_map<std::string, std::deque<DecoyFetch>> by_token_;
  std::unordered_map<std::string, int64_t> last_use_ns_;  // token + address; kMaxTokens
};

}  // namespace mamori::logwatch
