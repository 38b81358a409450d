#pragma once
// Optional VirusTotal look-ups by SHA-256 (docs/scan.md, "Hash look-ups"): only the hash
// is ever sent (GET /api/v3/files/{sha256}), never a file's content, with the user's own
// API key. The public API allows 4 requests a minute and 500 a day and may not be used
// commercially; LookupQueue keeps to configurable limits across restarts.
//
// Three parts:
//   interpret_vt_reply()  what an HTTP status and body mean (pure; fuzzable)
//   VtClient              one GET through libcurl, bounded in time and in bytes
//   LookupQueue           hashes waiting, the requests of the last day and the verdicts
//                         seen, in one file (0600, replaced atomically); driven by a Clock
//
// No logging, no threads. The API key never appears in an Error, a verdict or the state
// file: only in the request's x-apikey header.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/env.h"
#include "core/base/result.h"
#include "core/base/unique_fd.h"
#include "core/hash/sha256.h"

namespace mamori::scan {

// The engines' votes of VirusTotal's last analysis (data.attributes.last_analysis_stats).
struct VtStats {
  uint32_t malicious = 0;
  uint32_t suspicious = 0;
  uint32_t undetected = 0;
  uint32_t harmless = 0;
  bool operator==(const VtStats&) const = default;
};

struct VtVerdict {
  bool known = false;  // false: VirusTotal has never seen this hash (HTTP 404)
  VtStats stats;
  std::string name;   // meaningful_name, when given (at most 256 bytes, as received)
  std::string label;  // popular_threat_classification.suggested_threat_label, when given
};

struct LookupAnswer {
  enum class Kind {
    kVerdict,     // `verdict` holds VirusTotal's answer (known or unknown)
    kRetryLater,  // quota (429), server error or network trouble: ask again later
    kFailed,      // this hash's reply made no sense (garbage, too big): not asked again
  };
  Kind kind = Kind::kFailed;
  VtVerdict verdict;
  std::string why;  // for kRetryLater and kFailed: "HTTP 429 QuotaExceededError"
};

// What VirusTotal's reply means. `truncated`: the body was cut at the client's cap.
// An Error only for what stops all look-ups: the key refused (401/403).
Result<LookupAnswer> interpret_vt_reply(long status, std::string_view body, bool truncated);

// Asks about one hash; VtClient, or a fake in tests.
class HashLookup {
 public:
  virtual ~HashLookup() = default;
  // An Error stops the look-ups (see interpret_vt_reply); everything else is an answer.
  virtual Result<LookupAnswer> lookup(const hash::Digest& sha256) = 0;
};

struct VtClientOptions {
  std::string base_url = "https://www.virustotal.com";  // http or https, no path needed
  std::string api_key;
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds total_timeout{15};
  size_t max_body = 1 << 20;  // network input: past it the reply counts as garbage
};

// The user's key from `path`: its first line, which must be non-empty, printable and at
// most 256 bytes. The file must be a regular file no one but its owner may read (mode
// & 077 == 0): a key readable by all is refused, naming the path (never the key).
Result<std::string> read_api_key_file(const std::string& path);

// Threads: one VtClient per thread (it holds a libcurl easy handle).
class VtClient final : public HashLookup {
 public:
  // Fails on a base URL that is not http(s) or a key with control characters.
  static Result<std::unique_ptr<VtClient>> make(VtClientOptions options);
  ~VtClient() override;
  VtClient(const VtClient&) = delete;
  VtClient& operator=(const VtClient&) = delete;

  Result<LookupAnswer> lookup(const hash::Digest& sha256) override;

 private:
  explicit VtClient(VtClientOptions options);
  VtClientOptions options_;
  void* curl_ = nullptr;  // CURL*, reused so connections are kept alive
};

struct LookupLimits {
  uint32_t per_minute = 4;     // requests in any 60 s
  uint32_t per_day = 500;      // requests in any 24 h
  size_t max_queue = 10'000;   // hashes waiting; past it the oldest is dropped (counted)
  size_t max_cache = 100'000;  // verdicts kept; past it the oldest goes
  std::chrono::seconds unknown_ttl{7 * 86400};  // a 404 is asked again after this
  std::chrono::seconds known_ttl{30 * 86400};
  std::chrono::seconds retry_after{60};  // after a 429 or a server error, nothing is sent
};

struct CachedVerdict {
  VtVerdict verdict;
  std::chrono::system_clock::time_point at;  // when VirusTotal answered
};

struct DrainStats {
  uint64_t sent = 0;      // requests made
  uint64_t answered = 0;  // verdicts received (known or unknown)
  uint64_t retry = 0;     // put back to ask later (429, 5xx, network)
  uint64_t failed = 0;    // replies that made no sense
  // The hashes answered (now in the cache) and those whose reply made no sense, in order.
  std::vector<hash::Digest> answered_hashes;
  std::vector<hash::Digest> failed_hashes;
};

// The scheduler. Time is the Clock's wall time (now()): the limits must hold across
// restarts, so the request times are persisted as wall times; one that lies in the
// future (the clock went back) still counts. Not thread-safe: one owner.
//
// State file (JSON, docs/scan.md): {"format": "mamori-lookup-1", "queue": [hex...],
// "dropped", "failed", "retry_at", "requests": [ns...], "cache": [{...}]}. Written by
// save() with fs::write_file_atomic, mode 0600. A file that does not parse makes open()
// fail naming it: starting empty would forget today's requests and break the limits.
//
// One process at a time: open() takes an exclusive flock() on `path` + ".lock" (created
// 0600) and holds it until the LookupQueue is destroyed, so two runs cannot each spend
// the same minute's budget; a second open() fails at once (EWOULDBLOCK) naming the lock.
class LookupQueue {
 public:
  static Result<LookupQueue> open(Env& env, std::string path, LookupLimits limits);

  // A verdict still within its TTL.
  std::optional<CachedVerdict> cached(const hash::Digest& sha256) const;
  // Queues `sha256` unless it waits already; false when it did. When full, the oldest
  // waiting hash is dropped (dropped() counts them). `related`, when not empty, is kept
  // with the hash (persisted; at most kMaxRelated per hash, the first ones) until
  // take_related(): the agent's event ids that named the file (docs/formats/lookup.md).
  bool enqueue(const hash::Digest& sha256, const std::string& related = {});
  static constexpr size_t kMaxRelated = 8;
  static constexpr size_t kMaxRelatedBytes = 64;  // an event id is 36; longer is cut
  // The related ids kept for `sha256`, forgotten.
  std::vector<std::string> take_related(const hash::Digest& sha256);
  bool waiting(const hash::Digest& sha256) const;
  size_t waiting_count() const { return queue_.size(); }
  uint64_t dropped() const { return dropped_; }
  uint64_t failed() const { return failed_; }

  // Whether a request may go now, and if not, when the next one may.
  bool may_send() const;
  std::chrono::system_clock::time_point next_slot() const;
  // Requests counted in the last minute and day.
  size_t sent_last_minute() const;
  size_t sent_last_day() const;

  // Asks about waiting hashes, oldest first, while the limits allow: each request's time
  // is saved before it is sent, so a crash cannot forget it. A retry puts the hash back
  // at the head and pauses for retry_after; a verdict goes in the cache. An Error from
  // `lookup` (the key refused) puts the hash back and is returned; so is a failed save.
  Result<DrainStats> drain(HashLookup& lookup);

  Status save();
  const std::string& path() const { return path_; }

 private:
  LookupQueue(Env& env, std::string path, LookupLimits limits)
      : env_(&env), path_(std::move(path)), limits_(limits) {}
  Status load(std::string_view text);
  void prune();
  void remember(const hash::Digest& sha256, const VtVerdict& v);

  Env* env_;
  std::string path_;
  UniqueFd lock_;
  LookupLimits limits_;
  std::deque<hash::Digest> queue_;
  uint64_t dropped_ = 0;
  uint64_t failed_ = 0;
  int64_t retry_at_ns_ = 0;
  std::deque<int64_t> requests_ns_;  // oldest first, at most one day's
  std::unordered_map<hash::Digest, CachedVerdict, hash::DigestHash> cache_;
  // By hash: only hashes that wait in queue_ (or were answered and not yet taken).
  std::unordered_map<hash::Digest, std::vector<std::string>, hash::DigestHash> related_;
};

}  // namespace mamori::scan
