#pragma once
// The ban list: which addresses are banned, until when, and why. It is the source of
// truth; backends (backend.h) only apply it, and are given all of it again at start-up,
// so bans survive restarts and reboots. Persistent in one SQLite file (STATE/bans.db,
// WAL, so the agent and `mamori bans` share it; schema in docs/bans.md).
//
// Escalation: an offence within `escalation_window_s` of the address's previous offence
// counts as the next one; the Nth gets base_ttl * factor^(N-1), at most max_ttl. A quiet
// window resets the count. While an address is banned, further automatic offences
// neither extend nor escalate its ban (a burst of log lines is one offence).
//
// Prefix escalation (opt-in: prefix_offenders > 0): an attacker who rotates addresses in
// an IPv6 /64 (or an IPv4 /24) pays nothing per address. When an automatic ban makes
// prefix_offenders distinct addresses banned within prefix_window_s in one /prefix_v6
// (IPv4: /prefix_v4), the prefix itself is banned too (rule "prefix-escalation", its own
// escalation count), in the same transaction; the decision carries it (prefix_ban) for
// the backend and the events. Never a prefix that holds an allowlisted address; never
// more than max_prefix_bans current prefix bans (the next is not made: the addresses
// are still banned one by one). Manual bans do not count toward a prefix.
//
// Limits: at most max_entries current bans (ban() refuses a new one past it, ENOSPC,
// with the count); the offence history is pruned to the window and to max_entries
// addresses (the longest quiet are forgotten first) by expire().
//
// Threads: one owner (a BanList holds one SQLite connection). Time is passed in (Unix
// seconds from the caller's Clock). Every method is one transaction: on failure the file
// is as before.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/ban/backend.h"
#include "core/base/result.h"
#include "core/db/sqlite.h"
#include "core/logparse/ip.h"

namespace mamori::ban {

using logparse::Cidr;

// The [ban] table of the config (options.h fills it from a config::Config).
struct BanOptions {
  std::string backend = "nftables";  // "nftables", "hook", or "none" (recorded only)
  std::string nft_table = "mamori";  // table inet NAME, owned by mamori
  std::vector<std::string> hook;     // argv of the hook backend; JSON on stdin
  uint32_t hook_timeout_s = 30;
  int64_t base_ttl_s = 600;
  int factor = 4;
  int64_t max_ttl_s = 7 * 86400;
  int64_t escalation_window_s = 30 * 86400;
  uint64_t max_entries = 1'000'000;
  // Never banned (not even by `mamori bans add` without --force). Loopback by default:
  // a reverse proxy that logs 127.0.0.1 for every client must not ban the site itself.
  std::vector<std::string> allowlist = {"127.0.0.0/8", "::1/128"};
  // Prefix escalation; see above. 0 offenders: off.
  uint32_t prefix_offenders = 0;
  uint8_t prefix_v6 = 64;
  uint8_t prefix_v4 = 24;
  int64_t prefix_window_s = 600;
  uint64_t max_prefix_bans = 1000;
};

struct BanEntry {
  IpAddress ip;            // the address, or the prefix's first address
  uint8_t prefix = 0;      // 0: one address; else a prefix ban of this length (Cidr's)
  int64_t first_seen = 0;  // Unix seconds of the first offence of this ban
  int64_t last_ban = 0;    // when it was last (re)banned
  int64_t expires_at = 0;  // 0: permanent
  uint32_t offences = 0;   // the escalation count this ban was decided with
  std::string rule;        // rule.name, or "manual"
  std::string reason;
  std::string source;  // "logwatch", "correlation", "manual", "escalation", ...

  bool is_prefix() const { return prefix != 0; }
  Cidr network() const;     // the prefix, or the address as a /32 or /128
  std::string key() const;  // "192.0.2.7", "2001:db8:1:2::/64": the list's key
};

struct BanRequest {
  std::string rule;
  std::string reason;
  std::string source;
  // nullopt: decided by escalation; kPermanent or a TTL: exactly that (a manual ban),
  // replacing the TTL of a current ban.
  std::optional<std::chrono::seconds> ttl;
  bool force = false;  // ban even an allowlisted address
};

enum class BanOutcome { kNew, kReplaced, kAlreadyBanned };

struct PrefixBan {
  std::chrono::seconds ttl{0};
  BanEntry entry;              // entry.is_prefix()
  uint32_t offenders = 0;      // distinct addresses banned in it within the window
  std::optional<Error> error;  // the backend refused it (Banner::ban); recorded all the same
};

struct BanDecision {
  BanOutcome outcome = BanOutcome::kNew;
  std::chrono::seconds ttl{0};          // from now; kPermanent for a permanent ban
  BanEntry entry;                       // as the list holds it now
  std::optional<PrefixBan> prefix_ban;  // this ban made its prefix banned too
};

class BanList {
 public:
  // Opens or creates the list at `path`. Refuses an allowlist entry that is not a CIDR
  // (EINVAL), a file that is not a ban list (EBADMSG) or of a newer schema.
  static Result<BanList> open(const std::string& path, BanOptions options);

  // Records an offence by `ip` and decides its ban. EPERM: `ip` is allowlisted (and not
  // forced); ENOSPC: the list is full.
  Result<BanDecision> ban(const IpAddress& ip, const BanRequest& request, int64_t now);
  // Removes the ban and forgets the address's offences (an administrator's pardon).
  // False when it was not banned.
  Result<bool> unban(const IpAddress& ip);
  // The same for a prefix ban (`network` as BanEntry::network() gives it).
  Result<bool> unban(const Cidr& network);
  // Current bans (expired ones included until expire() runs), soonest expiry first,
  // permanent ones last.
  Result<std::vector<BanEntry>> list();
  Result<std::optional<BanEntry>> get(const IpAddress& ip);
  Result<uint64_t> size();
  // Changes whenever another connection (`mamori bans`, the agent) commits to the file.
  Result<int64_t> data_version();
  // Removes bans expired at `now` and returns them (so a backend without timeouts of
  // its own can lift them); prunes the offence history.
  Result<std::vector<BanEntry>> expire(int64_t now);

  // The current bans as backends take them, for sync().
  static std::vector<AppliedBan> applied(const std::vector<BanEntry>& entries);
  bool allowlisted(const IpAddress& ip) const;
  const BanOptions& options() const { return options_; }
  // The TTL of the Nth offence (N >= 1).
  std::chrono::seconds ttl_for(uint32_t offences) const;

 private:
  BanList(db::Db db, BanOptions options, std::vector<Cidr> allow)
      : db_(std::move(db)), options_(std::move(options)), allow_(std::move(allow)) {}
  Result<std::optional<BanEntry>> get_locked(const std::string& key);
  Result<uint32_t> next_offence(const std::string& key, int64_t now);
  Result<std::optional<PrefixBan>> escalate(const IpAddress& ip, int64_t now);
  Result<bool> unban_key(const std::string& key);

  db::Db db_;
  BanOptions options_;
  std::vector<Cidr> allow_;
};

}  // namespace mamori::ban
