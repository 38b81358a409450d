#include "core/scan/verdict_cache.h"

namespace mamori::scan {

std::optional<Matches> VerdictCache::find(const hash::Digest& key) {
  MutexLock lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  order_.splice(order_.begin(), order_, it->second);  // iterators stay valid
  return it->second->second;
}

void VerdictCache::insert(const hash::Digest& key, Matches matches) {
  if (capacity_ == 0) return;
  MutexLock lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    it->second->second = std::move(matches);
    order_.splice(order_.begin(), order_, it->second);
    return;
  }
  if (index_.size() >= capacity_) {
    index_.erase(order_.back().first);
    order_.pop_back();
  }
  order_.emplace_front(key, std::move(matches));
  index_.emplace(key, order_.begin());
}

size_t VerdictCache::size() const {
  MutexLock lock(mu_);
  return index_.size();
}

}  // namespace mamori::scan
