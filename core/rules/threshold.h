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
// Memory: at most `max_tracked` (rule, address) pairs, 112 bytes each, and an index of
// 8-byte cells at most half full, allocated up front (at the default cap: 11 MiB of pairs,
// 15 MiB with the vector's slack, and a 2 MiB index). When full, the pair touched least recently is
// forgotten (policy "evict-lru", counted in evictions()), except that a pair still
// counting two or more requests in its window is spared for one holding a single request
// (or nothing current): up to kSpare of them are moved to the recent end first (counted
// in spared()). An address-rotating flood, one request per address, therefore cannot push
// out an attacker's count however many addresses it rotates through; to do that it must
// send two requests matching the same rule from each of more addresses than the cap.
//
// Threads: not thread-safe; one owner (the log-watch thread).

#include <array>
#include <cstdint>
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

  size_t tracked() const { return size_; }
  uint64_t evictions() const { return evictions_; }
  uint64_t spared() const { return spared_; }

 private:
  static constexpr size_t kBuckets = 32;
  static constexpr int kSpare = 4;  // counting pairs passed over per eviction, at most
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
    uint32_t hash = 0;  // the low half of KeyHash(key): its home cell in table_
    int64_t head = 0;   // bucket number (time / width) of the newest bucket
    uint32_t sum = 0;
    uint32_t newer = kNone;  // LRU list: towards the most recently used
    uint32_t older = kNone;
    std::array<uint16_t, kBuckets> counts{};
  };

  uint32_t entry_for(const Key& key, int64_t time_s);
  // The cell of table_ holding `key`, or the empty cell where it would go.
  size_t cell_of(const Key& key, uint64_t hash) const;
  void erase_cell(size_t cell);
  bool counting(const Entry& e, int64_t time_s) const;
  void unlink(uint32_t slot);
  void push_newest(uint32_t slot);

  std::vector<Window> windows_;
  size_t max_tracked_;
  std::vector<Entry> entries_;
  // The index: open addressing with linear probing, at most half full. A cell is 0 when
  // empty, else the high half of the key's hash << 32 | (slot in entries_ + 1), so a probe
  // compares keys only when the hashes agree (one cache miss per lookup, not a chain).
  std::vector<uint64_t> table_;
  size_t mask_ = 0;
  size_t size_ = 0;
  uint32_t newest_ = kNone;
  uint32_t oldest_ = kNone;
  uint64_t evictions_ = 0;
  uint64_t spared_ = 0;
};

}  // namespace mamori::rules
