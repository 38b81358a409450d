#include "agent/guard/inode_index.h"

#include <string>

namespace mamori::guard {

std::string InodeIndex::key(size_t root, const std::string& rel) {
  // The root's number, NUL, the path: a path holds no NUL, so keys cannot collide.
  std::string k = std::to_string(root);
  k += '\0';
  k += rel;
  return k;
}

void InodeIndex::set(size_t root, const std::string& rel, InodeId id) {
  erase(root, rel);
  std::string k = key(root, rel);
  by_inode_.emplace(id, k);
  by_path_.emplace(std::move(k), id);
}

void InodeIndex::erase(size_t root, const std::string& rel) {
  const std::string k = key(root, rel);
  auto it = by_path_.find(k);
  if (it == by_path_.end()) return;
  auto [b, e] = by_inode_.equal_range(it->second);
  for (; b != e; ++b) {
    if (b->second == k) {
      by_inode_.erase(b);
      break;
    }
  }
  by_path_.erase(it);
}

void InodeIndex::clear(size_t root) {
  const std::string prefix = key(root, "");
  for (auto it = by_path_.begin(); it != by_path_.end();) {
    if (it->first.starts_with(prefix)) {
      auto [b, e] = by_inode_.equal_range(it->second);
      for (; b != e; ++b) {
        if (b->second == it->first) {
          by_inode_.erase(b);
          break;
        }
      }
      it = by_path_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<InodeIndex::Name> InodeIndex::names(InodeId id) const {
  std::vector<Name> out;
  auto [b, e] = by_inode_.equal_range(id);
  for (; b != e; ++b) {
    const std::string& k = b->second;
    const size_t nul = k.find('\0');
    out.push_back({std::stoul(k.substr(0, nul)), k.substr(nul + 1)});
  }
  return out;
}

std::optional<InodeId> InodeIndex::of(size_t root, const std::string& rel) const {
  auto it = by_path_.find(key(root, rel));
  if (it == by_path_.end()) return std::nullopt;
  return it->second;
}

}  // namespace mamori::guard
