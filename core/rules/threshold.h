#pragma once
// Per-address counters for threshold rules ("10 POSTs to /wp-login.php in 60 s"), over a
// sliding window of log time: the caller passes each request's timestamp, so replaying a
// log gives the same answers as reading it live.
//
// Accuracy: a window of W seconds is a ring of n buckets of w = ceil(W / 32) seconds
// each, n = floor(W / w). A request counts while its bucket is one of the last n, so the
// window looks back between n*w - w + 1 and n*w seconds, never more than W: exact to the
// second for W <= 32, within 2 s for 60 s, within 2 buckets (about 6%) beyond. Requests
// older than the window (out-of-order lines) are ignored; counts saturate at 65535 per
// bucket.
//
// Memory: at most `max_tracked` (rule, address) pairs, about 170 bytes each with the
// hash index (17 MB at the default cap). When full, the pair touched least recently is
// forgotten (policy "evict-lru", counted in evictions()): an attacker can push out another
// address's counts only by sending requests from more addresses than the cap.
//
// Threads: not thread-safe; one owner (the log-watch thread).

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/rules/rules_file.h"

namespace mamori::rules {

// An IPv6 address, or an IPv4 address mapped into IPv6 (::ffff:a.b.c.d).
using Ip16 = std::array<uint8_t, 16>;
Ip16 ipv4_mapped(uint32_t host_order_address);

inline constexpr size_t kDefaultMaxTracked = 100000;

class Thresholds {
 public:
  // Takes count and window_s of each threshold rule in `rules` (indexes as in the set).
  explicit Thresholds(const RuleSet& rules, size_t max_tracked = kDefaultMaxTracked);

  // Counts one request from `ip` matching threshold rule `rule` at `time_s` (seconds of
  // log time). True when this request makes `count` within the window: the rule fires,
  // and the pair's count starts again from zero, so a persistent source fires again only
  // after another `count` requests. False for an index that is not a threshold rule.
  bool hit(uint32_t rule, const Ip16& ip, int64_t time_s);

  size_t tracked() const { return index_.size(); }
  uint64_t evictions() const { return evictions_; }

 private:
  static constexpr size_t kBuckets = 32;
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Window {
    uint32_t count = 0;  // 0: not a threshold rule
    uint32_t width = 1;  // seconds per bucket
    uint32_t buckets = 1;
  };
  struct Key {
    uint32_t rule;
    Ip16 ip;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    Key key;
    int64_t head = 0;  // bucket number (time / width) of the newest bucket
    uint32_t sum = 0;
    uint32_t newer = kNone;  // LRU list: towards the most recently used
    uint32_t older = kNone;
    std::array<uint16_t, kBuckets> counts{};
  };

  uint32_t entry_for(const Key& key, int64_t head);
  void unlink(uint32_t slot);
  void push_newest(uint32_t slot);

  std::vector<Window> windows_;
  size_t max_tracked_;
  std::vector<Entry> entries_;
  std::unordered_map<Key, uint32_t, KeyHash> index_;
  uint32_t newest_ = kNone;
  uint32_t oldest_ = kNone;
  uint64_t evictions_ = 0;
};

}  // namespace mamori::rules
