#pragma once
// What the honeypot does with the URLs an attacker's `wget`/`curl` names ([downloads],
// docs/honeypot.md "Downloads"): the policy that decides whether one is fetched, and
// the spool that keeps what was (STATE/downloads/<sha256>).
//
// Policies (each a name in the download event's mamori.ssh.download_policy):
//   off          [downloads] fetch = false: recorded, never fetched (the default)
//   scheme       only http:// and https:// are fetched (no file:, ftp:, gopher:, ...)
//   address      the URL's host, or any address a fetch connects to (redirects and
//                names included: fetch.h checks every connect), is loopback, private,
//                link-local, CGNAT, multicast or reserved: SSRF. allow_private lifts it.
//   per_session  a connection started that many fetches already
//   per_hour     the honeypot started that many in the last hour
//   concurrent   that many fetch processes run already
//   max_kb       the file was cut there (fetched, marked truncated)
//   timeout      the fetch ran out of time (failed)
//   quota_mb     STATE/downloads is over its quota: the oldest files are pruned, each an
//                ssh-download-pruned event
//
// Pure bookkeeping but for DownloadStore, which owns the directory; one owner thread
// (the server's loop).

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "honeypot/config.h"

namespace mamori::honeypot {

inline constexpr std::string_view kPolicyOff = "off";
inline constexpr std::string_view kPolicyScheme = "scheme";
inline constexpr std::string_view kPolicyAddress = "address";
inline constexpr std::string_view kPolicyPerSession = "per_session";
inline constexpr std::string_view kPolicyPerHour = "per_hour";
inline constexpr std::string_view kPolicyConcurrent = "concurrent";
inline constexpr std::string_view kPolicyMaxKb = "max_kb";
inline constexpr std::string_view kPolicyTimeout = "timeout";
inline constexpr std::string_view kPolicyQuota = "quota_mb";

// The download event's mamori.ssh.download_result.
inline constexpr std::string_view kResultNotFetched = "not-fetched";
inline constexpr std::string_view kResultFetched = "fetched";
inline constexpr std::string_view kResultRefused = "refused";
inline constexpr std::string_view kResultFailed = "failed";

// False for an address a fetch must not reach unless allow_private (see `address`).
bool public_address(const sockaddr* sa, socklen_t len);

// The policy that refuses `url` before anything runs (scheme, or a literal host address
// that is not public), or "" when it may be fetched.
std::string_view url_refusal(std::string_view url, bool allow_private);

// per_hour and concurrent across the honeypot; per_session is the connection's count.
class FetchBudget {
 public:
  explicit FetchBudget(const Downloads& d) : d_(d) {}
  // The policy that refuses a fetch now, or "" (then the fetch is counted as started).
  std::string_view start(uint32_t& session_count, int64_t mono_ns);
  void finished() {
    if (running_ > 0) --running_;
  }
  uint32_t running() const { return running_; }

 private:
  Downloads d_;
  std::deque<int64_t> started_;  // the last hour's starts, at most per_hour
  uint32_t running_ = 0;
};

// STATE/downloads: one file per content, named by its SHA-256 (64 hex digits, 0600),
// written under a temporary name and renamed, so a name is always a whole file. Kept
// within quota_mb: past it the oldest (by the time last stored) go first.
class DownloadStore {
 public:
  struct Pruned {
    std::string sha256;
    uint64_t size = 0;
  };
  struct Stored {
    std::string sha256;
    bool existed = false;  // the same content was there already: stored once
    std::vector<Pruned> pruned;
  };

  // Opens (and, made 0700 by the caller, lists) the directory: what is in it counts
  // against the quota; leftover temporary files are removed.
  static Result<DownloadStore> open(const std::string& dir, uint64_t quota_bytes);
  // `now_ns` (wall clock) orders the files for pruning, as their mtime does at open().
  Result<Stored> store(std::string_view content, int64_t now_ns);

  uint64_t bytes() const { return bytes_; }
  size_t files() const { return files_.size(); }
  bool has(std::string_view sha256) const;

 private:
  struct File {
    std::string sha256;
    uint64_t size = 0;
    int64_t stored_ns = 0;  // its mtime
  };
  DownloadStore(std::string dir, UniqueFd fd, uint64_t quota)
      : dir_(std::move(dir)), fd_(std::move(fd)), quota_(quota) {}
  void prune(std::string_view keep, std::vector<Pruned>& out);

  std::string dir_;
  UniqueFd fd_;
  uint64_t quota_ = 0;
  uint64_t bytes_ = 0;
  std::vector<File> files_;  // oldest first
};

// 64 lower-case hex digits.
bool sha256_name(std::string_view s);

}  // namespace mamori::honeypot
