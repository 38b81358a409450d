#include "core/rules/threshold.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace mamori::rules {
namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

size_t ring_slot(int64_t bucket, uint32_t buckets) {
  const int64_t m = bucket % buckets;
  return static_cast<size_t>(m < 0 ? m + buckets : m);
}

}  // namespace

Ip16 ipv4_mapped(uint32_t a) {
  return {0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0xff,
          0xff,
          static_cast<uint8_t>(a >> 24),
          static_cast<uint8_t>(a >> 16),
          static_cast<uint8_t>(a >> 8),
          static_cast<uint8_t>(a)};
}

size_t Thresholds::KeyHash::operator()(const Key& k) const {
  uint64_t hi, lo;
  std::memcpy(&hi, k.ip.data(), 8);
  std::memcpy(&lo, k.ip.data() + 8, 8);
  // splitmix64's finaliser over the words: attackers choose the addresses, and
  // std::hash of an integer is the identity.
  uint64_t x = hi * 0x9e3779b97f4a7c15ull ^ lo ^ (uint64_t{k.rule} << 32);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return static_cast<size_t>(x ^ (x >> 31));
}

Thresholds::Thresholds(const RuleSet& rules, size_t max_tracked)
    : windows_(rules.rules.size()), max_tracked_(std::max<size_t>(max_tracked, 1)) {
  for (size_t i = 0; i < rules.rules.size(); ++i) {
    const Rule& r = rules.rules[i];
    if (r.kind != Kind::kThreshold || r.count == 0 || r.window_s == 0) continue;
    Window& w = windows_[i];
    w.count = r.count;
    w.width = (r.window_s + kBuckets - 1) / kBuckets;
    w.buckets = r.window_s / w.width;
  }
  const size_t cells = std::bit_ceil(std::max<size_t>(2 * max_tracked_, 16));
  table_.assign(cells, 0);
  mask_ = cells - 1;
}

size_t Thresholds::cell_of(const Key& key, uint64_t hash) const {
  const uint64_t tag = hash >> 32;
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const uint64_t c = table_[i];
    if (c == 0 || ((c >> 32) == tag && entries_[(c & 0xffffffffu) - 1].key == key)) return i;
  }
}

// Backward-shift deletion: the cells after it that were pushed past their home move up,
// so no tombstones build up under a flood of new addresses.
void Thresholds::erase_cell(size_t i) {
  for (size_t j = (i + 1) & mask_; table_[j] != 0; j = (j + 1) & mask_) {
    const size_t home = entries_[(table_[j] & 0xffffffffu) - 1].hash & mask_;
    // Cell j may move to i when its home is not in (i, j] (cyclically).
    const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    table_[i] = table_[j];
    i = j;
  }
  table_[i] = 0;
  --size_;
}

bool Thresholds::hit(uint32_t rule, const Ip16& ip, int64_t time_s) {
  if (rule >= windows_.size() || windows_[rule].count == 0) return false;
  const Window& w = windows_[rule];
  const int64_t bucket = floor_div(time_s, w.width);
  Entry& e = entries_[entry_for(Key{rule, ip}, time_s)];
  if (bucket > e.head) {
    // Empty the buckets that time has moved past; all of them after a long gap.
    const int64_t stale = std::min<int64_t>(bucket - e.head, w.buckets);
    for (int64_t b = bucket - stale + 1; b <= bucket; ++b) {
      uint16_t& c = e.counts[ring_slot(b, w.buckets)];
      e.sum -= c;
      c = 0;
    }
    e.head = bucket;
  } else if (bucket <= e.head - w.buckets) {
    return false;  // older than the window: a late line
  }
  uint16_t& c = e.counts[ring_slot(bucket, w.buckets)];
  if (c == UINT16_MAX) return false;
  ++c;
  if (++e.sum < w.count) return false;
  e.counts.fill(0);
  e.sum = 0;
  return true;
}

// Two or more requests still inside the window: an address that came back, which an
// address-rotating flood (one request per address) must not push out.
bool Thresholds::counting(const Entry& e, int64_t time_s) const {
  const Window& w = windows_[e.key.rule];
  return e.sum >= 2 && floor_div(time_s, w.width) - e.head < int64_t{w.buckets};
}

uint32_t Thresholds::entry_for(const Key& key, int64_t time_s) {
  const uint64_t hash = KeyHash()(key);
  size_t cell = cell_of(key, hash);
  if (table_[cell] != 0) {
    const auto found = static_cast<uint32_t>((table_[cell] & 0xffffffffu) - 1);
    if (found != newest_) {
      unlink(found);
      push_newest(found);
    }
    return found;
  }
  const int64_t head = floor_div(time_s, windows_[key.rule].width);
  uint32_t slot;
  if (size_ >= max_tracked_) {
    for (int k = 0; k < kSpare && oldest_ != newest_ && counting(entries_[oldest_], time_s); ++k) {
      const uint32_t spare = oldest_;
      unlink(spare);
      push_newest(spare);
      ++spared_;
    }
    slot = oldest_;
    unlink(slot);
    erase_cell(cell_of(entries_[slot].key, KeyHash()(entries_[slot].key)));
    ++evictions_;
    cell = cell_of(key, hash);  // the erase may have moved the empty cell
  } else {
    slot = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
  }
  Entry& e = entries_[slot];
  e.key = key;
  e.hash = static_cast<uint32_t>(hash);
  e.head = head;
  e.sum = 0;
  e.counts.fill(0);
  table_[cell] = (hash >> 32 << 32) | (uint64_t{slot} + 1);
  ++size_;
  push_newest(slot);
  return slot;
}

void Thresholds::unlink(uint32_t slot) {
  Entry& e = entries_[slot];
  (e.newer == kNone ? newest_ : entries_[e.newer].older) = e.older;
  (e.older == kNone ? oldest_ : entries_[e.older].newer) = e.newer;
  e.newer = e.older = kNone;
}

void Thresholds::push_newest(uint32_t slot) {
  Entry& e = entries_[slot];
  e.older = newest_;
  e.newer = kNone;
  if (newest_ != kNone) entries_[newest_].newer = slot;
  newest_ = slot;
  if (oldest_ == kNone) oldest_ = slot;
}

}  // namespace mamori::rules
